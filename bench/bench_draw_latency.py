"""Drawing on the Activations page, timed in chromium (issue 28): from pen up to the whole answer on screen
(prediction, probabilities, every layer's maps) and how often the answer follows the pen during a stroke,
alone and beside jobs that other sessions run.

A fresh ``streamlit run`` server, Debian's chromium; one session draws digits with the mouse at a pupil's pace (a
stroke of about a second, then a short pause; Clear after every third stroke). Per stroke:

* ``outside_ms``: this script's clock, from just before the button is released until the pad's frame shows the
  answer (its ``#answer`` carries the stroke's number; polled every 2 ms in the pad's own frame);
* ``page_ms``: the page's own clock, from the ``pointerup`` event to the first frame painted after the answer was
  drawn (``requestAnimationFrame`` then a task: the paint has happened);
* ``updates_per_s``: answers drawn while the button was down, per second of the stroke.

Then the same with ``--jobs`` other browser sessions each starting a training on the Train page (article II on
the whole training set, one epoch: the heaviest job a class starts), drawing while they run.

    MNIST_NPZ=../shared/data/mnist.npz python bench/bench_draw_latency.py --strokes 30 --jobs 2

Last line: JSON with p50/p95/max of both latencies and the update rate (min and median), alone and beside jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_streamlit, stop_streamlit  # noqa: E402
from tests.browser.pad import ONE, SEVEN, ZERO, mouse_stroke, open_pad, pad_box, wait_answer  # noqa: E402

Z = [(80, 70), (200, 70), (80, 230), (200, 230)]
FOUR = [(180, 230), (180, 40), (70, 170), (220, 170)]
SHAPES = (SEVEN, ONE, ZERO, Z, FOUR)
TIMING = """(seq) => { const s = window.drawStats; const u = s.penUps.find((p) => p.seq === seq);
    const st = s.strokes.at(-1); return u ? {page: u.shown - u.up, n: st.updates.length,
    seconds: (u.up - st.down) / 1000} : null; }"""


def _stats(values: list[float]) -> dict:
    a = np.asarray(values, float)
    return {
        "p50": round(float(np.percentile(a, 50)), 1),
        "p95": round(float(np.percentile(a, 95)), 1),
        "max": round(float(a.max()), 1),
        "n": int(a.size),
    }


def _draw_series(page, pad, strokes: int, rng, seq: int) -> tuple[dict, int]:
    box = pad_box(pad)
    outside, inside, rates = [], [], []
    for n in range(strokes):
        shape = SHAPES[n % len(SHAPES)]
        jitter = rng.uniform(-12, 12, (len(shape), 2))
        points = [(float(x + dx), float(y + dy)) for (x, y), (dx, dy) in zip(shape, jitter)]
        up = mouse_stroke(page, box, points, steps=max(8, 60 // (len(points) - 1)), pause_s=0.012)
        seq += 1
        shown = wait_answer(pad, seq)
        outside.append((shown - up) * 1000)
        timing = pad.evaluate(TIMING, seq)
        deadline = time.monotonic() + 5
        while timing is None and time.monotonic() < deadline:  # the paint is recorded a frame after the answer
            time.sleep(0.01)
            timing = pad.evaluate(TIMING, seq)
        inside.append(timing["page"])
        rates.append(timing["n"] / timing["seconds"])
        time.sleep(0.6)  # a pupil looks at the answer
        if n % 3 == 2:
            pad.locator("#clear").click()
            seq += 1
            wait_answer(pad, seq)
            time.sleep(0.3)
    result = {
        "outside_ms": _stats(outside),
        "page_ms": _stats(inside),
        "updates_per_s": {"min": round(min(rates), 1), "p50": round(float(np.median(rates)), 1)},
    }
    return result, seq


def _start_training(browser, url: str) -> object:
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(300_000)
    page.goto(url + "/train")
    button = page.get_by_role("button", name="Train", exact=True)
    button.wait_for()
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
    button.click()
    return context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strokes", type=int, default=30, help="strokes per series (default 30)")
    parser.add_argument("--jobs", type=int, default=2, help="other sessions' trainings during the second series")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rng = np.random.default_rng(28)
    report: dict = {"cpu_count": os.cpu_count(), "strokes": args.strokes, "jobs": args.jobs}
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_streamlit(Path(tmp), Path(tmp))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.set_default_timeout(120_000)
                page.goto(url + "/activations")
                page.get_by_text("Prediction:").first.wait_for()
                pad = open_pad(page)
                warm, seq = _draw_series(page, pad, 3, rng, 0)  # the server's first runs of the sections
                report["alone"], seq = _draw_series(page, pad, args.strokes, rng, seq)
                print("alone", json.dumps(report["alone"]), flush=True)
                others = [_start_training(browser, url) for _ in range(args.jobs)]
                time.sleep(5)  # the jobs are running
                report["beside_jobs"], seq = _draw_series(page, pad, args.strokes, rng, seq)
                print("beside jobs", json.dumps(report["beside_jobs"]), flush=True)
                for other in others:
                    other.close()
                browser.close()
        finally:
            stop_streamlit(proc)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
