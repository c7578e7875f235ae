"""Activations page in a real browser: draw a digit with the mouse on the drawing pad (inside its
component's frames), see the prediction, select a map by clicking the grid, upload a good and a bad file."""

from __future__ import annotations

import pytest

from tests.browser.conftest import click_map_number, open_from_sidebar, screenshot, upload, wait_for_app
from tests.browser.pad import SEVEN, answer, find_pad, mouse_stroke, open_pad, pad_box, wait_answer, wait_settled

pytestmark = pytest.mark.browser


def _sections_show(page, predicted: int) -> None:
    """Wait until the sections below the input show this digit (a full page run has reached them)."""
    page.get_by_text(f"of the digit predicted as {predicted}", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(page)


def _click_map_label(page, index: int) -> None:
    """Click the label of map ``index`` in the layer grid and wait for its enlarged view."""
    click_map_number(page, index)
    page.get_by_text(f"conv1 · map {index}").first.wait_for(timeout=30_000)


def _prediction(page) -> str:
    heading = page.locator("h3", has_text="Prediction:").first
    heading.wait_for(timeout=60_000)
    return heading.inner_text()


def test_draw_select_upload(app_url, page, tmp_path):
    from tests.test_activations import png_bytes

    page.goto(app_url)
    page.get_by_text("Active model").first.wait_for(timeout=90_000)
    open_from_sidebar(page, "Activations")
    assert "Prediction: 4" in _prediction(page)  # the default pick, test digit 227
    _sections_show(page, 4)
    assert page.get_by_label("Class of a random digit").first.is_visible()

    # Draw a 7 with the mouse on the drawing pad (its own frame inside the component's, issue 28)
    pad = open_pad(page)
    mouse_stroke(page, pad_box(pad), SEVEN)
    wait_answer(pad, 1)
    assert answer(pad)["prediction"] == "Prediction: 7"
    _sections_show(page, 7)
    screenshot(page, "activations_drawn_7")

    # Another page and back: the drawing is still there, on the pad and in the sections (issue 25, defect 2)
    open_from_sidebar(page, "Filters / OIP")
    page.get_by_role("heading", name="Filters / OIP").first.wait_for(timeout=60_000)
    open_from_sidebar(page, "Activations")
    pad = find_pad(page)
    pad.wait_for_function("() => document.getElementById('prediction').textContent === 'Prediction: 7'")
    _sections_show(page, 7)
    wait_settled(page, pad)  # the remounted pad grows to every layer's maps: the grid below moves down once
    screenshot(page, "activations_drawing_after_a_page_switch")

    # Select map 5 of conv1 by clicking its number above the grid (plotly on_select)
    _click_map_label(page, 5)
    wait_for_app(page)
    screenshot(page, "activations_map_selected")

    # Upload a digit image (dark on light, off-centre) and then a broken file
    page.get_by_role("radio", name="Upload").click()
    good = tmp_path / "four.png"
    good.write_bytes(png_bytes(227))
    upload(page, page.locator("input[type='file']"), good)
    page.get_by_text("dark digit on a light background: inverted").wait_for(timeout=60_000)
    assert "Prediction: 4" in _prediction(page)
    _sections_show(page, 4)
    screenshot(page, "activations_uploaded")
    # Every attribution method of the registry draws its map in the "Which pixels matter" tab
    page.get_by_role("tab", name="Which pixels matter").click()
    page.get_by_text("Integrated Gradients: each pixel's change", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("LIME: 1000 copies", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_text("Integrated Gradients from black", exact=False).first.scroll_into_view_if_needed()
    screenshot(page, "activations_pixels")
    bad = tmp_path / "broken.png"
    bad.write_bytes(png_bytes(227)[:300])
    upload(page, page.locator("input[type='file']"), bad)
    page.get_by_text("truncated or corrupt").wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "activations_bad_upload")


def test_the_layer_radio_shows_the_layer_the_grid_shows_after_a_page_switch(app_url, page):
    """Issue 25, defect 4: after a visit to another page the Layer radio showed conv1 while the grid showed conv3,
    and a click on conv1 did nothing (the browser had mounted the radio at its default)."""
    page.goto(app_url + "/activations")
    _sections_show(page, 4)
    layer_radio = page.get_by_role("radiogroup", name="Layer")
    layer_radio.get_by_text("conv3", exact=True).click()
    page.get_by_text("conv3 of the digit predicted as 4", exact=False).first.wait_for(timeout=60_000)
    for other in ("Experiments", "Filters / OIP"):
        open_from_sidebar(page, other)
        open_from_sidebar(page, "Activations")
        _sections_show(page, 4)
        assert page.get_by_text("conv3 of the digit predicted as 4", exact=False).first.is_visible()
        assert layer_radio.get_by_role("radio", name="conv3").is_checked(), f"after {other}: radio not on conv3"
    layer_radio.get_by_text("conv1", exact=True).click()
    page.get_by_text("conv1 of the digit predicted as 4", exact=False).first.wait_for(timeout=60_000)
    assert layer_radio.get_by_role("radio", name="conv1").is_checked()
    screenshot(page, "activations_layer_after_switches")
