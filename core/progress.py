"""Progress reporting for long computations, free of any UI framework: one protocol, one record, one relay.

A computation receives a ``ProgressCallback`` and calls ``on_begin`` once, ``on_step`` as work gets done,
``on_epoch`` after each finished unit with figures (a training epoch, a K of a sweep) and ``on_end`` exactly
once, even when it fails (use ``progress_scope``). ``should_stop`` lets a UI ask a running computation to finish
early and cleanly.

Three implementations serve every place a computation runs:

* ``ProgressRecord``: the thread-safe record of a job's progress and its stop flag (the dashboard keeps one per
  job; a Ray job's actor is one too). Parts of a split job report into it at their own offsets.
* ``Relay``: forwards progress to wherever the record lives (a worker process's socket, a Ray actor): begins and
  epochs always, steps at most every ``interval`` seconds, and asks its ``stopped`` function whether to stop.
* ``PartProgress``: one part of a split job, its units added to the job's at an offset.

``PrintProgress`` prints for the command line.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping

MAX_BATCHES = 20_000  # loss figures kept per job (a training's live curve)


class ProgressCallback:
    """No-op base class; subclasses override what they need."""

    def on_begin(self, total: int, label: str = "") -> None:
        """``total`` units of work are about to start."""

    def on_step(self, done: int, info: Mapping | None = None) -> None:
        """``done`` of ``total`` units are finished; ``info`` holds current figures."""

    def on_epoch(self, epoch: int, metrics: Mapping) -> None:
        """A unit with figures (a training epoch, 1-based; a K of a sweep) finished with these metrics."""

    def on_end(self) -> None:
        """The computation ended (successfully, stopped, or failed)."""

    def should_stop(self) -> bool:
        """True asks the computation to stop after the current unit of work."""
        return False


class ProgressRecord(ProgressCallback):
    """Thread-safe record of a computation's progress, with its stop flag.

    ``records``: one dict per unit reported through ``on_epoch``; ``batches``: ``(units done, loss, accuracy)``
    of every step whose info has a loss. Parts of a split job report with ``on_part_step`` after ``begin_parts``:
    the record's ``done`` is then the offset plus the sum of the parts' own counts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.label, self.total, self.done = "", 0, 0
        self.begun: float | None = None  # when on_begin came: the rate of progress is measured from here
        self.info: dict = {}
        self.records: list[dict] = []
        self.batches: list[tuple[float, float, float]] = []
        self._part_offset, self._parts = 0, {}

    def on_begin(self, total: int, label: str = "") -> None:
        with self._lock:
            self.label, self.total, self.done = label, int(total), 0
            self.begun = time.monotonic()

    def on_step(self, done: int, info: Mapping | None = None) -> None:
        with self._lock:
            self.done = int(done)
            self._parts = {}
            if info:
                self.info = dict(info)
                if "loss" in info and len(self.batches) < MAX_BATCHES:
                    self.batches.append((float(done), float(info["loss"]), float(info.get("accuracy", float("nan")))))

    def on_epoch(self, epoch: int, metrics: Mapping) -> None:
        with self._lock:
            self.records.append({"epoch": epoch, **metrics})

    def begin_parts(self, offset: int) -> None:
        """Parts of a split job start reporting; their units count after ``offset``."""
        with self._lock:
            self._part_offset, self._parts = int(offset), {}

    def on_part_step(self, part: int, done: int, info: Mapping | None = None) -> None:
        with self._lock:
            self._parts[part] = int(done)
            self.done = self._part_offset + sum(self._parts.values())
            if info:
                self.info = dict(info)

    def merge(self, done: int, info: Mapping, batches: list) -> None:
        """A step reported from elsewhere with the loss figures collected there since the last one."""
        with self._lock:
            self.done = int(done)
            self.info = dict(info)
            room = MAX_BATCHES - len(self.batches)
            self.batches.extend(tuple(b) for b in batches[: max(0, room)])

    def request_stop(self) -> None:
        self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def copy(self) -> tuple[str, int, int, dict, list[dict], list[tuple[float, float, float]]]:
        """``(label, total, done, info, records, batches)`` at one moment."""
        with self._lock:
            return self.label, self.total, self.done, dict(self.info), list(self.records), list(self.batches)

    def since(self, n_records: int, n_batches: int) -> tuple:
        """``(label, total, done, info, records, batches)`` with only the records and batches after the first
        ``n_records`` and ``n_batches`` (what a reader that has those already is missing)."""
        with self._lock:
            return (
                self.label,
                self.total,
                self.done,
                dict(self.info),
                self.records[n_records:],
                self.batches[n_batches:],
            )


class Relay(ProgressCallback):
    """Progress sent elsewhere: ``send(event, *args)`` with ``event`` one of ``begin`` (total, label), ``step`` (done,
    info), ``epoch`` (epoch, metrics). Steps go at most every ``interval`` seconds, and always when the phase in
    ``info`` changes or the work is done; ``stopped()`` answers ``should_stop``."""

    def __init__(
        self, send: Callable[..., None], stopped: Callable[[], bool] = lambda: False, interval: float = 0.05
    ) -> None:
        self.send, self.stopped, self.interval = send, stopped, interval
        self.done, self.total = 0, 0
        self._last, self._phase = 0.0, None

    def on_begin(self, total: int, label: str = "") -> None:
        self.total, self.done = int(total), 0
        self.send("begin", int(total), str(label))

    def on_step(self, done: int, info: Mapping | None = None) -> None:
        self.done = int(done)
        now = time.monotonic()
        phase = (info or {}).get("phase")
        if now - self._last >= self.interval or phase != self._phase or self.done >= self.total:
            self._last, self._phase = now, phase
            self.send("step", self.done, dict(info or {}))

    def on_epoch(self, epoch: int, metrics: Mapping) -> None:
        self.send("epoch", int(epoch), dict(metrics))

    def should_stop(self) -> bool:
        return bool(self.stopped())


class PartProgress(ProgressCallback):
    """The progress of one part of a split job: its own units, reported to ``parent`` after ``offset`` units, with
    ``info`` added to each step. Records keep their own numbering (an epoch, a K)."""

    def __init__(self, parent: ProgressCallback, offset: int = 0, info: Mapping | None = None) -> None:
        self.parent, self.offset, self.info = parent, int(offset), dict(info or {})
        self.done = 0

    def on_step(self, done: int, info: Mapping | None = None) -> None:
        self.done = int(done)
        self.parent.on_step(self.offset + self.done, {**self.info, **(info or {})})

    def on_epoch(self, epoch: int, metrics: Mapping) -> None:
        self.parent.on_epoch(epoch, metrics)

    def should_stop(self) -> bool:
        return self.parent.should_stop()


class PrintProgress(ProgressCallback):
    """For the CLI: one line per epoch (training) or every ``every_s`` seconds, on stderr."""

    def __init__(self, stream=None, every_s: float = 2.0) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._label = ""
        self._total = 0
        self._last = 0.0

    def on_begin(self, total: int, label: str = "") -> None:
        self._label, self._total, self._last = label, total, time.monotonic()
        print(f"{label}: {total} steps", file=self.stream, flush=True)

    def on_step(self, done: int, info: Mapping | None = None) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s or done == self._total:
            self._last = now
            print(f"{self._label}: {done}/{self._total}", file=self.stream, flush=True)

    def on_epoch(self, epoch: int, metrics: Mapping) -> None:
        figures = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        print(f"epoch {epoch}: {figures}", file=self.stream, flush=True)


@contextlib.contextmanager
def progress_scope(progress: ProgressCallback | None, total: int, label: str = "") -> Iterator[ProgressCallback]:
    """Call ``on_begin`` now and guarantee ``on_end`` when the block leaves, however it leaves."""
    progress = progress or ProgressCallback()
    progress.on_begin(total, label)
    try:
        yield progress
    finally:
        progress.on_end()
