"""What the dashboard's server process did, and when: a small, thread-safe record of timed events.

The server of a class runs many sessions' page scripts, the job system's threads and Python's garbage
collector in one interpreter. When a drawing session's prediction step is slow, the question is what else
held the interpreter at that moment. ``ServerEvents`` keeps the last few thousand spans (a page script run,
a drawing step, a model loaded, an engine compiled, a job collected, a garbage collection), each with its
wall-clock start, duration, thread and details, and answers:

* ``during(start, end)``: the events that overlapped a moment (a slow stroke);
* ``percentile(kind, q, window_s)``: e.g. the drawing step's p95 over the last minutes (a teacher's view).

With ``path`` set (the server reads ``$MNIST_EXPLORER_EVENTS``), every event is also appended to that file
as one JSON line, for a load test or a person to read afterwards. Nothing here changes what the server
computes; recording a span costs a few microseconds.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import json
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

EVENTS_ENV = "MNIST_EXPLORER_EVENTS"
MAX_EVENTS = 5000


@dataclass(frozen=True)
class ServerEvent:
    """One span: ``kind`` (draw, page, model-load, compile, job-end, job-collected, figure, gc), its wall-clock
    ``start`` (seconds since the epoch), ``seconds`` long, on ``thread``, with ``details``."""

    kind: str
    start: float
    seconds: float
    thread: str
    details: dict = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.start + self.seconds


class ServerEvents:
    """The last ``size`` events of this process; optionally mirrored to a JSON-lines file at ``path``.

    Recording takes no lock: the garbage collector's callback records from inside whatever the thread was doing,
    possibly inside ``record`` itself, so a lock there would deadlock that thread (and every thread after it). A
    deque's append and a ``SimpleQueue``'s put are safe there; a writer thread writes the file."""

    def __init__(self, path: str | os.PathLike | None = None, size: int = MAX_EVENTS) -> None:
        self._events: collections.deque[ServerEvent] = collections.deque(maxlen=size)
        self._gc_started: dict[int, tuple[float, float]] = {}
        self._to_write: queue.SimpleQueue | None = None
        self._writer: threading.Thread | None = None
        if path:
            self._to_write = queue.SimpleQueue()
            # Opened here, not in the writer thread, so the file exists (and a bad path fails) at once.
            out = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed by the writer thread
            self._writer = threading.Thread(
                target=self._write, args=(out, self._to_write), name="server-events-writer", daemon=True
            )
            self._writer.start()

    @staticmethod
    def _write(out, pending: queue.SimpleQueue) -> None:
        with out:
            while True:
                event = pending.get()
                if event is None:
                    return
                out.write(json.dumps(asdict(event), default=str) + "\n")

    def record(self, kind: str, start: float, seconds: float, **details) -> ServerEvent:
        event = ServerEvent(kind, start, seconds, threading.current_thread().name, details)
        self._events.append(event)
        if self._to_write is not None:
            self._to_write.put(event)
        return event

    @contextlib.contextmanager
    def span(self, kind: str, **details) -> Iterator[dict]:
        """Record the block as one event; the block may add details to the dict it gets."""
        start, began = time.time(), time.perf_counter()
        extra: dict = {}
        try:
            yield extra
        finally:
            self.record(kind, start, time.perf_counter() - began, **details, **extra)

    def events(self, kind: str | None = None, since: float | None = None) -> list[ServerEvent]:
        while True:
            try:
                events = list(self._events)
                break
            except RuntimeError:  # appended to while copied: copy again
                continue
        return [e for e in events if (kind is None or e.kind == kind) and (since is None or e.end >= since)]

    def during(self, start: float, end: float) -> list[ServerEvent]:
        """The events that overlapped ``[start, end]`` (wall-clock seconds)."""
        return [e for e in self.events() if e.start <= end and e.end >= start]

    def percentile(self, kind: str, q: float, window_s: float | None = None) -> float | None:
        """The ``q``-th percentile of the durations (seconds) of ``kind`` over the last ``window_s`` seconds."""
        since = None if window_s is None else time.time() - window_s
        values = sorted(e.seconds for e in self.events(kind, since))
        if not values:
            return None
        rank = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
        return values[rank]

    # -- garbage collection
    def watch_gc(self) -> None:
        """Record every collection of Python's cyclic garbage collector (generation, duration, objects)."""
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def unwatch_gc(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        ident = threading.get_ident()
        if phase == "start":
            self._gc_started[ident] = (time.time(), time.perf_counter())
        elif ident in self._gc_started:
            start, began = self._gc_started.pop(ident)
            self.record(
                "gc",
                start,
                time.perf_counter() - began,
                generation=info.get("generation"),
                collected=info.get("collected"),
            )

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop watching collections; write what is queued and close the file (waits up to ``timeout_s``)."""
        self.unwatch_gc()
        if self._to_write is not None:
            self._to_write.put(None)
            self._to_write = None
        if self._writer is not None:
            self._writer.join(timeout_s)
            self._writer = None


def read_events(path: str | os.PathLike) -> list[ServerEvent]:
    """The events a server wrote to ``path`` (one JSON object per line; a torn last line is skipped)."""
    events = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            try:
                events.append(ServerEvent(**json.loads(line)))
            except (ValueError, TypeError):
                continue
    return events
