"""Issue 25: a seeded random walk over every page's widgets in one AppTest session raises nothing.

One AppTest session per seed (so what a page keeps in the session state meets every other page), 150 actions: a
switch to a random page of the menu (``pages.ui.menu.PAGES``), or a random value for a random enabled widget of
the page shown, the way a browser sends it (an option's label for select boxes, radios, multiselects, select
sliders and segmented controls; a number on the slider's grid; a number for a number field: inside its bounds, or,
for the unbounded whole-number fields, sometimes far outside them, which the page must then name in words).
Text fields are set only where their meaning is known (map lists like ``0-3``, grey values, dense units, dream
terms), with a few malformed entries among them. Buttons that start jobs are never clicked; a few that only move
state around are. Two small runs trained on synthetic digits in the runs folder (3 and 2 conv layers) give the
sidebar's active-model picker models whose layers differ from the bundled ones.

After every run: no exception element, and no ``st.error`` that shows a Python exception (a traceback, or
``SomethingError: ...``) instead of a sentence. A failure prints the seed and the whole action log (step, page,
widget kind, key, label, value) to replay it.
"""

from __future__ import annotations

import random
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.proto.NumberInput_pb2 import NumberInput as NumberInputProto
from streamlit.proto.Slider_pb2 import Slider as SliderProto
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from pages.ui.menu import PAGES
from tests.conftest import write_tiny_mnist

SEEDS = (25, 2507)
ACTIONS = 150
SWITCH_CHANCE = 0.15  # of an action being a page switch
BUTTON_CHANCE = 0.05  # of an action being a click on one of SAFE_BUTTONS, where the page shows one
KINDS = (
    "selectbox",
    "radio",
    "number_input",
    "slider",
    "select_slider",
    "toggle",
    "checkbox",
    "multiselect",
    "text_input",
    "button_group",  # st.segmented_control / st.pills
)
# Buttons that only move state around (no job, no randomness of their own).
SAFE_BUTTONS = {"act_rf_strongest", "act_clear", "train_use_run"}
# Text fields whose meaning is clear: key (or key pattern) → entries a learner might type, valid ones first.
TEXTS: dict[str, tuple[str, ...]] = {
    "oip_maps": ("all", "0", "0-3", "1,2", "0-2,5", "", "x", "0-999"),
    "precursor_maps": ("failed", "all", "0-3", "2", "1,3", "", "x", "999"),
    "precursor_values": ("0.2,0.5,0.8", "0.5", "0,1", "0.1, 0.9", "", "a", "2"),
    "dream_gallery_maps": ("0-9", "0-3", "3,17", "0", "", "x", "0-999"),
    r"dream_\w+_maps": ("", "conv1:0=1", "conv2:1=0.5", "conv3:0=2, conv2:3", "conv9:0", "x"),
    "train_ed_dense": ("70", "16, 8", "8", "", "x", "0"),
}
# An error that shows an exception instead of a sentence. The Train page's "its run.json is damaged or incomplete
# (KeyError: ...)" names a damaged file on purpose; the walk's own runs are complete, so it must not show either.
RAW_EXCEPTION = re.compile(r"Traceback|\b[A-Z]\w*(Error|Exception): ")
# Out of every whole-number field's range (1..200, 0..2**31-1, 100..60,000, the test-set index...).
WILD_NUMBERS = (-1, -12345, 10**12)


@dataclass
class Step:
    step: int
    page: str
    action: str  # "switch", "set" or "click"
    kind: str = ""
    key: str | None = None
    label: str = ""
    value: object = None
    seconds: float = 0.0  # how long the run after the action took

    def __str__(self) -> str:
        if self.action == "switch":
            return f"{self.step:4d} switch_page({self.page!r})  [{self.seconds:.2f} s]"
        return (
            f"{self.step:4d} on {self.page}: {self.action} {self.kind} key={self.key!r} label={self.label!r} "
            f"value={self.value!r}  [{self.seconds:.2f} s]"
        )


# --------------------------------------------------------------------------- what the browser sends
def _send(widget, fill: Callable[[WidgetState], None]) -> None:
    """Make ``widget`` report, on the next run, the state ``fill`` writes: what the browser sends (option labels),
    not the test's idea of the value (AppTest maps a value back through the widget's ``format_func``, which fails
    for labels such as the Deep Dream page's ``MODE_TITLES.get``)."""

    class Sent(type(widget)):
        @property
        def _widget_state(self) -> WidgetState:
            ws = WidgetState()
            ws.id = self.id
            fill(ws)
            return ws

    widget.__class__ = Sent


def _send_string(widget, label: str) -> None:
    def fill(ws):
        ws.string_value = label

    _send(widget, fill)


def _send_strings(widget, labels: list[str]) -> None:
    def fill(ws):
        ws.string_array_value.data[:] = labels

    _send(widget, fill)


def _text_pool(key: str | None) -> tuple[str, ...] | None:
    if key is None:
        return None
    for pattern, texts in TEXTS.items():
        if re.fullmatch(pattern, key):
            return texts
    return None


def _number_value(rng: random.Random, w) -> tuple[int | float, bool]:
    """A number for a number field, and whether it is meant to be out of the field's range."""
    proto = w.proto
    whole = proto.data_type == NumberInputProto.INT
    low = proto.min if proto.has_min else None
    high = proto.max if proto.has_max else None
    step = proto.step or 1
    current = w.value if isinstance(w.value, int | float) else (low if low is not None else 0)
    if low is None and high is None:
        if rng.random() < 0.4:
            return rng.choice(WILD_NUMBERS), True
        pool = [current + step, max(current - step, 0), 0, 1, rng.randint(0, 2 * int(abs(current)) + 10)]
        value = rng.choice(pool)
        return (int(value) if whole else float(value)), False
    low = low if low is not None else min(current, 0) - 10
    high = high if high is not None else max(current, 0) + 10
    if whole:
        low, high = int(low), int(high)
        pool = [low, high, rng.randint(low, high), min(max(int(current) + int(step), low), high)]
        return rng.choice(pool), False
    pool = [low, high, round(rng.uniform(low, high), 6), min(max(current + step, low), high)]
    return float(rng.choice(pool)), False


def _slider_value(rng: random.Random, w):
    proto = w.proto
    if proto.data_type not in (SliderProto.INT, SliderProto.FLOAT):
        return None  # dates and times: no such slider in the app
    step = proto.step or 1
    n = int(round((proto.max - proto.min) / step))

    def point() -> int | float:
        k = rng.choice([0, n, rng.randint(0, n)])
        v = proto.min + k * step
        return int(round(v)) if proto.data_type == SliderProto.INT else round(v, 10)

    if isinstance(w.value, list | tuple) and len(w.value) == 2:
        return sorted([point(), point()])
    return point()


def _choose(rng: random.Random, w) -> tuple[object, Callable[[], None], bool] | None:
    """(value shown in the log, how to set it, whether it is meant to be out of range), or None to skip."""
    kind = w.type
    if kind in ("selectbox", "radio"):
        if not w.options:
            return None
        label = rng.choice(w.options)
        return label, lambda: _send_string(w, label), False
    if kind == "multiselect":
        if not w.options:
            return None
        most = len(w.options) if not w.proto.max_selections else min(len(w.options), w.proto.max_selections)
        labels = rng.sample(w.options, rng.randint(0, min(most, 4)))
        return labels, lambda: _send_strings(w, labels), False
    if kind == "select_slider":
        if not w.options:
            return None
        if isinstance(w.value, list | tuple) and len(w.value) == 2:
            i, j = sorted(rng.randrange(len(w.options)) for _ in range(2))
            labels = [w.options[i], w.options[j]]
        else:
            labels = [rng.choice(w.options)]
        return labels, lambda: _send_strings(w, labels), False
    if kind == "button_group":
        if not w.options:
            return None
        labels = [rng.choice(w.options)] if rng.random() < 0.9 else []  # a click on the chosen one deselects it
        return labels, lambda: _send_strings(w, labels), False
    if kind in ("toggle", "checkbox"):
        value = not w.value
        return value, lambda: w.set_value(value), False
    if kind == "number_input":
        value, wild = _number_value(rng, w)
        return value, lambda: w.set_value(value), wild
    if kind == "slider":
        value = _slider_value(rng, w)
        if value is None:
            return None
        return value, lambda: w.set_value(value), False
    if kind == "text_input":
        pool = _text_pool(w.key)
        if pool is None:
            return None
        text = rng.choice(pool)
        return text, lambda: w.set_value(text), False
    return None


# --------------------------------------------------------------------------- the walk
def _problems(at: AppTest) -> list[str]:
    found = []
    for exc in at.exception:
        tail = "\n".join(exc.stack_trace[-12:])
        found.append(f"exception: {exc.proto.type}: {exc.message}\n{tail}")
    for err in at.error:
        if RAW_EXCEPTION.search(err.value):
            found.append(f"an error shows a raw exception: {err.value}")
    return found


def _report(seed: int, log: list[Step], what: str) -> str:
    lines = "\n".join(map(str, log))
    return f"random walk, seed {seed}, failed after step {log[-1].step if log else '-'}:\n{what}\n\nactions:\n{lines}"


def _widgets(at: AppTest) -> list:
    found = []
    for kind in KINDS:
        for w in at.get(kind):
            if getattr(w.proto, "disabled", False):
                continue
            if kind == "text_input" and _text_pool(w.key) is None:
                continue
            found.append(w)
    return found


def walk(at: AppTest, seed: int, actions: int = ACTIONS) -> tuple[list[Step], Counter]:
    """Run the walk on a started ``at``; returns the log and the (page, widget kind) pairs it set."""
    rng = random.Random(seed)
    page = PAGES[0].path
    log: list[Step] = []
    reached: Counter = Counter()
    deck: list[str] = []
    if problems := _problems(at):
        pytest.fail(_report(seed, log, "\n".join(problems)), pytrace=False)
    for i in range(actions):
        widgets = _widgets(at)
        buttons = [b for b in at.button if b.key in SAFE_BUTTONS and not b.proto.disabled]
        choice = None
        wild = False
        roll = rng.random()
        if roll >= SWITCH_CHANCE and buttons and roll < SWITCH_CHANCE + BUTTON_CHANCE:
            button = rng.choice(buttons)
            entry = Step(i, page, "click", "button", button.key, button.label)
            choice = button.click
        elif roll >= SWITCH_CHANCE:
            # a kind first, then one of its widgets: a page's single toggle is as likely as one of its ten selectboxes
            by_kind: dict[str, list] = {}
            for w in widgets:
                by_kind.setdefault(w.type, []).append(w)
            kinds = list(by_kind)
            rng.shuffle(kinds)
            for w in (w for kind in kinds for w in rng.sample(by_kind[kind], len(by_kind[kind]))):
                picked = _choose(rng, w)
                if picked is not None:
                    value, choice, wild = picked
                    entry = Step(i, page, "set", w.type, w.key, w.label, value)
                    break
        if choice is None:
            if not deck:  # every page once per round, in a random order: the walk reaches them all
                deck = [p.path for p in PAGES]
                rng.shuffle(deck)
            page = deck.pop() if deck[-1] != page or len(deck) == 1 else deck.pop(0)
            entry = Step(i, page, "switch")
            choice = lambda target=page: at.switch_page(target)
        log.append(entry)
        started = time.perf_counter()
        try:
            choice()
            at.run()
            entry.seconds = time.perf_counter() - started
        except Exception as exc:  # AppTest itself gave up (a timeout, a value it cannot send): report the walk
            pytest.fail(_report(seed, log, f"{type(exc).__name__}: {exc}"), pytrace=False)
        problems = _problems(at)
        if wild and not any(entry.label in e.value and f"{entry.value:,}" in e.value for e in at.error):
            said = [e.value for e in at.error]
            problems.append(f"{entry.value:,} in {entry.label!r} is out of range but no error says so: {said}")
        if problems:
            pytest.fail(_report(seed, log, "\n".join(problems)), pytrace=False)
        if entry.action != "switch":
            reached[(entry.page, entry.kind + (" (out of range)" if wild else ""))] += 1
    return log, reached


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory) -> list[Path]:
    """Two small runs trained in seconds on synthetic digits (no MNIST file), with complete run.json files: the
    'tiny filters' preset (3 conv layers, with the weights of every epoch for the Train page's replay) and a
    2-conv CNN, whose layers differ from the bundled models'."""
    from core.data import load_mnist
    from core.runs import save_run
    from core.spec import ArchitectureSpec, ConvSpec, preset
    from core.training import TrainConfig, train

    folder = tmp_path_factory.mktemp("walk")
    digits = load_mnist(write_tiny_mnist(folder / "mnist.npz"))
    three = train(preset("tiny filters"), TrainConfig(epochs=2, seed=1, checkpoints="epoch"), digits)
    two = train(ArchitectureSpec((ConvSpec(4), ConvSpec(6)), dense=(6,)), TrainConfig(epochs=1, seed=2), digits)
    return [save_run(three, folder / "runs", name="tiny-3conv"), save_run(two, folder / "runs", name="tiny-2conv")]


@pytest.fixture()
def walk_app(app_test, runs_dir, trained_runs):
    """The app with the two small runs beside the bundled models, started on the Start page; exceptions show
    their traceback (the app's config hides it from browsers)."""
    from streamlit import config

    for run in trained_runs:
        shutil.copytree(run, runs_dir / run.name)
    shown = config.get_option("client.showErrorDetails")
    config.set_option("client.showErrorDetails", "full")
    yield lambda: app_test(timeout=300)
    config.set_option("client.showErrorDetails", shown)


@pytest.mark.slow  # about 25 s per seed on 2 idle cores
@pytest.mark.parametrize("seed", SEEDS)
def test_a_seeded_random_walk_over_every_pages_widgets_raises_nothing(walk_app, seed):
    log, reached = walk(walk_app(), seed)
    assert len(log) == ACTIONS
    pages = {step.page for step in log}
    assert len(pages) == len(PAGES), f"the walk never reached {sorted({p.path for p in PAGES} - pages)}"
    print(f"seed {seed}: {sum(reached.values())} widget actions, {ACTIONS - sum(reached.values())} page switches")
    for (page, kind), n in sorted(reached.items()):
        print(f"  {page:26s} {kind:29s} {n}")
    print("slowest runs:", *sorted(log, key=lambda step: -step.seconds)[:8], sep="\n  ")
