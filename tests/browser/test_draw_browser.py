"""The Activations page's drawing pad in chromium (issue 28): the answer follows a long stroke while it is drawn,
a finger gives the same answer as the mouse, Undo and Clear work, and the server's sections follow each stroke."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot, wait_for_app
from tests.browser.pad import ONE, SEVEN, answer, mouse_stroke, open_pad, pad_box, touch_stroke, wait_answer

pytestmark = pytest.mark.browser

SPATIAL = ["conv1", "pool1", "conv2", "pool2", "conv3"]  # the bundled model's layers with maps


def _open(page, app_url):
    page.goto(app_url + "/activations")
    page.get_by_text("Prediction:").first.wait_for(timeout=90_000)
    return open_pad(page)


@pytest.mark.slow
def test_the_answer_follows_a_long_stroke_and_the_sections_follow_the_pen_up(app_url, page):
    pad = _open(page, app_url)
    box = pad_box(pad)
    seen = {}

    def halfway():
        pad.wait_for_function("() => window.drawStats.strokes.at(-1).updates.length >= 3", timeout=10_000)
        seen.update(answer(pad))

    mouse_stroke(page, box, SEVEN, steps=40, pause_s=0.01, during=halfway)  # about 1 s with the button down
    assert seen["prediction"].startswith("Prediction:") and not seen["final"], seen  # answered mid-stroke
    assert seen["layers"], "no maps while drawing"
    wait_answer(pad, 1)
    shown = answer(pad)
    assert shown["prediction"] == "Prediction: 7" and shown["final"]
    assert sorted(shown["layers"]) == sorted(SPATIAL)  # every layer's maps after the pen lifts
    assert shown["updates"][0] >= 5, shown["updates"]
    # the server's reference for the sections below agrees with the pad
    page.get_by_text("of the digit predicted as 7", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.get_by_text("differs from the server's").count() == 0
    screenshot(page, "draw_pad_seven")


def test_undo_and_clear(app_url, page):
    pad = _open(page, app_url)
    box = pad_box(pad)
    mouse_stroke(page, box, ONE)
    wait_answer(pad, 1)
    first = answer(pad)
    mouse_stroke(page, box, [(60, 140), (220, 140)])
    wait_answer(pad, 2)
    assert answer(pad)["probabilities"] != first["probabilities"]
    pad.locator("#undo").click()
    wait_answer(pad, 3)
    assert answer(pad)["probabilities"] == first["probabilities"]  # the very drawing of the first stroke
    page.get_by_text(f"of the digit predicted as {first['prediction'][-1]}", exact=False).first.wait_for()
    pad.locator("#clear").click()
    wait_answer(pad, 4)
    assert answer(pad)["prediction"] == "Draw a digit" and answer(pad)["layers"] == []
    page.get_by_text("of the digit predicted as", exact=False).first.wait_for(state="detached", timeout=60_000)


@pytest.mark.slow
def test_a_finger_gives_the_mouses_answer(app_url, browser):
    answers = {}
    for kind in ("mouse", "touch"):
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, has_touch=kind == "touch")
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            pad = _open(page, app_url)
            stroke = touch_stroke if kind == "touch" else mouse_stroke
            stroke(page, pad_box(pad), SEVEN, steps=20)
            wait_answer(pad, 1)
            answers[kind] = answer(pad)
            page.get_by_text("of the digit predicted as 7", exact=False).first.wait_for(timeout=60_000)
        finally:
            context.close()
    assert answers["touch"]["pointer"] == "touch" and answers["mouse"]["pointer"] == "mouse"
    assert answers["touch"]["prediction"] == answers["mouse"]["prediction"] == "Prediction: 7"
    worst = max(abs(a - b) for a, b in zip(answers["touch"]["probabilities"], answers["mouse"]["probabilities"]))
    assert worst < 0.02, answers
