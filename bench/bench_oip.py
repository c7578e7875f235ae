"""Benchmark: OIPs for all 64 conv3 maps × 100 epochs of the bundled article-II model.

Three ways of doing the same work, measured side by side in one run:

* ours: ``core.ascent.engine.AscentEngine.ascend`` — all maps in one batch, one compiled tf.function
  (tf.while_loop over the epochs);
* the blog-style loop: one map at a time, one eager ``GradientTape`` step per epoch on a Keras
  sub-model (``tests.reference.eager_ascent_step_loop``);
* tf-keras-vis ``ActivationMaximization`` on the same sub-model, all 64 maps as one batch of seeds
  (score = each seed's map mean), SGD with the same step, gradients normalized by their RMS per image
  (``gradient_modifier``), no input modifiers, no regularizers.

The same start images go into all three; the final images are compared as a correctness check. Ours and
tf-keras-vis are timed cold (a new engine with its tracing; tf-keras-vis' first call) and warm (best of
``--repeats``, alternating), after one plain model call that neither tool is charged for.

Usage: ``python bench/bench_oip.py [--epochs 100] [--blog-maps 8] [--repeats 3]``. The blog loop is
slow, so by default it is timed on 8 of the 64 maps and extrapolated linearly to 64 (each map is an
independent, identical amount of work); ``--blog-maps 64`` times all of them. Prints ratios and, as
the last line, one JSON object.
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

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from core.ascent import engine as ascent
from core.ascent import starts as start_images  # noqa: E402
from core.device import describe_device
from core.runs import load_default  # noqa: E402
from tests.reference import eager_ascent_step_loop  # noqa: E402  (the blog-style loop lives with the tests)

LAYER = "conv3"


def tf_keras_vis_run(model, maps: np.ndarray, starts: np.ndarray, epochs: int, step: float) -> np.ndarray:
    from tf_keras_vis.activation_maximization import ActivationMaximization

    sub = keras.Model(model.inputs, model.get_layer(LAYER).output)
    idx = tf.constant(maps, tf.int32)

    def score(output):  # (N, 3, 3, C) → (N,): each seed's own map, mean over positions
        return tf.reduce_mean(tf.gather(output, idx, axis=3, batch_dims=1), axis=[1, 2])

    def rms_normalize(g):
        return g / (tf.sqrt(tf.reduce_mean(tf.square(g), axis=[1, 2, 3], keepdims=True)) + ascent.EPS_RMS)

    am = ActivationMaximization(sub, clone=False)
    out = am(
        score,
        seed_input=starts[..., None],
        input_range=(None, None),
        input_modifiers=[],
        regularizers=[],
        steps=epochs,
        optimizer=keras.optimizers.SGD(learning_rate=step),
        gradient_modifier=rms_normalize,
    )
    return np.asarray(out)[..., 0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--step", type=float, default=0.05)
    parser.add_argument("--blog-maps", type=int, default=8, help="maps timed with the blog loop (extrapolated to all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of our run (best is reported)")
    args = parser.parse_args(argv)

    bundle = load_default()
    model = bundle.model
    model(np.zeros((1, 28, 28, 1), np.float32))  # the process's first TensorFlow call is neither tool's cost
    maps = np.arange(int(model.get_layer(LAYER).output.shape[-1]))
    starts = start_images.random_starts(maps.tolist(), 1, seed=0)[:, 0]
    n = len(maps)
    print(
        f"device: {describe_device()} · TensorFlow {tf.__version__} · {os.cpu_count()} CPU cores · "
        f"load average {os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    print(f"work: {n} {LAYER} maps × {args.epochs} epochs, step {args.step}", file=sys.stderr)

    t0 = time.perf_counter()  # cold: a new engine, its tracing included
    engine = ascent.AscentEngine(model, LAYER)
    ours = engine.ascend(starts, maps, args.epochs, args.step)
    first_call = time.perf_counter() - t0
    t0 = time.perf_counter()  # cold: tf-keras-vis' first call
    tfkv = tf_keras_vis_run(model, maps, starts, args.epochs, args.step)
    tfkv_cold = time.perf_counter() - t0
    ours_times, tfkv_times = [], []
    for _ in range(max(1, args.repeats)):  # warm, alternating so drifting load hits both alike
        t0 = time.perf_counter()
        ours = engine.ascend(starts, maps, args.epochs, args.step)
        ours_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tfkv = tf_keras_vis_run(model, maps, starts, args.epochs, args.step)
        tfkv_times.append(time.perf_counter() - t0)
    ours_s, tfkv_s = min(ours_times), min(tfkv_times)
    print(
        f"ours (batched, compiled): {ours_s:.3f} s warm (runs {', '.join(f'{t:.3f}' for t in ours_times)}); "
        f"cold (new engine, tracing included) {first_call:.2f} s",
        file=sys.stderr,
    )
    tfkv_diff = float(np.abs(tfkv - ours.images[..., 0]).max())
    print(
        f"tf-keras-vis ActivationMaximization (64 seeds in one batch, eager): {tfkv_s:.3f} s warm, {tfkv_cold:.3f} s "
        f"cold; max |difference| to ours {tfkv_diff:.2e}",
        file=sys.stderr,
    )

    k = max(1, min(args.blog_maps, n))
    subset = np.linspace(0, n - 1, k).astype(int)
    blog_diff = 0.0
    eager_ascent_step_loop(model, LAYER, starts[0], 0, 2, args.step)  # warm-up (Keras sub-model build)
    t0 = time.perf_counter()
    for m in subset:
        img, _ = eager_ascent_step_loop(model, LAYER, starts[m], int(m), args.epochs, args.step)
        blog_diff = max(blog_diff, float(np.abs(img - ours.images[m, ..., 0]).max()))
    blog_measured = time.perf_counter() - t0
    blog_s = blog_measured * n / k
    note = "" if k == n else f" (measured {blog_measured:.2f} s on {k} of {n} maps, extrapolated linearly ×{n / k:g})"
    print(
        f"blog-style loop (one map at a time, eager step per epoch): {blog_s:.2f} s{note}; "
        f"max |difference| to ours {blog_diff:.2e}",
        file=sys.stderr,
    )

    # the objectives beyond the blog, per step, against the plain one: 64 maps × 4 starts in one batch,
    # timed alternately so drifting load hits all alike
    four = start_images.random_starts(maps.tolist(), 4, seed=0).reshape(-1, 28, 28)
    four_maps = np.repeat(maps, 4)
    variants = {
        "plain": {},
        "negative": {"sign": -1.0},
        "diversity": {"diversity": ascent.DEFAULT_DIVERSITY},
        "robust transforms": dict(jitter=1, scale=0.1, rotate=10.0),
    }
    for kwargs in variants.values():
        engine.ascend(four, four_maps, 2, args.step, **kwargs)  # warm
    per_step = {name: [] for name in variants}
    for _ in range(max(1, args.repeats)):
        for name, kwargs in variants.items():
            t0 = time.perf_counter()
            engine.ascend(four, four_maps, args.epochs, args.step, **kwargs)
            per_step[name].append((time.perf_counter() - t0) / args.epochs * 1000)
    step_ms = {name: min(v) for name, v in per_step.items()}
    cost = {name: round(ms / step_ms["plain"], 2) for name, ms in step_ms.items()}
    print(
        "per step, 256 images: "
        + ", ".join(f"{name} {ms:.1f} ms (×{cost[name]:.2f})" for name, ms in step_ms.items())
        + " (target ≤ 1.3× for negative and diversity)",
        file=sys.stderr,
    )

    print(
        f"\nspeed-up of ours: ×{blog_s / ours_s:.0f} vs the blog-style loop (target ≥ 100), "
        f"×{tfkv_s / ours_s:.1f} vs tf-keras-vis warm (target ≥ 5), ×{tfkv_cold / first_call:.1f} cold vs cold "
        f"(target ≥ 2)"
    )
    print(
        json.dumps(
            {
                "benchmark": "oip",
                "device": describe_device(),
                "maps": n,
                "epochs": args.epochs,
                "ours_s": round(ours_s, 4),
                "ours_first_call_s": round(first_call, 3),
                "tf_keras_vis_s": round(tfkv_s, 3),
                "tf_keras_vis_cold_s": round(tfkv_cold, 3),
                "blog_loop_s": round(blog_s, 3),
                "blog_loop_maps_measured": int(k),
                "blog_loop_extrapolated": k != n,
                "ratio_vs_blog_loop": round(blog_s / ours_s, 1),
                "ratio_vs_tf_keras_vis": round(tfkv_s / ours_s, 2),
                "ratio_cold_vs_tf_keras_vis_cold": round(tfkv_cold / first_call, 2),
                "max_abs_diff_tf_keras_vis": tfkv_diff,
                "max_abs_diff_blog_loop": blog_diff,
                "maps_with_oip": int((ours.final_loss > 0).sum()),
                "step_ms_256_images": {k: round(v, 2) for k, v in step_ms.items()},
                "cost_vs_plain": cost,
                "load_average": round(os.getloadavg()[0], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
