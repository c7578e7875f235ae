"""Benchmark: digits per call when a model reads a test set (``core.device.FORWARD_BATCH``), side by side in one run.

The Keras-example CNN (second conv at full resolution, the heaviest layout an import meets) and the tutorial CNN with a
pool after each conv read 8,000 random digits through one compiled graph at each batch size; the seconds and their
ratio to FORWARD_BATCH are printed, then one JSON line. ``--passes`` also times the product's own whole-test-set passes
on the bundled model at each of PASS_BATCHES digits a call, side by side: the knock-out's pass over the test digits
(``Knockout.probabilities``), ``ActivationModel.layer_batch`` of conv2 and out, and the map alignment of the model
with itself (``core.compare.alignment.align``), on MNIST's 10,000 test digits (``MNIST_NPZ``; else the 2,000 shipped).

Usage: ``python bench/bench_forward_batch.py [--repeats 2] [--passes]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.device import quiet_tensorflow_logs  # noqa: E402

quiet_tensorflow_logs()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from core.device import FORWARD_BATCH, describe_device  # noqa: E402

BATCHES = (32, 64, FORWARD_BATCH, 256, 1024)
DIGITS = 8000
PASS_BATCHES = (FORWARD_BATCH, 512, 2048)  # 512: layer_batch's and ~alignment's (500) old default; 2048: knock-out's


def layouts() -> dict[str, keras.Model]:
    L = keras.layers
    full = [L.Conv2D(32, 3, activation="relu"), L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2)]
    pooled = [L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2), L.Conv2D(64, 3, activation="relu")]

    def head():  # new layers for each model
        return [L.Flatten(), L.Dense(80, activation="relu"), L.Dense(10, activation="softmax")]

    return {
        "keras-example": keras.Sequential([keras.Input((28, 28, 1)), *full, *head()]),
        "pooled": keras.Sequential([keras.Input((28, 28, 1)), *pooled, L.MaxPooling2D(2), *head()]),
    }


def seconds(fn, x: np.ndarray, batch: int) -> float:
    fn(x[:batch])  # traced once per shape before timing
    started = time.perf_counter()
    for i in range(0, len(x), batch):
        fn(x[i : i + batch]).numpy()
    return time.perf_counter() - started


def product_passes(repeats: int) -> dict[str, dict[str, float]]:
    """Best-of-``repeats`` seconds of the product's passes at each of PASS_BATCHES, alternated batch by batch."""
    from core.activations import ActivationModel
    from core.compare.alignment import align
    from core.data import load_mnist, load_sample_digits
    from core.experiments import knockout
    from core.runs import load_default

    bundle = load_default()
    try:
        raw = load_mnist().x_test
    except (OSError, ValueError):
        raw = load_sample_digits().images
    x = bundle.scaler.transform(raw)
    ko, am = knockout.Knockout(bundle.model), ActivationModel(bundle.model, bundle.spec, bundle.scaler)

    def knockout_pass(batch, n):
        knockout.FORWARD_BATCH = batch  # the module's constant, as the code reads it
        return ko.probabilities(x[:n])

    passes = {
        "knock-out test pass": knockout_pass,
        "layer_batch conv2+out": lambda batch, n: am.layer_batch(x[:n], ("conv2", "out"), batch),
        "alignment conv1-conv3": lambda batch, n: align(bundle, bundle, raw[:n], batch=batch),
    }
    results = {}
    for name, run in passes.items():
        for batch in PASS_BATCHES:
            run(batch, 200)  # traced before timing
        times = {b: [] for b in PASS_BATCHES}
        for _ in range(repeats):
            for batch in PASS_BATCHES:
                started = time.perf_counter()
                run(batch, len(raw))
                times[batch].append(time.perf_counter() - started)
        best = {b: min(t) for b, t in times.items()}
        results[name] = {str(b): round(t, 3) for b, t in best.items()}
        line = ", ".join(f"{b}: {t:.2f} s ({t / best[FORWARD_BATCH]:.2f}×)" for b, t in best.items())
        print(f"{name:22s} {len(raw):,} digits, best of {repeats}: {line}", file=sys.stderr)
    knockout.FORWARD_BATCH = FORWARD_BATCH
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--passes", action="store_true", help="also the product's passes on the bundled model")
    args = parser.parse_args(argv)
    x = np.random.default_rng(0).random((DIGITS, 28, 28, 1), np.float32)
    results = {}
    for name, model in layouts().items():
        fn = tf.function(lambda t, m=model: m(t, training=False), input_signature=[tf.TensorSpec([None, 28, 28, 1])])
        best = {b: min(seconds(fn, x, b) for _ in range(args.repeats)) for b in BATCHES}
        results[name] = {str(b): round(s, 3) for b, s in best.items()}
        line = ", ".join(f"{b}: {s:.2f} s ({s / best[FORWARD_BATCH]:.2f}×)" for b, s in best.items())
        print(f"{name:14s} {DIGITS:,} digits, best of {args.repeats}: {line}", file=sys.stderr)
    print(
        json.dumps(
            {
                "benchmark": "forward_batch",
                "device": describe_device(),
                "forward_batch": FORWARD_BATCH,
                "digits": DIGITS,
                "seconds": results,
                "product_passes": product_passes(args.repeats) if args.passes else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
