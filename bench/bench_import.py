"""Benchmark: importing a 3 MB model file (``core.import_model.import_model``) — target ≤ 3 s on 2 CPU cores.

Three models of about 3 MB each are made here, as users download them: the Keras-2-era MNIST CNN layout
(Conv32–Conv64–MaxPool–Flatten–Dense–Dense, with a smaller dense layer so the file is 3 MB: its second conv runs
at full resolution, ~11 M multiply-adds a digit, the heaviest layout we know of), the tutorial CNN with a pool
after each conv (Conv32–MaxPool–Conv64–MaxPool–Flatten–Dense–Dense) and the common dense network
(Flatten–Dense–Dense–Dense on a 784-pixel input), each saved as legacy HDF5 (.h5) and as .keras. Each file
is imported the way the dashboard's job and ``python -m core import-model`` do it: read and checked, mapped,
rebuilt, verified against the file's model, the scaler chosen on the 2,000 shipped digits, the accuracy measured on
MNIST's 10,000 test digits (without MNIST: on the shipped digits), the run serialized. The first import in the
process (what a user waits for: TensorFlow is imported already, nothing is traced yet) and the median of the
next ``--repeats`` are printed, then one JSON line.

Usage: ``python bench/bench_import.py [--repeats 3] [--no-mnist]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.device import quiet_tensorflow_logs  # noqa: E402

quiet_tensorflow_logs()

import keras  # noqa: E402

from core.data import load_mnist, load_sample_digits  # noqa: E402
from core.device import describe_device  # noqa: E402
from core.import_model import import_model  # noqa: E402
from core.progress import ProgressCallback  # noqa: E402

TARGET_SECONDS = 3.0
PHASES = ("load", "map+verify", "scaler", "test+save")  # between import_model's progress steps 0..4


class PhaseTimer(ProgressCallback):
    """Seconds between the import's progress steps: reading the file, mapping and checking it, choosing the scaler,
    measuring on the test digits and serializing the run."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def on_step(self, done, info=None) -> None:
        self.marks.append(time.perf_counter())

    def seconds(self) -> dict[str, float]:
        return {p: round(b - a, 3) for p, a, b in zip(PHASES, self.marks, self.marks[1:])}


def models(mnist) -> dict[str, keras.Model]:
    """The two layouts, trained for one pass over 3,000 digits (pixels / 255, as most notebooks do), so that, like
    a downloaded file, each reads most digits right with one scaling only (an untrained model reads ~10 % with
    every scaling, and the import would read all 2,000 shipped digits once per scaling)."""
    L = keras.layers
    keras.utils.set_random_seed(0)
    cnn = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(32, 3, activation="relu"),
            L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.25),
            L.Flatten(),
            L.Dense(80, activation="relu"),
            L.Dropout(0.5),
            L.Dense(10, activation="softmax"),
        ]
    )
    pooled = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(32, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(460, activation="relu"),
            L.Dense(10, activation="softmax"),
        ]
    )
    dense = keras.Sequential(
        [
            keras.Input((784,)),
            L.Dense(800, activation="relu"),
            L.Dense(128, activation="relu"),
            L.Dense(10),
            L.Softmax(),
        ]
    )
    if mnist is not None:
        images, labels = mnist.x_train[:3000], mnist.y_train[:3000]
    else:
        sample = load_sample_digits()
        images, labels = sample.images[:1000], sample.labels[:1000]
    x = images.astype("float32")[..., None] / 255.0
    for model in (cnn, pooled, dense):
        fed = x if model.input_shape[1:] == (28, 28, 1) else x.reshape(len(x), -1)
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(fed, labels, batch_size=64, epochs=1, verbose=0)
    # saved without the optimizer's state (which would triple the file), as the layouts' 3 MB are meant
    return {name: _without_optimizer(m) for name, m in (("cnn", cnn), ("cnn-pooled", pooled), ("dense", dense))}


def _without_optimizer(model: keras.Model) -> keras.Model:
    bare = keras.Sequential.from_config(model.get_config())  # clone_model would compile the copy too
    bare.set_weights(model.get_weights())
    return bare


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-mnist", action="store_true", help="measure on the 2,000 shipped digits only")
    args = parser.parse_args(argv)
    mnist = None if args.no_mnist else load_mnist()
    print(
        f"device: {describe_device()} · {os.cpu_count()} CPU cores · load average {os.getloadavg()[0]:.1f} · "
        "test digits: "
        f"{'MNIST test set (10,000)' if mnist else 'the 2,000 shipped digits'}",
        file=sys.stderr,
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models(mnist).items():
            for fmt in ("h5", "keras"):
                path = Path(tmp) / f"{name}.{fmt}"
                model.save(path)
                data = path.read_bytes()
                times, phases = [], []
                for _ in range(1 + args.repeats):
                    timer = PhaseTimer()
                    t0 = time.perf_counter()
                    outcome = import_model(data, path.name, "auto", mnist, timer)
                    times.append(time.perf_counter() - t0)
                    phases.append(timer.seconds())
                first, median = times[0], statistics.median(times[1:]) if args.repeats else times[0]
                key = f"{name}.{fmt}"
                results[key] = {
                    "megabytes": round(len(data) / 2**20, 2),
                    "params": outcome.report.params,
                    "first_s": round(first, 3),
                    "median_s": round(median, 3),
                    "test_digits": outcome.report.test_digits,
                    "first_phases_s": phases[0],
                }
                print(
                    f"{key:16s} {len(data) / 2**20:5.2f} MB, {outcome.report.params:,} parameters: first import "
                    f"{first:.2f} s ({', '.join(f'{k} {v:.2f}' for k, v in phases[0].items())}), then median "
                    f"{median:.2f} s (target ≤ {TARGET_SECONDS:.0f} s)",
                    file=sys.stderr,
                )
    worst = max(r["first_s"] for r in results.values())
    print(
        json.dumps(
            {
                "benchmark": "import",
                "device": describe_device(),
                "cpu_cores": os.cpu_count(),
                "load_average": round(os.getloadavg()[0], 2),
                "target_s": TARGET_SECONDS,
                "worst_first_s": worst,
                "within_target": worst <= TARGET_SECONDS,
                "files": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
