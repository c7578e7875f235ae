"""Progress reporting for long computations, free of any UI framework.

A computation receives a ``ProgressCallback`` and calls ``on_begin`` once,
``on_step`` as work gets done, ``on_epoch`` after each training epoch (training only)
and ``on_end`` exactly once, even when it fails (use ``progress_scope``).
``should_stop`` lets a UI ask a running computation to finish early and cleanly.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Iterator, Mapping


class ProgressCallback:
    """No-op base class; subclasses override what they need."""

    def on_begin(self, total: int, label: str = "") -> None:
        """``total`` units of work are about to start."""

    def on_step(self, done: int, info: Mapping | None = None) -> None:
        """``done`` of ``total`` units are finished; ``info`` holds current figures."""

    def on_epoch(self, epoch: int, metrics: Mapping) -> None:
        """A training epoch (1-based) finished with these metrics."""

    def on_end(self) -> None:
        """The computation ended (successfully, stopped, or failed)."""

    def should_stop(self) -> bool:
        """True asks the computation to stop after the current unit of work."""
        return False


class StopFlag(ProgressCallback):
    """A callback whose ``should_stop`` answers a thread-safe flag; wraps another callback."""

    def __init__(self, inner: ProgressCallback | None = None) -> None:
        self.inner = inner or ProgressCallback()
        self._event = threading.Event()

    def request_stop(self) -> None:
        self._event.set()

    def should_stop(self) -> bool:
        return self._event.is_set() or self.inner.should_stop()

    def on_begin(self, total: int, label: str = "") -> None:
        self.inner.on_begin(total, label)

    def on_step(self, done: int, info: Mapping | None = None) -> None:
        self.inner.on_step(done, info)

    def on_epoch(self, epoch: int, metrics: Mapping) -> None:
        self.inner.on_epoch(epoch, metrics)

    def on_end(self) -> None:
        self.inner.on_end()


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
