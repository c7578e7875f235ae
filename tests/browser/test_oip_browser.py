"""Real browser: compute a short OIP run for conv1 and open a map by clicking its thumbnail in the gallery."""

from __future__ import annotations

import pytest

from tests.browser.conftest import click_point, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_short_conv1_oip_run_and_click_a_map_in_the_gallery(page, app_url):
    page.goto(f"{app_url}/oip")
    page.get_by_role("button", name="Compute OIPs").wait_for()
    wait_for_app(page)
    page.get_by_role("combobox", name="Layer", exact=True).click()
    page.get_by_role("option", name="conv1", exact=True).click()
    wait_for_app(page)
    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill("20")
    epochs.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Compute OIPs").click()
    page.get_by_text("maps with an OIP").wait_for(timeout=90_000)
    wait_for_app(page)
    assert page.get_by_text("of 32").first.is_visible()
    points = page.locator(".st-key-oip_gallery .scatterlayer .point")
    points.first.wait_for()
    assert points.count() == 32
    click_point(page, page.locator(".st-key-oip_gallery"), 5)  # the thumbnail of map 5
    page.get_by_role("heading", name="Map 5 of conv1").wait_for(timeout=60_000)
    page.get_by_text("The 9 test patches that excite map 5 most").wait_for(timeout=60_000)  # scanned by the job
    page.get_by_text("conv1 kernel vs. OIP").wait_for(timeout=60_000)  # below the 9 top test patches
    wait_for_app(page)
    screenshot(page, "oip_conv1_map5")
