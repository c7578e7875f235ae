"""Real browser, issue 25: one browser session keeps what the learner set on every page while they go from page
to page with the app's own menu (a typed address would start a new session).

The test sets non-default values on every page (a digit drawn on the Activations pad, settings, maps switched
off on Experiments, a photo uploaded on Deep Dream), finishes one short OIP job, then goes round all pages three
times through the sidebar's menu links and checks on every visit that every value and the job's result are still
shown. Everything lost is collected (page, round, what) and reported together at the end. After the third round
a full-page screenshot of each page goes to test-artifacts/session/<page>.png, to be looked at by eye.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from tests.browser.conftest import ARTIFACTS, click_map_number, open_from_sidebar, upload, wait_for_app
from tests.browser.pad import SEVEN, answer, find_pad, mouse_stroke, open_pad, pad_box, wait_answer, wait_settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = ARTIFACTS / "session"
SLOW = 90_000  # ms: a page's first run, or a short job, on 2 cores
CHECK = 10_000  # ms: a value on a page that has finished its run
ROUNDS = 3
VIEWPORT = {"width": 1400, "height": 1000}
# the app's menu (pages/ui/menu.py PAGES): title in the sidebar, the page's own title (h1), screenshot name
MENU = (
    ("Start", "MNIST CNN Explorer", "start"),
    ("Train", "Train", "train"),
    ("Activations", "Activations", "activations"),
    ("Experiments", "Experiments on your digit", "experiments"),
    ("Filters / OIP", "Filters / OIP", "oip"),
    ("Precursor", "Precursor", "precursor"),
    ("Clustering-MLP", "Clustering-MLP", "clustering"),
    ("Deep Dream", "Deep Dream", "deep-dream"),
    ("Compare runs", "Compare runs", "compare"),
)
DRAWING = "The digit from the Activations page"
CHOSEN = "chosen in the grid or by number"

Ok = Callable[[str, Callable[[], None]], None]  # ok(what, assertion): records `what` as lost when it fails


def _expect():
    from playwright.sync_api import expect

    return expect


# --------------------------------------------------------------------------- how a user changes a value
def _go(page, title: str, heading: str) -> None:
    """Open a page with the app's own menu link and wait until its script has run."""
    open_from_sidebar(page, title)
    _expect()(page.get_by_role("heading", name=heading, exact=True, level=1)).to_be_visible(timeout=SLOW)
    wait_for_app(page)


def _fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    _expect()(box).to_have_value(value)
    wait_for_app(page)


def _choose(page, label: str, option: str) -> None:
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    _expect()(box).to_have_value(option)
    wait_for_app(page)


def _pick_radio(page, group: str, option: str) -> None:
    choice = page.get_by_role("radiogroup", name=group, exact=True).get_by_text(option, exact=True)
    choice.scroll_into_view_if_needed()  # scrolled first, so the click's own scroll cannot race a layout change
    choice.click()
    _expect()(page.get_by_role("radio", name=option, exact=True)).to_be_checked()
    wait_for_app(page)


def _tick(page, label: str, on: bool) -> None:
    """Click a checkbox's label (its input is hidden) and wait until it shows the new state."""
    page.get_by_text(label, exact=True).click()
    box = _expect()(page.get_by_label(label, exact=True))
    box.to_be_checked() if on else box.not_to_be_checked()
    wait_for_app(page)


def _stroke(page, box: dict, points: list[tuple[float, float]]) -> None:
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=10)
    page.mouse.up()


def _canvas_ink(page) -> None:
    """Wait until the Activations drawing pad shows white ink again (its strokes given back after a page switch)."""
    find_pad(page, CHECK).wait_for_function(
        """() => { const c = document.getElementById('pad');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < d.length; i += 4) if (d[i] > 200) return true;
            return false; }""",
        timeout=CHECK,
    )


def _pad_prediction(page, text: str) -> None:
    find_pad(page, CHECK).wait_for_function(
        "(t) => document.getElementById('prediction').textContent === t", arg=text, timeout=CHECK
    )


def _shoot(page, name: str) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main container, so the window is made as tall
    as that container's content first."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], min(int(height), 15_000))})
    wait_for_app(page)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(VIEWPORT)


# --------------------------------------------------------------------------- each page: set, then check
def _set_train(page) -> None:
    _fill(page, "Epochs", "3")
    _fill(page, "Training digits", "2000")
    _choose(page, "Optimizer", "sgd")


def _check_train(page, ok: Ok) -> None:
    expect = _expect()
    ok("Epochs 3", lambda: expect(page.get_by_label("Epochs", exact=True)).to_have_value("3", timeout=CHECK))
    ok(
        "Training digits 2000",
        lambda: expect(page.get_by_label("Training digits", exact=True)).to_have_value("2000", timeout=CHECK),
    )
    ok(
        "Optimizer sgd",
        lambda: expect(page.get_by_role("combobox", name="Optimizer", exact=True)).to_have_value("sgd", timeout=CHECK),
    )


def _prediction(page):
    return page.locator("h3", has_text="Prediction:").first


def _set_activations(page) -> None:
    expect = _expect()
    expect(_prediction(page)).to_contain_text("Prediction: 4", timeout=SLOW)  # the default pick, test digit 227
    wait_for_app(page)
    pad = open_pad(page, SLOW)  # issue 28's drawing pad
    mouse_stroke(page, pad_box(pad), SEVEN)
    wait_answer(pad, 1, SLOW)
    assert answer(pad)["prediction"] == "Prediction: 7"
    wait_settled(page, pad, SLOW)  # the pad has grown to every layer's maps: the widgets below stay where they are
    expect(page.get_by_text("of the digit predicted as 7", exact=False).first).to_be_visible(timeout=SLOW)
    wait_for_app(page)
    _pick_radio(page, "Layer", "conv2")
    _pick_radio(page, "Colour scale", "per map")
    expect(page.get_by_text("conv2 · map 0").first).to_be_visible(timeout=SLOW)


def _check_activations(page, ok: Ok) -> None:
    expect = _expect()
    ok("input Draw", lambda: expect(page.get_by_role("radio", name="Draw", exact=True)).to_be_checked(timeout=CHECK))
    # first the pad, remounted with its strokes: the runs it causes come before the prediction is checked
    ok("the drawing on the pad", lambda: _canvas_ink(page))
    wait_for_app(page)
    ok("prediction 7 of the drawing", lambda: _pad_prediction(page, "Prediction: 7"))
    ok(
        "sections for the drawn 7",
        lambda: expect(page.get_by_text("of the digit predicted as 7", exact=False).first).to_be_visible(timeout=CHECK),
    )
    ok("layer conv2", lambda: expect(page.get_by_role("radio", name="conv2", exact=True)).to_be_checked(timeout=CHECK))
    ok(
        "colour scale per map",
        lambda: expect(page.get_by_role("radio", name="per map", exact=True)).to_be_checked(timeout=CHECK),
    )


def _set_experiments(page) -> None:
    expect = _expect()
    expect(page.get_by_text("The network reads", exact=False).first).to_be_visible(timeout=SLOW)
    expect(page.get_by_role("radio", name=DRAWING, exact=True)).to_be_checked()
    expect(page.get_by_text("your drawing", exact=True)).to_be_visible()
    # a test digit of its own (kept while hidden), then back to the drawing
    _pick_radio(page, "Digit", "An MNIST test digit")
    _fill(page, "Test digit (index)", "42")
    expect(page.get_by_text("MNIST test digit 42 (label", exact=False)).to_be_visible(timeout=SLOW)
    _pick_radio(page, "Digit", DRAWING)
    expect(page.get_by_text("your drawing", exact=True)).to_be_visible(timeout=SLOW)
    # maps switched off: chosen, then map 3 clicked in the grid (map 0 is the default choice)
    page.get_by_text(CHOSEN, exact=True).click()
    expect(page.get_by_text("With conv3 maps [0] off", exact=False).first).to_be_visible(timeout=SLOW)
    wait_for_app(page)
    click_map_number(page, 3)
    expect(page.get_by_text("With conv3 maps [0, 3] off", exact=False).first).to_be_visible(timeout=SLOW)
    wait_for_app(page)


def _check_experiments(page, ok: Ok) -> None:
    expect = _expect()
    ok(
        "digit source: the Activations page's",
        lambda: expect(page.get_by_role("radio", name=DRAWING, exact=True)).to_be_checked(timeout=CHECK),
    )
    ok(
        "analyses 'your drawing'",
        lambda: expect(page.get_by_text("your drawing", exact=True)).to_be_visible(timeout=CHECK),
    )
    ok(
        f"maps mode '{CHOSEN}'",
        lambda: expect(page.get_by_role("radio", name=CHOSEN, exact=True)).to_be_checked(timeout=CHECK),
    )
    ok(
        "conv3 maps [0, 3] off",
        lambda: expect(page.get_by_text("With conv3 maps [0, 3] off", exact=False).first).to_be_visible(timeout=CHECK),
    )


def _check_experiments_index(page, ok: Ok) -> None:
    expect = _expect()
    ok(
        "test digit index 42",
        lambda: expect(page.get_by_label("Test digit (index)", exact=True)).to_have_value("42", timeout=CHECK),
    )


def _set_oip(page) -> None:
    expect = _expect()
    expect(page.get_by_role("button", name="Compute OIPs")).to_be_visible(timeout=SLOW)
    wait_for_app(page)
    _choose(page, "Layer", "conv1")
    _fill(page, "Epochs", "20")
    _fill(page, "Seed", "7")
    page.get_by_role("button", name="Compute OIPs").click()
    expect(page.get_by_text("maps with an OIP")).to_be_visible(timeout=SLOW)  # the job's result, by itself
    wait_for_app(page)
    _choose(page, "Map", "5")
    expect(page.get_by_role("heading", name="Map 5 of conv1")).to_be_visible(timeout=SLOW)
    wait_for_app(page)


def _check_oip(page, ok: Ok) -> None:
    expect = _expect()
    ok(
        "layer conv1",
        lambda: expect(page.get_by_role("combobox", name="Layer", exact=True)).to_have_value("conv1", timeout=CHECK),
    )
    ok("epochs 20", lambda: expect(page.get_by_label("Epochs", exact=True)).to_have_value("20", timeout=CHECK))
    ok("seed 7", lambda: expect(page.get_by_label("Seed", exact=True)).to_have_value("7", timeout=CHECK))
    ok(
        "the OIP job's result (metric)",
        lambda: expect(page.get_by_text("maps with an OIP")).to_be_visible(timeout=CHECK),
    )
    ok(
        "the OIP gallery of conv1",
        lambda: expect(page.get_by_role("heading", name="Gallery · conv1")).to_be_visible(timeout=CHECK),
    )
    ok(
        "the open map 5",
        lambda: expect(page.get_by_role("heading", name="Map 5 of conv1")).to_be_visible(timeout=CHECK),
    )
    ok(
        "'Compute again' (these settings were computed)",
        lambda: expect(page.get_by_role("button", name="Compute again")).to_be_visible(timeout=CHECK),
    )


PRECURSOR_SUMMARY = "2 values on 2×2 squares) × 2 target maps"


def _set_precursor(page) -> None:
    _fill(page, "Target maps", "5,7")
    _choose(page, "Grid (squares per side)", "2")
    _fill(page, "Grey values", "0.2,0.8")
    _fill(page, "Full epochs", "100")
    _expect()(page.get_by_text(PRECURSOR_SUMMARY, exact=False)).to_be_visible(timeout=SLOW)


def _check_precursor(page, ok: Ok) -> None:
    expect = _expect()
    ok(
        "target maps 5,7",
        lambda: expect(page.get_by_label("Target maps", exact=True)).to_have_value("5,7", timeout=CHECK),
    )
    ok(
        "grid 2",
        lambda: expect(page.get_by_role("combobox", name="Grid (squares per side)", exact=True)).to_have_value(
            "2", timeout=CHECK
        ),
    )
    ok(
        "grey values 0.2,0.8",
        lambda: expect(page.get_by_label("Grey values", exact=True)).to_have_value("0.2,0.8", timeout=CHECK),
    )
    ok(
        "full epochs 100",
        lambda: expect(page.get_by_label("Full epochs", exact=True)).to_have_value("100", timeout=CHECK),
    )
    ok(
        "the search's size for these settings",
        lambda: expect(page.get_by_text(PRECURSOR_SUMMARY, exact=False)).to_be_visible(timeout=CHECK),
    )


def _set_clustering(page) -> None:
    expect = _expect()
    expect(page.get_by_role("button", name="Run sweep", exact=True)).to_be_visible(timeout=SLOW)
    wait_for_app(page)
    _fill(page, "Training digits", "2000")
    _fill(page, "K to", "50")
    _fill(page, "K step", "20")
    _fill(page, "Epochs", "3")
    _tick(page, "Also the pixel MLP", on=False)
    expect(page.get_by_text("2,000² / 2 pairs", exact=False).first).to_be_visible(timeout=SLOW)


def _check_clustering(page, ok: Ok) -> None:
    expect = _expect()
    for label, value in (("Training digits", "2000"), ("K to", "50"), ("K step", "20"), ("Epochs", "3")):
        ok(
            f"{label} {value}",
            lambda label=label, value=value: expect(page.get_by_label(label, exact=True)).to_have_value(
                value, timeout=CHECK
            ),
        )
    ok(
        "'Also the pixel MLP' off",
        lambda: expect(page.get_by_label("Also the pixel MLP", exact=True)).not_to_be_checked(timeout=CHECK),
    )


PHOTO_CAPTION = "temple.jpg · 320×214"


def _set_dream(page, photo) -> None:
    expect = _expect()
    expect(page.get_by_role("button", name="Dream", exact=True)).to_be_visible(timeout=SLOW)
    wait_for_app(page)
    upload(page, page.locator("[data-testid='stFileUploaderDropzoneInput']"), photo)
    expect(page.get_by_text(PHOTO_CAPTION)).to_be_visible(timeout=SLOW)
    wait_for_app(page)
    _fill(page, "Epochs per loop", "7")
    _tick(page, "Invert polarity", on=True)


def _check_dream(page, ok: Ok) -> None:
    expect = _expect()
    ok("the uploaded photo temple.jpg", lambda: expect(page.get_by_text(PHOTO_CAPTION)).to_be_visible(timeout=CHECK))
    ok(
        "epochs per loop 7",
        lambda: expect(page.get_by_label("Epochs per loop", exact=True)).to_have_value("7", timeout=CHECK),
    )
    ok(
        "invert polarity on",
        lambda: expect(page.get_by_label("Invert polarity", exact=True)).to_be_checked(timeout=CHECK),
    )


THRESHOLD = "Same map from a correlation of"


def _slider(page, label: str):
    """A slider's range input (its accessible name repeats the label: found by its widget's label instead)."""
    return page.locator("[data-testid='stSlider']").filter(has_text=label).locator("input[type='range']")


def _set_compare(page) -> None:
    expect = _expect()
    slider = _slider(page, THRESHOLD)
    expect(slider).to_have_value("0.5", timeout=SLOW)
    wait_for_app(page)
    slider.focus()
    slider.press("ArrowRight")
    expect(slider).to_have_value("0.55")
    wait_for_app(page)
    page.get_by_role("button", name="Remove conv1", exact=True).click()
    expect(page.get_by_role("button", name="Remove conv1", exact=True)).to_have_count(0)
    wait_for_app(page)


def _check_compare(page, ok: Ok) -> None:
    expect = _expect()
    ok(
        "correlation threshold 0.55",
        lambda: expect(_slider(page, THRESHOLD)).to_have_value("0.55", timeout=CHECK),
    )
    ok(
        "layers without conv1",
        lambda: expect(page.get_by_role("button", name="Remove conv1", exact=True)).to_have_count(0, timeout=CHECK),
    )
    ok(
        "layers conv2 and conv3",
        lambda: expect(page.get_by_role("button", name="Remove conv3", exact=True)).to_have_count(1, timeout=CHECK),
    )


def _check_start(page, ok: Ok) -> None:
    expect = _expect()
    ok(
        "the blog's path",
        lambda: expect(page.get_by_text("The blog's path, one step per click")).to_be_visible(timeout=CHECK),
    )


# --------------------------------------------------------------------------- the test
def test_every_page_keeps_its_values_through_three_rounds_of_the_menu(page, app_url, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_sample_image

    shutil.rmtree(SHOTS, ignore_errors=True)  # no screenshot of an earlier run stays beside this run's
    photo = tmp_path / "temple.jpg"  # as in test_dream_browser: scikit-learn's china.jpg, made smaller
    Image.fromarray(load_sample_image("china.jpg")).resize((320, 214)).save(photo, "JPEG", quality=90)

    checks = {
        "start": _check_start,
        "train": _check_train,
        "activations": _check_activations,
        "experiments": _check_experiments,
        "oip": _check_oip,
        "precursor": _check_precursor,
        "clustering": _check_clustering,
        "deep-dream": _check_dream,
        "compare": _check_compare,
    }
    setters = {
        "train": _set_train,
        "activations": _set_activations,
        "experiments": _set_experiments,
        "oip": _set_oip,
        "precursor": _set_precursor,
        "clustering": _set_clustering,
        "deep-dream": lambda pg: _set_dream(pg, photo),
        "compare": _set_compare,
    }

    page.goto(app_url)
    _expect()(page.get_by_role("heading", name="MNIST CNN Explorer", level=1)).to_be_visible(timeout=SLOW)
    wait_for_app(page)

    # Every page once, in menu order: set its values (and run the OIP job); each is checked as set.
    lost: list[str] = []
    for title, heading, name in MENU:
        _go(page, title, heading)
        if name in setters:
            setters[name](page)
        _visit(page, checks[name], f"set, {title}", name, lost)
    assert not lost, "values not shown right after they were set (the test's fault?):\n" + "\n".join(lost)

    # Three rounds through the sidebar's menu; everything must still be there on every visit.
    for round_ in range(1, ROUNDS + 1):
        for title, heading, name in MENU:
            _go(page, title, heading)
            _visit(page, checks[name], f"round {round_}, {title}", f"round{round_}_{name}", lost)
            if round_ == ROUNDS:
                _shoot(page, name)

    # The test digit chosen on Experiments before it went back to the drawing was kept, hidden, all along.
    _go(page, "Experiments", "Experiments on your digit")
    _pick_radio(page, "Digit", "An MNIST test digit")
    _visit(page, _check_experiments_index, "after the rounds, Experiments", "experiments_index", lost)
    assert page.locator("[data-testid='stException']").count() == 0
    assert not lost, f"lost on a page switch ({len(lost)}):\n" + "\n".join(lost)


def _visit(page, check, where: str, shot: str, lost: list[str]) -> None:
    """Run one page's checks; what fails is recorded with where it was lost and a screenshot."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    found: list[str] = []

    def ok(what: str, assertion: Callable[[], None]) -> None:
        try:
            assertion()
        except (AssertionError, PlaywrightTimeout) as exc:
            found.append(f"{where}: {what} ({str(exc).splitlines()[0]})")

    check(page, ok)
    if page.locator("[data-testid='stException']").count():
        found.append(f"{where}: the page shows an exception")
    if found:
        _shoot(page, f"FAILED_{shot}")
        lost.extend(f"{line} [test-artifacts/session/FAILED_{shot}.png]" for line in found)
