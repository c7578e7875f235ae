"""The door of a served dashboard: the access code, the nickname, and who may do what (``core.serving.access`` and
``core.serving.classroom`` hold the rules; this module asks the session, the browser's cookie and the secrets).

``gate()`` runs first in every script run of the router (``pages.ui.menu.route``). Without codes it lets everyone
in, as the dashboard always did, and says so once in the server log. With a code set, it shows only a password
field until a right code is given (nothing else of the app: no page, no menu, no job), then asks for a nickname
once; a signed token in a cookie lets a reload of the same browser in again until the server restarts. Each wrong
code of a session (and of its address, where the server sees one) is answered a little later than the one before.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from pathlib import Path

import streamlit as st

from core.experiments.personal_set import PersonalSet, PersonalSetError, load_set, save_set
from core.runs import default_runs_dir
from core.serving import access as rules
from core.serving.classroom import PERSONAL_SET_FILE, check_nickname, may_change, person_dir
from pages.ui.resources import run_meta
from pages.ui.state import session

NICKNAME_ACTIVE_S = 120.0  # a nickname seen this recently in another browser cannot be claimed
ADDRESS_WINDOW_S = 900.0  # wrong codes from one address count for this long


# --------------------------------------------------------------------------- the codes
def _secret_codes() -> dict:
    """class_code and teacher_code from the secrets; ``None`` values where none are set. A secrets file that
    exists but cannot be read stops the app (the codes in it are unknown: the door stays shut)."""
    try:
        return {key: st.secrets.get(key) for key in (rules.CLASS_CODE_SECRET, rules.TEACHER_CODE_SECRET)}
    except FileNotFoundError:  # StreamlitSecretNotFoundError: no secrets file, or one that cannot be parsed
        files = st.get_option("secrets.files") or []
        if any(Path(f).is_file() for f in files):
            st.error("The server's secrets file could not be read, so the access codes are unknown. Tell the teacher.")
            _log("The secrets file could not be read: the dashboard refuses every session until it is fixed.")
            st.stop()
        return {}


def codes() -> rules.Codes:
    """The access codes in force (environment first, then .streamlit/secrets.toml)."""
    found = rules.codes_from(os.environ, _secret_codes())
    _announce(found)
    return found


def _log(line: str) -> None:
    print(f"MNIST CNN Explorer: {line}", file=sys.stderr, flush=True)


@st.cache_resource(show_spinner=False)
def _announced() -> tuple[set[str], threading.Lock]:
    """The lines already written to the server log, and the lock that writes one: one server, every session."""
    return set(), threading.Lock()


def _announce(found: rules.Codes) -> None:
    """Once per server and state: whether the dashboard is open (the codes themselves are never written)."""
    line = found.describe()
    written, lock = _announced()
    with lock:
        if line not in written:
            written.add(line)
            _log(line)


# --------------------------------------------------------------------------- who this session is
def role() -> str | None:
    """'open' (no codes), 'class', 'teacher', or None before a right code."""
    return session().access.role


def nickname() -> str:
    """This session's nickname ('' without codes)."""
    return session().access.nickname if session().access.role in (rules.CLASS, rules.TEACHER) else ""


def is_teacher() -> bool:
    return session().access.role == rules.TEACHER


def allowed() -> bool:
    """Whether this session may use the app (open, or a right code and a nickname)."""
    state = session().access
    return state.role == rules.OPEN or (state.role in (rules.CLASS, rules.TEACHER) and bool(state.nickname))


def _grant(found: rules.Codes) -> rules.Grant | None:
    """The session's grant while its token is still good; else the browser's cookie's, adopted."""
    state = session().access
    grant = rules.verify(state.token, found)
    if grant is not None:
        return grant
    state.token, state.role, state.nickname = None, None, ""
    cookie = st.context.cookies.get(rules.COOKIE_NAME)
    if cookie and cookie != state.refused_cookie:
        grant = rules.verify(cookie, found)
        if grant is not None:
            state.token = cookie
            return grant
    return None


def resolve() -> rules.Grant | None:
    """Who this session is, from its token or its browser's cookie (nothing is drawn): sets its role and
    nickname; returns its grant (None without codes, or before a right code)."""
    found = codes()
    state = session().access
    if found.open:
        state.role, state.nickname = rules.OPEN, ""
        return None
    grant = _grant(found)
    state.role, state.nickname = (grant.role, grant.nickname) if grant else (None, "")
    return grant


def gate() -> bool:
    """Let this run go on (True), or show the code or nickname form and nothing else (False)."""
    grant = resolve()
    if session().access.role == rules.OPEN:
        return True
    if grant is None:
        _code_form(codes())
        return False
    if not grant.nickname:
        _nickname_form(codes(), grant)
        return False
    people()[grant.nickname] = (session().owner, time.monotonic())
    return True


def sidebar() -> None:
    """Who is signed in, Sign out, and the cookie for a reload (in the sidebar of every page)."""
    state = session().access
    if state.role == rules.OPEN:
        return
    _store_cookie()
    what = "teacher code" if state.role == rules.TEACHER else "class code"
    st.sidebar.caption(f"You are **{state.nickname}** ({what}).")
    st.sidebar.button("Sign out", key="access_sign_out", on_click=_sign_out, type="tertiary")


def _store_cookie() -> None:
    state = session().access
    if state.clear_cookie:
        st.html(rules.cookie_script(rules.COOKIE_NAME, "x", max_age=0), unsafe_allow_javascript=True)
        state.clear_cookie = False
    elif state.token and state.token != st.context.cookies.get(rules.COOKIE_NAME):
        st.html(rules.cookie_script(rules.COOKIE_NAME, state.token), unsafe_allow_javascript=True)


def _sign_out() -> None:
    state = session().access
    state.refused_cookie = st.context.cookies.get(rules.COOKIE_NAME)
    state.token, state.role, state.nickname, state.clear_cookie = None, None, "", True
    state.work_loaded, state.set_saved = None, None
    session().experiments.personal_set = None


# --------------------------------------------------------------------------- the forms
@st.cache_resource(show_spinner=False)
def people() -> dict:
    """nickname → (the session that used it last, when): a nickname busy in another browser cannot be claimed."""
    return {}


@st.cache_resource(show_spinner=False)
def _wrong_by_address() -> dict:
    """address → the times of its wrong codes (where the server sees an address: not on localhost)."""
    return collections.defaultdict(collections.deque)


def _count_wrong() -> int:
    """Count a wrong code for this session and its address; returns the larger count."""
    state = session().access
    state.failures += 1
    count = state.failures
    address = st.context.ip_address
    if address:
        times, now = _wrong_by_address()[address], time.monotonic()
        while times and now - times[0] > ADDRESS_WINDOW_S:
            times.popleft()
        times.append(now)
        count = max(count, len(times))
    return count


def _heading() -> None:
    st.title("MNIST CNN Explorer")


def _code_form(found: rules.Codes) -> None:
    _store_cookie()  # a signed-out session asks the browser to forget its cookie
    _heading()
    st.write("This dashboard is served for a class. Enter the code your teacher gave you.")
    with st.form("access_form", clear_on_submit=True, border=False):
        typed = st.text_input("Access code", type="password", key="access_code", max_chars=rules.MAX_CODE_CHARS)
        sent = st.form_submit_button("Enter", key="access_enter", type="primary")
    if not sent:
        return
    granted = rules.role_for(typed or "", found)
    state = session().access
    if granted is None:
        wait = rules.delay_after(_count_wrong())
        time.sleep(wait)  # this session's script thread only: the others are not held up
        st.error(
            f"That code is not right (answered after {wait:.1f} s; each wrong code makes the next answer slower).",
            icon=":material/lock:",
        )
        return
    state.failures = 0
    state.token = rules.sign(rules.Grant(granted, "", time.time()), found)
    state.role = granted
    st.rerun()


def _nickname_form(found: rules.Codes, grant: rules.Grant) -> None:
    _store_cookie()
    _heading()
    st.write(
        "Pick a nickname. Your runs, imported models and handwriting set are kept on this server under it: "
        "type the same nickname again after the server restarts to find them."
    )
    with st.form("nickname_form", border=False):
        typed = st.text_input(
            "Nickname",
            key="access_nickname",
            max_chars=40,
            value="teacher" if grant.role == rules.TEACHER else "",
            help="1 to 24 letters, digits, - or _",
        )
        sent = st.form_submit_button("Continue", key="access_nickname_go", type="primary")
    if not sent:
        return
    try:
        name = check_nickname(typed or "")
    except ValueError as exc:
        st.error(str(exc))
        return
    other = people().get(name)
    if other is not None and other[0] != session().owner and time.monotonic() - other[1] < NICKNAME_ACTIVE_S:
        st.error(f"The nickname {name!r} is in use in another browser right now. Pick another one.")
        return
    state = session().access
    state.token = rules.sign(rules.Grant(grant.role, name, time.time()), found)
    state.nickname = name
    people()[name] = (session().owner, time.monotonic())
    st.rerun()


# --------------------------------------------------------------------------- what a person keeps on the server
def restore_work() -> None:
    """Once per session and nickname: the handwriting set kept on the server becomes the session's."""
    state, name = session().access, nickname()
    if not name or state.work_loaded == name:
        return
    state.work_loaded = name
    try:
        kept = load_set(person_dir(default_runs_dir(), name) / PERSONAL_SET_FILE)
    except (PersonalSetError, OSError, ValueError) as exc:
        st.warning(f"Your handwriting set kept on the server could not be read: {exc}")
        kept = None
    if kept is not None and session().experiments.personal_set is None:
        session().experiments.personal_set = kept
    state.set_saved = session().experiments.personal_set


def keep_work() -> None:
    """After a page ran: a handwriting set the page replaced is written to the server (whole, or not at all)."""
    state, name = session().access, nickname()
    current = session().experiments.personal_set
    if not name or state.work_loaded != name or current is state.set_saved:
        return
    state.set_saved = current
    try:
        save_set(current or PersonalSet(), person_dir(default_runs_dir(), name) / PERSONAL_SET_FILE)
    except (OSError, ValueError) as exc:
        st.warning(f"Your handwriting set could not be kept on the server: {exc}")


def run_owner(path: str | os.PathLike) -> str | None:
    """The nickname a run records as its owner, or None."""
    try:
        owner = run_meta(path).get("owner")
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, str) and owner else None


def may_change_run(path: str | os.PathLike) -> bool:
    """Whether this session may rename or delete the run at ``path``."""
    return may_change(run_owner(path), nickname(), role() or "")
