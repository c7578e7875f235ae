"""The job system (core.jobs.system, core.jobs.local): queue, fairness, estimates, Stop, failures, determinism.

The queue logic is tested with a hand-driven backend (no TensorFlow); the backends with tiny models
made in the test (no MNIST file).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import numpy as np
import pytest

from core.jobs.kinds import job_system
from core.jobs.system import (
    FAILED,
    FINISHED,
    KEEP_UNCOLLECTED_PER_OWNER,
    QUEUED,
    RUNNING,
    STOPPED,
    Backend,
    JobRefused,
    JobSpec,
    JobSystem,
)


class HandBackend(Backend):
    """Starts nothing: the test ends jobs itself, so the queue can be looked at in every state."""

    name = "by hand"

    def __init__(self) -> None:
        self.started, self.stopped = [], []

    def capacity(self) -> int:
        return 1

    def start(self, handle, system) -> None:
        self.started.append(handle)

    def stop(self, handle) -> None:
        self.stopped.append(handle)


def _spec(kind: str = "oip", owner: str = "a", title: str = "") -> JobSpec:
    return JobSpec(kind, config={"n": 1}, owner=owner, title=title or kind)


def _system(slots: int = 1, **expected) -> tuple[JobSystem, HandBackend]:
    backend = HandBackend()
    return JobSystem(backend, slots, expected or None, check=lambda spec: None), backend


def _until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


# --------------------------------------------------------------------------- the queue (no TensorFlow)


def test_jobs_start_first_in_first_out_within_the_slots():
    system, backend = _system(slots=2)
    handles = [system.submit(_spec(owner=f"s{i}")) for i in range(4)]
    _until(lambda: len(backend.started) == 2)
    assert backend.started == handles[:2]
    assert [h.state for h in handles] == [RUNNING, RUNNING, QUEUED, QUEUED]
    assert [h.snapshot().queue_position for h in handles[2:]] == [1, 2]
    system.job_ended(handles[1], FINISHED, "result")
    _until(lambda: len(backend.started) == 3)
    assert backend.started[2] is handles[2] and handles[3].snapshot().queue_position == 1
    assert handles[1].result == "result" and handles[1].done
    system.shutdown()


@pytest.mark.parametrize("state", [QUEUED, RUNNING])
def test_a_session_has_one_job_of_a_kind_and_a_second_click_says_so(state):
    system, backend = _system()
    if state == QUEUED:
        system.submit(_spec(owner="other"))  # keeps the slot busy, so ours waits
    first = system.submit(_spec("train", owner="me", title="training"))
    if state == RUNNING:
        _until(lambda: first.state == RUNNING)
    with pytest.raises(JobRefused, match="Your training job (is running|is waiting in the queue)"):
        system.submit(_spec("train", owner="me", title="training"))
    system.submit(_spec("dream", owner="me"))  # another kind is fine
    system.submit(_spec("train", owner="someone else"))  # so is another session
    system.shutdown()


def test_a_group_of_seeds_fills_free_slots_but_lets_other_sessions_by():
    system, backend = _system(slots=2)
    seeds = system.submit_group([_spec("train", owner="me", title=f"seed {i}") for i in range(3)])
    _until(lambda: len(backend.started) == 2)
    assert backend.started == seeds[:2]  # nobody else waits: the group runs two at a time
    other = system.submit(_spec("oip", owner="other"))
    system.job_ended(seeds[0], FINISHED, "run 1")
    _until(lambda: len(backend.started) == 3)
    assert backend.started[2] is other  # 'me' still has a job running, so the other session goes first
    system.job_ended(seeds[1], FINISHED, "run 2")
    _until(lambda: len(backend.started) == 4)
    assert backend.started[3] is seeds[2]
    with pytest.raises(JobRefused, match="a session can have one job of a kind"):
        system.submit_group([_spec("train", owner="me")])  # the group is this session's training
    system.shutdown()


@pytest.mark.parametrize(
    "specs, message",
    [
        ([], "a group holds 1 to 8 jobs"),
        ([_spec("train", owner="me")] * 9, "a group holds 1 to 8 jobs"),
        ([_spec("train", owner="me"), _spec("oip", owner="me")], "one kind for one owner"),
        ([_spec("train", owner="me"), _spec("train", owner="you")], "one kind for one owner"),
    ],
)
def test_bad_groups_are_refused(specs, message):
    system, _ = _system()
    with pytest.raises(JobRefused, match=message):
        system.submit_group(specs)
    assert system.active() == []
    system.shutdown()


def test_stopping_a_queued_job_drops_it_and_a_running_one_asks_the_backend():
    system, backend = _system()
    running, queued = system.submit(_spec(owner="a")), system.submit(_spec(owner="b"))
    _until(lambda: running.state == RUNNING)
    queued.stop()
    assert queued.state == STOPPED and queued.message == "Stopped before it started."
    running.stop()
    assert backend.stopped == [running] and running.progress.should_stop()
    system.job_ended(running, FINISHED, None)
    assert running.state == FINISHED  # a result without "stopped" in it is a finished job
    system.shutdown()


def test_stop_owner_stops_every_job_of_a_closed_session():
    system, backend = _system()
    mine = [system.submit(_spec("train", owner="gone")), system.submit(_spec("oip", owner="gone"))]
    other = system.submit(_spec("oip", owner="here"))
    _until(lambda: mine[0].state == RUNNING)
    assert system.owners() == {"gone", "here"}
    system.stop_owner("gone")
    assert mine[1].state == STOPPED and backend.stopped == [mine[0]]
    assert other.state == QUEUED
    system.shutdown()


def test_a_job_that_ended_while_its_page_was_away_is_kept_for_its_owner_until_a_page_takes_it(monkeypatch):
    from core.jobs import system as jobs_system

    system, _ = _system(slots=3)
    from_page = replace(_spec("oip", owner="ada"), origin="oip_job")
    job, cli_job = system.submit(from_page), system.submit(_spec("train", owner="ada"))  # no origin: no page
    other = system.submit(replace(from_page, owner="bo"))
    _until(lambda: job.state == cli_job.state == other.state == RUNNING)
    assert system.uncollected("ada") == []  # running jobs are found by ``active``
    for handle in (job, cli_job, other):
        system.job_ended(handle, FINISHED, {"done": handle.id})
    assert system.uncollected("ada") == [job] and system.uncollected("bo") == [other]
    system.collected([job])
    assert system.uncollected("ada") == [] and system.uncollected("bo") == [other]
    monkeypatch.setattr(jobs_system, "KEEP_UNCOLLECTED_S", 0.0)  # past the time they are kept
    assert system.uncollected("bo") == []
    system.shutdown()


def test_the_jobs_of_one_group_share_its_first_jobs_id_and_a_single_job_has_its_own():
    system, _ = _system(slots=1)
    group = system.submit_group([replace(_spec("train", owner="ada"), origin="train_job") for _ in range(3)])
    single = system.submit(_spec("oip", owner="ada"))
    assert [h.group for h in group] == [group[0].id] * 3 and single.group == single.id != group[0].id
    system.shutdown()


def test_at_most_the_last_few_uncollected_jobs_of_an_owner_are_kept():
    system, _ = _system(slots=1)
    ended = []
    for i in range(KEEP_UNCOLLECTED_PER_OWNER + 3):
        handle = system.submit(replace(_spec("oip", owner="ada"), origin="oip_job", title=f"job {i}"))
        _until(lambda h=handle: h.state == RUNNING)
        system.job_ended(handle, FINISHED, i)
        ended.append(handle)
    assert system.uncollected("ada") == ended[-KEEP_UNCOLLECTED_PER_OWNER:]
    system.shutdown()


def test_queue_estimate_adds_the_expected_durations_ahead():
    system, backend = _system(train=60.0, oip=10.0)
    running = system.submit(_spec("train", owner="a"))
    _until(lambda: running.state == RUNNING)
    second, third = system.submit(_spec("oip", owner="b")), system.submit(_spec("dream", owner="c"))
    position, wait = system.queue_estimate(third)
    assert position == 2 and wait == pytest.approx(60.0 + 10.0, abs=1.5)
    running.progress.on_begin(100, "training")
    running.progress.begun = time.monotonic() - 20.0
    running.progress.on_step(50)  # half done after 20 s: 20 s left
    assert system.queue_estimate(second) == (1, pytest.approx(20.0, abs=1.0))
    system.job_ended(running, FINISHED, None)
    _until(lambda: second.state == RUNNING)
    system.shutdown()


def test_finished_durations_become_the_expectation_of_their_kind():
    system, backend = _system(oip=100.0)
    handle = system.submit(_spec("oip"))
    _until(lambda: handle.state == RUNNING)
    handle.started = time.monotonic() - 4.0
    system.job_ended(handle, FINISHED, None)
    assert system.expected_seconds("oip") == pytest.approx(4.0, abs=0.5)
    system.shutdown()


def test_a_listener_hears_every_end_and_a_bad_state_is_refused():
    system, backend = _system()
    heard = []
    system.add_listener(heard.append)
    handle = system.submit(_spec())
    _until(lambda: handle.state == RUNNING)
    with pytest.raises(ValueError, match="state 'done' is not one of"):
        system.job_ended(handle, "done")
    system.job_ended(handle, FAILED, None, "broken")
    assert heard == [handle] and handle.snapshot().message == "broken"
    system.shutdown()


def test_shutdown_stops_the_queue_and_refuses_new_jobs():
    system, backend = _system()
    running, queued = system.submit(_spec(owner="a")), system.submit(_spec(owner="b"))
    _until(lambda: running.state == RUNNING)
    system.shutdown()
    assert queued.state == STOPPED and running.progress.should_stop()
    with pytest.raises(JobRefused, match="shut down"):
        system.submit(_spec(owner="c"))


@pytest.mark.parametrize(
    "spec, message",
    [
        (JobSpec("nope", config=None), "unknown job kind 'nope'"),
        (JobSpec("oip", config={"layer": "conv3"}), "needs a OipConfig config, got dict"),
        (JobSpec("dream", config=None), "needs a DreamConfig config"),
    ],
)
def test_bad_specs_are_refused_at_submission_naming_the_problem(spec, message):
    system = job_system(HandBackend(), 1)
    with pytest.raises(ValueError, match=message):
        system.submit(spec)
    system.shutdown()


def test_a_dream_without_a_photo_and_bad_settings_are_refused():
    from core.dream.deep_dream import DreamConfig
    from core.oip.search import OipConfig

    system = job_system(HandBackend(), 1)
    with pytest.raises(ValueError, match=r"inputs\['photo'\]"):
        system.submit(JobSpec("dream", DreamConfig()))
    with pytest.raises(ValueError, match="epochs=0 is outside"):
        system.submit(JobSpec("oip", OipConfig(epochs=0)))
    system.shutdown()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"MNIST_EXPLORER_JOBS": "0"}, "MNIST_EXPLORER_JOBS=0 must be ≥ 1"),
        ({"MNIST_EXPLORER_JOBS": "two"}, "must be a whole number"),
        ({"MNIST_EXPLORER_THREADS": "-1"}, "MNIST_EXPLORER_THREADS=-1 must be ≥ 1"),
        ({"MNIST_EXPLORER_EXECUTOR": "gpu"}, "MNIST_EXPLORER_EXECUTOR='gpu' is not one of"),
    ],
)
def test_bad_backend_settings_name_the_variable(env, message):
    from core.jobs.setup import BackendConfig

    with pytest.raises(ValueError, match=message):
        BackendConfig.from_env(env)


def test_default_settings_give_one_job_per_two_cores():
    from core.jobs.setup import BackendConfig, cpu_count

    settings = BackendConfig.from_env({})
    assert settings.slots == max(1, cpu_count() // 2) and settings.threads == max(1, cpu_count() // settings.slots)
    assert settings.executor == "process" and settings.ray == ""


def test_an_unreachable_ray_address_falls_back_with_one_message(monkeypatch):
    from core.jobs import setup as backends
    from core.jobs.local import InlineBackend

    class Refused:
        def __init__(self, address, threads=1):
            raise ConnectionError(f"could not connect to {address}")

    monkeypatch.setattr("core.jobs.ray.RayBackend", Refused)
    choice = backends.make_backend(backends.BackendConfig(1, 1, "thread", "ray://10.0.0.1:10001"))
    assert isinstance(choice.backend, InlineBackend)
    assert "Ray at 'ray://10.0.0.1:10001' could not be used" in choice.notice and "this machine" in choice.notice


def test_closed_sessions_lose_their_jobs_after_a_grace_period():
    from pages.ui import jobs

    system, backend = _system()
    handle = system.submit(_spec(owner="closed"))
    kept = system.submit(_spec("dream", owner="open"))
    gone: dict = {}
    active = {"open"}.__contains__
    jobs.stop_closed_sessions(system, active, gone, now=100.0)
    assert handle.state != STOPPED and gone == {"closed": 100.0}  # a reload reconnects within the grace
    jobs.stop_closed_sessions(system, active, gone, now=100.0 + jobs.JOB_SESSION_GRACE_S)
    assert (handle.progress.should_stop() or handle.state == STOPPED) and kept.state == QUEUED and not gone
    system.job_ended(handle, STOPPED, {"partial": True})  # what the backend does once the job has stopped
    assert handle.message == jobs.AWAY_REASON.format(minutes=2) and "away for more than 2 minutes" in handle.message
    system.shutdown()


def test_a_stopped_job_says_why_when_it_was_stopped_for_a_reason_and_nothing_when_its_owner_stopped_it():
    system, _ = _system(slots=2)
    by_owner, for_reason = system.submit(_spec("train", owner="a")), system.submit(_spec("oip", owner="b"))
    queued = system.submit(_spec("dream", owner="b"))
    _until(lambda: by_owner.state == for_reason.state == RUNNING)
    by_owner.stop()
    system.stop_owner("b", "Stopped: away.")
    assert queued.state == STOPPED and queued.message == "Stopped: away."  # a queued job ends at once
    for handle in (by_owner, for_reason):
        system.job_ended(handle, STOPPED, None)
    assert by_owner.message == "" and for_reason.message == "Stopped: away."
    system.shutdown()


# --------------------------------------------------------------------------- real backends, tiny models


def _oip_spec(run, layer="conv3", epochs=6, owner="t", maps=None):
    from core.oip.search import OipConfig

    return JobSpec("oip", OipConfig(layer=layer, epochs=epochs, maps=maps), model=str(run), owner=owner, title="OIP")


def test_inline_backend_runs_an_oip_job_and_reports_progress(tiny_run):
    from core.jobs.local import InlineBackend

    system = job_system(InlineBackend(1))
    handle = system.submit(_oip_spec(tiny_run))
    assert handle.wait(120)
    snap = handle.snapshot()
    assert snap.state == FINISHED and snap.done == snap.total == 6 * 6 and snap.fraction == 1.0
    assert handle.result.images.shape == (6, 1, 28, 28) and handle.result.summary()["epochs"] == 6
    system.shutdown()


def test_a_job_that_raises_fails_with_its_message(tiny_run):
    from core.jobs.local import InlineBackend

    system = job_system(InlineBackend(1))
    handle = system.submit(_oip_spec(tiny_run, maps=(99,)))
    assert handle.wait(120) and handle.state == FAILED
    assert "map 99 does not exist in layer 'conv3', which has maps 0..5" in handle.message
    system.shutdown()


@pytest.fixture(scope="module")
def process_system():
    from core.jobs.local import ProcessBackend

    backend = ProcessBackend(1, 1)
    system = job_system(backend)
    assert backend.wait_ready(180)
    yield system, backend
    system.shutdown()


def test_a_worker_process_gives_the_same_oips_as_this_process(tiny_run, process_system):
    from core.jobs.context import JobContext
    from core.jobs.kinds import execute
    from core.progress import ProgressCallback

    system, backend = process_system
    spec = _oip_spec(tiny_run, epochs=5)
    handle = system.submit(spec)
    assert handle.wait(120) and handle.state == FINISHED, handle.message
    here = execute(spec, JobContext(), ProgressCallback())
    np.testing.assert_allclose(handle.result.images, here.images, rtol=1e-4, atol=1e-5)
    assert handle.snapshot().where.startswith("1 worker process on this machine")


def test_stop_ends_a_running_job_in_a_worker_with_its_partial_result(tiny_run, process_system):
    system, backend = process_system
    handle = system.submit(_oip_spec(tiny_run, layer="conv1", epochs=20_000, owner="stopper"))
    _until(lambda: handle.snapshot().done > 0, timeout=120)
    handle.stop()
    assert handle.wait(60)
    assert handle.state == STOPPED and handle.result.stopped and 0 < handle.result.history.shape[0] < 20_000


def test_a_worker_that_dies_fails_its_job_with_a_message_and_is_replaced(tiny_run, process_system):
    system, backend = process_system
    handle = system.submit(_oip_spec(tiny_run, layer="conv1", epochs=20_000, owner="victim"))
    _until(lambda: handle.snapshot().done > 0, timeout=120)
    os.kill(backend.worker_pids()[0], signal.SIGKILL)
    assert handle.wait(60) and handle.state == FAILED
    assert "ended unexpectedly (exit code -9" in handle.message and "Nothing was saved" in handle.message
    after = system.submit(_oip_spec(tiny_run, epochs=3, owner="next"))
    assert after.wait(180) and after.state == FINISHED, after.message


def test_a_training_job_writes_its_run_into_the_runs_folder(tiny_mnist, tmp_path, process_system):
    from core.jobs.kinds import TrainJobConfig
    from core.runs import is_run_dir, read_meta
    from core.spec import preset
    from core.training import TrainConfig

    system, backend = process_system
    job = TrainJobConfig(
        preset("tiny filters"),
        TrainConfig(epochs=1, seed=3),
        "tiny filters",
        name="mine",
        runs_dir=str(tmp_path / "runs"),
        mnist=str(tiny_mnist),
    )
    handle = system.submit(JobSpec("train", job, owner="trainer"))
    assert handle.wait(180) and handle.state == FINISHED, handle.message
    run_dir = handle.result.run_dir
    assert run_dir == tmp_path / "runs" / "mine" and is_run_dir(run_dir)
    assert read_meta(run_dir)["seed"] == 3 and handle.result.payload is None
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["mine"]  # nothing half-written beside it
    phases = {r.get("epoch") for r in handle.snapshot().records}
    assert phases == {1}


@pytest.mark.slow
def test_two_trainings_together_give_the_weights_each_gives_alone(tiny_mnist, tmp_path):
    """Determinism per job: seeds 1 and 2 started at the same moment in two worker processes give
    weights identical to each run alone, on the same number of threads."""
    from core.jobs.kinds import TrainJobConfig
    from core.jobs.local import ProcessBackend
    from core.runs import load_run
    from core.spec import preset
    from core.training import TrainConfig

    def spec(seed, where):
        job = TrainJobConfig(
            preset("tiny filters"),
            TrainConfig(epochs=1, seed=seed),
            name=f"seed{seed}",
            runs_dir=str(tmp_path / where),
            mnist=str(tiny_mnist),
        )
        return JobSpec("train", job, owner=f"s{seed}")

    together = job_system(ProcessBackend(2, 1))
    both = [together.submit(spec(seed, "together")) for seed in (1, 2)]
    assert all(h.wait(240) for h in both) and all(h.state == FINISHED for h in both)
    together.shutdown()
    alone = job_system(ProcessBackend(1, 1))
    solo = []
    for seed in (1, 2):
        handle = alone.submit(spec(seed, "alone"))
        assert handle.wait(240) and handle.state == FINISHED
        solo.append(handle)
    alone.shutdown()
    for a, b in zip(both, solo):
        wa, wb = load_run(a.result.run_dir).model.get_weights(), load_run(b.result.run_dir).model.get_weights()
        assert all(np.array_equal(x, y) for x, y in zip(wa, wb))
    w1, w2 = (load_run(h.result.run_dir).model.get_weights()[0] for h in both)
    assert not np.array_equal(w1, w2)  # the seeds do matter
