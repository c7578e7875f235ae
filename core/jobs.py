"""Run a long computation in a background thread and watch its progress from elsewhere.

The UI starts a ``BackgroundJob`` and polls ``snapshot()``; a stop request reaches the
computation through its ProgressCallback's ``should_stop``. The computation never touches
the UI, and the UI never waits on the computation.
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .progress import ProgressCallback


@dataclass
class JobSnapshot:
    """A consistent copy of a job's state at one moment."""

    label: str
    total: int
    done: int
    info: dict
    epochs: list[dict]
    batches: list[tuple[float, float, float]]  # (units done, loss, accuracy) per step
    state: str  # pending, running, finished, failed
    error: str | None
    elapsed: float

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


class RecordingProgress(ProgressCallback):
    """Thread-safe recorder of progress events, with a stop flag."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.label, self.total, self.done = "", 0, 0
        self.info: dict = {}
        self.epochs: list[dict] = []
        self.batches: list[tuple[float, float, float]] = []

    def on_begin(self, total: int, label: str = "") -> None:
        with self._lock:
            self.label, self.total, self.done = label, total, 0

    def on_step(self, done: int, info: Mapping | None = None) -> None:
        with self._lock:
            self.done = done
            if info:
                self.info = dict(info)
                if "loss" in info:
                    self.batches.append((done, float(info["loss"]), float(info.get("accuracy", float("nan")))))

    def on_epoch(self, epoch: int, metrics: Mapping) -> None:
        with self._lock:
            self.epochs.append({"epoch": epoch, **metrics})

    def request_stop(self) -> None:
        self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def copy_state(self) -> tuple[str, int, int, dict, list[dict], list[tuple[float, float, float]]]:
        with self._lock:
            return self.label, self.total, self.done, dict(self.info), list(self.epochs), list(self.batches)


class BackgroundJob:
    """``fn(progress)`` running in a daemon thread; its return value becomes ``result``."""

    def __init__(self, fn: Callable[[RecordingProgress], Any], name: str = "job") -> None:
        self.progress = RecordingProgress()
        self.result: Any = None
        self.error: str | None = None
        self.exception: BaseException | None = None
        self.state = "pending"
        self._fn = fn
        self._started = 0.0
        self._ended: float | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "BackgroundJob":
        self._started = time.perf_counter()
        self.state = "running"
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self._fn(self.progress)
            self.state = "finished"
        except Exception as exc:  # reported to the UI as a message, not raised in a dead thread
            self.exception = exc
            self.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
            self._trace = traceback.format_exc()
            self.state = "failed"
        finally:
            self._ended = time.perf_counter()

    def request_stop(self) -> None:
        self.progress.request_stop()

    @property
    def running(self) -> bool:
        return self.state == "running"

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def snapshot(self) -> JobSnapshot:
        label, total, done, info, epochs, batches = self.progress.copy_state()
        end = self._ended if self._ended is not None else time.perf_counter()
        return JobSnapshot(label, total, done, info, epochs, batches, self.state, self.error,
                           end - self._started if self._started else 0.0)
