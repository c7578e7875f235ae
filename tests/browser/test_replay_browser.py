"""Real browser: a run trained with checkpoints is replayed under it on the Train page: the slider, the accuracy
of every checkpoint and a layer's OIPs at one checkpoint, each appearing by itself when its job ends."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import screenshot, start_streamlit, stop_streamlit, wait_for_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def replay_url(tmp_path_factory, mnist):
    """A server of its own whose runs folder holds an article-II run trained 1 epoch on 3,000 digits with
    checkpoints."""
    from core.runs import save_run
    from core.spec import preset
    from core.training import TrainConfig, train

    runs = tmp_path_factory.mktemp("replay-runs")
    result = train(preset("article II"), TrainConfig(epochs=1, train_limit=3000, checkpoints="epoch+early"), mnist)
    save_run(result, runs, "replayed")
    proc, url = start_streamlit(runs, tmp_path_factory.mktemp("replay-log"))
    yield url
    stop_streamlit(proc)


def test_a_training_is_replayed_checkpoint_by_checkpoint(page, replay_url):
    page.goto(f"{replay_url}/train")
    page.get_by_text("96,844 parameters").first.wait_for(timeout=90_000)
    wait_for_app(page)
    page.get_by_role("combobox", name="Show run").click()
    page.keyboard.type("replayed")  # the selectbox filters its options as one types
    # the filtered list shows the run before it is chosen (an Enter before then chose nothing, once in CI)
    page.get_by_role("option", name=re.compile("replayed")).first.click()
    page.get_by_text("Replay the training", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_text("The blog's article-II run beside this one").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Measure the test accuracy of every checkpoint").click()
    page.get_by_text("the training replayed").first.wait_for(timeout=120_000)  # the curve, without a click
    wait_for_app(page)
    slider = page.get_by_role("slider", name="Checkpoint")
    slider.focus()
    slider.press("Home")  # back to the start: untrained filters
    page.get_by_role("button", name="Compute the OIPs of conv1 at start").wait_for(timeout=30_000)
    wait_for_app(page)
    page.get_by_role("button", name="Compute the OIPs of conv1 at start").click()
    page.get_by_text("maps of conv1 have no OIP", exact=False).first.wait_for(timeout=120_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "train_replay")
