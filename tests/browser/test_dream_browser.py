"""Real browser: upload a photo on the Deep Dream page, dream, and see the dream beside the original."""

from __future__ import annotations

import pytest

from tests.browser.conftest import open_from_sidebar, screenshot, upload, wait_for_app

pytestmark = pytest.mark.browser


def test_upload_a_photo_and_see_the_dream(page, app_url, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_sample_image

    photo = tmp_path / "temple.jpg"  # the other photo that ships with scikit-learn (china.jpg), made smaller
    Image.fromarray(load_sample_image("china.jpg")).resize((320, 214)).save(photo, "JPEG", quality=90)

    page.set_viewport_size({"width": 1400, "height": 3600})  # Streamlit scrolls inside its own container
    page.goto(app_url)  # through the sidebar: a cold server may not know the page's URL before its first run
    wait_for_app(page)
    open_from_sidebar(page, "Deep Dream")
    page.get_by_role("button", name="Dream", exact=True).wait_for()
    wait_for_app(page)
    upload(page, page.locator("[data-testid='stFileUploaderDropzoneInput']"), photo)
    page.get_by_text("temple.jpg · 320×214").wait_for(timeout=60_000)  # the caption of the uploaded photo
    wait_for_app(page)

    page.get_by_role("button", name="Dream", exact=True).click(timeout=120_000)
    page.get_by_role("button", name="Dreaming…").wait_for(timeout=30_000)  # the dream is a job now
    page.get_by_role("button", name="Dream", exact=True).wait_for(timeout=120_000)  # it ended: the page says so
    page.get_by_text("Loop by loop").wait_for(timeout=90_000)
    wait_for_app(page)
    page.get_by_text("original (temple.jpg)").first.wait_for(timeout=60_000)
    page.get_by_text("dream, values widened").first.wait_for(timeout=60_000)
    page.get_by_text("loop 4 · cost").first.wait_for(timeout=60_000)
    images = page.locator("[data-testid='stImage'] img")
    page.wait_for_function(  # images arrive one by one: wait for all of them, then check
        "n => document.querySelectorAll(\"[data-testid='stImage'] img\").length >= n", arg=1 + 2 + 4 * 5, timeout=60_000
    )
    assert images.count() >= 1 + 2 + 4 * 5  # the photo, original + dream, 4 rows as in the blog
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=30_000,
    )
    for i in (1, 2):  # original and dream really loaded in the browser, at the photo's size
        assert images.nth(i).evaluate("img => img.naturalWidth") == 320
    page.get_by_role("button", name="Download PNG").wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)  # cost curve and value distribution
    screenshot(page, "dream_uploaded_photo")
