"""The dashboard's Ray backend on a cluster address (``MNIST_EXPLORER_RAY=HOST:PORT``), not a local instance it
starts itself: a head node started with ``ray start --head`` stands in for a teacher's cluster. Every job kind
runs there, and stopping the dashboard's backend leaves the cluster running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("ray")

RAY = str(Path(sys.executable).parent / "ray")


@pytest.fixture(scope="module")
def cluster_address():
    """A head node with token authentication (``RAY_AUTH_MODE=token`` on both sides, as docs/serving.md says; the
    token is the one in ~/.ray/auth_token)."""
    from tests.browser.conftest import _free_port

    port = _free_port()
    before = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"  # the dashboard's driver process inherits it
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    started = subprocess.run(
        [
            RAY,
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120, env=env)
        if before is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = before


def test_every_job_kind_runs_on_a_cluster_address(cluster_address, tiny_run, tiny_mnist, tmp_path):
    from core.jobs.kinds import KINDS, job_system
    from core.jobs.local import InlineBackend
    from core.jobs.ray import RayBackend
    from tests.helpers.jobs import small_job_of_every_kind

    backend = RayBackend(cluster_address, threads=1, fallback=lambda: InlineBackend(1))
    system = job_system(backend)
    try:
        assert backend.describe() == f"the Ray cluster at {cluster_address} (2 CPUs)" and system.slots == 2
        specs = small_job_of_every_kind(tiny_run, tiny_mnist, tmp_path)
        assert sorted(specs) == sorted(KINDS)
        handles = {kind: system.submit(spec.with_owner(f"c-{kind}")) for kind, spec in specs.items()}
        failed = {kind: h.message for kind, h in handles.items() if not h.wait(300) or h.state != "finished"}
        assert not failed, failed
        assert (tmp_path / "runs" / "trained").is_dir()  # written where the job was submitted
    finally:
        system.shutdown()
    status = subprocess.run(
        [RAY, "status", f"--address={cluster_address}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert status.returncode == 0, "the dashboard's shutdown must leave a cluster it did not start running"
