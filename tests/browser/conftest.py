"""Real-browser fixtures: ``streamlit run app.py`` on a free localhost port, driven by Playwright
with Debian's chromium. Screenshots go to ``test-artifacts/`` for a person to look at."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(runs_dir: Path, log_dir: Path, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` on a free localhost port (with ``env`` added to this process's environment);
    returns the process and its URL once healthy."""
    port = _free_port()
    env = dict(os.environ, MNIST_EXPLORER_RUNS=str(runs_dir), **(env or {}))
    log = open(log_dir / "streamlit.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early; see {log.name}") from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not come up in 90 s")


def stop_streamlit(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """Start the dashboard once for the browser tests; runs go to a temporary folder."""
    proc, url = start_streamlit(tmp_path_factory.mktemp("browser-runs"), tmp_path_factory.mktemp("log"))
    yield url
    stop_streamlit(proc)


@pytest.fixture(scope="session")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}; .ci/run installs Debian's chromium")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.call_failed = report.failed


@pytest.fixture()
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    if getattr(request.node, "call_failed", False):  # what the page showed when the test failed
        screenshot(pg, f"FAILED_{request.node.name}")
        # the text too: the app scrolls inside its own frame, so the screenshot shows only what was in view
        text = pg.locator("[data-testid='stApp']").inner_text(timeout=5_000)
        (ARTIFACTS / f"FAILED_{request.node.name}.txt").write_text(text)
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot to test-artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_from_sidebar(page, title: str) -> None:
    """Click the page ``title`` in the app's own menu (page links in the sidebar)."""
    menu = page.locator("[data-testid='stSidebar'] [data-testid='stPageLink']")
    menu.get_by_text(title, exact=True).click()


def wait_for_app(page) -> None:
    """Wait until Streamlit has finished running the script (no 'Running...' indicator)."""
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)


def upload(page, target, path) -> None:
    """Choose ``path`` in the file uploader ``target`` (a locator of its file input) and wait until the server has
    it: the browser sends the file, then the widget's new value, so a click made before the upload's answer would run
    the page with the file chosen before (a button that acts on the file then acts on the old one)."""
    with page.expect_response(
        lambda r: "/_stcore/upload_file" in r.url and r.request.method == "PUT", timeout=60_000
    ) as answer:
        target.set_input_files(str(path))
    assert answer.value.ok, answer.value.status


def set_number(page, label: str, value, within=None) -> None:
    """Type ``value`` into the number field ``label`` (inside the locator ``within``, or anywhere on the page),
    press Enter and wait for the page's run to end."""
    field = (within or page).get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    wait_for_app(page)


def click_point(page, chart, index: int) -> None:
    """Click point ``index`` of the first scatter trace with points in the plotly ``chart`` (a locator)."""
    point = chart.locator(".scatterlayer .point").nth(index)
    point.wait_for(timeout=30_000)
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # plotly takes a click on a point only once it has hovered it, and its hover label says it has: the pointer
    # comes from beside the point in a few moves, as a hand does (one jump onto the point, right after a scroll or
    # a re-layout, was not always taken for a hover, and the click was lost)
    page.mouse.move(x - 12, y)
    page.mouse.move(x, y, steps=4)
    chart.locator(".hoverlayer .hovertext").first.wait_for(timeout=30_000)
    page.mouse.click(x, y)


def click_map_number(page, index: int) -> None:
    """Click the number of map ``index`` above a layer grid (the first plotly chart with clickable points)."""
    grid = page.locator("[data-testid='stPlotlyChart']").filter(has=page.locator(".scatterlayer .point")).first
    click_point(page, grid, index)
