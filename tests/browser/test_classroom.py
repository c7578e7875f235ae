"""Classroom load test: 10 browser sessions against one ``streamlit run`` server (localhost only).

Eight sessions press their page's start button at the same moment — two trainings (1 epoch on 2,000
digits, two seeds), two OIP runs of conv3 (two models), a precursor search on a small grid, two k-means
sweeps over a few K and a tiles dream — while two sessions keep drawing digits on the Activations page.
Every session opens its page with its own model (``?model=NAME``, three models) and must see that model.

Asserted: no errors (no exception or error element, no timeout); every job finishes within the time
limit; the jobs that had to wait showed their place in line meanwhile; the drawing sessions' reading of each
stroke took at most ``DRAW_P95_MS`` of server time at the 95th percentile while the jobs ran; the drawing pad
(issue 28) showed its whole answer at most ``DRAW_E2E_P95_MS`` after the pen lifted at the 95th percentile, as
the page itself timed it (``draw_p95_pen_up_to_answer_page_ms``); and each job's
result, downloaded from the page (or, for trainings, read from the runs folder), is identical to the same
job run alone afterwards on a worker with the server's thread count.

The ten browsers stand in for ten students' machines, but here they share the server's 2 cores. The eight job
sessions' browsers run in the idle scheduling class (``SCHED_IDLE``, reapplied every half second to new renderer
processes), so that they take what the server and its job worker leave, as remote browsers would, instead of
competing with the server whose responsiveness is measured. The two drawing sessions' browser runs at nice 15 and
draws at a pupil's pace (a stroke every ``STROKE_PERIOD_S`` at most, four strokes a digit), from the moment the jobs
start until they have all ended: at least ``MIN_DRAWS_DURING_JOBS`` strokes fall in that window, enough for a
95th percentile. Each stroke slower than ``SLOW_MS`` is explained from the server's own record of what it did
(``core.serving.events``: page runs, job panels, jobs collected, models loaded, garbage collections).

The server asks for access codes (issue 27): every session gives the class code and a nickname of its own before
it opens its page, as a class does (the teacher signs in first, with the teacher code, to warm the server).

Writes ``test-artifacts/classroom.json`` (``errors``, ``jobs_total``, ``jobs_finished``, ``draw_p95_server_ms``,
``identical_to_solo`` and the details). Run with ``make classroom``.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, _free_port

pytestmark = [pytest.mark.browser, pytest.mark.load]

TIMEOUT_MS = int(float(os.environ.get("CLASSROOM_TIMEOUT_S", "240")) * 1000)  # any single wait
MIN_DRAWS = int(os.environ.get("CLASSROOM_MIN_DRAWS", "4"))  # strokes per drawing session at least
# strokes while the jobs run, both drawing sessions together: enough for the 95th percentile to be a statistic
MIN_DRAWS_DURING_JOBS = int(os.environ.get("CLASSROOM_MIN_DRAWS_DURING_JOBS", "60"))
STROKES_PER_DIGIT = 4  # strokes drawn on one canvas before it is cleared (each stroke is answered)
STROKE_PERIOD_S = 1.2  # a drawing session starts a stroke at most this often
SLOW_MS = 300.0  # a stroke slower than this is explained in the report: what the server was doing
DRAW_P95_MS = 300.0
CLASS_CODE, TEACHER_CODE = "classroom-code-27", "teacher-code-27"  # the server's codes (issue 27)
SERVER_MS = re.compile(r"([\d,]+) ms of server time")  # the server's reading of a stroke (asserted)
PANEL_MS = re.compile(r"\(([\d,]+) ms with the reference computed\)")  # with the reference's activations (reported)
DRAW_E2E_P95_MS = 200.0  # pen up → the pad's whole answer painted, the pad's own clock (issue 28)
PAD_FRAME = "iframe[title*='draw_pad']"
PREDICTION = re.compile(r"Prediction:\s*(\d)")
WHERE = re.compile(r"at a time on (.+?)\)\. Waiting")
SAVED = re.compile(r"Run saved as (\S+?): test accuracy")
STROKES = [
    [(70, 60), (210, 60), (130, 240)],
    [(140, 40), (140, 240)],
    [(90, 40), (90, 230), (200, 230)],
    [(80, 40), (80, 150), (210, 150), (170, 40), (170, 250)],
    [(70, 60), (210, 60), (70, 230), (210, 230)],
]


@dataclass(eq=False)
class Plan:
    kind: str  # draw, train, oip, precursor, sweep, dream
    page: str  # url path
    model: str  # run name for ?model=, or 'default'
    title: str
    settings: dict = field(default_factory=dict)


@dataclass
class Outcome:
    plan: Plan
    errors: list[str] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    draw_at: list[float] = field(default_factory=list)  # seconds since the jobs were started
    draw_wall: list[float] = field(default_factory=list)  # wall-clock time of each pen-up (time.time())
    e2e_ms: list[float] = field(default_factory=list)  # pen-up → the pad's answer, this test's clock
    page_ms: list[float] = field(default_factory=list)  # pen-up → the pad's answer painted, the page's own clock
    panel_ms: list[float] = field(default_factory=list)
    queue_seen: list[str] = field(default_factory=list)  # "2nd in line, about 12 s" texts seen while waiting
    where: str = ""  # where the jobs run, as the waiting panel says
    finished: bool = False
    seconds_to_result: float | None = None
    ended_at: float | None = None  # seconds since the jobs were started
    artifact: Path | str | None = None  # the downloaded result (or the run name)


PLANS = [
    Plan("draw", "activations", "default", "Activations", {"digit": 0}),
    Plan("draw", "activations", "class-a", "Activations", {"digit": 1}),
    Plan("train", "train", "class-a", "Train", {"seed": 42}),
    Plan("train", "train", "class-b", "Train", {"seed": 7}),
    Plan("oip", "oip", "default", "Filters / OIP"),
    Plan("oip", "oip", "class-b", "Filters / OIP"),
    Plan("precursor", "precursor", "default", "Precursor"),
    Plan("sweep", "clustering", "class-a", "Clustering-MLP", {"seed": 0}),
    Plan("sweep", "clustering", "class-b", "Clustering-MLP", {"seed": 3}),
    Plan("dream", "deep-dream", "default", "Deep Dream"),
]


@pytest.fixture(scope="module")
def classroom_server(tmp_path_factory, mnist):
    """Two tiny trained models (two seeds) in a fresh runs folder, then ``streamlit run`` on localhost."""
    yield from serve_classroom(tmp_path_factory, mnist, {})


def serve_classroom(tmp_path_factory, mnist, server_env: dict):
    """The server of ``classroom_server`` with ``server_env`` added to its environment (a generator for fixtures)."""
    from core.runs import load_default, load_run, save_run
    from core.spec import preset
    from core.training import TrainConfig, train

    runs = tmp_path_factory.mktemp("classroom-runs")
    port = _free_port()
    log_dir = tmp_path_factory.mktemp("classroom-log")
    log_path, events_path = log_dir / "streamlit.log", log_dir / "events.jsonl"
    log = open(log_path, "w")
    env = dict(
        os.environ,
        MNIST_EXPLORER_RUNS=str(runs),
        MNIST_EXPLORER_EVENTS=str(events_path),
        MNIST_EXPLORER_CLASS_CODE=CLASS_CODE,
        MNIST_EXPLORER_TEACHER_CODE=TEACHER_CODE,
        **server_env,
    )
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
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    spy = _py_spy(proc.pid)
    try:
        models = {"default": load_default()}
        for name, seed in (("class-a", 1), ("class-b", 2)):
            result = train(
                preset("tiny filters"), TrainConfig(epochs=1, train_limit=1000, test_limit=500, seed=seed), mnist
            )
            models[name] = load_run(save_run(result, runs, name=name))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not come up; see {log_path}") from None
                time.sleep(0.5)
        yield url, models, runs, log_path, events_path
    finally:
        if spy is not None:  # py-spy writes its file when interrupted
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _py_spy(pid: int):
    """With ``CLASSROOM_PYSPY=1``: py-spy samples the server's threads that hold the interpreter lock, with their
    times (test-artifacts/classroom-pyspy.json, Chrome's trace format, for chrome://tracing or Perfetto)."""
    if os.environ.get("CLASSROOM_PYSPY") != "1":
        return None
    ARTIFACTS.mkdir(exist_ok=True)
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "-p",
            str(pid),
            "-r",
            "250",
            "--gil",
            "--threads",
            "-f",
            "chrometrace",
            "-o",
            str(ARTIFACTS / "classroom-pyspy.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# --------------------------------------------------------------------------- page helpers
async def _idle(page) -> None:
    await page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS
    )


async def _number(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    await box.fill(str(value))
    await box.press("Enter")
    await page.wait_for_function(  # the page ran with the new value: the field shows it after the run
        "([label, v]) => [...document.querySelectorAll('input')].some(i => i.getAttribute('aria-label') === label "
        "&& i.value.replace(/,/g, '') === v)",
        arg=[label, str(value)],
        timeout=TIMEOUT_MS,
    )
    await _idle(page)


async def _text(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    await box.fill(value)
    await box.press("Enter")
    await _idle(page)


async def _choose(page, label: str, option: str) -> None:
    await page.get_by_role("combobox", name=label, exact=True).click()
    await page.get_by_role("option", name=option, exact=True).click()
    await _idle(page)


async def _problems(page) -> list[str]:
    found = []
    for sel, what in (("[data-testid='stException']", "exception"), ("[data-testid='stAlertContentError']", "error")):
        for text in await page.locator(sel).all_inner_texts():
            found.append(f"{what}: {text[:300]}")
    return found


def _label(name: str, models: dict) -> str:
    if name == "default":
        return "bundled: article II (read-only)"
    return f"class: {name} · {models[name].meta['test_accuracy'] * 100:.2f} %"  # runs made before the class


async def _sign_in(page, code: str, nickname: str) -> None:
    """Give the access code, then a nickname (the page asked for opens afterwards)."""
    await page.get_by_label("Access code", exact=True).fill(code)
    await page.get_by_role("button", name="Enter", exact=True).click()
    await page.get_by_label("Nickname", exact=True).fill(nickname)
    await page.get_by_role("button", name="Continue", exact=True).click()
    await page.get_by_text(f"You are {nickname}").first.wait_for(timeout=TIMEOUT_MS)


async def _check_sidebar(page, plan: Plan, models: dict, out: Outcome) -> None:
    picker = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox'] input").first
    await picker.wait_for(timeout=TIMEOUT_MS)
    shown = await picker.input_value()
    if shown != _label(plan.model, models):
        out.errors.append(f"sidebar shows {shown!r}, expected {_label(plan.model, models)!r}")


# --------------------------------------------------------------------------- job sessions
T0 = [0.0]  # when the sessions were started (perf_counter)
START = {
    "train": "Train",
    "oip": "Compute OIPs",
    "precursor": "Run the precursor search",
    "sweep": "Run sweep",
    "dream": "Dream",
}
AFTER = {
    "train": "Train",
    "oip": "Compute again",
    "precursor": "Run the precursor search",
    "sweep": "Sweep shown below",
    "dream": "Dream",
}  # the start button once the result is shown
RESULT = {
    "train": "Run saved as",
    "oip": "maps with an OIP",
    "precursor": "maps rescued",
    "sweep": "Figures per K (.json)",
    "dream": "Download PNG",
}
DOWNLOAD = {
    "oip": "OIPs (.npz)",
    "precursor": "Results (.npz)",
    "sweep": "Figures per K (.json)",
    "dream": "Download PNG",
}


async def _prepare(page, plan: Plan) -> None:
    """Set the page's settings for this plan's small job (waiting for each change to take)."""
    if plan.kind == "train":
        await _choose(page, "Preset", "tiny filters")
        await _number(page, "Epochs", 1)
        await _number(page, "Training digits", 2000)
        await _number(page, "Seed", plan.settings["seed"])
    elif plan.kind == "precursor":
        await _text(page, "Target maps", "5,7")
        await _choose(page, "Grid (squares per side)", "2")
        await _text(page, "Grey values", "0.2,0.8")
        await _number(page, "Full epochs", 100)
        await page.get_by_text("16 patterns").first.wait_for(timeout=TIMEOUT_MS)
    elif plan.kind == "sweep":
        for label, value in (
            ("Training digits", 2000),
            ("Seed", plan.settings["seed"]),
            ("K from", 5),
            ("K to", 15),
            ("K step", 5),
            ("Silhouette sample", 500),
        ):
            await _number(page, label, value)
    elif plan.kind == "dream":
        await page.get_by_text("Tiles", exact=True).click()
        await page.get_by_label("Octaves", exact=True).wait_for(timeout=TIMEOUT_MS)
        await _idle(page)
        await _number(page, "Octaves", 2)
        await _number(page, "Epochs per octave", 10)


async def _run_job(page, plan: Plan, out: Outcome, go: asyncio.Barrier, tmp: Path) -> None:
    button = page.get_by_role("button", name=START[plan.kind], exact=True)
    await button.wait_for(timeout=TIMEOUT_MS)
    await go.wait()  # every session has set up its page: the start buttons are pressed at the same moment
    clicked = time.perf_counter()
    T0[0] = T0[0] or clicked
    await button.click()
    result = page.get_by_text(RESULT[plan.kind], exact=False).first
    line = page.get_by_text(re.compile(r"\d+(st|nd|rd|th) in line, about")).first
    while time.perf_counter() - clicked < TIMEOUT_MS / 1000:
        if await result.is_visible():
            break
        if await line.is_visible():
            try:  # the panel refreshes itself: the text may be gone by the time it is read
                whole = await line.inner_text(timeout=1000)
                text = whole.split("(")[0].strip()
                out.where = WHERE.search(whole).group(1) if WHERE.search(whole) else out.where
            except Exception:
                text = None
            if text and (not out.queue_seen or out.queue_seen[-1] != text):
                out.queue_seen.append(text)
        await asyncio.sleep(0.25)  # polling what the page shows while it waits, not waiting for time to pass
    else:
        raise TimeoutError(f"no {RESULT[plan.kind]!r} within {TIMEOUT_MS / 1000:.0f} s")
    out.seconds_to_result = time.perf_counter() - clicked
    out.ended_at = time.perf_counter() - T0[0]
    await page.get_by_role("button", name=AFTER[plan.kind], exact=True).wait_for(timeout=TIMEOUT_MS)  # ended
    await _idle(page)
    out.finished = True
    if plan.kind == "train":
        out.artifact = SAVED.search((await result.inner_text()).replace("*", "")).group(1)
    else:
        async with page.expect_download(timeout=TIMEOUT_MS) as info:
            await page.get_by_role("button", name=DOWNLOAD[plan.kind]).first.click()
        download = await info.value
        out.artifact = tmp / f"{plan.kind}-{plan.model}-{download.suggested_filename}"
        await download.save_as(out.artifact)


# --------------------------------------------------------------------------- drawing sessions
async def _stroke(page, box: dict, points) -> None:
    scale = box["width"] / 280  # points are pad pixels: the pad has 280×280 whatever its size on the page
    await page.mouse.move(box["x"] + points[0][0] * scale, box["y"] + points[0][1] * scale)
    await page.mouse.down()
    for x, y in points[1:]:
        await page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=8)
    await page.mouse.up()


async def _pad(page):
    """The drawing pad's own frame (tests/browser/pad.py, async), once its model is loaded."""
    await page.locator(PAD_FRAME).first.wait_for(timeout=TIMEOUT_MS)
    deadline = time.perf_counter() + TIMEOUT_MS / 1000
    while time.perf_counter() < deadline:
        for frame in page.frames:
            if frame.url == "about:srcdoc" and frame.parent_frame and "draw_pad" in frame.parent_frame.url:
                try:
                    await frame.wait_for_selector("#pad[data-model]", timeout=2_000)
                    return frame
                except Exception:  # still being written, or the model still loading
                    pass
        await asyncio.sleep(0.2)
    raise TimeoutError("the drawing pad did not load its model")


async def _pad_answer(pad, seq: int) -> dict:
    """Wait for the pad's answer number ``seq``; its heading and the page's own pen-up → painted time."""
    await pad.wait_for_function(f"() => document.getElementById('answer').dataset.seq === '{seq}'", polling=5)
    return await pad.evaluate(
        """async (seq) => { for (let i = 0; i < 500; i++) {
            const u = window.drawStats.penUps.find((p) => p.seq === seq);
            if (u) return {ms: u.shown - u.up, heading: document.getElementById('prediction').textContent};
            await new Promise((r) => setTimeout(r, 10)); } return null; }""",
        seq,
    )


async def _draw(
    page, plan: Plan, models: dict, mnist, out: Outcome, go: asyncio.Barrier, jobs_done: asyncio.Event
) -> None:
    digit = plan.settings["digit"]
    await _number(page, "MNIST test digit (index)", digit)
    bundle = models[plan.model]
    probs = bundle.model(bundle.scaler.transform(mnist.x_test[digit]), training=False).numpy()[0]
    heading = page.locator("h3", has_text="Prediction:").first
    await page.get_by_text(f"true label {int(mnist.y_test[digit])}").first.wait_for(timeout=TIMEOUT_MS)
    if f"Prediction: {int(probs.argmax())}" not in (await heading.inner_text()).replace("*", ""):
        out.errors.append(f"digit {digit}: the page's prediction is not model {plan.model}'s")
    await page.get_by_role("radio", name="Draw").click()
    pad = await _pad(page)
    # only the pad and the server's reading follow each stroke (the step measured here)
    await page.get_by_text("Update all sections after each stroke").click()
    await _idle(page)
    await go.wait()  # every session has set up its page: the jobs start now, and the drawing with them
    T0[0] = T0[0] or time.perf_counter()
    n, seq = 0, 0
    while n < MIN_DRAWS or not jobs_done.is_set():
        on_canvas = n % STROKES_PER_DIGIT  # strokes already on the pad
        if n and not on_canvas:
            await pad.locator("#clear").click()
            seq += 1
            await _pad_answer(pad, seq)
            await page.get_by_text("→ the server's reading").first.wait_for(state="detached", timeout=TIMEOUT_MS)
            await _idle(page)
        began = time.perf_counter()
        await _stroke(page, await pad.locator("#pad").bounding_box(), STROKES[(n + digit) % len(STROKES)])
        up = time.time()
        seq += 1
        shown = await _pad_answer(pad, seq)
        out.e2e_ms.append(round((time.time() - up) * 1000, 1))
        out.page_ms.append(round(shown["ms"], 1) if shown else float("inf"))
        strokes = f"{on_canvas + 1} stroke{'s' if on_canvas else ''} → the server's"
        caption = page.get_by_text(strokes).first  # the server's reading of this stroke, not of the one before
        await caption.wait_for(timeout=TIMEOUT_MS)
        text = await caption.inner_text()
        out.server_ms.append(float(SERVER_MS.search(text).group(1).replace(",", "")))
        out.panel_ms.append(float(PANEL_MS.search(text).group(1).replace(",", "")))
        out.draw_at.append(round(time.perf_counter() - T0[0], 1))
        out.draw_wall.append(up)
        # a student's pace: a stroke every STROKE_PERIOD_S at most (a browser drawing as fast as it can would take
        # the job worker's CPU on these 2 cores, and no pupil draws like that)
        await asyncio.sleep(max(0.0, STROKE_PERIOD_S - (time.perf_counter() - began)))
        if not shown or not PREDICTION.search(shown["heading"]):
            out.errors.append("no prediction after a stroke")
        await _idle(page)
        n += 1


async def _session(browser, url, plan, models, mnist, go, jobs_done, tmp) -> Outcome:
    out = Outcome(plan)
    context = await browser.new_context(viewport={"width": 1300, "height": 1100}, accept_downloads=True)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        await page.goto(f"{url}/{plan.page}?model={plan.model}", timeout=TIMEOUT_MS)
        await _sign_in(page, CLASS_CODE, f"{plan.kind}-{plan.model}")
        await page.get_by_role("heading", name=plan.title).first.wait_for(timeout=TIMEOUT_MS)
        await _idle(page)
        await _check_sidebar(page, plan, models, out)
        if plan.kind == "draw":
            try:
                await _draw(page, plan, models, mnist, out, go, jobs_done)
            except Exception:
                await go.abort()
                raise
        else:
            try:
                await _prepare(page, plan)
            except Exception:
                await go.abort()  # the others must not wait for this session
                raise
            await _run_job(page, plan, out, go, tmp)
        if plan.kind != "train":  # (a finished training makes its new run the session's model)
            await _check_sidebar(page, plan, models, out)  # still this session's model at the end
    except Exception as exc:  # a timeout or a failed step: counted, with a screenshot
        kind = "timeout" if "Timeout" in type(exc).__name__ else type(exc).__name__
        out.errors.append(f"{kind}: {str(exc).splitlines()[0][:300]}")
    try:
        out.errors += await _problems(page)
        if out.errors:
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"classroom_{plan.kind}_{plan.model}.png"), full_page=True)
    finally:
        await context.close()
    return out


DRAWING_BROWSER_FLAG = "--class-drawing-browser"  # marks the drawing sessions' browser (chromium ignores it)


def _remote_like_chromium(folder: Path, nice: int = 19) -> Path:
    """A wrapper that starts Debian's chromium at a low priority (see the module docstring)."""
    wrapper = folder / f"chromium-nice-{nice}"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n {nice} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _renice_browsers() -> None:
    """Put every chromium process started by this test (a descendant of this process) in the idle scheduling
    class, except the drawing sessions' browser: it runs when the server and its job worker leave a core free.
    The drawing browser keeps nice 15, just below the job worker's 10: a student draws a stroke every second or two
    whatever the server does, and a starved browser would give too few strokes for a 95th percentile. It yields to
    the server (nice 0), whose time is what is measured, and mostly to the job worker."""
    parents, commands = {}, {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                commands[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
    me = os.getpid()
    for pid, command in commands.items():
        if "chromium" not in command.split(" ")[0]:
            continue
        ancestor, drawing = pid, False
        while ancestor and ancestor != me:
            drawing = drawing or DRAWING_BROWSER_FLAG in commands.get(ancestor, "")
            ancestor = parents.get(ancestor)
        if ancestor == me and not drawing:
            try:
                os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
            except OSError:
                pass


async def _keep_browsers_low(stop: asyncio.Event) -> None:
    while not stop.is_set():
        _renice_browsers()
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            pass


# --------------------------------------------------------------------------- the same jobs, alone
def _solo_specs(plan: Plan, models: dict, tmp: Path):
    """The JobSpec the page built for ``plan`` (its defaults plus the settings the session changed)."""
    from core.clustering.cluster_mlp import SweepConfig
    from core.dream import deep_dream as D
    from core.jobs.kinds import SweepJobConfig, TrainJobConfig
    from core.jobs.system import JobSpec
    from core.oip.precursor import PrecursorConfig
    from core.oip.search import OipConfig
    from core.spec import preset
    from core.training import TrainConfig

    model = None if plan.model == "default" else str(models[plan.model].path)
    if plan.kind == "train":
        job = TrainJobConfig(
            preset("tiny filters"),
            TrainConfig(epochs=1, train_limit=2000, seed=plan.settings["seed"]),
            "tiny filters",
            runs_dir=str(tmp / "solo-runs"),
            name=f"solo-{plan.model}",
        )
        return JobSpec("train", job)
    if plan.kind == "oip":
        return JobSpec("oip", OipConfig(layer="conv3"), model=model)
    if plan.kind == "precursor":
        return JobSpec(
            "precursor", PrecursorConfig(layer="conv3", maps=(5, 7), grid=2, values=(0.2, 0.8), epochs=100), model=model
        )
    if plan.kind == "sweep":
        return JobSpec(
            "sweep",
            SweepJobConfig(
                SweepConfig(ks=(5, 10, 15), silhouette_sample=500, n_train=2000, seed=plan.settings["seed"])
            ),
        )
    grey, rgb, _ = D.prepare_photo(D.default_photo(), D.DEFAULT_MAX_SIDE)
    settings = D.DreamConfig(mode="tiles", terms=D.parse_terms("conv3:56=1"), octaves=2, epochs=10)
    return JobSpec("dream", settings, model=model, inputs={"photo": rgb if rgb is not None else D.to_uint8(grey)})


def _same(plan: Plan, artifact, solo, runs: Path) -> bool:
    from PIL import Image

    from core.runs import load_run

    if plan.kind == "train":
        page_w = load_run(runs / artifact).model.get_weights()
        solo_w = load_run(solo.run_dir).model.get_weights()
        return all(np.array_equal(a, b) for a, b in zip(page_w, solo_w))
    if plan.kind == "oip":
        with np.load(artifact) as npz:
            return np.array_equal(npz["images"], solo.images) and np.array_equal(npz["final_loss"], solo.final_loss)
    if plan.kind == "precursor":
        with np.load(artifact) as npz:
            return np.array_equal(npz["oips"], np.array([o.oips for o in solo.outcomes])) and np.array_equal(
                npz["candidates"], np.array([o.candidates for o in solo.outcomes])
            )
    if plan.kind == "sweep":
        page_points = [
            {k: v for k, v in p.items() if "seconds" not in k} for p in json.loads(Path(artifact).read_text())["points"]
        ]
        solo_points = [{k: v for k, v in p.summary().items() if "seconds" not in k} for p in solo.points]
        return page_points == solo_points
    return np.array_equal(np.asarray(Image.open(artifact)), np.asarray(Image.open(io.BytesIO(solo.png_bytes()))))


def test_a_class_of_ten_starts_eight_jobs_at_once_while_two_draw(classroom_server, mnist, tmp_path):
    run_classroom(classroom_server, mnist, tmp_path, PLANS, "classroom")


def run_classroom(
    classroom_server, mnist, tmp_path, plans: list[Plan], name: str, min_draws_during_jobs: int = MIN_DRAWS_DURING_JOBS
) -> dict:
    """Run the sessions of ``plans`` at once, compare the jobs with solo runs, write test-artifacts/NAME.json and
    assert the figures; returns the report."""
    from playwright.async_api import async_playwright

    from core.jobs.kinds import job_system
    from core.jobs.local import ProcessBackend
    from core.jobs.setup import BackendConfig

    url, models, runs, log_path, events_path = classroom_server
    job_plans = [p for p in plans if p.kind != "draw"]

    async def main():
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(_remote_like_chromium(tmp_path)), args=CHROMIUM_ARGS)
            drawing_browser = await pw.chromium.launch(
                executable_path=str(_remote_like_chromium(tmp_path, 15)), args=CHROMIUM_ARGS + [DRAWING_BROWSER_FLAG]
            )
            lowered = asyncio.Event()
            keeper = asyncio.create_task(_keep_browsers_low(lowered))
            try:
                warm = await browser.new_page()  # the teacher opens the app before the class
                await warm.goto(url, timeout=TIMEOUT_MS)
                await _sign_in(warm, TEACHER_CODE, "teacher")
                await warm.get_by_role("heading", name="MNIST CNN Explorer").first.wait_for(timeout=TIMEOUT_MS)
                await warm.close()
                go, jobs_done = asyncio.Barrier(len(plans)), asyncio.Event()
                started = time.perf_counter()
                T0[0] = 0.0  # set when the barrier opens
                tasks = {
                    p: asyncio.create_task(
                        _session(
                            drawing_browser if p.kind == "draw" else browser,
                            url,
                            p,
                            models,
                            mnist,
                            go,
                            jobs_done,
                            tmp_path,
                        )
                    )
                    for p in plans
                }
                job_outcomes = await asyncio.gather(*(tasks[p] for p in job_plans))
                jobs_done.set()
                draw_outcomes = await asyncio.gather(*(tasks[p] for p in plans if p.kind == "draw"))
                return job_outcomes, draw_outcomes, time.perf_counter() - started
            finally:
                lowered.set()
                await keeper
                await browser.close()
                await drawing_browser.close()

    job_outcomes, draw_outcomes, wall = asyncio.run(main())

    # the same jobs alone, on a worker with the server's thread count, one after another
    settings = BackendConfig.from_env()
    solo_system = job_system(ProcessBackend(1, settings.threads))
    identical = {}
    try:
        for out in job_outcomes:
            if not out.finished:
                continue
            handle = solo_system.submit(_solo_specs(out.plan, models, tmp_path))
            assert handle.wait(300) and handle.state == "finished", handle.message
            identical[f"{out.plan.kind}:{out.plan.model}"] = _same(out.plan, out.artifact, handle.result, runs)
    finally:
        solo_system.shutdown()

    server_ms = [v for o in draw_outcomes for v in o.server_ms]
    jobs_end = max((o.ended_at for o in job_outcomes if o.ended_at is not None), default=0.0)
    during = [ms for o in draw_outcomes for t, ms in zip(o.draw_at, o.server_ms) if t <= jobs_end]
    errors = [f"{o.plan.kind}?model={o.plan.model}: {e}" for o in job_outcomes + draw_outcomes for e in o.errors]
    waited = [o for o in job_outcomes if o.queue_seen]
    report = {
        "sessions": len(plans),
        "errors": len(errors),
        "error_details": errors,
        "jobs_total": len(job_outcomes),
        "jobs_finished": sum(o.finished for o in job_outcomes),
        "jobs_that_showed_their_place_in_line": len(waited),
        "where_jobs_ran": sorted({o.where for o in job_outcomes if o.where}),
        "draws": len(server_ms),
        "draws_during_jobs": len(during),
        "draw_p95_during_jobs_ms": round(float(np.percentile(during, 95)), 1) if during else None,
        "draw_max_during_jobs_ms": max(during) if during else None,
        "jobs_ran_seconds": round(jobs_end, 1),
        "draw_p95_pen_up_to_answer_ms": round(float(np.percentile([v for o in draw_outcomes for v in o.e2e_ms], 95)), 1)
        if server_ms
        else None,
        # issue 28: pen up → the pad's whole answer painted, read from the page (its own clock, its own frame)
        "draw_p95_pen_up_to_answer_page_ms": round(
            float(np.percentile([v for o in draw_outcomes for v in o.page_ms], 95)), 1
        )
        if server_ms
        else None,
        "stroke_cycle_seconds": [
            round(float(np.median(np.diff(o.draw_at))), 2) if len(o.draw_at) > 1 else None for o in draw_outcomes
        ],
        "draw_p50_server_ms": round(float(np.percentile(server_ms, 50)), 1) if server_ms else None,
        "draw_p95_server_ms": round(float(np.percentile(server_ms, 95)), 1) if server_ms else None,
        "draw_max_server_ms": max(server_ms) if server_ms else None,
        "draw_p95_with_panel_ms": round(float(np.percentile([v for o in draw_outcomes for v in o.panel_ms], 95)), 1)
        if server_ms
        else None,
        "identical_to_solo": bool(identical) and all(identical.values()) and len(identical) == len(job_outcomes),
        "identical": identical,
        "jobs": [
            {
                "kind": o.plan.kind,
                "model": o.plan.model,
                "seconds_to_result": round(o.seconds_to_result, 1) if o.seconds_to_result else None,
                "queue_seen": o.queue_seen[:3],
            }
            for o in job_outcomes
        ],
        "slots": settings.slots,
        "threads_per_job": settings.threads,
        "cpu_count": os.cpu_count(),
        "wall_seconds": round(wall, 1),
        "draws_over_time": sorted((t, ms) for o in draw_outcomes for t, ms in zip(o.draw_at, o.server_ms)),
        **_server_side(events_path, T0[0] and time.time() - (time.perf_counter() - T0[0]), jobs_end),
        "streamlit_peak_rss_mb": _peak_rss_mb(runs),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(report, indent=1))
    if events_path.exists():
        (ARTIFACTS / f"{name}-server-events.jsonl").write_bytes(events_path.read_bytes())
    (ARTIFACTS / f"{name}-strokes.json").write_text(
        json.dumps(
            [
                {"pen_up": w, "answer_ms": e, "answer_page_ms": pm, "server_ms": ms}
                for o in draw_outcomes
                for w, e, pm, ms in zip(o.draw_wall, o.e2e_ms, o.page_ms, o.server_ms)
            ]
        )
    )
    print(
        f"\n{name.upper()} "
        + json.dumps(
            {
                k: report[k]
                for k in (
                    "errors",
                    "jobs_total",
                    "jobs_finished",
                    "jobs_that_showed_their_place_in_line",
                    "draws_during_jobs",
                    "draw_p95_during_jobs_ms",
                    "draw_max_during_jobs_ms",
                    "draw_p95_pen_up_to_answer_page_ms",
                    "identical_to_solo",
                    "wall_seconds",
                )
            }
        )
    )
    assert not errors, "\n".join(errors) + f"\n(server log: {log_path})"
    assert report["jobs_finished"] == report["jobs_total"] == len(job_plans)
    assert len(waited) >= report["jobs_total"] - settings.slots, report["jobs"]  # the waiting ones said so
    assert len(server_ms) >= 2 * MIN_DRAWS
    assert len(during) >= min_draws_during_jobs, f"only {len(during)} strokes while the jobs ran"
    assert report["draw_p95_during_jobs_ms"] <= DRAW_P95_MS, report["slow_strokes"]
    assert report["draw_p95_pen_up_to_answer_page_ms"] <= DRAW_E2E_P95_MS, report["draw_p95_pen_up_to_answer_page_ms"]
    assert report["identical_to_solo"], identical
    return report


def _server_side(events_path: Path, jobs_started_wall: float, jobs_seconds: float) -> dict:
    """From the server's own record (``core.serving.events``): its drawing steps while the jobs ran and, for each
    one slower than ``SLOW_MS``, what else the server was doing meanwhile; the time each kind of event took."""
    from core.serving.events import read_events

    if not events_path.exists():
        return {"slow_strokes": [], "server_events": {}}
    events = read_events(events_path)
    start, end = jobs_started_wall, jobs_started_wall + jobs_seconds
    window = [e for e in events if e.end >= start and e.start <= end]
    totals: dict = {}
    for e in window:
        entry = totals.setdefault(e.kind, {"count": 0, "seconds": 0.0, "max_ms": 0.0})
        entry["count"] += 1
        entry["seconds"] = round(entry["seconds"] + e.seconds, 3)
        entry["max_ms"] = max(entry["max_ms"], round(e.seconds * 1000, 1))
    slow = []
    for stroke in (e for e in window if e.kind == "draw" and e.seconds * 1000 > SLOW_MS):
        beside = [e for e in events if e is not stroke and e.start <= stroke.end and e.end >= stroke.start]
        slow.append(
            {
                "at_s": round(stroke.start - start, 1),
                "ms": round(stroke.seconds * 1000, 1),
                "thread": stroke.thread,
                "meanwhile": [
                    {
                        "kind": e.kind,
                        "ms": round(e.seconds * 1000, 1),
                        "thread": e.thread,
                        "overlap_ms": round((min(e.end, stroke.end) - max(e.start, stroke.start)) * 1000, 1),
                        **e.details,
                    }
                    for e in sorted(beside, key=lambda e: -e.seconds)[:12]
                ],
            }
        )
    return {"slow_strokes": slow, "server_events": totals}


def _peak_rss_mb(runs: Path) -> float | None:
    """The peak resident memory (VmHWM) of the Streamlit process serving the runs folder ``runs``, read while it
    still runs."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            env = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"streamlit" in cmd and str(runs).encode() in env:
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    return None
