"""Checkpoint overhead: training with checkpoints for a replay against the same training without, side by side.

``core.training.train`` on the article-II model, the same digits, batch size and seed, once with
``checkpoints="none"`` and once with ``"epoch+early"`` (the start, every tenth of the first epoch, every epoch);
runs alternate (none, kept, none, kept, ...) so drifting machine load hits both alike. Reports the median wall
times, the overhead as the median ratio of back-to-back pairs (goal ≤ 3 %), the cost of one checkpoint measured
directly, and the size of a run's checkpoints.npz.

    MNIST_NPZ=../shared/data/mnist.npz python bench/bench_checkpoints.py [--epochs 2] [--train-limit 20000]
    [--repeats 3]
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from core.data import load_mnist  # noqa: E402
from core.runs import CHECKPOINTS_FILE, save_run  # noqa: E402
from core.spec import preset  # noqa: E402
from core.training import TrainConfig, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mnist = load_mnist()
    spec = preset("article II")
    times = {"none": [], "epoch+early": []}
    kept = None
    for mode in times:  # warm-up, both ways: first-use costs are not what is measured
        train(spec, TrainConfig(epochs=args.epochs, train_limit=args.train_limit, checkpoints=mode), mnist)
    for _ in range(args.repeats):
        for mode in times:
            config = TrainConfig(epochs=args.epochs, train_limit=args.train_limit, checkpoints=mode)
            t0 = time.perf_counter()
            result = train(spec, config, mnist)
            times[mode].append(time.perf_counter() - t0)
            if mode != "none":
                kept = result
    without, with_ = statistics.median(times["none"]), statistics.median(times["epoch+early"])
    # the cost a checkpoint adds, measured directly (wall-time medians move by a few % with machine load)
    model = kept.model
    t0 = time.perf_counter()
    for _ in range(50):
        [w.astype("float16") for w in model.get_weights()]
    copy_s = (time.perf_counter() - t0) / 50
    direct = copy_s * len(kept.checkpoints) / without
    with tempfile.TemporaryDirectory() as tmp:
        size = (save_run(kept, tmp, "bench") / CHECKPOINTS_FILE).stat().st_size
    # each pair ran back to back: the median of the pairs' ratios is robust to the slow spells this machine has
    # (some runs of either kind take twice as long)
    overhead = statistics.median(w / n for w, n in zip(times["epoch+early"], times["none"])) - 1
    print(
        f"{args.epochs} epochs on {args.train_limit:,} digits, median of {args.repeats}: without checkpoints "
        f"{without:.2f} s, with {len(kept.checkpoints)} checkpoints {with_:.2f} s; median ratio of the pairs: "
        f"overhead {overhead:+.1%} "
        f"(goal ≤ 3 %); one checkpoint copy {copy_s * 1000:.2f} ms, {len(kept.checkpoints)} of them "
        f"{direct:.2%} of the training; checkpoints.npz {size / 1e6:.2f} MB ({size / len(kept.checkpoints) / 1e3:.0f} "
        "kB each)"
    )
    print(
        json.dumps(
            {
                "benchmark": "checkpoints",
                "epochs": args.epochs,
                "train_limit": args.train_limit,
                "seconds_without": [round(t, 3) for t in times["none"]],
                "seconds_with": [round(t, 3) for t in times["epoch+early"]],
                "overhead": round(overhead, 4),
                "copy_ms": round(copy_s * 1000, 3),
                "direct_overhead": round(direct, 5),
                "checkpoints": len(kept.checkpoints),
                "bytes": size,
            }
        )
    )


if __name__ == "__main__":
    main()
