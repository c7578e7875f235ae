"""One job system for all long work: a bounded set of slots, a fair FIFO queue, progress, Stop.

Every long computation (train, oip, precursor, sweep, cluster-mlp, dream, ...) is submitted as a
``JobSpec``: a *kind* (see ``core.jobs.kinds``), the kind's config dataclass (which carries the seed), the
run folder of the model it uses and the owner (a browser session). ``JobSystem.submit`` returns a
``JobHandle`` whose ``snapshot()`` gives the state (queued, running, finished, failed, stopped), the
progress reported through the ``core.progress`` protocol, the queue position with an estimated wait,
and, at the end, the result or a message. ``stop()`` works for a queued and a running job.

Where jobs run is the *backend*'s business (``core.jobs.local``): worker processes on this machine by
default, threads in this process for tests and notebooks, or a Ray cluster. The system itself only
queues and dispatches: at most ``slots`` jobs run at once, the queue is first-in first-out, and an
owner has at most one job of a kind queued or running (a second submission is refused with a
sentence saying so), which keeps the queue fair between the sessions of a class. ``submit_group`` queues a few
jobs of one kind together (several seeds of one training) as that owner's one submission of the kind; a free slot
goes to the earliest queued job whose owner has nothing running, so a group fills idle slots but never keeps
another session waiting behind its second job. With ``limit_submissions(n)`` an owner may submit at most ``n`` jobs
in any minute (a scripted burst is refused beyond that, with a sentence saying when to try again). A job that ends
while its page is away (a reload) stays ``uncollected`` for its owner until a page takes its result (``collected``)
or ``KEEP_UNCOLLECTED_S`` passes.

Nothing here is process-global: two ``JobSystem`` objects are independent, and a job's randomness
comes from its own seed.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from core.progress import ProgressRecord

QUEUED, RUNNING, FINISHED, FAILED, STOPPED = "queued", "running", "finished", "failed", "stopped"
TERMINAL = frozenset({FINISHED, FAILED, STOPPED})
DEFAULT_EXPECTED_SECONDS = 15.0  # a kind's duration before any job of it has been timed
MAX_GROUP = 8  # jobs one submission may queue together (seeds of one training)
# An ended job whose result no session has collected yet (its page was being reloaded, the laptop slept) is kept
# for its owner this long, at most this many per owner, so that the page that comes back takes the result.
KEEP_UNCOLLECTED_S = 30 * 60.0
KEEP_UNCOLLECTED_PER_OWNER = 8


class JobRefused(ValueError):
    """A submission the system does not accept (the owner already has a job of this kind, ...)."""


@dataclass(frozen=True)
class JobSpec:
    """What to compute: ``kind`` (a name from ``core.jobs.kinds.KINDS``), its ``config`` dataclass, the run
    folder of the model it uses (None: the bundled model, or no model), who asked (``owner``, e.g. a
    browser session id or a nickname), extra picklable ``inputs`` (a photo array), a ``title`` for the UI,
    ``owner_name``: the nickname recorded with what the job keeps (a run's run.json), '' for none, and ``origin``:
    where it was asked for (a page's job slot), so that a client that comes back (a reload) finds it again."""

    kind: str
    config: Any
    model: str | None = None
    owner: str = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    title: str = ""
    owner_name: str = ""
    origin: str = ""

    @property
    def seed(self) -> int | None:
        """The job's seed: its config's (None for a deterministic kind without randomness)."""
        return getattr(self.config, "seed", None)

    def with_owner(self, owner: str, name: str | None = None) -> JobSpec:
        """This spec for ``owner`` (and, when given, the nickname ``name`` recorded with what it keeps)."""
        return replace(self, owner=owner) if name is None else replace(self, owner=owner, owner_name=name)


@dataclass
class JobSnapshot:
    """A consistent copy of a job's state at one moment, for the UI."""

    id: str
    kind: str
    title: str
    state: str
    label: str
    total: int
    done: int
    info: dict
    records: list[dict]
    batches: list[tuple[float, float, float]]
    elapsed: float  # seconds running (0 while queued)
    waited: float  # seconds since submission
    queue_position: int | None  # 1-based while queued
    expected_wait: float | None  # seconds until it is expected to start (queued only)
    message: str
    where: str  # the backend's description of where it runs

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def active(self) -> bool:
        return self.state not in TERMINAL


_ids = itertools.count(1)


class JobHandle:
    """One submitted job. Read it through ``snapshot()``; ``stop()`` ends it cleanly."""

    def __init__(self, spec: JobSpec, system: JobSystem, group: str | None = None) -> None:
        self.id = f"{spec.kind}-{next(_ids)}-{int(time.time() * 1000) % 100000:05d}"
        self.spec = spec
        self.progress = ProgressRecord()
        self.state = QUEUED
        self.result: Any = None
        self.message = ""
        self.submitted = time.monotonic()
        self.started: float | None = None
        self.ended: float | None = None
        self.group = group or self.id  # the first job's id for the jobs of one submit_group
        self.stop_reason = ""  # why it was asked to stop, when not by its owner's Stop button
        self._system = system
        self._done = threading.Event()

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def stop(self) -> None:
        """Stop the job: a queued job is dropped, a running one ends after its current unit of work."""
        self._system.stop(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ended (True) or ``timeout`` seconds passed (False)."""
        return self._done.wait(timeout)

    def snapshot(self) -> JobSnapshot:
        label, total, done, info, records, batches = self.progress.copy()
        now = time.monotonic()
        position, wait = self._system.queue_estimate(self) if self.state == QUEUED else (None, None)
        elapsed = ((self.ended or now) - self.started) if self.started else 0.0
        return JobSnapshot(
            self.id,
            self.spec.kind,
            self.spec.title or self.spec.kind,
            self.state,
            label,
            total,
            done,
            info,
            records,
            batches,
            elapsed,
            (self.ended or now) - self.submitted,
            position,
            wait,
            self.message,
            self._system.backend.describe(),
        )

    def end(self, state: str, result: Any = None, message: str = "") -> None:
        """Record how the job ended (called by its ``JobSystem``, once)."""
        if state == STOPPED and not message:
            message = self.stop_reason
        self.result, self.message = result, message
        self.ended = time.monotonic()
        self.state = state  # last: readers that see a terminal state find the result in place
        self._done.set()

    def __repr__(self) -> str:
        return f"JobHandle({self.id}, {self.state})"


class Backend:
    """Where jobs run. ``start`` must return at once and later call ``system.job_ended`` exactly once."""

    name = "backend"

    def capacity(self) -> int:
        """How many jobs this backend can run at once (the system never starts more)."""
        return 1

    @property
    def workers(self) -> int:
        """How many parts of a split job can run at once (a Ray cluster's workers; 1 on one machine)."""
        return 1

    @property
    def device(self) -> str | None:
        """The kind of device jobs run on ("CPU", "GPU"), or None for this machine's own."""
        return None

    def start(self, handle: JobHandle, system: JobSystem) -> None:
        raise NotImplementedError

    def stop(self, handle: JobHandle) -> None:
        """Ask a running job to stop (it ends cooperatively, after its current unit of work)."""
        handle.progress.request_stop()

    def describe(self) -> str:
        return self.name

    def shutdown(self) -> None:
        """Free the backend's resources (worker processes, a Ray connection)."""


class JobSystem:
    """Queue and dispatch jobs to a backend: at most ``slots`` at once, first in first out,
    at most one active job per (owner, kind). Thread-safe."""

    def __init__(
        self,
        backend: Backend,
        slots: int | None = None,
        expected_seconds: Mapping[str, float] | None = None,
        check: Callable[[JobSpec], None] | None = None,
    ) -> None:
        self.backend = backend
        self._check = check or (lambda spec: None)  # validates a spec at submission (core.jobs.kinds.check_spec)
        self._slots = None if slots is None else max(1, int(slots))
        self._queue: list[JobHandle] = []
        self._running: list[JobHandle] = []
        self._cond = threading.Condition()
        self._durations: dict[str, collections.deque] = collections.defaultdict(lambda: collections.deque(maxlen=8))
        self._expected = dict(expected_seconds or {})
        self._closed = False
        self._listeners: list[Callable[[JobHandle], None]] = []
        self._per_minute = 0  # submissions an owner may make in any minute (0: no limit)
        self._submitted: dict[str, collections.deque] = {}
        self._uncollected: dict[str, list[JobHandle]] = {}  # owner -> ended jobs no page has taken yet
        self._dispatcher = threading.Thread(target=self._dispatch, name="job-dispatcher", daemon=True)
        self._dispatcher.start()

    @property
    def slots(self) -> int:
        """How many jobs run at once: as set, else the backend's capacity (which may change: Ray went away)."""
        return self._slots if self._slots is not None else max(1, int(self.backend.capacity()))

    def wake(self) -> None:
        """Look at the queue again (the backend's capacity changed)."""
        with self._cond:
            self._cond.notify_all()

    def limit_submissions(self, per_minute: int) -> None:
        """Refuse an owner's submissions beyond ``per_minute`` in any 60 s (0: no limit)."""
        with self._cond:
            self._per_minute = max(0, int(per_minute))

    @property
    def submissions_per_minute(self) -> int:
        return self._per_minute

    def _count_submission(self, owner: str, now: float) -> None:
        """Count one submission of ``owner`` (under the lock); JobRefused beyond the rate."""
        if not owner or not self._per_minute:
            return
        times = self._submitted.setdefault(owner, collections.deque())
        while times and now - times[0] >= 60.0:
            times.popleft()
        if len(times) >= self._per_minute:
            wait = max(1, round(60.0 - (now - times[0])))
            raise JobRefused(
                f"Too many jobs at once: {len(times)} started in the last minute, and a session may start at most "
                f"{self._per_minute} a minute. Try again in {wait} s."
            )
        times.append(now)
        if len(self._submitted) > 10_000:  # owners long gone: forget them
            for gone in [o for o, t in self._submitted.items() if not t or now - t[-1] >= 60.0]:
                del self._submitted[gone]

    # -- submitting and stopping ------------------------------------------------------------
    def submit(self, spec: JobSpec) -> JobHandle:
        """Queue a job; raises ``JobRefused`` when its owner already has a job of this kind active, or has
        submitted more than the rate allows."""
        self._check(spec)  # unknown kind, a config of the wrong type or bad settings: a ValueError naming it
        handle = JobHandle(spec, self)
        with self._cond:
            if self._closed:
                raise JobRefused("the job system is shut down; no new jobs are accepted")
            self._count_submission(spec.owner, time.monotonic())
            if spec.owner:
                for other in self._queue + self._running:
                    if other.spec.owner == spec.owner and other.spec.kind == spec.kind:
                        where = (
                            "is running"
                            if other.state == RUNNING
                            else f"is waiting in the queue (position {self._queue.index(other) + 1})"
                        )
                        raise JobRefused(
                            f"Your {other.spec.title or other.spec.kind} job {where}; a session can "
                            "have one job of a kind at a time. Stop it, or wait until it ends."
                        )
            self._queue.append(handle)
            self._cond.notify_all()
        return handle

    def submit_group(self, specs: list[JobSpec]) -> list[JobHandle]:
        """Queue up to ``MAX_GROUP`` jobs of one kind and one owner together (e.g. several seeds of a training):
        they count as the owner's one submission of that kind. JobRefused as ``submit``."""
        if not 1 <= len(specs) <= MAX_GROUP:
            raise JobRefused(f"a group holds 1 to {MAX_GROUP} jobs, got {len(specs)}")
        kinds, owners = {s.kind for s in specs}, {s.owner for s in specs}
        if len(kinds) != 1 or len(owners) != 1:
            raise JobRefused(f"a group is jobs of one kind for one owner, got kinds {sorted(kinds)}")
        first = self.submit(specs[0])  # checks the owner's other jobs of the kind
        handles = [first]
        try:
            for spec in specs[1:]:
                self._check(spec)
                handles.append(JobHandle(spec, self, group=first.id))
        except ValueError:
            self.stop(first)
            raise
        with self._cond:
            self._queue.extend(handles[1:])
            self._cond.notify_all()
        return handles

    def stop(self, handle: JobHandle, reason: str = "") -> None:
        """Stop ``handle``: a queued job ends at once, a running one after its current unit of work. ``reason``, a
        sentence, becomes the stopped job's message (a page shows it beside what the job had computed)."""
        with self._cond:
            handle.stop_reason = reason or handle.stop_reason
            if handle in self._queue:
                self._queue.remove(handle)
                handle.end(STOPPED, None, handle.stop_reason or "Stopped before it started.")
                self._cond.notify_all()
                self._notify(handle)
                return
            running = handle in self._running
        if running:
            handle.progress.request_stop()
            self.backend.stop(handle)

    def stop_owner(self, owner: str, reason: str = "") -> list[JobHandle]:
        """Stop every queued or running job of ``owner`` (a browser session that went away), saying ``reason``."""
        with self._cond:
            mine = [h for h in self._queue + self._running if h.spec.owner == owner]
        for handle in mine:
            self.stop(handle, reason)
        return mine

    def active(self, owner: str | None = None) -> list[JobHandle]:
        """Queued and running jobs, oldest first (of ``owner`` only when given)."""
        with self._cond:
            jobs = self._running + self._queue
        return [h for h in jobs if owner is None or h.spec.owner == owner]

    def uncollected(self, owner: str) -> list[JobHandle]:
        """``owner``'s ended jobs (asked for by a page: ``spec.origin``) whose result no page has taken yet, oldest
        first; those ended more than ``KEEP_UNCOLLECTED_S`` ago are forgotten."""
        with self._cond:
            self._forget_old(time.monotonic())
            return list(self._uncollected.get(owner, ()))

    def collected(self, handles: Iterable[JobHandle]) -> None:
        """A page took these jobs' results: they are no longer handed to a page that comes back."""
        with self._cond:
            for handle in handles:
                kept = self._uncollected.get(handle.spec.owner)
                if kept and handle in kept:
                    kept.remove(handle)
                    if not kept:
                        del self._uncollected[handle.spec.owner]

    def _forget_old(self, now: float) -> None:
        """Drop uncollected jobs past ``KEEP_UNCOLLECTED_S`` (under the lock)."""
        for owner in list(self._uncollected):
            kept = [h for h in self._uncollected[owner] if now - (h.ended or now) < KEEP_UNCOLLECTED_S]
            if kept:
                self._uncollected[owner] = kept
            else:
                del self._uncollected[owner]

    def owners(self) -> set[str]:
        with self._cond:
            return {h.spec.owner for h in self._queue + self._running if h.spec.owner}

    def add_listener(self, fn: Callable[[JobHandle], None]) -> None:
        """``fn(handle)`` is called (on a system thread) whenever a job ends."""
        self._listeners.append(fn)

    # -- estimates --------------------------------------------------------------------------
    def expected_seconds(self, kind: str) -> float:
        """How long a job of ``kind`` is expected to run: the median of the last few, else a default."""
        times = sorted(self._durations.get(kind, ()))
        if times:
            return float(times[len(times) // 2])
        return float(self._expected.get(kind, DEFAULT_EXPECTED_SECONDS))

    def _remaining(self, handle: JobHandle, now: float) -> float:
        elapsed = now - (handle.started or now)
        _, total, done, *_ = handle.progress.copy()
        begun = handle.progress.begun
        if total and done and begun is not None and now - begun > 1.0 and done / total > 0.05:
            return max(0.0, (now - begun) * (total - done) / done)
        return max(0.0, self.expected_seconds(handle.spec.kind) - elapsed)

    def queue_estimate(self, handle: JobHandle) -> tuple[int | None, float | None]:
        """(1-based queue position, expected seconds until it starts) for a queued job, else (None, None)."""
        now = time.monotonic()
        with self._cond:
            if handle not in self._queue:
                return None, None
            position = self._queue.index(handle) + 1
            free_at = sorted(
                [self._remaining(h, now) for h in self._running] + [0.0] * max(0, self.slots - len(self._running))
            )
            for ahead in self._queue[: position - 1]:
                t = free_at.pop(0)
                free_at.append(t + self.expected_seconds(ahead.spec.kind))
                free_at.sort()
            return position, free_at[0]

    # -- the dispatcher -----------------------------------------------------------------------
    def _dispatch(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._queue or len(self._running) >= self.slots):
                    self._cond.wait(1.0)
                if self._closed:
                    return
                busy = {h.spec.owner for h in self._running if h.spec.owner}
                pick = next((i for i, h in enumerate(self._queue) if h.spec.owner not in busy), 0)
                handle = self._queue.pop(pick)  # FIFO, except that a second job of a busy owner lets others by
                handle.state = RUNNING
                handle.started = time.monotonic()
                self._running.append(handle)
            try:
                self.backend.start(handle, self)
            except Exception as exc:  # a backend that cannot start it: the job fails, the system goes on
                self.job_ended(handle, FAILED, None, f"The job could not be started: {type(exc).__name__}: {exc}")

    def job_ended(self, handle: JobHandle, state: str, result: Any = None, message: str = "") -> None:
        """Called by the backend, once per job: record the outcome and free the slot."""
        if state not in TERMINAL:
            raise ValueError(f"state {state!r} is not one of {sorted(TERMINAL)}")
        with self._cond:
            if handle in self._running:
                self._running.remove(handle)
            if state == FINISHED and handle.started is not None:
                self._durations[handle.spec.kind].append(time.monotonic() - handle.started)
            handle.end(state, result, message)
            if handle.spec.owner and handle.spec.origin:
                kept = self._uncollected.setdefault(handle.spec.owner, [])
                kept.append(handle)
                del kept[:-KEEP_UNCOLLECTED_PER_OWNER]
                self._forget_old(handle.ended)
            self._cond.notify_all()
        self._notify(handle)

    def _notify(self, handle: JobHandle) -> None:
        for fn in list(self._listeners):
            try:
                fn(handle)
            except Exception:  # a listener's problem is not the job's
                pass

    def shutdown(self) -> None:
        """Stop everything and free the backend. Queued jobs end as stopped."""
        with self._cond:
            self._closed = True
            queued, self._queue = self._queue, []
            running = list(self._running)
            self._cond.notify_all()
        for handle in queued:
            handle.end(STOPPED, None, "The dashboard was shut down before the job started.")
        for handle in running:
            handle.progress.request_stop()
            self.backend.stop(handle)
        self.backend.shutdown()
