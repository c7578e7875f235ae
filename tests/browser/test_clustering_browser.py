"""Real browser: a tiny k-means sweep on the Clustering-MLP page shows the charts and the centroids."""
from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_for_app(page)


def test_tiny_sweep_shows_elbow_silhouette_and_centroids(page, app_url):
    page.goto(f"{app_url}/clustering")
    page.get_by_role("button", name="Run sweep", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.get_by_text("all pairs", exact=False).first.is_visible()  # why the silhouette is sampled
    for label, value in (("Training digits", 1000), ("K from", 5), ("K to", 20), ("K step", 5),
                         ("Silhouette sample", 400)):
        _set_number(page, label, value)
    page.get_by_text("1,000² / 2 pairs", exact=False).first.wait_for(timeout=30_000)  # settings applied
    page.get_by_role("button", name="Run sweep", exact=True).click()
    page.get_by_text("mean purity", exact=False).first.wait_for(timeout=90_000)
    wait_for_app(page)
    page.get_by_text("inertia (elbow)").first.wait_for(timeout=30_000)  # plotly's subplot titles (SVG)
    page.get_by_text("mean silhouette (sample)").first.wait_for(timeout=30_000)
    assert page.get_by_text("Cluster centres", exact=True).first.is_visible()
    assert page.locator("[data-testid='stPlotlyChart']").count() >= 2  # sweep charts and centroid grid
    page.get_by_role("button", name="Show sweep", exact=True).wait_for(timeout=90_000)  # kept for these settings
    screenshot(page, "clustering_tiny_sweep")
