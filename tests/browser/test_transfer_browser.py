"""Real browser: on the New symbols page a symbol is drawn and added, a set is loaded, and the transfer job's
frozen-against-scratch result appears by itself when the job ends."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.conftest import open_from_sidebar, screenshot, upload, wait_for_app

pytestmark = pytest.mark.browser


def test_a_drawn_symbol_a_loaded_set_and_a_transfer(page, app_url, tmp_path):
    from core.experiments.transfer import SymbolSet
    from tests.browser.pad import mouse_stroke
    from tests.test_personal_set import bars

    page.goto(app_url)
    open_from_sidebar(page, "New symbols")
    page.get_by_text("No symbols yet", exact=False).wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_role("textbox", name="Symbol name").fill("plus")
    page.get_by_role("textbox", name="Symbol name").press("Enter")
    page.get_by_role("button", name="Add the drawing as 'plus'").wait_for(timeout=60_000)
    wait_for_app(page)
    frame = page.locator("iframe[title*='canvas']").first
    frame.wait_for(timeout=60_000)
    box = {**frame.bounding_box(), "scale": 1.0}  # canvas pixels are screen pixels
    mouse_stroke(page, box, [(98, 40), (98, 156)])  # a +: two strokes on the 196 px canvas
    mouse_stroke(page, box, [(40, 98), (156, 98)])
    page.get_by_text("as the network sees it (28×28)").wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_role("button", name="Add the drawing as 'plus'").click()
    page.get_by_text("Added your drawing as 'plus'.").wait_for(timeout=60_000)
    page.get_by_text("1 symbol", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("Not yet: the set has 1 symbol (only 'plus')", exact=False).wait_for(timeout=60_000)
    wait_for_app(page)

    labels = np.repeat(np.arange(3), 4)
    saved = tmp_path / "symbols.npz"
    saved.write_bytes(SymbolSet(bars(labels * 4, vertical=True), labels, ("left", "middle", "right")).to_npz())
    page.get_by_text("Download your symbols, or load a set (.npz)").click()
    upload(page, page.locator("input[type='file'][accept*='npz']"), saved)
    page.get_by_role("button", name="Replace my symbols").click()
    page.get_by_text("Loaded 12 examples of 3 symbols.").wait_for(timeout=60_000)
    wait_for_app(page)
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.fill("3")
    epochs.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Teach a copy these symbols").click()
    page.get_by_text("frozen conv layers + new head", exact=False).first.wait_for(timeout=180_000)  # no click
    page.get_by_text("new run article-II-symbols", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("mean activation of each conv3 map per symbol", exact=False).first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    page.get_by_text("Which conv3 maps the new symbols use").scroll_into_view_if_needed()
    screenshot(page, "transfer")
