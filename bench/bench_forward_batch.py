"""Benchmark: digits per call when a model reads a test set (``core.device.FORWARD_BATCH``), side by side in one run.

The Keras-example CNN (second conv at full resolution, the heaviest layout an import meets) and the tutorial CNN with a
pool after each conv read 8,000 random digits through one compiled graph at each batch size; the seconds and their
ratio to FORWARD_BATCH are printed, then one JSON line.

Usage: ``python bench/bench_forward_batch.py [--repeats 2]``.
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
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
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
