"""Invariance sweeps on the bundled article-II model: each transform over its default range for the blog's 4
(test digit 227), every copy in one batch; seconds per sweep (issue goal ≤ 1 s per digit on 2 cores) and the
range over which the prediction holds.

    python bench/bench_invariance.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from core.activations import ActivationModel  # noqa: E402
from core.data import load_sample_digits  # noqa: E402
from core.experiments.invariance import DEFAULT_VALUES, TRANSFORMS, UNITS, sweep  # noqa: E402
from core.runs import load_default  # noqa: E402


def main() -> None:
    am = ActivationModel.from_bundle(load_default())
    raw, label = load_sample_digits().by_test_index(227)
    out = {}
    for kind in TRANSFORMS:
        sweep(am, raw, kind)  # tracing is not what is measured
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            result = sweep(am, raw, kind)
            times.append(time.perf_counter() - t0)
        held = result.holds(label)
        out[kind] = {
            "values": len(DEFAULT_VALUES[kind]),
            "best_s": round(min(times), 4),
            "holds": None if held is None else list(held),
        }
        print(
            f"{kind:9s}: {len(DEFAULT_VALUES[kind])} copies in {min(times) * 1000:.1f} ms (limit 1 s); the 4 stays a "
            f"4 for {'no value' if held is None else f'{held[0]:g}..{held[1]:g} {UNITS[kind]}'}"
        )
    print(json.dumps({"benchmark": "invariance", "digit": 227, **out}))


if __name__ == "__main__":
    main()
