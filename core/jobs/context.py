"""What a job may use where it runs: models, MNIST, compiled engines, and a way to split work.

A ``JobContext`` belongs to one worker (a worker process, the threads of the inline backend, a Ray
worker). Its caches are deliberate and read-only: a model is loaded once per run folder and version
(``core.runs.model_key``), an ascent engine is compiled once per model and layer, MNIST is read once.
They are owned by the context object, not by a module, so nothing is shared by accident.

``map(fn, items, progress)`` runs the parts of a job that splits (pattern ranges of the precursor
screen, values of K of a sweep). Here the parts run one after another in this process; the Ray
context (``core.jobs.ray``) runs them as tasks on the cluster's workers. Either way the results
come back in the order of ``items``, and ``fn(item, progress)`` reports its own units of work.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from core.progress import PartProgress, ProgressCallback


class _Lru:
    """A small thread-safe least-recently-used cache; ``get(key, make)`` builds a missing value once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:  # two threads asking for the same engine compile it once
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = make()
            with self._lock:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._building.pop(key, None)
            return value


class JobContext:
    """Models, data and compiled engines for the jobs of one worker; ``map`` for split work."""

    #: how many parts of a split job can run at the same time (1: one after another)
    parallelism = 1

    def __init__(self, models: int = 8, engines: int = 16) -> None:
        self._bundles = _Lru(models)
        self._engines = _Lru(engines)
        self._mnist = _Lru(3)  # MNIST from up to two sources, and the test digits shown beside OIPs

    # -- resources ----------------------------------------------------------------------------
    def model_path(self, path: str | None):
        """The run folder a job's ``model`` names (None: the bundled model)."""
        from core.runs import resolve_model_path

        return resolve_model_path(path)

    def bundle(self, path: str | None):
        """The loaded run (``core.runs.ModelBundle``) of a run folder; treat it as read-only."""
        from core.runs import load_run, model_key

        folder = self.model_path(path)
        return self._bundles.get(model_key(folder), lambda: load_run(folder))

    def mnist(self, source: str | None = None):
        """MNIST from ``source``, ``$MNIST_NPZ`` or Keras' download (``core.data.load_mnist``)."""
        import os

        from core.data import MNIST_ENV_VAR, load_mnist

        key = source or os.environ.get(MNIST_ENV_VAR) or "keras"
        return self._mnist.get(key, lambda: _read_only(load_mnist(source)))

    def engine(self, path: str | None, layer: str):
        """A compiled ``core.ascent.engine.AscentEngine`` for a layer of a run's model (OIPs, precursor, dreams)."""
        from core.ascent.engine import AscentEngine
        from core.runs import model_key

        bundle = self.bundle(path)
        return self._engines.get(("ascent", model_key(bundle.path), layer), lambda: AscentEngine(bundle.model, layer))

    def test_digits(self) -> tuple[Any, str]:
        """The test digits pages show beside OIPs: raw ``(N, 28, 28)`` uint8 and their source's name (the MNIST test
        set, else the 2,000 shipped with the app)."""

        def read():
            from core.data import MnistUnavailableError, load_sample_digits

            try:
                return self.mnist().x_test, "MNIST test set"
            except (MnistUnavailableError, OSError, ValueError):
                return load_sample_digits().images, "shipped sample of test digits"

        return self._mnist.get("test digits", read)

    def digit_maxima(self, path: str | None, layer: str):
        """``core.oip.analysis.DigitMaxima`` of a layer over ``test_digits()``: computed once per model and layer."""
        from core.oip.analysis import digit_maxima
        from core.runs import model_key

        bundle = self.bundle(path)
        raw, source = self.test_digits()
        return self._engines.get(
            ("maxima", model_key(bundle.path), layer, source),
            lambda: digit_maxima(self.engine(path, layer), bundle.scaler.transform(raw), source),
        )

    @property
    def device(self) -> str:
        from core.device import describe_device

        return describe_device()

    # -- split work ---------------------------------------------------------------------------
    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[Any],
        progress: ProgressCallback,
        units: Sequence[int] | None = None,
        offset: int = 0,
        info: dict | None = None,
    ) -> list[Any]:
        """``[fn(context, item, part_progress) for item in items]`` (``context``: the one of the worker that
        runs the part, here this one); part ``i`` reports its own units of work,
        which are added to ``progress`` after the ``units`` of the parts before it (and ``offset``).
        Stops early (returning the parts done) when ``progress.should_stop()``."""
        results = []
        base = offset
        for i, item in enumerate(items):
            if progress.should_stop():
                break
            part = PartProgress(progress, base, info)
            results.append(fn(self, item, part))
            base += units[i] if units is not None else part.done
        return results


def _read_only(mnist):
    for arr in (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test):
        arr.setflags(write=False)
    return mnist
