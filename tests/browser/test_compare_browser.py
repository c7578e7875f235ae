"""Real browser: the Compare page aligns the maps of two runs as a job and shows the answer, its charts and the
matched kernels by themselves when the job ends."""

from __future__ import annotations

import pytest

from tests.browser.conftest import open_from_sidebar, screenshot, start_streamlit, stop_streamlit, wait_for_app
from tests.conftest import write_tiny_run

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def compare_url(tmp_path_factory):
    """A server of its own whose runs folder holds a second run beside the bundled model."""
    runs = tmp_path_factory.mktemp("compare-runs")
    write_tiny_run(runs / "tiny-b", seed=2)
    proc, url = start_streamlit(runs, tmp_path_factory.mktemp("compare-log"))
    yield url
    stop_streamlit(proc)


def test_two_runs_are_aligned_and_the_answer_appears_by_itself(page, compare_url):
    page.goto(compare_url)
    open_from_sidebar(page, "Compare runs")
    page.get_by_role("heading", name="Do bundled article II and tiny-b have the same maps?").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.get_by_text("Settings that differ between these runs", exact=False).first.is_visible()
    page.get_by_role("button", name="Align the maps", exact=True).click()
    page.get_by_text("conv3: ", exact=False).first.wait_for(timeout=120_000)  # the job's answer, without a click
    wait_for_app(page)
    for layer in ("conv1", "conv2", "conv3"):
        assert page.get_by_text(f"{layer}: correlation of the matched pairs").first.is_visible()
    assert page.get_by_text("of bundled article II have a partner in tiny-b", exact=False).count() == 3
    assert page.get_by_text("kernels side by side", exact=False).first.is_visible()  # conv1: the kernels
    assert page.get_by_text("most exciting test patch", exact=False).count() == 2  # conv2, conv3: test patches
    assert page.get_by_role("button", name="Align the maps", exact=True).is_enabled()
    screenshot(page, "compare_aligned")
