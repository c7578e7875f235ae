"""What the dashboard costs over the command line for the same job, seen from a real browser.

A fresh ``streamlit run`` server (its job worker warm, as after a teacher opened the app) and Debian's
chromium: from the click on the page's button until its result shows, (1) training article II for 1 epoch on
the 60,000 digits on the Train page, (2) the default k-means sweep (K = 10..170 step 10) on the
Clustering-MLP page; then the same jobs from the command line (``python -m core train --epochs 1`` and
``python -m core cluster``), timed as a user would time them (the whole command). One after the other,
on the same machine, ``--repeats`` times each (alternating page and CLI), best of each.

    MNIST_NPZ=../shared/data/mnist.npz python bench/bench_page_overhead.py

Last line: JSON with ``train_page_s``, ``train_cli_s``, ``sweep_page_s``, ``sweep_cli_s`` and ``worst_ratio``
(page / CLI; goal ≤ 1.10).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# the same server start and chromium flags as the browser tests
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_streamlit, stop_streamlit  # noqa: E402


def _idle(page) -> None:
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=300_000)


def _number(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_function(
        "([l, v]) => [...document.querySelectorAll('input')].some(i => "
        "i.getAttribute('aria-label') === l && i.value.replace(/,/g, '') === v)",
        arg=[label, str(value)],
    )
    _idle(page)


def page_times(url: str) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.set_default_timeout(600_000)
        page.goto(f"{url}/train")  # the Start page is the default
        page.get_by_text("96,844 parameters").first.wait_for()
        _idle(page)
        _number(page, "Epochs", 1)
        page.get_by_role("button", name="Train", exact=True).click()
        clicked = time.perf_counter()
        page.get_by_text("Run saved as").first.wait_for()
        train_s = time.perf_counter() - clicked
        print(f"page: training 1 epoch on 60,000 digits, click → result {train_s:.1f} s", flush=True)
        page.locator("[data-testid='stSidebar'] [data-testid='stPageLink']").get_by_text("Clustering-MLP").click()
        page.get_by_role("button", name="Run sweep", exact=True).wait_for()
        _idle(page)
        page.get_by_role("button", name="Run sweep", exact=True).click()
        clicked = time.perf_counter()
        page.get_by_role("button", name="Sweep shown below", exact=True).wait_for()
        sweep_s = time.perf_counter() - clicked
        print(f"page: default k-means sweep (17 K), click → result {sweep_s:.1f} s", flush=True)
        browser.close()
    return round(train_s, 1), round(sweep_s, 1)


def cli_time(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    pages, clis = [], []
    for _ in range(args.repeats):
        pages.append(one_page_run())
        clis.append(one_cli_run())
    train_page, sweep_page = min(p[0] for p in pages), min(p[1] for p in pages)
    train_cli, sweep_cli = min(c[0] for c in clis), min(c[1] for c in clis)
    result = {
        "train_page_s": round(train_page, 1),
        "train_cli_s": round(train_cli, 1),
        "sweep_page_s": round(sweep_page, 1),
        "sweep_cli_s": round(sweep_cli, 1),
        "worst_ratio": round(max(train_page / train_cli, sweep_page / sweep_cli), 3),
        "repeats": args.repeats,
        "all": {"page": pages, "cli": clis},
    }
    print(json.dumps(result))


def one_page_run() -> tuple[float, float]:
    runs = Path(tempfile.mkdtemp(prefix="bench-page-runs-"))
    server, url = start_streamlit(runs, runs)
    try:
        urllib.request.urlopen(url, timeout=10)
        time.sleep(15)  # the job worker loads TensorFlow once the first page ran (a teacher opens the app first)
        return page_times(url)
    finally:
        stop_streamlit(server)


def one_cli_run() -> tuple[float, float]:
    runs = tempfile.mkdtemp(prefix="bench-cli-runs-")
    train_cli = cli_time(["train", "--epochs", "1", "--out", runs, "--name", "cli"])
    print(f"CLI: python -m core train --epochs 1: {train_cli:.1f} s", flush=True)
    sweep_cli = cli_time(["cluster"])
    print(f"CLI: python -m core cluster: {sweep_cli:.1f} s", flush=True)
    return round(train_cli, 1), round(sweep_cli, 1)


if __name__ == "__main__":
    main()
