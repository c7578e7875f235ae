"""Knock-out speed on the bundled article-II model, 2 CPU cores (issue goals in brackets):

* one digit with maps switched off: its probabilities before and after (≤ 1 s);
* the 10,000 test digits with those maps off: accuracy overall and per class (≤ 3 s);
* the importance ranking of conv3: each of its 64 maps alone off, accuracy over the test set (≤ 10 s), beside the
  naive way (the whole network again for every map) measured in the same run.

    python bench/bench_knockout.py [--maps conv3:3,17]

Prints the figures and, as the last line, one JSON object.
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

from core.data import load_mnist  # noqa: E402
from core.experiments.knockout import Knockout, parse_knockout, score  # noqa: E402
from core.runs import load_default  # noqa: E402

LIMITS = {"digit_s": 1.0, "test_set_s": 3.0, "ranking_conv3_s": 10.0}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--maps", default="conv3:3,17")
    ap.add_argument("--mnist", default=None)
    args = ap.parse_args()
    bundle = load_default()
    mnist = load_mnist(args.mnist)
    x_test = bundle.scaler.transform(mnist.x_test)
    digit = x_test[227:228]
    ko = Knockout(bundle.model)
    keep = ko.keep_vector(parse_knockout(args.maps))
    digit_cold, _ = timed(lambda: (ko.probabilities(digit), ko.probabilities(digit, keep)))  # includes tracing
    digit_s, _ = timed(lambda: (ko.probabilities(digit), ko.probabilities(digit, keep)))
    test_s, (before, after) = timed(
        lambda: (score(ko.probabilities(x_test), mnist.y_test), score(ko.probabilities(x_test, keep), mnist.y_test))
    )
    rank_s, imp = timed(lambda: ko.importance(x_test, mnist.y_test, "conv3"))

    def naive():  # the whole network once per map
        return [
            score(ko.probabilities(x_test, ko.keep_vector({"conv3": [m]})), mnist.y_test).overall
            for m in range(ko.widths["conv3"])
        ]

    naive_s, naive_acc = timed(naive)
    same = bool(np.allclose(naive_acc, imp.overall))
    figures = {
        "digit_cold_s": round(digit_cold, 3),
        "digit_s": round(digit_s, 4),
        "test_set_s": round(test_s, 3),
        "ranking_conv3_s": round(rank_s, 3),
        "ranking_naive_s": round(naive_s, 3),
        "ranking_speedup": round(naive_s / rank_s, 2),
        "ranking_same_as_naive": same,
    }
    ok = all(figures[k] <= v for k, v in LIMITS.items())
    print(f"one digit, before and after: {digit_s * 1000:.1f} ms warm ({digit_cold:.2f} s with tracing; limit 1 s)")
    print(
        f"10,000 test digits, before and after {args.maps} off: {test_s:.2f} s (limit 3 s); accuracy "
        f"{before.overall:.2%} → {after.overall:.2%}"
    )
    print(
        f"importance ranking of conv3's 64 maps: {rank_s:.2f} s (limit 10 s); the whole network per map "
        f"{naive_s:.2f} s ({naive_s / rank_s:.1f}× slower, same accuracies: {same}); the most important map: "
        f"{int(imp.ranking()[0])} (accuracy −{imp.drop()[imp.ranking()[0]]:.2%} when it alone is off)"
    )
    print(
        json.dumps(
            {
                "benchmark": "knockout",
                "maps": args.maps,
                **figures,
                "limits": LIMITS,
                "within_limits": ok,
                "accuracy_before": round(before.overall, 4),
                "accuracy_after": round(after.overall, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
