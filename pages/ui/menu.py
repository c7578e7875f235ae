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

from core.device import describe_device
from core.runs import BUNDLED_MODELS, ModelBundle, default_runs_dir
from core.serving.classroom import group_of, pinned_model
from pages.ui import access
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
    PageEntry("pages/transfer.py", "New symbols", ":material/add_reaction:", "transfer"),
    PageEntry("pages/oip.py", "Filters / OIP", ":material/filter_center_focus:", "oip"),
    PageEntry("pages/precursor.py", "Precursor", ":material/grid_view:", "precursor"),
    PageEntry("pages/clustering.py", "Clustering-MLP", ":material/scatter_plot:", "clustering"),
    PageEntry("pages/deep_dream.py", "Deep Dream", ":material/cyclone:", "deep-dream"),
    PageEntry("pages/compare.py", "Compare runs", ":material/compare_arrows:", "compare"),
)
TEACHER_PAGE = PageEntry("pages/teacher.py", "Teacher", ":material/school:", "teacher")  # the teacher code only
_run = threading.local()  # the page app.py is running in this script thread, if it is


def visible_pages() -> tuple[PageEntry, ...]:
    """The pages of this session: every page, and the Teacher page for a session that gave the teacher code."""
    return PAGES + (TEACHER_PAGE,) if access.is_teacher() else PAGES


def navigation():
    """Register the app's pages for this session and return the one its address asks for."""
    return st.navigation(
        [
            st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=i == 0)
            for i, p in enumerate(visible_pages())
        ],
        position="hidden",
    )


def route() -> None:
    """app.py's router: the access code and nickname when the server asks for them (and nothing else until they
    are given), then the page the address asks for, run inside the app's frame."""
    access.resolve()  # the role first: the Teacher page is registered for the teacher code only
    # The pages are registered (hidden, nothing drawn) before the door, so that the address keeps naming its page
    # while the code and nickname forms show; none of them runs before the door opens.
    page = navigation()
    if not access.gate():
        return
    _run.page = page.url_path or PAGES[0].url_path
    menu = session().menu
    menu.entered = menu.page != _run.page
    menu.page = _run.page
    access.restore_work()
    try:
        with server_events().span("page", page=_run.page):
            page.run()
    finally:
        _run.page = None
        access.keep_work()  # also when the page reran or stopped: a handwriting set it changed is kept


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
        for entry in visible_pages():
            st.page_link(entry.path, label=entry.title, icon=entry.icon)
        st.divider()
    _model_picker(page)
    render_jobs_sidebar()
    access.sidebar()


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


def model_group(path: str) -> str:
    """'bundled', 'mine' or 'class': the part of the Active model list a model goes in."""
    if Path(path) in BUNDLED_MODELS:
        return "bundled"
    try:
        owner = run_meta(path).get("owner")
    except (OSError, ValueError):
        owner = None
    return group_of(owner if isinstance(owner, str) else None, access.nickname(), access.role() or "open")


def picker_label(path: str) -> str:
    """The Active model list's label: as ``describe_model`` without codes; with codes 'mine: …' or
    'class: … · by NICKNAME' before it (bundled models as they are)."""
    label = describe_model(path)
    if access.role() in (None, "open"):
        return label
    group = model_group(path)
    if group == "bundled":
        return label
    if group == "mine":
        return f"mine: {label}"
    try:
        owner = run_meta(path).get("owner")
    except (OSError, ValueError):
        owner = None
    return f"class: {label}" + (f" · by {owner}" if isinstance(owner, str) and owner else "")


def grouped_choices() -> list[str]:
    """The models in the order of the list: bundled, then mine, then the class's (each newest first)."""
    choices = model_choices()
    if access.role() in (None, "open"):
        return choices  # bundled, then every run: all of them this session's
    order = {"bundled": 0, "mine": 1, "class": 2}
    return sorted(choices, key=lambda p: order[model_group(p)])  # a stable sort: newest first within a group


def default_choice(choices: list[str]) -> str:
    """The model a new session starts with: the run the teacher pinned, else the bundled model."""
    pinned = pinned_model(default_runs_dir())
    by_name = {Path(c).name: c for c in choices if Path(c) not in BUNDLED_MODELS}
    return by_name.get(pinned or "", choices[0])


def active_bundle() -> ModelBundle | None:
    path = session().active_model
    try:
        return bundle_at(path)
    except (OSError, ValueError) as exc:
        st.error(f"The model {path!r} could not be loaded: {exc}")
        return None


def _model_picker(page: str) -> None:
    """The active-model picker; every page uses the model chosen here (per browser session)."""
    choices = grouped_choices()
    _apply_model_query_param(choices)
    menu = session().menu
    if menu.pending_model is not None:  # set by a finished job or a link, applied before the widget exists
        st.session_state[ACTIVE_MODEL_KEY], menu.pending_model = menu.pending_model, None
    chosen = st.session_state.get(ACTIVE_MODEL_KEY)
    if chosen not in choices:
        st.session_state[ACTIVE_MODEL_KEY] = default_choice(choices)
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
            format_func=picker_label,
            persist_state="session",
            help="Used by every page. Type to search. Train a model on the Train page to add one.",
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
        st.caption(f"This server computes on: {describe_device()}")


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
