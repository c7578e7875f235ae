"""Real browser against a dashboard whose jobs run on a local Ray instance (``MNIST_EXPLORER_RAY=local``, as
``make run-ray`` starts it): an OIP run, a training and a dream from their pages, each result on the page and
the server still healthy; then the Ray instance is killed under a running job, and the server must survive,
fail that job with a sentence and run the next one on this machine."""

from __future__ import annotations

import os
import urllib.request

import pytest

from tests.browser.conftest import screenshot, start_streamlit, stop_streamlit, wait_for_app
from tests.test_ray import kill_ray_instance

pytestmark = [pytest.mark.browser, pytest.mark.ray, pytest.mark.slow]

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory):
    proc, url = start_streamlit(
        tmp_path_factory.mktemp("ray-runs"), tmp_path_factory.mktemp("ray-log"), env={"MNIST_EXPLORER_RAY": "local"}
    )
    yield proc, url
    stop_streamlit(proc)


def _healthy(proc, url: str) -> bool:
    with urllib.request.urlopen(url + "/_stcore/health", timeout=10) as answer:
        return proc.poll() is None and answer.status == 200


def _number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_for_app(page)


def _oip_conv1(page, url: str, epochs: int) -> None:
    page.goto(f"{url}/oip")
    page.get_by_role("button", name="Compute OIPs").wait_for(timeout=120_000)
    wait_for_app(page)
    page.get_by_role("combobox", name="Layer", exact=True).click()
    page.get_by_role("option", name="conv1", exact=True).click()
    wait_for_app(page)
    _number(page, "Epochs", epochs)
    page.get_by_role("button", name="Compute OIPs").click()


def test_oip_training_and_dream_run_on_ray_and_the_server_stays_up(ray_server, page):
    proc, url = ray_server
    _oip_conv1(page, url, 20)
    page.get_by_text("maps with an OIP").wait_for(timeout=180_000)
    wait_for_app(page)
    assert _healthy(proc, url)

    page.goto(f"{url}/train")
    page.get_by_text("96,844 parameters").first.wait_for(timeout=60_000)
    wait_for_app(page)
    _number(page, "Epochs", 1)
    _number(page, "Training digits", 2000)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Run saved as").wait_for(timeout=240_000)
    wait_for_app(page)
    assert _healthy(proc, url)

    page.goto(f"{url}/deep-dream")
    page.get_by_role("button", name="Dream", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_role("button", name="Dream", exact=True).click()
    page.get_by_text("Loop by loop").wait_for(timeout=180_000)
    wait_for_app(page)
    screenshot(page, "ray_dream")
    assert _healthy(proc, url)


def test_a_dying_ray_instance_fails_its_job_with_a_message_and_the_server_survives(ray_server, page):
    proc, url = ray_server
    _oip_conv1(page, url, 10_000)  # the most the page allows: a minute or more on 2 cores
    page.locator("[data-testid='stProgress']").first.wait_for(timeout=180_000)
    page.get_by_text("Gradient ascent: epoch").first.wait_for(timeout=180_000)  # it runs on Ray now
    assert kill_ray_instance(proc.pid), "no Ray instance found under the dashboard"
    page.get_by_text("stopped while this job ran").first.wait_for(timeout=120_000)
    wait_for_app(page)
    assert _healthy(proc, url)
    screenshot(page, "ray_killed_under_a_job")

    _number(page, "Epochs", 20)  # the next job runs on this machine, and the sidebar said so
    page.get_by_role("button", name="Compute OIPs").click()
    page.get_by_text("maps with an OIP").wait_for(timeout=180_000)
    wait_for_app(page)
    page.goto(f"{url}/activations")  # drawing and the other pages keep working
    page.get_by_text("Prediction:").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stSidebar']").get_by_text("new jobs run on").first.is_visible()
    assert _healthy(proc, url)
