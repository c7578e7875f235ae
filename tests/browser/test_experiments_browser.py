"""Real browser: the Experiments page answers its three experiments on the blog's 4, and the test-set knock-out
job's result appears by itself when the job ends."""

from __future__ import annotations

import pytest

from tests.browser.conftest import click_map_number, open_from_sidebar, screenshot, upload, wait_for_app

pytestmark = pytest.mark.browser


def test_knock_out_fool_and_invariances_on_the_blogs_4(page, app_url):
    page.goto(app_url)
    open_from_sidebar(page, "Experiments")
    page.get_by_text("The network reads", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_role("button", name="Test on all 10,000 test digits", exact=True).click()
    page.get_by_text("Test accuracy with", exact=False).first.wait_for(timeout=120_000)  # no click needed
    wait_for_app(page)
    page.get_by_text("accuracy per class, intact and with the maps off").first.wait_for(timeout=60_000)
    screenshot(page, "experiments_knockout")
    page.get_by_role("tab", name="Fool the network").click()
    page.get_by_text("it now reads", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("the change, amplified", exact=False).first.wait_for(timeout=60_000)
    screenshot(page, "experiments_fool")
    page.get_by_role("tab", name="Invariances").click()
    page.get_by_text("It stays a", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("the prediction under shift").first.wait_for(timeout=60_000)  # the chart, drawn after the text
    screenshot(page, "experiments_invariances")


def test_maps_are_switched_off_by_clicking_them_in_the_grid(page, app_url):
    page.goto(app_url)
    open_from_sidebar(page, "Experiments")
    page.get_by_text("The network reads", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("chosen in the grid or by number").click()
    page.get_by_text("With conv3 maps [0] off", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(page)
    click_map_number(page, 3)
    page.get_by_text("With conv3 maps [0, 3] off", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(page)
    click_map_number(page, 0)  # a second click on a map switches it on again
    page.get_by_text("With conv3 maps [3] off", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(page)
    screenshot(page, "experiments_knockout_clicked")


def test_your_handwriting_drawn_downloaded_and_loaded_again(page, app_url, tmp_path):
    from core.experiments.personal_set import PersonalSet
    from tests.browser.pad import mouse_stroke

    page.goto(app_url)
    open_from_sidebar(page, "Experiments")
    page.get_by_text("The network reads", exact=False).first.wait_for(timeout=60_000)
    page.get_by_role("tab", name="Your handwriting").click()
    page.get_by_text("Your set is empty").wait_for(timeout=60_000)
    page.get_by_role("combobox", name="True label of the digits you add").click()  # the 4 at the top's label
    page.get_by_role("option", name="7", exact=True).click()
    wait_for_app(page)
    frame = page.locator("iframe[title*='canvas']").first
    frame.wait_for(timeout=60_000)
    box = {**frame.bounding_box(), "scale": 1.0}  # canvas pixels are screen pixels here
    mouse_stroke(page, box, [(49, 42), (147, 42), (91, 168)])  # a 7, as on the Activations page, on a 196 px canvas
    page.get_by_text("as the network sees it: reads 7").wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_role("button", name="Add the drawing").click()
    page.get_by_text("Added your drawing as a 7.").wait_for(timeout=60_000)
    page.get_by_text("of your 1 digit right", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(page)

    page.get_by_text("Download your set, or load one (.npz)").click()
    wait_for_app(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download my set (.npz)").click()
    saved = tmp_path / "my_digits.npz"
    download.value.save_as(saved)
    mine = PersonalSet.from_npz(saved.read_bytes())
    assert mine.labels.tolist() == [7] and mine.images.max() > 200  # the drawing, white ink on black

    upload(page, page.locator("input[type='file'][accept*='npz']"), saved)
    page.get_by_role("button", name="Add to my set").click()
    page.get_by_text("Added 1 digit from my_digits.npz.").wait_for(timeout=60_000)
    page.get_by_text("of your 2 digits right", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(page)

    bad = tmp_path / "not_a_set.npz"
    bad.write_text("these are not digits")
    assert page.get_by_text("Your set holds 2 digits", exact=False).is_visible()  # the expander stayed open
    upload(page, page.locator("input[type='file'][accept*='npz']"), bad)
    page.get_by_role("button", name="Replace my set").click()
    page.get_by_text("Your set was kept as it was", exact=False).wait_for(timeout=60_000)
    assert page.get_by_text("of your 2 digits right", exact=False).first.is_visible()
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "experiments_handwriting")
