"""Streamlit glue shared by the pages: cached resources, the active model, progress adapter.

The only module besides the pages that imports Streamlit. Cached functions never call st.*.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

import streamlit as st

from core.data import Mnist, MnistUnavailableError, SampleDigits, load_mnist, load_sample_digits
from core.progress import ProgressCallback
from core.runs import DEFAULT_MODEL_DIR, ModelBundle, default_runs_dir, list_runs, load_run, read_meta

ACTIVE_MODEL_KEY = "active_model"


@st.cache_resource(show_spinner="Loading model…")
def load_bundle(path: str, mtime: float) -> ModelBundle:
    """One loaded model per run folder, shared by all sessions: treat it as read-only."""
    return load_run(path)


@st.cache_resource(show_spinner="Loading MNIST…")
def _load_mnist(source: str) -> Mnist:
    # cache_resource, not cache_data: 55 MB of read-only arrays must not be copied on every rerun
    mnist = load_mnist(source or None)
    for arr in (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test):
        arr.setflags(write=False)
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
    return [str(DEFAULT_MODEL_DIR)] + [str(p) for p in list_runs(default_runs_dir())]


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


def describe_model(path: str) -> str:
    if Path(path) == DEFAULT_MODEL_DIR:
        return "bundled: article II (read-only)"
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
            st.caption(f"{meta.get('params', 0):,} parameters · test accuracy "
                       f"{meta.get('test_accuracy', 0) * 100:.2f} % · trained on {meta.get('device', '?')}")


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


def active_bundle() -> ModelBundle | None:
    path = st.session_state.get(ACTIVE_MODEL_KEY, str(DEFAULT_MODEL_DIR))
    try:
        return load_bundle(path, _mtime(path))
    except (OSError, ValueError) as exc:
        st.error(f"The model {path!r} could not be loaded: {exc}")
        return None


class StreamlitProgress(ProgressCallback):
    """Shows a computation's progress in an st.progress bar (for work done inside the script run)."""

    def __init__(self, text: str = "Working…") -> None:
        self.text = text
        self.bar = None
        self.total = 1

    def on_begin(self, total: int, label: str = "") -> None:
        self.total = max(1, total)
        self.bar = st.progress(0.0, text=f"{self.text} (0/{total})")

    def on_step(self, done: int, info: Mapping | None = None) -> None:
        if self.bar is not None:
            self.bar.progress(min(1.0, done / self.total), text=f"{self.text} ({done}/{self.total})")

    def on_end(self) -> None:
        if self.bar is not None:
            self.bar.empty()
