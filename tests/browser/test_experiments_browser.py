"""Real browser: the Experiments page answers its three experiments on the blog's 4, and the test-set knock-out
job's result appears by itself when the job ends."""
from __future__ import annotations

import pytest

from tests.browser.conftest import open_from_sidebar, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_knock_out_fool_and_invariances_on_the_blogs_4(page, app_url):
    page.goto(app_url)
    open_from_sidebar(page, "Experiments")
    page.get_by_text("The network reads", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_role("button", name="Test on all 10,000 test digits", exact=True).click()
    page.get_by_text("Test accuracy with", exact=False).first.wait_for(timeout=120_000)  # no click needed
    wait_for_app(page)
    assert page.get_by_text("accuracy per class, intact and with the maps off").first.is_visible()
    screenshot(page, "experiments_knockout")
    page.get_by_role("tab", name="Fool the network").click()
    page.get_by_text("it now reads", exact=False).first.wait_for(timeout=60_000)
    assert page.get_by_text("the change, amplified", exact=False).first.is_visible()
    screenshot(page, "experiments_fool")
    page.get_by_role("tab", name="Invariances").click()
    page.get_by_text("It stays a", exact=False).first.wait_for(timeout=60_000)
    assert page.get_by_text("the prediction under shift").first.is_visible()
    screenshot(page, "experiments_invariances")
