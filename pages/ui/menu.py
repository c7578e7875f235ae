"""The pages, the app's own menu and the sidebar every page shows (menu, active model, this session's jobs).

Streamlit treats an app with a ``pages/`` folder beside its main script as a legacy multipage app until
``st.navigation`` has run once: a fresh server's first paint would list every module of the folder, and a first
request for a deep link (/activations) runs that page's file alone, with widget identities other than the router's
(a choice made right after the page appeared was lost). With ``client.showSidebarNavigation = false``
(.streamlit/config.toml) that automatic list is never shown; the menu is drawn here with ``st.page_link``, and a
page run alone runs itself through the router (``page_frame``). Public API only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core.runs import BUNDLED_MODELS, ModelBundle
from pages.ui.jobs import render_jobs_sidebar
from pages.ui.resources import bundle_at, model_choices, run_meta, server_events
from pages.ui.state import ACTIVE_MODEL_KEY, session


@dataclass(frozen=True)
class PageEntry:
    path: str  # relative to app.py
    title: str
    icon: str
    url_path: str


PAGES = (
    PageEntry("pages/home.py", "Start", ":material/rocket_launch:", "start"),
    PageEntry("pages/train.py", "Train", ":material/model_training:", "train"),
    PageEntry("pages/activations.py", "Activations", ":material/biotech:", "activations"),
    PageEntry("pages/experiments.py", "Experiments", ":material/science:", "experiments"),
    PageEntry("pages/oip.py", "Filters / OIP", ":material/filter_center_focus:", "oip"),
    PageEntry("pages/precursor.py", "Precursor", ":material/grid_view:", "precursor"),
    PageEntry("pages/clustering.py", "Clustering-MLP", ":material/scatter_plot:", "clustering"),
    PageEntry("pages/deep_dream.py", "Deep Dream", ":material/cyclone:", "deep-dream"),
    PageEntry("pages/compare.py", "Compare runs", ":material/compare_arrows:", "compare"),
)
_run = threading.local()  # the page app.py is running in this script thread, if it is


def navigation():
    """Register the app's pages for this session and return the one its address asks for."""
    return st.navigation(
        [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=i == 0) for i, p in enumerate(PAGES)],
        position="hidden",
    )


def route() -> None:
    """app.py's router: the page the address asks for, run inside the app's frame."""
    page = navigation()
    _run.page = page.url_path or PAGES[0].url_path
    menu = session().menu
    menu.entered = menu.page != _run.page
    menu.page = _run.page
    try:
        with server_events().span("page", page=_run.page):
            page.run()
    finally:
        _run.page = None


def just_entered() -> bool:
    """Whether this run of the page came from another page: its custom components were mounted afresh and hold
    nothing of what they showed before."""
    return session().menu.entered


def page_frame() -> None:
    """Every page calls this first: the menu, the active model and this session's jobs in the sidebar. When
    Streamlit ran the page's file alone (its legacy mode: a fresh server's first request was a deep link, and AppTest
    before every run), the page is run through the router instead, so that its widgets keep one identity from run
    to run."""
    page = getattr(_run, "page", None)
    if page is None:
        route()
        st.stop()
    with st.sidebar:
        for entry in PAGES:
            st.page_link(entry.path, label=entry.title, icon=entry.icon)
        st.divider()
    _model_picker(page)
    render_jobs_sidebar()


# --------------------------------------------------------------------------- the active model
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


def active_bundle() -> ModelBundle | None:
    path = session().active_model
    try:
        return bundle_at(path)
    except (OSError, ValueError) as exc:
        st.error(f"The model {path!r} could not be loaded: {exc}")
        return None


def _model_picker(page: str) -> None:
    """The active-model picker; every page uses the model chosen here (per browser session)."""
    choices = model_choices()
    _apply_model_query_param(choices)
    menu = session().menu
    if menu.pending_model is not None:  # set by a finished job or a link, applied before the widget exists
        st.session_state[ACTIVE_MODEL_KEY], menu.pending_model = menu.pending_model, None
    chosen = st.session_state.get(ACTIVE_MODEL_KEY)
    if chosen not in choices:
        st.session_state[ACTIVE_MODEL_KEY] = choices[0]
    elif menu.sidebar_page != page:
        # First run of another page: write the choice back, or the browser shows the widget's default (the
        # bundled model) while the page uses the chosen one. Not on every run: that swallows button clicks.
        st.session_state[ACTIVE_MODEL_KEY] = chosen
    menu.sidebar_page = page
    with st.sidebar:
        # persist_state="session": every page draws this widget itself, and without it Streamlit drops the
        # choice on a page switch (each page would fall back to the bundled model).
        st.selectbox(
            "Active model",
            choices,
            key=ACTIVE_MODEL_KEY,
            format_func=describe_model,
            persist_state="session",
            help="Used by every page. Train a model on the Train page to add one.",
        )
        if menu.model_param_error and st.query_params.get("model"):
            st.warning(menu.model_param_error)  # while the address still names that model
        bundle = active_bundle()
        if bundle is not None:
            meta = bundle.meta
            origin = (
                f"imported from {meta.get('imported_from', '?')}"
                if meta.get("imported")
                else f"trained on {meta.get('device', '?')}"
            )
            st.caption(
                f"{meta.get('params', 0):,} parameters · test accuracy "
                f"{meta.get('test_accuracy', 0) * 100:.2f} % · {origin}"
            )


def _apply_model_query_param(choices: list[str]) -> None:
    """``?model=RUN_NAME`` (or ``default``) picks the active model once per session, for links and tests."""
    wanted = st.query_params.get("model")
    menu = session().menu
    if not wanted or menu.model_param_applied == wanted:
        return
    menu.model_param_applied = wanted
    by_name = {Path(c).name: c for c in choices[1:]}
    by_name["default"] = choices[0]
    menu.model_param_error = None
    if wanted in by_name:
        menu.pending_model = by_name[wanted]
    else:
        menu.model_param_error = (
            f"No model named {wanted!r} (from the page address); using the active model instead. "
            f"Known: {', '.join(sorted(by_name))}."
        )
