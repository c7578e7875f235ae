"""Map alignment of two article-II trainings (seeds 1 and 2): per conv layer the share of maps both learnt
(one-to-one matching, correlation ≥ 0.5 over the 10,000 test digits) and how long the comparison takes
(goal: ≤ 5 s on 2 cores for conv1, conv2 and conv3 together).

Without ``--runs`` the two runs are trained here first (5 epochs each, the blog's settings; minutes on a CPU);
``python -m core train --seed 1 --name seed1`` and ``--seed 2`` make the same ones for ``--runs``.

    python bench/bench_compare.py [--runs RUN_A RUN_B] [--repeats 3]

Prints the figures, the per-layer sentences and, as the last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from core.compare.alignment import align  # noqa: E402
from core.data import load_mnist  # noqa: E402
from core.runs import load_run, save_run  # noqa: E402
from core.spec import preset  # noqa: E402
from core.training import TrainConfig, train  # noqa: E402

LIMIT_S = 5.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs=2, default=None, metavar=("RUN_A", "RUN_B"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mnist", default=None)
    args = ap.parse_args()
    mnist = load_mnist(args.mnist)
    if args.runs:
        folders = [Path(r) for r in args.runs]
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench-compare-"))
        folders = []
        for seed in (1, 2):
            result = train(preset("article II"), TrainConfig(epochs=5, seed=seed), mnist)
            folders.append(save_run(result, tmp, name=f"seed{seed}"))
            print(f"trained seed {seed}: test accuracy {result.test_accuracy:.4f}", file=sys.stderr, flush=True)
    a, b = (load_run(f) for f in folders)
    times = []
    for _ in range(max(1, args.repeats)):  # the first call includes tracing: it is what a user waits for once
        t0 = time.perf_counter()
        result = align(a, b, mnist.x_test)
        times.append(time.perf_counter() - t0)
    for layer in result.layers.values():
        print(layer.sentence(a.name, b.name))
    best, first = min(times), times[0]
    verdict = "OK" if first <= LIMIT_S else "OVER LIMIT"
    print(
        f"alignment of conv1, conv2, conv3 over {result.n_digits:,} test digits: first call {first:.2f} s, "
        f"best of {len(times)} {best:.2f} s ({os.cpu_count()} CPU cores; limit {LIMIT_S:.0f} s: {verdict})"
    )
    out = {
        "benchmark": "compare",
        "runs": [str(f) for f in folders],
        "digits": result.n_digits,
        "first_s": round(first, 3),
        "best_s": round(best, 3),
        "limit_s": LIMIT_S,
        "within_limit": first <= LIMIT_S,
        "layers": {
            n: {
                "share": round(x.share, 4),
                "matched": x.n_matched,
                "maps": list(x.maps),
                "mean_correlation": round(x.mean_matched, 4),
            }
            for n, x in result.layers.items()
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
