"""Your handwriting, measured on the bundled article-II model with a stand-in for a learner's set: 80 MNIST test
digits (indices 5000..5079, never trained on) turned 50° — a 'handwriting' the network reads badly.

* scoring the set on every rerun of the page: the compiled knock-out forward pass (one batch, fixed signature)
  against ``model.predict`` (which builds its function each call), side by side;
* fine-tuning a copy with the page's defaults (2 epochs, 10,000 MNIST digits, each of yours 20 times, a quarter
  held out): its wall time on this machine, and the accuracy before/after on MNIST test, the digits trained on and
  the held-out ones.

    MNIST_NPZ=../shared/data/mnist.npz python bench/bench_handwriting.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from core.data import load_mnist  # noqa: E402
from core.experiments.fine_tune import SETS, FineTuneConfig, fine_tune  # noqa: E402
from core.experiments.knockout import Knockout  # noqa: E402
from core.experiments.personal_set import PersonalSet, score_probabilities  # noqa: E402
from core.runs import load_default  # noqa: E402


def _best(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    bundle = load_default()
    mnist = load_mnist(os.environ.get("MNIST_NPZ"))
    idx = np.arange(5000, 5080)
    turned = np.stack(
        [np.clip(ndimage.rotate(mnist.x_test[i].astype(float), 50, reshape=False, order=1), 0, 255) for i in idx]
    )
    personal = PersonalSet(turned, mnist.y_test[idx])
    ko = Knockout(bundle.model)
    x = bundle.scaler.transform(personal.images)
    compiled = _best(lambda: score_probabilities(ko.probabilities(x), personal.labels))
    predict = _best(lambda: score_probabilities(bundle.model.predict(x, verbose=0), personal.labels))
    print(
        f"scoring {len(personal)} digits: compiled pass {compiled * 1000:.1f} ms, model.predict "
        f"{predict * 1000:.1f} ms ({predict / compiled:.1f}x)"
    )
    config = FineTuneConfig()
    t0 = time.perf_counter()
    result = fine_tune(bundle, mnist, personal, config)
    seconds = time.perf_counter() - t0
    rows = {
        name: {
            "before": round(result.before[name].accuracy.overall, 4),
            "after": round(result.after[name].accuracy.overall, 4),
            "digits": result.before[name].accuracy.n,
        }
        for name in SETS
    }
    for name, row in rows.items():
        print(f"{name:26s} ({row['digits']:>6,}): {row['before']:.2%} → {row['after']:.2%}")
    print(
        f"fine-tuning ({config.epochs} epochs, {config.mnist_digits:,} MNIST + {len(personal) - len(result.held_out)}"
        f"×{config.repeat} of yours): {seconds:.1f} s"
    )
    print(
        json.dumps(
            {
                "benchmark": "handwriting",
                "digits": len(personal),
                "score_compiled_ms": round(compiled * 1000, 2),
                "score_predict_ms": round(predict * 1000, 2),
                "fine_tune_s": round(seconds, 2),
                **rows,
            }
        )
    )


if __name__ == "__main__":
    main()
