"""Jobs on Ray (core.jobs.ray) on a local instance with 2 CPUs: the same results as the embedded
backend, split work merged exactly, a run written where the job was submitted, Stop, a dying worker.

Ray is an optional extra (requirements-ray.txt): without it these tests are skipped, except in CI
(``CI=true``), which installs it and must run them.
"""

from __future__ import annotations

import contextlib
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
    from core.jobs.kinds import job_system
    from core.jobs.local import InlineBackend
    from core.jobs.ray import RayBackend

    backend = RayBackend("local", threads=1, num_cpus=2, fallback=lambda: InlineBackend(1))
    system = job_system(backend)
    yield system, backend
    system.shutdown()


@pytest.fixture(scope="module")
def embedded_system():
    """The embedded backend with the Ray workers' thread count (1): results compare bit for bit."""
    from core.jobs.kinds import job_system
    from core.jobs.local import ProcessBackend

    system = job_system(ProcessBackend(1, 1))
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
    assert "ray" not in __import__("sys").modules, "the dashboard's process must not load Ray: its driver runs apart"


def test_precursor_screen_split_over_two_workers_equals_one_process(ray_system, embedded_system, tiny_run):
    from core.jobs.system import JobSpec
    from core.oip.precursor import PrecursorConfig

    config = PrecursorConfig(
        layer="conv3", maps=(1, 4), grid=3, values=(0.2, 0.5, 0.8), test_epochs=2, keep=5, epochs=10, mode="faithful"
    )
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


PEAK_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
from core.jobs.ray import RayDriver, RayJobContext, Shipment, actor_progress
from tests.test_ray import _busy_part
driver = RayDriver("local", threads=1, num_cpus=2)
ctx = RayJobContext()
ctx.shipment, ctx.actor = Shipment(parallelism=2, threads=1), driver._actor_class.remote()
print(json.dumps(ctx.map(_busy_part, list(range(6)), actor_progress(ctx.actor))))
driver.shutdown()
"""


def test_split_parts_never_run_more_at_once_than_the_workers():
    """A part asking whether to stop used to block in ray.get, which hands its CPU back to Ray: Ray then started
    another part beside it (3–4 parts on 2 CPUs in the precursor benchmark, each slower). Run in a driver of its
    own, as the dashboard's driver process does."""
    import json
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT.format(root=root)], capture_output=True, text=True, timeout=300, cwd=root
    )
    assert out.returncode == 0, out.stderr[-2000:]
    spans = json.loads(out.stdout.strip().splitlines()[-1])
    running = peak = 0
    for _, change in sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans]):
        running += change
        peak = max(peak, running)
    assert peak <= 2, f"{peak} parts ran at once on 2 CPUs"


def test_sweep_split_by_k_equals_one_process(ray_system, embedded_system, tiny_mnist):
    from core.clustering.cluster_mlp import SweepConfig
    from core.jobs.kinds import SweepJobConfig
    from core.jobs.system import JobSpec

    spec = JobSpec(
        "sweep", SweepJobConfig(SweepConfig(ks=(3, 5, 8, 12), silhouette_sample=200), str(tiny_mnist)), owner="sweep"
    )
    on_ray = _run(ray_system[0], spec)
    embedded = _run(embedded_system, spec).result
    assert [p.k for p in on_ray.result.points] == [3, 5, 8, 12] and on_ray.result.status == "completed"
    for a, b in zip(on_ray.result.points, embedded.points):
        assert a.inertia == pytest.approx(b.inertia, rel=1e-6) and a.silhouette == pytest.approx(b.silhouette, abs=1e-6)
    assert sorted(r["k"] for r in on_ray.snapshot().records) == [3, 5, 8, 12]  # live figures came through


def test_a_training_on_ray_lands_in_the_runs_folder_of_the_dashboard(ray_system, tiny_mnist, tmp_path):
    from core.jobs.kinds import TrainJobConfig
    from core.jobs.system import JobSpec
    from core.runs import is_run_dir, read_meta
    from core.spec import preset
    from core.training import TrainConfig

    job = TrainJobConfig(
        preset("tiny filters"),
        TrainConfig(epochs=1, seed=5),
        name="from-ray",
        runs_dir=str(tmp_path / "runs"),
        mnist=str(tiny_mnist),
    )
    handle = _run(ray_system[0], JobSpec("train", job, owner="trainer"))
    assert handle.result.run_dir == tmp_path / "runs" / "from-ray" and is_run_dir(handle.result.run_dir)
    assert read_meta(handle.result.run_dir)["seed"] == 5
    assert handle.snapshot().records and handle.snapshot().total > 0  # progress came back from the cluster


def test_stop_reaches_a_job_on_ray(ray_system, tiny_run):
    from core.jobs.system import JobSpec
    from core.oip.search import OipConfig

    system, _ = ray_system
    handle = system.submit(JobSpec("oip", OipConfig(layer="conv1", epochs=20_000), model=str(tiny_run), owner="stop"))
    deadline = time.monotonic() + 120
    while handle.snapshot().done == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    handle.stop()
    assert handle.wait(60) and handle.state == "stopped" and handle.result.stopped


def test_a_ray_worker_that_dies_twice_fails_the_job_with_a_message(ray_system, tiny_run):
    """Ray retries a task whose worker died once; a second death fails the job, and the page is told."""
    from core.jobs.system import JobSpec
    from core.oip.search import OipConfig

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
            with contextlib.suppress(ProcessLookupError):  # it ended between pgrep and the kill
                os.kill(pid, signal.SIGKILL)
        time.sleep(1.0)
    assert handle.wait(120) and handle.state == "failed"
    assert "Ray worker running this job died twice" in handle.message


def _descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``: pid → command line."""
    from pathlib import Path

    children: dict[int, list[int]] = {}
    commands = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                commands[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(proc.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = commands.get(child, "")
            todo.append(child)
    return found


def kill_ray_instance(driver_pid: int) -> list[int]:
    """Kill the local Ray instance started by a driver process (its raylet and GCS server), as a crash would."""
    pids = [pid for pid, cmd in _descendants(driver_pid).items() if "raylet" in cmd or "gcs_server" in cmd]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


def test_when_the_ray_instance_dies_its_jobs_fail_with_a_message_and_new_ones_run_here(tiny_run):
    """The dashboard's process outlives Ray: the running job fails with a sentence, the backend says where jobs
    run now, and the next job runs on this machine."""
    from core.jobs.kinds import job_system
    from core.jobs.local import InlineBackend
    from core.jobs.ray import RayBackend
    from core.jobs.system import JobSpec
    from core.oip.search import OipConfig

    backend = RayBackend("local", threads=1, num_cpus=2, fallback=lambda: InlineBackend(1))
    system = job_system(backend)
    try:
        handle = system.submit(JobSpec("oip", OipConfig(layer="conv1", epochs=20_000), model=str(tiny_run), owner="a"))
        deadline = time.monotonic() + 120
        while handle.snapshot().done == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert handle.snapshot().done > 0, "the job never reported progress"
        assert kill_ray_instance(backend.process.pid), "no raylet found under the driver process"
        assert handle.wait(120) and handle.state == "failed"
        assert "The Ray instance at 'local' stopped while this job ran" in handle.message
        assert "stopped" in backend.notice and "this process" in backend.notice
        assert system.slots == 1 and backend.describe().startswith("this process")
        after = _run(
            system, JobSpec("oip", OipConfig(layer="conv1", maps=(0,), epochs=5), model=str(tiny_run), owner="a")
        )
        assert after.result.images.shape[0] == 1
    finally:
        system.shutdown()


def test_every_job_kind_runs_on_ray(ray_system, tiny_run, tiny_mnist, tmp_path):
    """Every kind the pages start, on the local Ray instance: each ships what it reads (its models, MNIST)."""
    from core.jobs.kinds import KINDS
    from tests.helpers.jobs import small_job_of_every_kind

    system, _ = ray_system
    specs = small_job_of_every_kind(tiny_run, tiny_mnist, tmp_path)
    assert sorted(specs) == sorted(KINDS)
    handles = {kind: system.submit(spec.with_owner(f"every-{kind}")) for kind, spec in specs.items()}
    failed = {}
    for kind, handle in handles.items():
        assert handle.wait(300), f"{kind} did not end in 300 s"
        if handle.state != "finished":
            failed[kind] = handle.message
    assert not failed, failed
    assert (tmp_path / "runs" / "trained").is_dir() and (tmp_path / "runs" / "tuned").is_dir()
