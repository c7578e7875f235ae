"""The server prints only the product's own lines (issue 26), also when a fresh server's first request is a deep link
to a page: Streamlit then runs the page's file before app.py (its pages/ folder mode), so each page quietens
TensorFlow before its own imports."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import start_streamlit, stop_streamlit, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TENSORFLOW_LINES = re.compile(r"cudart_stub|cuInit|cuda_platform|absl::InitializeLog|cpu_feature_guard|^[IWE]\d{4} ")


def test_a_deep_link_to_a_fresh_server_leaves_no_tensorflow_lines_in_its_log(browser, tmp_path):
    proc, url = start_streamlit(tmp_path / "runs", tmp_path, {"TF_CPP_MIN_LOG_LEVEL": "", "MNIST_EXPLORER_VERBOSE": ""})
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(url + "/oip")  # the first request of this server: a page, not the main script
        wait_for_app(page)
        page.get_by_role("heading", name="Filters").first.wait_for()
        context.close()
    finally:
        stop_streamlit(proc)
    log = (tmp_path / "streamlit.log").read_text()
    noise = [line for line in log.splitlines() if TENSORFLOW_LINES.search(line)]
    assert not noise, noise
    assert "No access code is set" in log  # the product's own line is there
