"""Jobs on Ray (core.ray_backend) on a local instance with 2 CPUs: the same results as the embedded
backend, split work merged exactly, a run written where the job was submitted, Stop, a dying worker.

Ray is an optional extra (requirements-ray.txt): without it these tests are skipped, except in CI
(``CI=true``), which installs it and must run them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_system():
    from core.jobs import JobSystem
    from core.ray_backend import RayBackend

    backend = RayBackend("local", threads=1, num_cpus=2)
    system = JobSystem(backend)
    yield system, backend
    system.shutdown()
    import ray

    ray.shutdown()


@pytest.fixture(scope="module")
def embedded_system():
    """The embedded backend with the Ray workers' thread count (1): results compare bit for bit."""
    from core.backends import ProcessBackend
    from core.jobs import JobSystem

    system = JobSystem(ProcessBackend(1, 1))
    yield system
    system.shutdown()


def _run(system, spec, timeout=300):
    handle = system.submit(spec)
    assert handle.wait(timeout), f"{spec.kind} did not end in {timeout} s"
    assert handle.state == "finished", handle.message
    return handle


def test_a_local_ray_instance_has_two_workers_and_says_where_jobs_run(ray_system):
    system, backend = ray_system
    assert backend.capacity() == 2 and system.slots == 2
    assert backend.describe() == "a local Ray instance (2 CPUs)"


def test_precursor_screen_split_over_two_workers_equals_one_process(ray_system, embedded_system, tiny_run):
    from core.jobs import JobSpec
    from core.precursor import PrecursorConfig

    config = PrecursorConfig(layer="conv3", maps=(1, 4), grid=3, values=(0.2, 0.5, 0.8), test_epochs=2, keep=5,
                             epochs=10, mode="faithful")
    spec = JobSpec("precursor", config, model=str(tiny_run), owner="split")
    on_ray = _run(ray_system[0], spec).result
    embedded = _run(embedded_system, spec).result
    for a, b in zip(on_ray.outcomes, embedded.outcomes):
        assert np.array_equal(a.candidates, b.candidates) and np.array_equal(a.test_losses, b.test_losses)
        assert a.ascended == b.ascended
        np.testing.assert_array_equal(a.final_losses, b.final_losses)


def _busy_part(ctx, item, progress):
    """A part that works 0.8 s and asks whether to stop every few milliseconds, as the screens do."""
    started = time.time()
    while time.time() - started < 0.8:
        progress.should_stop()
        sum(range(20_000))
    return started, time.time()


def test_split_parts_never_run_more_at_once_than_the_workers(ray_system):
    """A part asking whether to stop used to block in ray.get, which hands its CPU back to Ray: Ray then started
    another part beside it (3–4 parts on 2 CPUs in the precursor benchmark, each slower)."""
    from core.ray_backend import RayJobContext, RayProgress, Shipment

    _, backend = ray_system
    ctx = RayJobContext()
    ctx.shipment, ctx.actor = Shipment(parallelism=2, threads=1), backend._actor_class.remote()
    spans = ctx.map(_busy_part, list(range(6)), RayProgress(ctx.actor))
    running = peak = 0
    for _, change in sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans]):
        running += change
        peak = max(peak, running)
    assert peak <= 2, f"{peak} parts ran at once on 2 CPUs"


def test_sweep_split_by_k_equals_one_process(ray_system, embedded_system, tiny_mnist):
    from core.clustering import SweepConfig
    from core.jobs import JobSpec
    from core.tasks import SweepJob

    spec = JobSpec("sweep", SweepJob(SweepConfig(ks=(3, 5, 8, 12), silhouette_sample=200), str(tiny_mnist)),
                   owner="sweep")
    on_ray = _run(ray_system[0], spec)
    embedded = _run(embedded_system, spec).result
    assert [p.k for p in on_ray.result.points] == [3, 5, 8, 12] and on_ray.result.status == "completed"
    for a, b in zip(on_ray.result.points, embedded.points):
        assert a.inertia == pytest.approx(b.inertia, rel=1e-6) and a.silhouette == pytest.approx(b.silhouette, abs=1e-6)
    assert sorted(r["k"] for r in on_ray.snapshot().records) == [3, 5, 8, 12]  # live figures came through


def test_a_training_on_ray_lands_in_the_runs_folder_of_the_dashboard(ray_system, tiny_mnist, tmp_path):
    from core.jobs import JobSpec
    from core.runs import is_run_dir, read_meta
    from core.spec import preset
    from core.tasks import TrainJob
    from core.training import TrainConfig

    job = TrainJob(preset("tiny filters"), TrainConfig(epochs=1, seed=5), name="from-ray",
                   runs_dir=str(tmp_path / "runs"), mnist=str(tiny_mnist))
    handle = _run(ray_system[0], JobSpec("train", job, owner="trainer"))
    assert handle.result.run_dir == tmp_path / "runs" / "from-ray" and is_run_dir(handle.result.run_dir)
    assert read_meta(handle.result.run_dir)["seed"] == 5
    assert handle.snapshot().records and handle.snapshot().total > 0  # progress came back from the cluster


def test_stop_reaches_a_job_on_ray(ray_system, tiny_run):
    from core.jobs import JobSpec
    from core.oip import OipConfig

    system, _ = ray_system
    handle = system.submit(JobSpec("oip", OipConfig(layer="conv1", epochs=20_000), model=str(tiny_run), owner="stop"))
    deadline = time.monotonic() + 120
    while handle.snapshot().done == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    handle.stop()
    assert handle.wait(60) and handle.state == "stopped" and handle.result.stopped


def test_a_ray_worker_that_dies_twice_fails_the_job_with_a_message(ray_system, tiny_run):
    """Ray retries a task whose worker died once; a second death fails the job, and the page is told."""
    from core.jobs import JobSpec
    from core.oip import OipConfig

    system, _ = ray_system
    handle = system.submit(JobSpec("oip", OipConfig(layer="conv1", epochs=20_000), model=str(tiny_run), owner="kill"))
    for _ in range(2):
        deadline = time.monotonic() + 120
        pids = []
        while not pids and time.monotonic() < deadline and not handle.done:
            out = subprocess.run(["pgrep", "-f", "ray::_run_job"], capture_output=True, text=True).stdout
            pids = [int(p) for p in out.split()]
            time.sleep(0.3)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        time.sleep(1.0)
    assert handle.wait(120) and handle.state == "failed"
    assert "Ray worker running this job died twice" in handle.message
