"""Deep Dream speed: compiled ascents (core.dream) vs a naive eager loop, side by side in one run.

The photo is scikit-learn's 640×427 ``flower.jpg``, the model the bundled article-II CNN.

* single map (conv3 map 56), 4 loops × 20 epochs — limit 5 s
* tiles (conv3 map 56), 4 octaves × 20 epochs, all 28×28 tiles of an octave in one batch — limit 30 s
* layers & octaves (conv2 + conv3), 4 octaves × 20 epochs — for the README, no limit

"Compiled" is ``core.dream.Dreamer``: one ``tf.function`` per ascent (tf.range loop inside, fixed input
signature), cold (first call, tracing included) and warm (best of ``--repeats``). "Eager" runs the very
same recipe (``core.dream.dream`` with a drop-in dreamer) but takes every ascent step in Python with a
GradientTape in eager mode, tiles batched. "Eager, tile by tile" is the naive loop over tiles one at a
time; it is timed for 2 steps at the full 640×427 octave only and compared per step.

    python bench/bench_dream.py [--repeats 2]
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

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from core import dream as D  # noqa: E402
from core.oip import AscentEngine  # noqa: E402
from core.runs import load_default  # noqa: E402

LIMITS = {"map": 5.0, "tiles": 30.0}


class EagerDreamer:
    """The same ascents as core.dream.Dreamer, written as a plain eager Python loop."""

    def __init__(self, model, targets, tile_by_tile: bool = False) -> None:
        self.targets = tuple(targets)
        self.inner = D.Dreamer(model, targets)  # only its objective (plain layer calls), never compiled
        self.tile_by_tile = tile_by_tile

    def _step(self, x, weights, step_size, lo, hi, axis=None):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = self.inner.objective(x, weights)
            total = tf.reduce_sum(value)
        grads = tape.gradient(total, x)
        grads /= tf.math.reduce_std(grads, axis=axis, keepdims=axis is not None) + 1e-8
        return tf.clip_by_value(x + step_size * grads, lo, hi), float(tf.reduce_mean(value))

    # the single-map mode's loop, as core.oip.AscentEngine.ascend(..., clip=(lo, hi), normalise="std") runs it
    @property
    def layer(self) -> str:
        return self.targets[0][0]

    def ascend(self, images, targets, epochs, step, clip, normalise):
        x, w, losses = tf.constant(np.asarray(images, np.float32)[..., None]), tf.constant([1.0]), []
        for _ in range(int(epochs)):
            x, loss = self._step(x, w, step, clip[0], clip[1], axis=[1, 2, 3])
            losses.append([loss])
        return SimpleNamespace(images=x.numpy(), history=np.array(losses, np.float32).reshape(-1, 1))

    def ascent_full(self, image, steps, step_size, weights, lo, hi):
        x, w, losses = tf.constant(np.asarray(image, np.float32)), tf.constant(weights, tf.float32), []
        for _ in range(int(steps)):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = self.inner.objective(x[None, :, :, None], w)
                total = tf.reduce_sum(value)
            grads = tape.gradient(total, x)
            x = tf.clip_by_value(x + step_size * grads / (tf.math.reduce_std(grads) + 1e-8), lo, hi)
            losses.append(float(tf.reduce_mean(value)))
        return x.numpy(), np.array(losses, np.float32)

    def ascent_tiles(self, image, steps, step_size, weights, lo, hi, seed):
        rng = np.random.default_rng(list(seed))
        img, w, losses = np.asarray(image, np.float32), tf.constant(weights, tf.float32), []
        h, wd = img.shape
        for _ in range(int(steps)):
            shift = rng.integers(0, D.TILE, 2)
            tiles = D.split_tiles(img, shift.astype(np.int32))
            if self.tile_by_tile:
                grads, values = [], []
                for k in range(tiles.shape[0]):
                    t = tiles[k:k + 1]
                    with tf.GradientTape() as tape:
                        tape.watch(t)
                        value = self.inner.objective(t, w)
                        total = tf.reduce_sum(value)
                    grads.append(tape.gradient(total, t))
                    values.append(float(value[0]))
                grads, loss = tf.concat(grads, 0), float(np.mean(values))
            else:
                with tf.GradientTape() as tape:
                    tape.watch(tiles)
                    value = self.inner.objective(tiles, w)
                    total = tf.reduce_sum(value)
                grads, loss = tape.gradient(total, tiles), float(tf.reduce_mean(value))
            g = D.merge_tiles(grads, h, wd, shift.astype(np.int32)).numpy()  # padding's share dropped
            img = np.clip(img + step_size * g / (g.std() + 1e-8), lo, hi)
            losses.append(loss)
        return img.astype(np.float32), np.array(losses, np.float32)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    model = load_default().model
    photo = D.default_photo()
    print(f"photo {photo.shape[1]}×{photo.shape[0]}, model article II, {os.cpu_count()} CPU cores", flush=True)
    cases = {
        "map": D.DreamSettings(mode="map", loops=4, epochs=20),
        "tiles": D.DreamSettings(mode="tiles", octaves=4, epochs=20),
        "layers": D.DreamSettings(mode="layers", octaves=4, epochs=20),
    }
    out: dict = {}
    ok = True
    for name, settings in cases.items():
        targets = [(t.layer, t.map) for t in D.resolve_terms(settings, model)]
        if name == "map":  # the single-map loops run on the OIP engine
            def compiled_run(engine=AscentEngine(model, targets[0][0])):
                return D.dream(photo, model, settings, engine=engine)

            def eager_run():
                return D.dream(photo, model, settings, engine=EagerDreamer(model, targets))
        else:
            def compiled_run(dreamer=D.Dreamer(model, targets)):
                return D.dream(photo, model, settings, dreamer=dreamer)

            def eager_run():
                return D.dream(photo, model, settings, dreamer=EagerDreamer(model, targets))
        cold, result = timed(compiled_run)
        warm, eager = [], []
        for _ in range(args.repeats):  # alternate so drifting machine load hits both alike
            warm.append(timed(compiled_run)[0])
            eager.append(timed(eager_run)[0])
        best, best_eager = min(warm), min(eager)
        limit = LIMITS.get(name)
        verdict = "" if limit is None else (" OK" if max(cold, best) <= limit else " OVER LIMIT")
        ok &= limit is None or max(cold, best) <= limit
        print(f"{name:6s} compiled: cold {cold:6.2f} s, warm {best:6.2f} s | eager {best_eager:6.2f} s | "
              f"eager/compiled {best_eager / best:5.1f}×" + (f" | limit {limit:.0f} s{verdict}" if limit else ""),
              flush=True)
        out[name] = {"cold_s": round(cold, 3), "warm_s": round(best, 3), "eager_s": round(best_eager, 3),
                     "ratio_eager_vs_compiled": round(best_eager / best, 2), "limit_s": limit,
                     "stages": [s.label for s in result.stages], "final_cost": round(result.stages[-1].loss, 4)}

    # Per step at the full 640×427 octave: compiled batch vs eager batch vs eager tile by tile.
    settings = cases["tiles"]
    targets = [(t.layer, t.map) for t in D.resolve_terms(settings, model)]
    grey, _, _ = D.prepare_photo(photo)
    z = D.standardise(grey)
    lo, hi = float(z.min()), float(z.max())
    compiled = D.Dreamer(model, targets)
    compiled.ascent_tiles(z, 1, 0.05, [1.0], lo, hi, (0, 0))  # trace once
    steps = 10
    t_compiled = timed(lambda: compiled.ascent_tiles(z, steps, 0.05, [1.0], lo, hi, (0, 0)))[0] / steps
    t_batch = timed(lambda: EagerDreamer(model, targets).ascent_tiles(z, steps, 0.05, [1.0], lo, hi, (0, 0)))[0] / steps
    t_single = timed(lambda: EagerDreamer(model, targets, tile_by_tile=True).ascent_tiles(
        z, 2, 0.05, [1.0], lo, hi, (0, 0)))[0] / 2
    n_tiles = D.tile_count(*z.shape)
    print(f"one ascent step over the {n_tiles} tiles of 640×427: compiled batch {t_compiled * 1000:.0f} ms, "
          f"eager batch {t_batch * 1000:.0f} ms ({t_batch / t_compiled:.1f}×), eager tile by tile "
          f"{t_single * 1000:.0f} ms ({t_single / t_compiled:.0f}×)", flush=True)
    out["tile_step"] = {"tiles": n_tiles, "compiled_ms": round(t_compiled * 1000, 1), "eager_batch_ms": round(t_batch * 1000, 1),
                        "eager_tile_by_tile_ms": round(t_single * 1000, 1),
                        "ratio_eager_batch": round(t_batch / t_compiled, 2),
                        "ratio_tile_by_tile": round(t_single / t_compiled, 1)}
    out["within_limits"] = bool(ok)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
