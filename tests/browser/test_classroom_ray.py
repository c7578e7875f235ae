"""The classroom load test with the jobs on a local Ray instance (``MNIST_EXPLORER_RAY=local``, as ``make run-ray``
serves): fewer sessions than the embedded test (one drawing, four starting a training, an OIP run, a sweep and a
dream at once), the same assertions: no errors, every job finishes with the result it gives alone, the drawing
session's prediction step within its budget while the jobs run, and the server healthy at the end."""

from __future__ import annotations

import os

import pytest

from tests.browser.test_classroom import Plan, run_classroom, serve_classroom

pytestmark = [pytest.mark.browser, pytest.mark.load, pytest.mark.ray]

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("ray")

RAY_PLANS = [
    Plan("draw", "activations", "default", "Activations", {"digit": 0}),
    Plan("train", "train", "class-a", "Train", {"seed": 42}),
    Plan("oip", "oip", "class-b", "Filters / OIP"),
    Plan("sweep", "clustering", "class-a", "Clustering-MLP", {"seed": 0}),
    Plan("dream", "deep-dream", "default", "Deep Dream"),
]


@pytest.fixture(scope="module")
def ray_classroom_server(tmp_path_factory, mnist):
    yield from serve_classroom(tmp_path_factory, mnist, {"MNIST_EXPLORER_RAY": "local"})


def test_a_class_on_ray_starts_four_jobs_at_once_while_one_draws(ray_classroom_server, mnist, tmp_path):
    import urllib.request

    report = run_classroom(ray_classroom_server, mnist, tmp_path, RAY_PLANS, "classroom-ray", min_draws_during_jobs=20)
    assert report["where_jobs_ran"] and all("local Ray instance" in w for w in report["where_jobs_ran"]), report
    with urllib.request.urlopen(ray_classroom_server[0] + "/_stcore/health", timeout=10) as answer:
        assert answer.status == 200
