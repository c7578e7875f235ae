"""LIME on the bundled article-II model for the blog's 4 (test digit 227), 1000 samples: seconds per explanation
(issue goal ≤ 1 s per digit on 2 cores) for grid and ink superpixels, ours (every perturbed copy built with
array indexing, ONE network call) against stock lime (its per-sample Python loop, the network called every
``batch_size`` = 10 copies, lime's default; and the same loop with one call). Median of 5 runs after a warm-up.

    python bench/bench_lime.py
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from core.activations import ActivationModel  # noqa: E402
from core.attribution import lime as la  # noqa: E402
from core.data import load_sample_digits  # noqa: E402
from core.runs import load_default  # noqa: E402

SAMPLES, RUNS = 1000, 5


def median_seconds(fn) -> float:
    fn()  # tracing and imports are not what is measured
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def stock_lime(am, raw, segmentation: str, batch_size: int):
    """lime_image.LimeImageExplainer as shipped (its tqdm bar swallowed): same segments, fill and classifier."""
    from lime import lime_image

    segments = la.superpixels(raw, segmentation, 4)
    fill = np.repeat(la.fill_image(am, "mean")[..., None], 3, axis=-1)

    def run():
        with contextlib.redirect_stderr(io.StringIO()):
            return lime_image.LimeImageExplainer(feature_selection="none", random_state=0).explain_instance(
                raw.astype(np.float32),
                la.classifier(am),
                labels=(4,),
                top_labels=None,
                hide_color=fill,
                num_features=1000,
                num_samples=SAMPLES,
                batch_size=batch_size,
                segmentation_fn=lambda _: segments,
                random_seed=0,
            )

    return run


def main() -> None:
    am = ActivationModel.from_bundle(load_default())
    raw, label = load_sample_digits().by_test_index(227)
    out = {"samples": SAMPLES, "cpus": os.cpu_count()}
    for seg in ("grid", "ink"):
        result = la.explain(am, raw, label, SAMPLES, seg)
        ours = median_seconds(lambda seg=seg: la.explain(am, raw, label, SAMPLES, seg))
        ours_10 = median_seconds(lambda seg=seg: la.explain(am, raw, label, SAMPLES, seg, batch_size=10))
        lime_10 = median_seconds(stock_lime(am, raw, seg, 10))
        lime_1 = median_seconds(stock_lime(am, raw, seg, SAMPLES))
        out[seg] = {
            "segments": result.n_segments,
            "score": round(result.score, 3),
            "ours_s": round(ours, 4),
            "ours_batch10_s": round(ours_10, 4),
            "stock_lime_batch10_s": round(lime_10, 4),
            "stock_lime_one_batch_s": round(lime_1, 4),
            "speedup_vs_stock": round(lime_10 / ours, 1),
        }
        print(
            f"{seg:4s} ({result.n_segments} superpixels, R² {result.score:.2f}): one batch {ours * 1000:6.1f} ms "
            f"(limit 1 s) | batches of 10 {ours_10 * 1000:6.1f} ms ({ours_10 / ours:.1f}×) | stock lime, "
            f"batches of 10 {lime_10 * 1000:6.1f} ms ({lime_10 / ours:.1f}×), one batch {lime_1 * 1000:6.1f} ms "
            f"({lime_1 / ours:.1f}×)"
        )
    print(json.dumps({"benchmark": "lime", "digit": 227, **out}))


if __name__ == "__main__":
    main()
