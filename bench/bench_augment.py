"""The cost of augmentation per epoch: article II trained with and without it, side by side in one process.

Both use ``core.training.train`` with the same seed, batch size and digits; runs alternate (off, on, off, on, ...)
so drifting machine load hits both alike, and the best epoch time of each is compared. The issue's limit: an
augmented epoch costs at most 1.3× a plain one on 2 cores.

Two measures of an epoch: its wall time (what a learner waits; on a shared machine it depends on what else runs)
and the CPU time this process spent in it (user + system, all threads: the work it did, which other processes on
the cores hardly change). On a quiet 2-core machine both tell the same; under load only the second is steady.

    python bench/bench_augment.py [--augment shift=2,rotate=10,zoom=0.1,thickness=1,elastic=2] [--repeats 2]
        [--train-limit N] [--threads N]

``--threads 2`` pins TensorFlow to 2 threads (the issue's 2 cores) on a larger machine.
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

ALL_ON = "shift=2,rotate=10,zoom=0.1,thickness=1,elastic=2"
LIMIT = 1.3


class EpochClock:
    """A progress callback that clocks the first epoch from its first batch to its end: wall and CPU seconds (the
    model's first-batch compilation is left out, as the epoch's own cost)."""

    def __init__(self) -> None:
        from core.jobs.system import ProgressRecord

        self.record = ProgressRecord()
        self.started: tuple[float, float] | None = None
        self.wall = self.cpu = 0.0

    def __getattr__(self, name):
        return getattr(self.record, name)

    def on_step(self, done, info=None):
        if self.started is None and info and info.get("batch") == 1:
            self.started = (time.perf_counter(), time.process_time())
        self.record.on_step(done, info)

    def on_epoch(self, epoch, metrics):
        if epoch == 1 and self.started is not None:
            self.wall = time.perf_counter() - self.started[0]
            self.cpu = time.process_time() - self.started[1]
        self.record.on_epoch(epoch, metrics)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--augment", default=ALL_ON)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=0, help="TensorFlow intra/inter-op threads (0: its default)")
    ap.add_argument("--mnist", default=None)
    args = ap.parse_args()

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from core.augmentation import parse_augment
    from core.data import load_mnist
    from core.spec import preset
    from core.training import TrainConfig, train

    mnist = load_mnist(args.mnist)
    augment = parse_augment(args.augment)
    plain = TrainConfig(epochs=1, train_limit=args.train_limit)
    augmented = TrainConfig(epochs=1, train_limit=args.train_limit, augment=augment)
    train(preset("article II"), TrainConfig(epochs=1, train_limit=2000, augment=augment), mnist, EpochClock())
    wall = {"off": [], "on": []}
    cpu = {"off": [], "on": []}
    acc = {}
    for _ in range(args.repeats):
        for name, config in (("off", plain), ("on", augmented)):
            clock = EpochClock()
            result = train(preset("article II"), config, mnist, clock)
            wall[name].append(clock.wall)
            cpu[name].append(clock.cpu)
            acc[name] = result.test_accuracy
        print(
            f"epoch without augmentation {wall['off'][-1]:.2f} s wall, {cpu['off'][-1]:.2f} s CPU   "
            f"with {augment.text()} {wall['on'][-1]:.2f} s wall, {cpu['on'][-1]:.2f} s CPU",
            flush=True,
        )
    ratio = min(wall["on"]) / min(wall["off"])
    cpu_ratio = min(cpu["on"]) / min(cpu["off"])
    print(
        f"augmented epoch / plain epoch: wall {ratio:.3f}, CPU {cpu_ratio:.3f} (best of {args.repeats}; limit {LIMIT})"
    )
    print(
        json.dumps(
            {
                "augment": augment.text(),
                "epoch_off_s": round(min(wall["off"]), 2),
                "epoch_on_s": round(min(wall["on"]), 2),
                "ratio": round(ratio, 3),
                "epoch_off_cpu_s": round(min(cpu["off"]), 2),
                "epoch_on_cpu_s": round(min(cpu["on"]), 2),
                "cpu_ratio": round(cpu_ratio, 3),
                "within_limit": ratio <= LIMIT,
                "load_average": round(os.getloadavg()[0], 1),
                "test_accuracy_off": round(acc["off"], 4),
                "test_accuracy_on": round(acc["on"], 4),
                "train_digits": args.train_limit or len(mnist.x_train),
                "cores": os.cpu_count(),
                "threads": args.threads or "default",
            }
        )
    )


if __name__ == "__main__":
    main()
