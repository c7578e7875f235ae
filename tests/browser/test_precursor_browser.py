"""Real browser: find the failing conv3 maps, run a tiny precursor search (2×2 squares, 2 values) and see the
rescued maps marked in the Filters/OIP gallery."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def _fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_for_app(page)


def test_tiny_precursor_search_rescues_maps_and_marks_them_in_the_gallery(page, app_url):
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_role("link", name="Precursor").click()
    page.get_by_role("button", name="Run the plain OIP run").click()
    page.get_by_text("maps without an OIP").wait_for(timeout=90_000)
    page.get_by_role("button", name="Run the plain OIP run again").wait_for(timeout=30_000)
    wait_for_app(page)
    page.get_by_role("combobox", name="Grid (squares per side)", exact=True).click()
    page.get_by_role("option", name="2", exact=True).click()
    wait_for_app(page)
    _fill(page, "Grey values", "0.2,0.8")
    _fill(page, "Full epochs", "100")
    page.get_by_text("16 patterns").wait_for()
    page.get_by_role("button", name="Run the precursor search").click()
    page.get_by_text("maps rescued").wait_for(timeout=90_000)
    wait_for_app(page)
    assert page.get_by_text("33 of 67").is_visible()  # the blog's figure beside ours
    page.get_by_text("the 8 best starting patterns", exact=False).first.wait_for(timeout=30_000)
    screenshot(page, "precursor_tiny_grid")
    page.get_by_role("link", name="Filters / OIP").click()
    page.get_by_text("rescued by the precursor").wait_for(timeout=60_000)
    wait_for_app(page)
    # the gallery's thumbnails carry a "P" label for each rescued map
    page.locator(".st-key-oip_gallery").get_by_text("P ", exact=False).first.wait_for(timeout=30_000)
    screenshot(page, "oip_gallery_with_rescued_maps")
