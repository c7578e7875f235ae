"""Real browser: a tiny k-means sweep and cluster MLP on the Clustering-MLP page show their results by themselves
when their jobs end, and the page keeps its settings across a page switch."""

from __future__ import annotations

import pytest

from tests.browser.conftest import open_from_sidebar, screenshot, set_number, wait_for_app

pytestmark = pytest.mark.browser


def test_tiny_sweep_shows_elbow_silhouette_and_centroids(page, app_url):
    page.goto(f"{app_url}/clustering")
    page.get_by_role("button", name="Run sweep", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.get_by_text("all pairs", exact=False).first.is_visible()  # why the silhouette is sampled
    for label, value in (
        ("Training digits", 1000),
        ("K from", 5),
        ("K to", 20),
        ("K step", 5),
        ("Silhouette sample", 400),
    ):
        set_number(page, label, value)
    page.get_by_text("1,000² / 2 pairs", exact=False).first.wait_for(timeout=30_000)  # settings applied
    page.get_by_role("button", name="Run sweep", exact=True).click()
    page.get_by_role("button", name="Sweeping…", exact=True).wait_for(timeout=30_000)  # the job is on
    # when the job ends the page shows its result by itself, and the button says a click adds nothing new
    page.get_by_role("button", name="Sweep shown below", exact=True).wait_for(timeout=90_000)
    page.get_by_text("K = 15: mean purity", exact=False).first.wait_for(timeout=30_000)
    wait_for_app(page)
    page.get_by_text("inertia (elbow)").first.wait_for(timeout=30_000)  # plotly's subplot titles (SVG)
    page.get_by_text("mean silhouette (sample)").first.wait_for(timeout=30_000)
    assert page.get_by_text("Cluster centres", exact=True).first.is_visible()
    assert page.locator("[data-testid='stPlotlyChart']").count() >= 2  # sweep charts and centroid grid
    assert page.get_by_role("button", name="Sweep shown below", exact=True).is_disabled()
    screenshot(page, "clustering_tiny_sweep")

    # the cluster MLP: its result appears by itself when training ends, and Train is clickable again
    set_number(page, "K (inputs of the cluster MLP)", 10)
    set_number(page, "Epochs", 2)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_role("button", name="Training…", exact=True).wait_for(timeout=30_000)
    page.get_by_text("reference's final accuracy").first.wait_for(timeout=120_000)
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Train", exact=True).is_enabled()

    # settings stay as the user left them when they visit another page and come back
    open_from_sidebar(page, "Deep Dream")
    page.get_by_role("heading", name="Deep Dream").wait_for(timeout=60_000)
    wait_for_app(page)
    open_from_sidebar(page, "Clustering-MLP")
    page.get_by_role("button", name="Sweep shown below", exact=True).wait_for(timeout=60_000)
    assert page.get_by_label("K to", exact=True).input_value() == "20"
    assert page.get_by_label("Training digits", exact=True).input_value() == "1000"
    screenshot(page, "clustering_mlp_and_back")
