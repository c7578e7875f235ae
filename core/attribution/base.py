"""What every attribution method shares: its options, its result and its entry in the registry.

A method is a module in ``core.attribution`` with one ``METHOD = Method(...)`` and one line in
``core.attribution.registry``; the Activations page, the ``attribute`` command and the tests take every
method from there, so nothing else changes when one is added.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.checks import check_range

# How the methods that hide part of a digit name what they paint there (occlusion's patch, LIME's hidden superpixels)
FILL_LABELS = (("mean", "grey (the mean digit)"), ("black", "black (erase ink)"))


@dataclass(frozen=True)
class Option:
    """One setting of a method: a choice among ``choices``, a whole number in ``low..high`` or an on/off
    switch (a bool ``default``). ``name`` is the keyword of the method's ``explain`` and, with ``-`` for
    ``_``, the command-line flag."""

    name: str
    label: str
    default: Any
    choices: tuple = ()
    low: int | None = None
    high: int | None = None
    step: int = 1
    help: str = ""
    choice_labels: tuple[tuple[Any, str], ...] = ()

    @property
    def kind(self) -> str:
        if isinstance(self.default, bool):
            return "switch"
        return "choice" if self.choices else "number"

    def describe(self, value: Any) -> str:
        return dict(self.choice_labels).get(value, str(value))

    def check(self, value: Any) -> Any:
        """``value`` when it is allowed; otherwise a ValueError naming it and what is allowed."""
        if self.kind == "switch":
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{self.name}={value!r} must be true or false")
            return bool(value)
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{self.name} {value!r} is not one of {self.choices}")
            return value
        check_range(self.name, value, self.low, self.high, whole=True)
        return int(value)

    def parse(self, text: str) -> Any:
        """A command-line string → the option's value (checked)."""
        if self.kind == "switch":
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(f"--{self.flag} {text!r} must be on or off")
            return self.check(lowered in ("true", "1", "yes", "on"))
        if self.kind == "number":
            if not text.strip().lstrip("-").isdigit():
                raise ValueError(f"--{self.flag} {text!r} must be a whole number from {self.low} to {self.high}")
            return self.check(int(text))
        return self.check(text)

    @property
    def flag(self) -> str:
        return self.name.replace("_", "-")


@dataclass(frozen=True)
class Attribution:
    """One method's answer for one digit and class.

    ``pixels`` ``(28, 28)`` float32 on the input grid. ``signed``: positive values raise the class's
    score and negative ones lower it (drawn red/blue); otherwise values are strengths ≥ 0. ``title``
    names the map; ``caption`` says in one sentence what it shows; ``figures`` holds the method's own
    numbers (e.g. Integrated Gradients' ``completeness_gap``); ``notes`` are warnings for the reader.
    """

    method: str
    class_index: int
    pixels: np.ndarray
    signed: bool
    title: str
    caption: str
    figures: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def top_pixels(self, count: int = 5) -> list[dict]:
        """The ``count`` pixels with the largest ``|value|``: ``{"row", "col", "value"}`` each."""
        flat = np.argsort(-np.abs(self.pixels), axis=None)[:count]
        rows, cols = np.unravel_index(flat, self.pixels.shape)
        return [{"row": int(r), "col": int(c), "value": round(float(self.pixels[r, c]), 6)} for r, c in zip(rows, cols)]


# explain(activation_model, raw (28, 28) 0..255, class_index, **options) -> Attribution
Explain = Callable[..., Attribution]


@dataclass(frozen=True)
class Method:
    """An attribution method: its command-line ``name``, the ``label`` a page shows, the paper it follows,
    its ``options`` and ``explain``."""

    name: str
    label: str
    reference: str
    options: tuple[Option, ...]
    explain: Explain
    summary: str = ""

    def settings(self, **values: Any) -> dict[str, Any]:
        """Every option's value: the given ones checked, the others at their defaults."""
        known = {o.name: o for o in self.options}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{self.name} has no option(s) {unknown}; it has {sorted(known)}")
        return {name: option.check(values.get(name, option.default)) for name, option in known.items()}

    def run(self, activation_model, raw: np.ndarray, class_index: int, **values: Any) -> Attribution:
        """``explain`` with checked settings; ``seconds`` is the whole call."""
        settings = self.settings(**values)
        activation_model.check_class(class_index)
        raw = np.asarray(raw, dtype=np.float32)
        side = activation_model.side
        if raw.shape != (side, side):
            raise ValueError(f"{self.name} needs a raw ({side}, {side}) digit, got shape {raw.shape}")
        started = time.perf_counter()
        result = self.explain(activation_model, raw, int(class_index), **settings)
        return replace(result, seconds=time.perf_counter() - started)
