"""Long work on the pages: the start button and the panel of a job (its place in line, progress, Stop, how it
ended), groups of jobs, this session's jobs in the sidebar, and the watch that stops the jobs of sessions gone.

One job system per server (``pages.ui.resources.job_system``): every long computation of every page is a job with
progress, Stop, a queue position and its result shown by itself when it ends. The handles live in each session's
state; its owner token tells its jobs apart from every other session's. On a server with access codes the owner is
the session's nickname: a reload (or a second tab) finds its jobs, and the runs they keep record it. Every
submission passes the door (``pages.ui.access.allowed``) and the class's limits first (``core.serving.classroom``:
runs per person, the runs folder's cap; the job system itself limits submissions per minute).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import streamlit as st

from core.jobs.system import JobHandle, JobRefused, JobSnapshot, JobSpec, JobSystem
from core.runs import default_runs_dir, list_runs
from core.serving.classroom import RUN_KINDS, Limits, refuse_new_runs
from pages.ui import access
from pages.ui.resources import job_system, job_system_notice, run_meta, server_events
from pages.ui.state import session

# A session not seen for this long has its jobs stopped. A page with an active job refreshes its panel every few
# seconds; a browser tab in the background may do so only once a minute, so the grace is two minutes.
JOB_SESSION_GRACE_S = 120.0
WATCH_EVERY_S = 5.0
AWAY_REASON = (
    "Stopped: this page was away for more than {minutes} minutes (a closed tab, a reload, a computer asleep), so its "
    "place went to the next in line. Start it again to finish it."
)


class SessionWatch:
    """When each job owner (a browser session) was last seen running a page; a thread stops the jobs of owners gone
    for ``grace`` seconds, so their slots go to the next in line."""

    def __init__(self, system: JobSystem, grace: float = JOB_SESSION_GRACE_S) -> None:
        self.system, self.grace = system, grace
        self._seen: dict[str, float] = {}
        threading.Thread(target=self._watch, name="job-session-watch", daemon=True).start()

    def seen(self, owner: str) -> None:
        self._seen[owner] = time.monotonic()

    def is_active(self, owner: str, now: float | None = None) -> bool:
        last = self._seen.get(owner)
        return last is not None and (now or time.monotonic()) - last < self.grace

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_EVERY_S)
            stop_closed_sessions(self.system, self.is_active, {}, time.monotonic(), grace=0.0, away=self.grace)


def stop_closed_sessions(
    system: JobSystem,
    is_active: Callable[[str], bool],
    gone_since: dict[str, float],
    now: float,
    grace: float = JOB_SESSION_GRACE_S,
    away: float | None = None,
) -> None:
    """One look at the owners of queued and running jobs: a session that has been gone for ``grace``
    seconds has its jobs stopped (``gone_since`` remembers when each was first seen gone), their message saying
    it was away for ``away`` seconds (default ``grace``: ``is_active`` may have counted the time already)."""
    reason = AWAY_REASON.format(minutes=round((grace if away is None else away) / 60))
    for owner in system.owners():
        if is_active(owner):
            gone_since.pop(owner, None)
        elif now - gone_since.setdefault(owner, now) >= grace:
            system.stop_owner(owner, reason)
            gone_since.pop(owner, None)


@st.cache_resource(show_spinner=False)
def _session_watch() -> SessionWatch:
    return SessionWatch(job_system())


def session_owner() -> str:
    """The owner of this browser session's jobs: its nickname on a server with codes, else a token kept in its
    state (also marks the owner as still there)."""
    owner = access.nickname() or session().owner
    _session_watch().seen(owner)
    return owner


def _runs_kept(name: str) -> int:
    """Runs on disk that record ``name`` as their owner."""
    kept = 0
    for path in list_runs(default_runs_dir()):
        try:
            kept += run_meta(path).get("owner") == name
        except (OSError, ValueError):
            continue
    return kept


def check_submission(specs: list[JobSpec]) -> None:
    """JobRefused with a sentence when this session may not submit ``specs``: no right code yet, or new runs past
    the person's limit or the runs folder's cap."""
    if not access.allowed():
        raise JobRefused("Enter the access code first: no job starts before it.")
    count = sum(spec.kind in RUN_KINDS for spec in specs)
    if not count:
        return
    name = access.nickname()
    if name:  # the runs on disk and those on the way
        kept = _runs_kept(name) + sum(h.spec.kind in RUN_KINDS for h in job_system().active(session_owner()))
    else:  # without codes: what this session asked for
        kept = session().access.runs_started
    why = refuse_new_runs(default_runs_dir(), count, kept, Limits.from_env(), "You")
    if why:
        raise JobRefused(why)


def _own(spec: JobSpec, slot: str) -> JobSpec:
    return replace(spec.with_owner(session_owner(), access.nickname()), origin=slot)


def _counted(specs: list[JobSpec]) -> None:
    if not access.nickname():  # without codes, the session's own count stands for the person's runs
        session().access.runs_started += sum(spec.kind in RUN_KINDS for spec in specs)


def _reattach(slot: str, group: bool = False) -> None:
    """A page opened anew by the same person (a reload, a second tab: a new browser session with the same nickname)
    takes back the jobs its ``slot`` asked for that are still queued or running (the panel shows their progress and
    Stop again and collects their results), else those that ended while no page was there to take their result.
    Without codes a reload is a new owner, and nothing is found."""
    kept = session().job(slot)
    if kept.handle is not None:
        return
    system, owner = job_system(), session_owner()
    # by id: a job that ends between the two looks is in both
    found = list({h.id: h for h in system.active(owner) + system.uncollected(owner) if h.spec.origin == slot}.values())
    if not found:
        return
    if group:  # the newest submission's jobs, running or ended, in the order they were asked for
        newest = max(found, key=lambda h: h.submitted).group
        kept.handle = sorted((h for h in found if h.group == newest), key=lambda h: h.submitted)
    else:  # the job still queued or running, else the one that ended last
        running = [h for h in found if not h.done]
        kept.handle = running[-1] if running else max(found, key=lambda h: h.ended or 0.0)
    kept.collected = None


def job_handle(slot: str) -> JobHandle | None:
    _reattach(slot)
    return session().job(slot).handle


def job_active(slot: str) -> bool:
    """True while the job in ``slot`` is queued or running (its start button stays disabled)."""
    handle = job_handle(slot)
    return handle is not None and not handle.done


def submit_job(slot: str, spec: JobSpec) -> JobHandle | None:
    """Queue ``spec`` for this session and keep its handle in the session's job ``slot``.

    A refusal (this session already has a job of the kind, bad settings) is kept for the panel to show;
    returns None then.
    """
    kept = session().job(slot)
    kept.refused = None
    try:
        check_submission([spec])
        handle = job_system().submit(_own(spec, slot))
    except ValueError as exc:  # JobRefused included: a sentence for the user
        kept.refused = str(exc)
        return None
    _counted([spec])
    kept.handle, kept.collected = handle, None
    return handle


def start_button(
    slot: str,
    label: str,
    make_spec: Callable[[], JobSpec | None],
    *,
    key: str,
    busy_label: str,
    disabled: bool = False,
    help: str | None = None,
    type: str = "primary",
) -> None:
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


def job_panel(
    slot: str,
    *,
    on_end: Callable[[JobHandle], None] | None = None,
    describe: Callable[[JobSnapshot], str] | None = None,
    live: Callable[[JobSnapshot], None] | None = None,
    stop_help: str | None = None,
) -> None:
    """The panel of the job in the session's job ``slot``: the queue position and expected wait while it
    waits, a progress bar (``describe(snapshot)`` as its text), Stop and the kind's live figure
    (``live(snapshot)``) while it runs, its message when it failed. It refreshes itself every second
    while the job is active; when the job ends it calls ``on_end(handle)`` once (to keep the result
    where the page reads it) and reruns the whole page, so the results appear by themselves."""
    refused = session().job(slot).refused
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
        kept = session().job(slot)
        if kept.collected != current.id:
            kept.collected = current.id
            job_system().collected([current])  # no later page is handed it
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
        st.info(
            f"**Waiting in line**: {_ordinal(snap.queue_position or 1)} in line, about "
            f"{duration(snap.expected_wait or 0)} until it starts ({job_system().slots} job"
            f"{'s' if job_system().slots > 1 else ''} at a time on {snap.where}). Waiting "
            f"{duration(snap.waited)} so far.",
            icon=":material/hourglass_top:",
        )
    else:
        text = (describe(snap) if describe else "") or _default_text(snap)
        st.progress(snap.fraction, text=f"{text} · {duration(snap.elapsed)}")
    st.button(
        "Cancel" if snap.state == "queued" else "Stop",
        key=slot.removesuffix("_job") + "_stop",
        on_click=current.stop,
        help=stop_help if snap.state != "queued" else "Leaves the queue; nothing is computed.",
    )
    if live is not None and snap.state == "running":
        live(snap)


def submit_group(slot: str, specs: list[JobSpec]) -> list[JobHandle] | None:
    """Queue several jobs of one kind together (``core.jobs.system.JobSystem.submit_group``), their handles kept in
    the session's job ``slot`` as a list; a refusal is kept for ``group_panel`` to show."""
    kept = session().job(slot)
    kept.refused = None
    try:
        check_submission(specs)
        handles = job_system().submit_group([_own(spec, slot) for spec in specs])
    except ValueError as exc:
        kept.refused = str(exc)
        return None
    _counted(specs)
    kept.handle, kept.collected = handles, None
    return handles


def group_active(slot: str) -> bool:
    _reattach(slot, group=True)
    return any(not h.done for h in session().job(slot).handle or [])


def group_panel(
    slot: str,
    *,
    on_end: Callable[[list[JobHandle]], None] | None = None,
    describe: Callable[[JobSnapshot], str] | None = None,
) -> None:
    """One line per job of the group in the session's job ``slot``: waiting (with its place in line), a progress
    bar while running, how it ended; one Stop for the whole group. When the last one ends, ``on_end(handles)``
    runs once and the page runs again, so the results appear by themselves."""
    refused = session().job(slot).refused
    if refused:
        st.warning(refused)
    _reattach(slot, group=True)
    handles = session().job(slot).handle or []
    if not handles:
        return

    @st.fragment(run_every=None if all(h.done for h in handles) else 1.0)
    def panel() -> None:
        current = session().job(slot).handle or []
        if all(h.done for h in current):
            key = tuple(h.id for h in current)
            kept = session().job(slot)
            if kept.collected != key:
                kept.collected = key
                job_system().collected(current)
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
        st.button(
            "Stop all",
            key=slot.removesuffix("_job") + "_stop_all",
            on_click=lambda: [h.stop() for h in session().job(slot).handle or []],
            help="Stops the running ones after their current batch (what they trained is kept) and drops the "
            "waiting ones.",
        )

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


def describe_oip_job(snap: JobSnapshot) -> str:
    epoch = snap.info.get("epoch")
    if epoch is None:
        return "Compiling the gradient ascent" if snap.total else ""
    return f"Gradient ascent: epoch {epoch:,} · {snap.done:,} of {snap.total:,} image-epochs"


def render_jobs_sidebar() -> None:
    """Below the model picker: this session's queued and running jobs, on every page, and once per session why jobs
    run where they run (Ray unreachable or gone)."""
    notice = job_system_notice()
    menu = session().menu
    if notice and menu.jobs_notice_seen != notice:
        menu.jobs_notice_seen = notice
        st.sidebar.warning(notice)
    system = job_system()
    mine = system.active(session_owner())

    @st.fragment(run_every=3.0 if mine else None)
    def jobs() -> None:
        active = system.active(session_owner())
        if not active:
            return
        lines = []
        for handle in active:
            snap = handle.snapshot()
            lines.append(
                f"- **{snap.title}**: "
                + (
                    f"{_ordinal(snap.queue_position or 1)} in line"
                    if snap.state == "queued"
                    else f"{snap.fraction * 100:.0f} %"
                )
            )
        st.markdown("**Your jobs**\n" + "\n".join(lines))

    with st.sidebar:
        jobs()
