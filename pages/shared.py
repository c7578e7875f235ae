"""Streamlit glue shared by the pages: cached resources, the active model, progress adapter.

The only module besides the pages that imports Streamlit. Cached functions never call st.*.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import streamlit as st

from core.oip import search as oip
from core.jobs.setup import make_job_system
from core.data import Mnist, MnistUnavailableError, SampleDigits, load_mnist, load_sample_digits
from core.jobs.system import JobHandle, JobSnapshot, JobSpec, JobSystem
from core.blog import published
from core.serving.events import EVENTS_ENV, ServerEvents
from core.runs import (BUNDLED_MODELS, DEFAULT_MODEL_DIR, bundled_models, run_title, ModelBundle, default_runs_dir, list_runs, load_run, model_key, read_meta,
                       resolve_model_path)

ACTIVE_MODEL_KEY = "active_model"
# the digit last shown on the Activations page, for the Experiments page: (raw uint8 bytes, label or None, source)
CURRENT_DIGIT_KEY = "current_digit"


def _keep_keras_state_between_runs() -> None:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every script run.

    Streamlit does it for every run, fragment refreshes included, once Keras is imported
    (``script_runner._clean_problem_modules``). On this server that was a third of the process's time in
    a class (each call runs a full ``gc.collect()`` over TensorFlow's heap, holding the interpreter lock,
    so every other session's strokes waited), and it resets Keras' global state while other sessions'
    scripts may be using it. The pages never build Keras models in the server (jobs do, in workers), so
    there is nothing to clear. The matplotlib clean-up Streamlit also does there is kept.
    """
    from streamlit.runtime.scriptrunner import script_runner

    def close_matplotlib_figures() -> None:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close("all")

    script_runner._clean_problem_modules = close_matplotlib_figures


_keep_keras_state_between_runs()


def freeze_long_lived_objects() -> None:
    """Take the objects alive now (TensorFlow, Keras, Streamlit, the loaded models and data) out of the
    cyclic garbage collector's sight. They live as long as the server; a full collection over them took
    about 0.2 s with the GIL held (measured: 400,000 objects, 170 ms), and Python starts one now and then
    while a class works, so a drawing session's prediction waited for it. New objects are still collected."""
    import gc

    gc.freeze()


freeze_long_lived_objects()

# The server's threads hand the GIL on after 1 ms instead of Python's 5. A session's prediction step releases the
# GIL many times (every TensorFlow and NumPy call) and, while other sessions' pages are being drawn (pure Python),
# waited up to the interval to get it back each time: beside two page-drawing threads its p95 was 440–637 ms with
# 5 ms and 151–159 ms with 1 ms (10 ms alone; bench/bench_switch_interval.py). Jobs run in worker processes; only
# the scheduling of the server's own threads changes, never a result.
SERVER_SWITCH_INTERVAL_S = 0.001
sys.setswitchinterval(SERVER_SWITCH_INTERVAL_S)


@st.cache_resource(show_spinner=False)
def server_events() -> ServerEvents:
    """What this server did and when (``core.serving.events``): page runs, drawing steps, models loaded, engines
    compiled, jobs collected, garbage collections; mirrored to ``$MNIST_EXPLORER_EVENTS`` when set."""
    events = ServerEvents(os.environ.get(EVENTS_ENV) or None)
    events.watch_gc()
    return events


@st.cache_resource(show_spinner="Loading model…")
def load_bundle(path: str, mtime: float) -> ModelBundle:
    """One loaded model per run folder, shared by all sessions: treat it as read-only."""
    with server_events().span("model-load", path=Path(path).name):
        bundle = load_run(path)
    freeze_long_lived_objects()  # the model lives as long as the cache
    return bundle


@st.cache_resource(show_spinner="Loading MNIST…")
def _load_mnist(source: str) -> Mnist:
    # cache_resource, not cache_data: 55 MB of read-only arrays must not be copied on every rerun
    mnist = load_mnist(source or None)
    for arr in (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test):
        arr.setflags(write=False)
    freeze_long_lived_objects()
    return mnist


def get_mnist() -> Mnist | None:
    """The full MNIST set, or None after showing how to provide it."""
    try:
        return _load_mnist(os.environ.get("MNIST_NPZ", ""))
    except (MnistUnavailableError, ValueError) as exc:
        st.error(f"MNIST is not available: {exc}")
        return None


@st.cache_data(show_spinner=False)
def get_sample_digits() -> SampleDigits:
    return load_sample_digits()


def model_choices() -> list[str]:
    return [str(p) for p in bundled_models()] + [str(p) for p in list_runs(default_runs_dir())]


@st.cache_data(show_spinner=False)
def _meta(path: str, mtime: float) -> dict:
    return read_meta(path)


def run_meta(path: str | Path) -> dict:
    return _meta(str(path), _mtime(path))


def _mtime(path: str | Path) -> float:
    try:
        return Path(path, "run.json").stat().st_mtime
    except OSError:
        return 0.0


def model_title(path: str | Path) -> str:
    """A model's name for sentences: 'the bundled article-II model' or the run's folder name."""
    return f"the bundled {run_title(path)} model" if Path(path) in BUNDLED_MODELS else run_title(path)


def describe_model(path: str) -> str:
    if Path(path) in BUNDLED_MODELS:
        return f"bundled: {BUNDLED_MODELS[Path(path)]} (read-only)"
    try:
        meta = run_meta(path)
        # the folder name, not meta['name']: labels must be unique, because the widget maps a label back to its
        # option (a copied run folder would otherwise select the original)
        return f"{Path(path).name} · {meta['test_accuracy'] * 100:.2f} %"
    except (OSError, KeyError, TypeError, ValueError):
        return Path(path).name


def _leave_legacy_multipage_mode() -> None:
    """Run the router even when a server's very first request is a deep link such as /activations.

    Streamlit decides at start-up that an app with a ``pages/`` folder is a legacy (v1) multipage
    app until ``st.navigation`` has run once; a first request for /activations then runs the page
    file alone, with an automatic menu listing every module in pages/. Switching that mode off and
    rerunning lets app.py's router serve the same URL.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        # Once per session: AppTest resets the flag before every run, and a rerun there drops button clicks.
        if not st.session_state.get("_left_legacy_mode"):
            st.session_state["_left_legacy_mode"] = True
            st.rerun()


def render_sidebar() -> None:
    """The active-model picker; every page uses the model chosen here (per browser session)."""
    _leave_legacy_multipage_mode()
    choices = model_choices()
    _apply_model_query_param(choices)
    if "pending_active_model" in st.session_state:  # set by a finished job, applied before the widget exists
        st.session_state[ACTIVE_MODEL_KEY] = st.session_state.pop("pending_active_model")
    chosen = st.session_state.get(ACTIVE_MODEL_KEY)
    page = sys._getframe(1).f_globals.get("__file__", "")  # the page script calling us
    if chosen not in choices:
        st.session_state[ACTIVE_MODEL_KEY] = choices[0]
    elif st.session_state.get("_sidebar_page") != page:
        # First run of another page: write the choice back, or the browser shows the widget's default (the
        # bundled model) while the page uses the chosen one. Not on every run: that swallows button clicks.
        st.session_state[ACTIVE_MODEL_KEY] = chosen
    st.session_state["_sidebar_page"] = page
    with st.sidebar:
        # persist_state="session": every page draws this widget itself, and without it Streamlit drops the
        # choice on a page switch (each page would fall back to the bundled model).
        st.selectbox("Active model", choices, key=ACTIVE_MODEL_KEY, format_func=describe_model,
                     persist_state="session",
                     help="Used by every page. Train a model on the Train page to add one.")
        if "_model_param_error" in st.session_state:
            st.warning(st.session_state.pop("_model_param_error"))
        bundle = active_bundle()
        if bundle is not None:
            meta = bundle.meta
            origin = (f"imported from {meta.get('imported_from', '?')}" if meta.get("imported")
                      else f"trained on {meta.get('device', '?')}")
            st.caption(f"{meta.get('params', 0):,} parameters · test accuracy "
                       f"{meta.get('test_accuracy', 0) * 100:.2f} % · {origin}")
    render_jobs_sidebar()


def _apply_model_query_param(choices: list[str]) -> None:
    """``?model=RUN_NAME`` (or ``default``) picks the active model once per session, for links and tests."""
    wanted = st.query_params.get("model")
    if not wanted or st.session_state.get("_model_param_applied") == wanted:
        return
    st.session_state["_model_param_applied"] = wanted
    by_name = {Path(c).name: c for c in choices[1:]}
    by_name["default"] = choices[0]
    if wanted in by_name:
        st.session_state["pending_active_model"] = by_name[wanted]
    else:
        st.session_state["_model_param_error"] = (
            f"No model named {wanted!r} (from the page address); using the active model instead. "
            f"Known: {', '.join(sorted(by_name))}.")


def set_active_model(path: str | Path) -> None:
    st.session_state[ACTIVE_MODEL_KEY] = str(path)


def bundle_at(path: str | Path) -> ModelBundle:
    """The run at ``path`` from the shared model cache (reloaded when its run.json changes); ValueError/OSError
    when it cannot be loaded."""
    return load_bundle(str(path), _mtime(path))


def active_bundle() -> ModelBundle | None:
    path = st.session_state.get(ACTIVE_MODEL_KEY, str(DEFAULT_MODEL_DIR))
    try:
        return load_bundle(path, _mtime(path))
    except (OSError, ValueError) as exc:
        st.error(f"The model {path!r} could not be loaded: {exc}")
        return None


# --------------------------------------------------------------------------- jobs
# One job system per server (core.jobs.system): every long computation of every page is a job with progress, Stop, a
# queue position and its result shown by itself when it ends. The handles live in each session's state.

JOB_SESSION_GRACE_S = 30.0  # a session gone for this long has its jobs stopped (a reload reconnects sooner)


@st.cache_resource(show_spinner="Starting the job workers…")
def _jobs() -> tuple[JobSystem, str]:
    """The server's job system and the notice to show when Ray was asked for but not reached."""
    system, notice = make_job_system()
    _watch_sessions(system)
    events = server_events()
    system.add_listener(lambda handle: events.record(
        "job-end", time.time() - ((handle.ended or 0) - (handle.started or handle.ended or 0)),
        (handle.ended or 0) - (handle.started or handle.ended or 0), job=handle.kind, state=handle.state))
    return system, notice


def job_system() -> JobSystem:
    return _jobs()[0]


def stop_closed_sessions(system: JobSystem, is_active: Callable[[str], bool], gone_since: dict[str, float],
                         now: float, grace: float = JOB_SESSION_GRACE_S) -> None:
    """One look at the owners of queued and running jobs: a session that has been gone for ``grace``
    seconds has its jobs stopped (``gone_since`` remembers when each was first seen gone)."""
    for owner in system.owners():
        if is_active(owner):
            gone_since.pop(owner, None)
        elif now - gone_since.setdefault(owner, now) >= grace:
            system.stop_owner(owner)
            gone_since.pop(owner, None)


def _watch_sessions(system: JobSystem) -> None:
    """Stop the jobs of browser sessions that closed (their slot goes to the next in line)."""
    import threading
    import time

    try:
        from streamlit.runtime import Runtime

        runtime = Runtime.instance()
    except Exception:  # no server (AppTest, a notebook): sessions do not go away on their own
        return
    gone_since: dict[str, float] = {}

    def watch() -> None:
        while True:
            time.sleep(5.0)
            stop_closed_sessions(system, lambda owner: runtime.is_active_session(owner.split("/")[0]), gone_since,
                                 time.monotonic())

    threading.Thread(target=watch, name="job-session-watch", daemon=True).start()


def session_owner() -> str:
    """The owner of this browser session's jobs: ``<session id>/<a token kept in its state>`` (the session
    id tells the watcher whether the browser is still there; the token tells apart sessions that share
    an id, as every AppTest does)."""
    import uuid

    from streamlit.runtime.scriptrunner import get_script_run_ctx

    token = st.session_state.setdefault("_job_owner_token", uuid.uuid4().hex[:12])
    ctx = get_script_run_ctx()
    return f"{ctx.session_id if ctx is not None else 'no-session'}/{token}"


def job_handle(slot: str) -> JobHandle | None:
    return st.session_state.get(slot)


def job_active(slot: str) -> bool:
    """True while the job in ``slot`` is queued or running (its start button stays disabled)."""
    handle = job_handle(slot)
    return handle is not None and not handle.done


def submit_job(slot: str, spec: JobSpec) -> JobHandle | None:
    """Queue ``spec`` for this session and keep its handle in ``st.session_state[slot]``.

    A refusal (this session already has a job of the kind, bad settings) is kept for the panel to show;
    returns None then.
    """
    st.session_state.pop(slot + "_refused", None)
    try:
        handle = job_system().submit(spec.with_owner(session_owner()))
    except ValueError as exc:  # JobRefused included: a sentence for the user
        st.session_state[slot + "_refused"] = str(exc)
        return None
    st.session_state[slot] = handle
    st.session_state.pop(slot + "_collected", None)
    return handle


def start_button(slot: str, label: str, make_spec: Callable[[], JobSpec | None], *, key: str, busy_label: str,
                 disabled: bool = False, help: str | None = None, type: str = "primary") -> None:
    """The button that starts the job of ``slot``; disabled (and saying so) while that job is active.

    The job is submitted in the script run of the click, not in a callback: that run has every widget's
    value as the user sees it (a callback's arguments would come from the run before, which misses a
    value typed just before the click). Then the page runs again, so everything on it shows the job.
    """
    busy = job_active(slot)
    if st.button(busy_label if busy else label, key=key, type=type, disabled=disabled or busy, help=help):
        spec = make_spec()
        if spec is not None and submit_job(slot, spec) is not None:
            st.rerun()


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def duration(seconds: float) -> str:
    """'40 s', '3.5 min', '1.2 h'."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def job_panel(slot: str, *, on_end: Callable[[JobHandle], None] | None = None,
              describe: Callable[[JobSnapshot], str] | None = None,
              live: Callable[[JobSnapshot], None] | None = None, stop_help: str | None = None) -> None:
    """The panel of the job in ``st.session_state[slot]``: the queue position and expected wait while it
    waits, a progress bar (``describe(snapshot)`` as its text), Stop and the kind's live figure
    (``live(snapshot)``) while it runs, its message when it failed. It refreshes itself every second
    while the job is active; when the job ends it calls ``on_end(handle)`` once (to keep the result
    where the page reads it) and reruns the whole page, so the results appear by themselves."""
    refused = st.session_state.get(slot + "_refused")
    if refused:
        st.warning(refused)
    handle = job_handle(slot)
    if handle is None:
        return

    # Every refresh is a script run on a server the whole class shares: once a second while running, every
    # two seconds while waiting in line.
    @st.fragment(run_every=None if handle.done else 2.0 if handle.state == "queued" else 1.0)
    def panel() -> None:
        with server_events().span("job-panel", slot=slot):
            _job_panel_body(slot, on_end, describe, live, stop_help)

    panel()


def _job_panel_body(slot: str, on_end, describe, live, stop_help) -> None:
    current = job_handle(slot)
    if current is None:
        return
    if current.done:
        if st.session_state.get(slot + "_collected") != current.id:
            st.session_state[slot + "_collected"] = current.id
            if on_end is not None and current.result is not None:
                with server_events().span("job-collected", job=current.kind):
                    on_end(current)
            # Once per job: the whole page runs again, so every part of it (buttons above this panel
            # included) sees the job as ended and the results appear without a click.
            st.rerun()
        _ended(current.snapshot())
        return
    snap = current.snapshot()
    if snap.state == "queued":
        st.info(f"**Waiting in line**: {_ordinal(snap.queue_position or 1)} in line, about "
                f"{duration(snap.expected_wait or 0)} until it starts ({job_system().slots} job"
                f"{'s' if job_system().slots > 1 else ''} at a time on {snap.where}). Waiting "
                f"{duration(snap.waited)} so far.", icon=":material/hourglass_top:")
    else:
        text = (describe(snap) if describe else "") or _default_text(snap)
        st.progress(snap.fraction, text=f"{text} · {duration(snap.elapsed)}")
    st.button("Cancel" if snap.state == "queued" else "Stop", key=slot.removesuffix("_job") + "_stop",
              on_click=current.stop,
              help=stop_help if snap.state != "queued" else "Leaves the queue; nothing is computed.")
    if live is not None and snap.state == "running":
        live(snap)


def submit_group(slot: str, specs: list[JobSpec]) -> list[JobHandle] | None:
    """Queue several jobs of one kind together (``core.jobs.system.JobSystem.submit_group``), their handles kept in
    ``st.session_state[slot]`` as a list; a refusal is kept for ``group_panel`` to show."""
    st.session_state.pop(slot + "_refused", None)
    try:
        handles = job_system().submit_group([spec.with_owner(session_owner()) for spec in specs])
    except ValueError as exc:
        st.session_state[slot + "_refused"] = str(exc)
        return None
    st.session_state[slot] = handles
    st.session_state.pop(slot + "_collected", None)
    return handles


def group_active(slot: str) -> bool:
    return any(not h.done for h in st.session_state.get(slot) or [])


def group_panel(slot: str, *, on_end: Callable[[list[JobHandle]], None] | None = None,
                describe: Callable[[JobSnapshot], str] | None = None) -> None:
    """One line per job of the group in ``st.session_state[slot]``: waiting (with its place in line), a progress
    bar while running, how it ended; one Stop for the whole group. When the last one ends, ``on_end(handles)``
    runs once and the page runs again, so the results appear by themselves."""
    refused = st.session_state.get(slot + "_refused")
    if refused:
        st.warning(refused)
    handles = st.session_state.get(slot) or []
    if not handles:
        return

    @st.fragment(run_every=None if all(h.done for h in handles) else 1.0)
    def panel() -> None:
        current = st.session_state.get(slot) or []
        if all(h.done for h in current):
            key = tuple(h.id for h in current)
            if st.session_state.get(slot + "_collected") != key:
                st.session_state[slot + "_collected"] = key
                if on_end is not None:
                    with server_events().span("job-collected", job=current[0].kind, jobs=len(current)):
                        on_end(current)
                st.rerun()
            for h in current:
                _ended(h.snapshot())
            return
        for h in current:
            snap = h.snapshot()
            title = snap.title or snap.kind
            if snap.state == "queued":
                st.caption(f"{title}: waiting, {_ordinal(snap.queue_position or 1)} in line")
            elif snap.state == "running":
                text = (describe(snap) if describe else "") or _default_text(snap)
                st.progress(snap.fraction, text=f"{title}: {text} · {duration(snap.elapsed)}")
            else:
                st.caption(f"{title}: {snap.state}" + (f" ({snap.message})" if snap.message else ""))
        st.button("Stop all", key=slot.removesuffix("_job") + "_stop_all",
                  on_click=lambda: [h.stop() for h in st.session_state.get(slot) or []],
                  help="Stops the running ones after their current batch (what they trained is kept) and drops the "
                       "waiting ones.")

    panel()


def _default_text(snap: JobSnapshot) -> str:
    phase = snap.info.get("phase")
    if phase:
        return str(phase)[:1].upper() + str(phase)[1:]
    if snap.total:
        return f"{snap.label or snap.title}: {snap.done:,} of {snap.total:,}"
    return f"Starting the {snap.title}"


def _ended(snap: JobSnapshot) -> None:
    if snap.state == "failed":
        st.error(f"The {snap.title} failed: {snap.message}", icon=":material/error:")
    elif snap.state == "stopped" and snap.message:
        st.warning(snap.message, icon=":material/stop_circle:")


def render_jobs_sidebar() -> None:
    """Below the model picker: this session's queued and running jobs, on every page."""
    system, notice = _jobs()
    notice = getattr(system.backend, "notice", "") or notice  # Ray that went away while serving, or never came
    if notice and st.session_state.get("_jobs_notice_seen") != notice:
        st.session_state["_jobs_notice_seen"] = notice
        st.sidebar.warning(notice)
    mine = system.active(session_owner())

    @st.fragment(run_every=3.0 if mine else None)
    def jobs() -> None:
        active = system.active(session_owner())
        if not active:
            return
        lines = []
        for handle in active:
            snap = handle.snapshot()
            lines.append(f"- **{snap.title}**: " + (f"{_ordinal(snap.queue_position or 1)} in line" if snap.state ==
                                                    "queued" else f"{snap.fraction * 100:.0f} %"))
        st.markdown("**Your jobs**\n" + "\n".join(lines))

    with st.sidebar:
        jobs()


# --------------------------------------------------------------------------- OIPs of this session
# The Filters/OIP page computes them, the Precursor page adds the maps it rescues, both galleries read them.
@dataclass
class RescuedOip:
    """An OIP found for a map by the precursor search: ``image`` ``(28, 28)`` model-input values."""

    map_index: int
    image: np.ndarray
    loss: float
    note: str = ""


@dataclass
class OipStore:
    """OIP results of one user session, keyed by model key + layer.

    ``results[(model, layer)][config.key()]`` holds every oip.OipResult computed, ``latest[(model, layer)]``
    the most recent one, ``rescued[(model, layer)][map]`` the precursor's rescues, ``current_config``
    the settings shown on the Filters/OIP page. Both pages read it.
    """

    results: dict = field(default_factory=dict)
    latest: dict = field(default_factory=dict)
    rescued: dict = field(default_factory=dict)
    current_config: dict = field(default_factory=dict)  # (model, layer) → the OIP page's current settings

    def put(self, model_key: str, result: oip.OipResult) -> None:
        keep_maxima(model_key, result)  # the test-digit scan goes to the server's one copy
        slot = (model_key, result.config.layer)
        self.results.setdefault(slot, {})[result.config.key()] = result
        self.latest[slot] = result

    def get(self, model_key: str, config: oip.OipConfig) -> oip.OipResult | None:
        result = self.results.get((model_key, config.layer), {}).get(config.key())
        if result is not None:
            self.latest[(model_key, config.layer)] = result
        return result

    def latest_result(self, model_key: str, layer: str) -> oip.OipResult | None:
        return self.latest.get((model_key, layer))

    def add_rescued(self, model_key: str, layer: str, rescued: RescuedOip) -> None:
        self.rescued.setdefault((model_key, layer), {})[int(rescued.map_index)] = rescued

    def rescued_for(self, model_key: str, layer: str) -> dict[int, RescuedOip]:
        return dict(self.rescued.get((model_key, layer), {}))


STORE_KEY = "oip_store"


def oip_store() -> OipStore:
    """This session's ``OipStore`` (created on first use)."""
    store = st.session_state.get(STORE_KEY)
    if not isinstance(store, OipStore):
        store = OipStore()
        st.session_state[STORE_KEY] = store
    return store


@st.cache_resource(show_spinner=False)
def _maxima_store() -> dict:
    """(model key, layer, source of the test digits) → ``core.oip.analysis.DigitMaxima``, shared by all sessions: the
    scans OIP jobs made where they ran (the server never scans the test set itself)."""
    return {}


def keep_maxima(model: str, result: oip.OipResult) -> None:
    """Move an OIP result's test-digit scan into the shared store (one copy per model and layer for the server)."""
    if result.maxima is not None:
        _maxima_store()[(model, result.config.layer, result.maxima.source)] = result.maxima
        result.maxima = None


def maxima_for(model: str, layer: str, source: str):
    """The layer's largest activations over the test digits from ``source``, once an OIP job scanned them; or None."""
    return _maxima_store().get((model, layer, source))


def store_oip_result(handle: JobHandle) -> None:
    """``on_end`` of an OIP job (Filters/OIP and Precursor pages): keep its result in the session's store."""
    oip_store().put(model_key(resolve_model_path(handle.spec.model)), handle.result)


def describe_oip_job(snap: JobSnapshot) -> str:
    epoch = snap.info.get("epoch")
    if epoch is None:
        return "Compiling the gradient ascent" if snap.total else ""
    return f"Gradient ascent: epoch {epoch:,} · {snap.done:,} of {snap.total:,} image-epochs"


# --------------------------------------------------------------------------- charts
def chart(figure, **kwargs):
    """``st.plotly_chart`` with plotly's toolbar standing at the right edge, so it never covers a
    chart's title (small charts with titles at the top were hard to read under it)."""
    figure.update_layout(modebar=dict(orientation="v"))
    return st.plotly_chart(figure, **kwargs)


# --------------------------------------------------------------------------- the blog beside your results
def blog_beside(rows: list[tuple[str, str]], title: str = "The blog beside yours") -> None:
    """A box with one line per published figure (``core.blog`` key) and the user's own result beside it:
    ``rows`` = [(key, your result as a sentence), ...]."""
    with st.container(border=True):
        st.markdown(f"**{title}**")
        sources = []
        for key, yours in rows:
            fig = published(key)
            left, right = st.columns(2)
            left.markdown(f"Blog: {fig.value}")
            right.markdown(f"Yours: {yours}")
            if fig.source not in sources:
                sources.append(fig.source)
        st.caption("Source: " + "; ".join(sources))
