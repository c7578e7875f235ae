"""Training overhead: the dashboard's training loop vs a bare ``model.fit``, side by side.

Both train the article-II model on the same standardized MNIST digits with the same batch size
and seed, validating on the test set after each epoch. The dashboard's loop is ``core.training.train``
with the progress recorder a job keeps (core.jobs.system.ProgressRecord) (per-batch callbacks, stop checks, NaN
guard, final
evaluation and confusion matrix included). Runs alternate (bare, ours, bare, ours, ...) so drifting
machine load hits both alike.

    python bench/bench_train.py [--epochs 1] [--repeats 2] [--train-limit N] [--accuracy-epochs 5]

``--accuracy-epochs 5`` also trains the blog's 5 epochs on all 60,000 digits and reports test accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from core.data import PixelScaler, load_mnist  # noqa: E402
from core.jobs.system import ProgressRecord  # noqa: E402
from core.model import build_model  # noqa: E402
from core.spec import preset  # noqa: E402
from core.training import TrainConfig, make_optimizer, train  # noqa: E402


def bare_fit(mnist, config: TrainConfig) -> float:
    data = mnist.subset(config.train_limit)
    scaler = PixelScaler.fit(data.x_train)
    x, xt = scaler.transform(data.x_train), scaler.transform(data.x_test)
    model = build_model(preset("article II"), seed=config.seed)
    model.compile(optimizer=make_optimizer(config, 1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(
        x,
        data.y_train.astype("int32"),
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=(xt, data.y_test.astype("int32")),
        verbose=0,
        shuffle=True,
    )
    return time.perf_counter() - start


def dashboard_loop(mnist, config: TrainConfig) -> tuple[float, float, float]:
    """(seconds of the training loop itself, seconds of the whole train() call, test accuracy).

    The loop is ``model.fit`` with the dashboard's progress/stop/NaN callback, as timed by train();
    the whole call adds fitting the scaler, standardizing, building the model and the final
    evaluation with the confusion matrix."""
    start = time.perf_counter()
    result = train(preset("article II"), config, mnist, progress=ProgressRecord())
    return sum(result.epoch_seconds), time.perf_counter() - start, result.test_accuracy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--accuracy-epochs", type=int, default=0)
    ap.add_argument("--mnist", default=None)
    args = ap.parse_args()
    mnist = load_mnist(args.mnist)
    config = TrainConfig(epochs=args.epochs, train_limit=args.train_limit)
    bare_fit(mnist, TrainConfig(epochs=1, train_limit=2000))  # warm-up: graph building, oneDNN caches
    bare, ours, whole = [], [], []
    for _ in range(args.repeats):
        bare.append(bare_fit(mnist, config))
        loop_s, whole_s, _ = dashboard_loop(mnist, config)
        ours.append(loop_s)
        whole.append(whole_s)
        print(
            f"bare model.fit {bare[-1]:.2f} s   dashboard loop {ours[-1]:.2f} s   whole train() {whole[-1]:.2f} s",
            flush=True,
        )
    ratio = min(ours) / min(bare)
    print(
        f"overhead of the dashboard's training loop: {100 * (ratio - 1):+.1f} % (best of {args.repeats}; limit +10 %)"
    )
    print(
        f"whole train() call incl. data preparation and final evaluation: {100 * (min(whole) / min(bare) - 1):+.1f} %"
    )
    result = {
        "bare_fit_s": round(min(bare), 2),
        "dashboard_loop_s": round(min(ours), 2),
        "ratio": round(ratio, 3),
        "whole_train_s": round(min(whole), 2),
        "whole_ratio": round(min(whole) / min(bare), 3),
        "epochs": args.epochs,
        "train_digits": args.train_limit or len(mnist.x_train),
    }
    if args.accuracy_epochs:
        _, seconds, accuracy = dashboard_loop(mnist, TrainConfig(epochs=args.accuracy_epochs))
        print(
            f"article II, {args.accuracy_epochs} epochs, batch 64, RMSprop: test accuracy {accuracy * 100:.2f} % "
            f"in {seconds:.1f} s"
        )
        result.update(
            accuracy_epochs=args.accuracy_epochs, test_accuracy=round(accuracy, 4), accuracy_run_s=round(seconds, 1)
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
