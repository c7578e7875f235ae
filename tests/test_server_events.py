"""The server's record of what it did (core/server_events.py): spans, overlaps, percentiles, the JSON-lines file,
and garbage collections recorded from inside the collector without deadlocking the thread it interrupted."""

from __future__ import annotations

import gc
import threading
import time

import pytest

pytestmark = pytest.mark.fast


def test_spans_overlaps_and_percentiles():
    from core.serving.events import ServerEvents

    events = ServerEvents()
    for ms in (10, 20, 30, 40, 500):
        events.record("draw", time.time(), ms / 1000, strokes=1)
    with events.span("page", page="oip") as extra:
        extra["figures"] = 3
    page = events.events("page")[0]
    assert page.details == {"page": "oip", "figures": 3} and page.thread == threading.current_thread().name
    assert events.percentile("draw", 50) == pytest.approx(0.03) and events.percentile("draw", 100) == 0.5
    assert events.percentile("compile", 95) is None
    now = time.time()
    events.record("gc", now + 100, 0.2)
    assert [e.kind for e in events.during(now + 100.1, now + 100.15)] == ["gc"]


def test_the_file_holds_every_event(tmp_path):
    from core.serving.events import ServerEvents, read_events

    path = tmp_path / "events.jsonl"
    events = ServerEvents(path)
    for i in range(50):
        events.record("draw", time.time(), 0.01, i=i)
    events.close()  # waits for the writer: every event is in the file when it returns
    assert [e.details["i"] for e in read_events(path)] == list(range(50))


def test_garbage_collections_recorded_inside_record_do_not_deadlock(tmp_path):
    """The collector's callback runs inside whatever allocated: often inside ``record`` itself. A lock there hung
    every thread of the classroom server after the first such collection."""
    from core.serving.events import ServerEvents

    events = ServerEvents(tmp_path / "events.jsonl")
    events.watch_gc()
    old = gc.get_threshold()
    gc.set_threshold(1, 1, 1)  # a collection at almost every allocation
    done = threading.Event()

    def busy():
        for i in range(2000):
            events.record("draw", time.time(), 0.001, payload=[i] * 3)
        done.set()

    try:
        threading.Thread(target=busy, daemon=True).start()
        assert done.wait(60), "recording deadlocked"
    finally:
        gc.set_threshold(*old)
        events.close()
    assert events.events("gc"), "no collection was recorded"
