"""Fooling the bundled article-II model: targeted FGSM and PGD on the first test digits of the shipped sample,
each towards the class after its own (4 → 5, ...), ink pixels only and every pixel, side by side in one run.

Per setting: the seconds per digit (the attack at the asked budget plus the smallest-budget search over 56
budgets in one batch; issue goal ≤ 1 s per digit on 2 cores), how many digits flip at 32 grey levels, and the
median smallest budget.

    python bench/bench_attack.py [--digits 20]
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

from core.data import load_sample_digits  # noqa: E402
from core.experiments.attack import Attacker  # noqa: E402
from core.runs import load_default  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--digits", type=int, default=20)
    args = ap.parse_args()
    bundle = load_default()
    sample = load_sample_digits()
    att = Attacker(bundle.model, bundle.scaler)
    raws = [sample.by_test_index(int(i))[0] for i in sample.indices[: args.digits]]
    out = {}
    for pixels in ("ink", "all"):
        for method in ("fgsm", "pgd"):
            att.attack(
                raws[0], (int(np.argmax(att.probabilities(raws[0][None])[0])) + 1) % 10, 32, method, pixels=pixels
            )  # tracing is not what is compared
            seconds, flipped, smallest = [], 0, []
            for raw in raws:
                target = (int(np.argmax(att.probabilities(raw[None])[0])) + 1) % 10
                t0 = time.perf_counter()
                r = att.attack(raw, target, 32, method, pixels=pixels)
                seconds.append(time.perf_counter() - t0)
                flipped += r.flipped
                smallest.append(np.inf if r.smallest_budget is None else r.smallest_budget)
            med = float(np.median(smallest))
            key = f"{method}_{pixels}"
            out[key] = {
                "mean_s": round(float(np.mean(seconds)), 3),
                "max_s": round(float(np.max(seconds)), 3),
                "flipped_at_32": f"{flipped}/{len(raws)}",
                "median_smallest_budget": None if np.isinf(med) else med,
            }
            print(
                f"{method:4s} {pixels:3s} pixels: {np.mean(seconds) * 1000:.0f} ms per digit (max "
                f"{np.max(seconds) * 1000:.0f} ms; limit 1 s), {flipped}/{len(raws)} flipped at 32 grey levels, median "
                f"smallest budget {'none ≤ 255' if np.isinf(med) else f'{med:g}'} grey levels"
            )
    print(json.dumps({"benchmark": "attack", "digits": len(raws), **out}))


if __name__ == "__main__":
    main()
