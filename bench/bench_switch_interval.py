"""Why the dashboard's server hands the GIL on after 1 ms: the Activations prediction step (canvas → 28×28 →
prediction and all activations) timed while other threads draw pages (plotly figures built in pure Python, as
a class's result pages are), with Python's default switch interval (5 ms) and with the server's (1 ms),
alternating, in one run.

    python bench/bench_switch_interval.py [--drawing-threads 2] [--steps 30]

Last line: JSON with the medians and 95th percentiles per interval and the step alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402

from core.activations import ActivationModel  # noqa: E402
from core.images import canvas_to_gray, to_mnist_digit  # noqa: E402
from core.runs import load_default  # noqa: E402

SERVER_INTERVAL_S = 0.001  # pages/shared.py: SERVER_SWITCH_INTERVAL_S (not imported: that module needs Streamlit)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--drawing-threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    am = ActivationModel.from_bundle(load_default())
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[60:220, 120:160, :3] = 255  # a "1"
    canvas[..., 3] = 255

    def step() -> float:
        t0 = time.perf_counter()
        digit = to_mnist_digit(canvas_to_gray(canvas), invert=False)
        am.activations(am.scaler.transform(digit))
        return (time.perf_counter() - t0) * 1000

    stop = threading.Event()

    def draw_pages() -> None:
        while not stop.is_set():
            fig = go.Figure()
            for i in range(30):
                fig.add_trace(go.Scatter(x=list(range(50)), y=list(range(50)), name=str(i)))
            fig.to_json()

    for _ in range(5):
        step()
    alone = [step() for _ in range(args.steps)]
    results: dict = {}
    default = sys.getswitchinterval()
    for interval in (default, SERVER_INTERVAL_S, default, SERVER_INTERVAL_S):
        sys.setswitchinterval(interval)
        stop.clear()
        threads = [threading.Thread(target=draw_pages) for _ in range(args.drawing_threads)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        times = [step() for _ in range(args.steps)]
        stop.set()
        for t in threads:
            t.join()
        results.setdefault(f"{interval * 1000:g}_ms", []).extend(times)
    sys.setswitchinterval(default)
    summary = {
        k: {"p50_ms": round(float(np.median(v)), 1), "p95_ms": round(float(np.percentile(v, 95)), 1)}
        for k, v in results.items()
    }
    for k, v in summary.items():
        print(
            f"switch interval {k.replace('_', ' ')}: prediction step p50 {v['p50_ms']} ms, p95 {v['p95_ms']} ms "
            f"beside {args.drawing_threads} page-drawing threads",
            flush=True,
        )
    print(f"alone: p50 {np.median(alone):.1f} ms")
    keys = list(summary)
    print(
        json.dumps(
            {
                "benchmark": "switch interval",
                "drawing_threads": args.drawing_threads,
                **summary,
                "alone_p50_ms": round(float(np.median(alone)), 1),
                "ratio_p50_default_vs_server": round(summary[keys[0]]["p50_ms"] / summary[keys[1]]["p50_ms"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
