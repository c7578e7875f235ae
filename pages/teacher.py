"""Teacher page (the teacher code only): every session's jobs with Stop, the class's runs (delete, pin the class's
default model), the disk against its cap and the server's load."""

from __future__ import annotations

from core.device import quiet_tensorflow_logs

# First of all: a deep link to a fresh server runs this file before app.py (Streamlit's pages/ folder mode).
quiet_tensorflow_logs()

import datetime as dt
import time
from pathlib import Path

import streamlit as st

from core.jobs.kinds import KINDS
from core.runs import default_runs_dir, folder_bytes, list_runs
from core.serving.classroom import Limits, delete_as, megabytes, pin_model, pinned_model
from pages.ui import access, menu
from pages.ui.jobs import duration
from pages.ui.resources import job_system, reads_digits, run_meta, server_events
from pages.ui.state import session

DRAW_WINDOW_S = 300.0  # the drawing step's p95 over this many seconds

menu.page_frame()
if not access.is_teacher():
    st.error("This page is for the teacher: it opens with the teacher code.")
    st.stop()

st.title("Teacher")
st.caption(f"You are {access.nickname()}. Everything here is the whole class's, on this server.")


def _waited(handle, now: float) -> float:
    """Seconds the job waited in line (so far, while it waits)."""
    return ((handle.started or now) - handle.submitted) if handle.submitted else 0.0


@st.fragment(run_every=2.0)
def jobs_and_load() -> None:
    system = job_system()
    active = system.active()
    running = [h for h in active if h.state == "running"]
    queued = [h for h in active if h.state == "queued"]
    p95 = server_events().percentile("draw", 95, DRAW_WINDOW_S)
    strokes = len(server_events().events("draw", time.time() - DRAW_WINDOW_S))
    st.subheader("Load")
    a, b, c = st.columns(3)
    a.metric("Job slots busy", f"{len(running)} of {system.slots}")
    b.metric("Waiting in line", len(queued))
    c.metric(
        "Drawing step p95 (5 min)",
        f"{p95 * 1000:,.0f} ms" if p95 is not None else "no strokes",
        help=f"The prediction step of the drawing canvas over the last 5 minutes ({strokes} strokes).",
    )
    st.subheader("Jobs")
    if not active:
        st.caption("No job is queued or running.")
        return
    now = time.monotonic()
    head = st.columns([2, 2, 1.2, 1.2, 1.2, 1])
    for col, title in zip(head, ("owner", "kind", "state", "progress", "waited", "")):
        col.markdown(f"**{title}**")
    for handle in active:
        snap = handle.snapshot()
        row = st.columns([2, 2, 1.2, 1.2, 1.2, 1])
        row[0].write(handle.spec.owner or "?")
        kind = KINDS[snap.kind].title if snap.kind in KINDS else snap.kind
        row[1].write(kind if snap.title in (snap.kind, kind) else f"{kind}: {snap.title}")
        row[2].write(snap.state + (f" ({snap.queue_position})" if snap.queue_position else ""))
        row[3].write(f"{snap.fraction * 100:.0f} %" if snap.state == "running" else "–")
        row[4].write(duration(_waited(handle, now)))
        row[5].button("Stop", key=f"teacher_stop_{handle.id}", on_click=handle.stop)


jobs_and_load()

# --------------------------------------------------------------------------- the class's runs and the disk
runs_dir = default_runs_dir()
limits = Limits.from_env()
used = folder_bytes(runs_dir)
st.subheader("Disk")
if limits.cap_bytes:
    st.progress(
        min(1.0, used / limits.cap_bytes),
        text=f"The runs folder holds {megabytes(used)} of its {megabytes(limits.cap_bytes)} cap"
        + (" — full: new runs are refused." if used >= limits.cap_bytes else "."),
    )
else:
    st.caption(f"The runs folder holds {megabytes(used)} (no cap is set).")
st.caption(
    f"At most {limits.runs_per_person or 'any number of'} runs per person, "
    f"{limits.jobs_per_minute or 'any number of'} job submissions per minute per person."
)

kept = session().access
if kept.notice:
    getattr(st, kept.notice[0])(kept.notice[1])
    kept.notice = None

st.subheader("The class's runs")
runs = [str(p) for p in list_runs(runs_dir)]
pinned = pinned_model(runs_dir)
if not runs:
    st.caption("No run yet.")
else:
    rows = []
    for path in runs:
        try:
            meta = run_meta(path)
        except (OSError, ValueError):
            meta = {}
        accuracy = meta.get("test_accuracy")
        rows.append(
            {
                "run": Path(path).name,
                "owner": meta.get("owner") or "–",
                "size MB": round(folder_bytes(path) / 1e6, 1),
                "date": meta.get("created")
                or dt.datetime.fromtimestamp(Path(path).stat().st_mtime).isoformat(timespec="seconds"),
                "accuracy %": round(accuracy * 100, 2) if isinstance(accuracy, (int, float)) else None,
                "pinned": "yes" if Path(path).name == pinned else "",
            }
        )
    st.dataframe(rows, hide_index=True, key="teacher_runs_table")

    def _delete(path: str) -> None:
        try:
            delete_as(path, runs_dir, access.nickname(), "teacher")
        except (ValueError, OSError) as exc:
            kept.notice = ("error", str(exc))
            return
        if pinned_model(runs_dir) == Path(path).name:
            pin_model(runs_dir, None)
        st.session_state["teacher_delete_sure"] = False
        kept.notice = ("success", f"Deleted {Path(path).name!r}.")

    def _pin(path: str | None) -> None:
        pin_model(runs_dir, Path(path).name if path else None)
        kept.notice = (
            "success",
            f"New sessions start with {Path(path).name!r}." if path else "New sessions start with the bundled model.",
        )

    chosen = st.selectbox("Run", runs, format_func=lambda p: Path(p).name, key="teacher_run")
    a, b, c = st.columns(3)
    with a:
        sure = st.checkbox("Yes, delete this run", key="teacher_delete_sure")
        st.button("Delete", key="teacher_delete", on_click=_delete, args=(chosen,), disabled=not sure)
    with b:
        st.button(
            "Pin as the class's default model",
            key="teacher_pin",
            on_click=_pin,
            args=(chosen,),
            disabled=not reads_digits(chosen),
            help=None
            if reads_digits(chosen)
            else "This run reads new symbols, not the digits 0..9: it cannot be every page's model.",
        )
    with c:
        st.button("Unpin", key="teacher_unpin", on_click=_pin, args=(None,), disabled=pinned is None)
    st.caption(
        f"Pinned: **{pinned}**: every new session starts with it."
        if pinned
        else "No run is pinned: new sessions start with the bundled model."
    )
