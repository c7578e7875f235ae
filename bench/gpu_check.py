"""GPU check: the heavy work of the dashboard timed on the GPU and on the CPU, side by side, in one process.

1. the 64 conv3 OIPs of the bundled article-II model (200 epochs, 1 start per map: the OIP page's default run);
2. the faithful precursor screen of one conv3 map (every 3×3 pattern of 3 grey values, 19,683, through the 10
   test epochs; ``skip_dead=False`` so the work does not depend on the map);
3. one training epoch of the article-II architecture on MNIST's 60,000 training digits (batch 64);
4. a tiles dream (conv3 map 56 on the default photo, 4 octaves of 20 epochs, at most 640 px).

Each task runs on ``/GPU:0`` (when TensorFlow sees a GPU) and on ``/CPU:0``, the model loaded inside each device's
scope so its weights live there; the first call of each task on each device is a warm-up (tracing), the second is
timed. ``--quick`` shrinks every task (8 maps × 20 epochs, 1,024 patterns, 2,000 training digits, one octave of 5
epochs at 160 px): it runs in about a minute on a CPU-only machine too, and says so. Without a GPU the full run is
refused (it would time the CPU twice over minutes); use ``--quick`` there.

Usage: ``python bench/gpu_check.py [--quick]``. Prints one line per task and, last, one JSON object with ``device``
(what TensorFlow computes on by default), ``gpu`` (true/false) and per task the seconds on each device and the
GPU's speed-up.

On Linux with an NVIDIA driver, ``make setup`` installs TensorFlow with its CUDA libraries (``tensorflow[and-cuda]``
at the pinned version); ``make setup GPU=0`` the CPU wheel.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.device import quiet_tensorflow_logs  # noqa: E402

quiet_tensorflow_logs()

import tensorflow as tf  # noqa: E402

from core.device import describe_device  # noqa: E402

FULL = {"maps": 64, "oip_epochs": 200, "patterns": None, "train_digits": None, "octaves": 4, "dream_epochs": 20}
QUICK = {"maps": 8, "oip_epochs": 20, "patterns": 1024, "train_digits": 2000, "octaves": 1, "dream_epochs": 5}


def task_oip(sizes: dict):
    from core.ascent.engine import AscentEngine
    from core.oip.search import OipConfig, run_oip
    from core.runs import load_default

    engine = AscentEngine(load_default().model, "conv3")
    config = OipConfig(layer="conv3", maps=tuple(range(sizes["maps"])), epochs=sizes["oip_epochs"])
    return lambda: run_oip(engine, config)


def task_precursor(sizes: dict):
    from core.ascent.engine import AscentEngine
    from core.oip import precursor as pc
    from core.runs import load_default

    engine = AscentEngine(load_default().model, "conv3")
    config = pc.PrecursorConfig(maps=(0,), mode="faithful", skip_dead=False)
    stop = sizes["patterns"] or config.n_patterns
    return lambda: pc.screen_faithful(engine, 0, config, start=0, stop=stop)


def task_train(sizes: dict):
    from core.data import load_mnist
    from core.spec import preset
    from core.training import TrainConfig, train

    mnist = load_mnist()
    config = TrainConfig(epochs=1, train_limit=sizes["train_digits"], test_limit=2000)
    return lambda: train(preset("article II"), config, mnist)


def task_dream(sizes: dict):
    from core.dream.deep_dream import DreamConfig, default_photo, dream
    from core.runs import load_default

    model = load_default().model
    settings = DreamConfig(
        mode="tiles",
        octaves=sizes["octaves"],
        epochs=sizes["dream_epochs"],
        max_side=160 if sizes is QUICK else 640,
    )
    photo = default_photo()
    return lambda: dream(photo, model, settings)


TASKS = {
    "oip_conv3": ("conv3 OIPs", task_oip),
    "precursor_faithful": ("faithful precursor screen, one conv3 map", task_precursor),
    "train_epoch": ("one training epoch", task_train),
    "dream_tiles": ("tiles dream", task_dream),
}


def time_task(make, sizes: dict, device: str) -> float:
    """Seconds of the second call (the first traces), everything made inside ``device``'s scope."""
    with tf.device(device):
        run = make(sizes)
        run()
        started = time.perf_counter()
        run()
        return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short versions of every task (also on a CPU)")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {list(TASKS)}")
    args = parser.parse_args(argv)
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        parser.error(f"unknown tasks {unknown}; choose from {list(TASKS)}")
    has_gpu = bool(tf.config.list_logical_devices("GPU"))
    if not has_gpu and not args.quick:
        print(
            f"error: TensorFlow sees no GPU here ({describe_device()}); run with --quick to time the CPU side only. "
            "On Linux with an NVIDIA driver, `make setup` installs TensorFlow with its CUDA libraries.",
            file=sys.stderr,
        )
        return 2
    sizes = QUICK if args.quick else FULL
    devices = (["/GPU:0"] if has_gpu else []) + ["/CPU:0"]
    note = "" if has_gpu else "no GPU here: CPU only (--quick)"
    print(
        f"device: {describe_device()} · TensorFlow {tf.__version__} · {os.cpu_count()} CPU cores · "
        f"{'quick' if args.quick else 'full'} sizes{' · ' + note if note else ''}",
        file=sys.stderr,
    )
    results = {}
    for name in names:
        label, make = TASKS[name]
        seconds = {}
        for device in devices:
            seconds["gpu_s" if device.startswith("/GPU") else "cpu_s"] = round(time_task(make, sizes, device), 3)
        row = {**seconds, "gpu_speedup": None}
        if "gpu_s" in seconds and seconds["gpu_s"] > 0:
            row["gpu_speedup"] = round(seconds["cpu_s"] / seconds["gpu_s"], 2)
        results[name] = row
        shown = "  ".join(f"{k[:-2].upper()} {v:.2f} s" for k, v in seconds.items())
        speed = f"  (GPU ×{row['gpu_speedup']:.1f})" if row["gpu_speedup"] else ""
        print(f"{label:42s} {shown}{speed}", file=sys.stderr, flush=True)
    print(
        json.dumps(
            {
                "benchmark": "gpu_check",
                "device": describe_device(),
                "gpu": has_gpu,
                "quick": bool(args.quick),
                "note": note,
                "tensorflow": tf.__version__,
                "cpu_cores": os.cpu_count(),
                "sizes": {k: v for k, v in sizes.items()},
                "tasks": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
