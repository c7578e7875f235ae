"""Driving the Activations page's drawing pad (pages/ui/draw) from Playwright (sync API): the browser tests and
bench/bench_draw_latency.py use these. The pad lives in a sandboxed frame inside the component's frame; its
``#answer`` element carries ``data-seq`` (pen-ups, Undo and Clear answered so far) and ``data-final`` (0 while
a stroke is being drawn), and ``window.drawStats`` what it timed (``strokes[i].updates``: when each answer
during stroke i was drawn; ``penUps``: pen-up and answer-painted times, the page's own clock)."""

from __future__ import annotations

import time

PAD_FRAME = "iframe[title*='draw_pad']"
SEVEN = [(70, 60), (210, 60), (130, 240)]  # pad pixels (the pad has 280×280 whatever its size on screen)
ONE = [(140, 40), (140, 240)]
ZERO = [(140, 45), (90, 80), (80, 160), (110, 230), (170, 230), (200, 160), (190, 80), (140, 45)]


def open_pad(page, timeout: float = 90_000):
    """Choose Draw on the Activations page (already open) and return the pad's frame once its model is loaded."""
    page.get_by_role("radio", name="Draw").click()
    return find_pad(page, timeout)


def find_pad(page, timeout: float = 90_000):
    """The pad's frame on the page (Draw already chosen), once its model is loaded."""
    page.locator(PAD_FRAME).first.wait_for(timeout=timeout)
    deadline = time.monotonic() + timeout / 1000
    while time.monotonic() < deadline:
        for frame in page.frames:
            if frame.url == "about:srcdoc" and frame.parent_frame and "draw_pad" in frame.parent_frame.url:
                try:
                    frame.wait_for_selector("#pad[data-model]", timeout=2_000)
                    return frame
                except Exception:  # the frame is still being written, or the model still loading
                    pass
        time.sleep(0.2)
    raise TimeoutError("the drawing pad did not load its model")


def pad_box(pad) -> dict:
    """The pad's box in the page's coordinates, and ``scale``: screen pixels per pad pixel."""
    box = pad.locator("#pad").bounding_box()
    return {**box, "scale": box["width"] / 280}


def _path(box: dict, points, steps: int):
    """Screen points along the polyline ``points`` (pad pixels), ``steps`` per segment."""
    s = box["scale"]
    xy = [(box["x"] + x * s, box["y"] + y * s) for x, y in points]
    out = [xy[0]]
    for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
        out += [(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps) for k in range(1, steps + 1)]
    return out


def mouse_stroke(page, box: dict, points, steps: int = 10, pause_s: float = 0.0, during=None) -> float:
    """Draw with the mouse; ``during()`` is called halfway, the button still down. Returns the time
    (``time.perf_counter``) just before the button is released."""
    path = _path(box, points, steps)
    page.mouse.move(*path[0])
    page.mouse.down()
    for i, (x, y) in enumerate(path[1:], 1):
        page.mouse.move(x, y)
        if pause_s:
            time.sleep(pause_s)
        if during is not None and i == len(path) // 2:
            during()
    up = time.perf_counter()
    page.mouse.up()
    return up


def touch_stroke(page, box: dict, points, steps: int = 10, pause_s: float = 0.0) -> float:
    """Draw with a finger (touch events through the DevTools protocol: the browser makes pointer events of type
    'touch' from them, as from a touch screen). The context needs ``has_touch=True``."""
    cdp = page.context.new_cdp_session(page)
    path = _path(box, points, steps)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": path[0][0], "y": path[0][1]}]})
    for x, y in path[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        if pause_s:
            time.sleep(pause_s)
    up = time.perf_counter()
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()
    return up


def wait_answer(pad, seq: int, timeout: float = 30_000) -> float:
    """Wait until the pad shows its answer number ``seq`` (polled in the pad's own frame every 2 ms); returns
    ``time.perf_counter()`` then."""
    pad.wait_for_function(
        f"() => document.getElementById('answer').dataset.seq === '{seq}'", polling=2, timeout=timeout
    )
    return time.perf_counter()


def wait_final(pad, timeout: float = 30_000) -> None:
    """Wait until the pad shows its final answer (every layer's maps, after the pen lifted): the pad's frame grows
    then, and what is below it on the page moves down."""
    pad.wait_for_function("() => document.getElementById('answer').dataset.final === '1'", timeout=timeout)


def wait_settled(page, pad, timeout: float = 30_000) -> None:
    """Wait until the pad shows its final answer and the page has given the component's frame the pad's full
    height: only then is what lies below the pad where it will stay (a click taken earlier lands where a widget
    was before the frame grew)."""
    wait_final(pad, timeout)
    height = pad.evaluate("() => Math.ceil(document.getElementById('root').getBoundingClientRect().height) + 6")
    page.wait_for_function(
        "([selector, h]) => Math.abs(document.querySelector(selector).getBoundingClientRect().height - h) < 1",
        arg=[PAD_FRAME, height],
        timeout=timeout,
    )


def answer(pad) -> dict:
    """What the pad shows: ``prediction`` (the heading), ``seq``, ``final``, ``layers`` (the maps drawn), and its
    last answer's ``probabilities`` and pointer type."""
    return pad.evaluate(
        """() => ({
            prediction: document.getElementById('prediction').textContent,
            seq: Number(document.getElementById('answer').dataset.seq),
            final: document.getElementById('answer').dataset.final === '1',
            layers: [...document.querySelectorAll('#maps .layer')].map((b) => b.dataset.layer),
            probabilities: window.drawStats.answer ? window.drawStats.answer.probabilities : null,
            pointer: window.drawStats.strokes.length ? window.drawStats.strokes.at(-1).type : null,
            updates: window.drawStats.strokes.map((s) => s.updates.length),
        })"""
    )
