"""How a model copes with digits unlike its training digits: the test accuracy, the accuracy on shifted and rotated
copies of the test set, the invariance ranges of the Experiments page (``core.experiments.invariance``) over many
test digits, and the learner's handwriting set.

The moved test sets and the transformed digits depend only on the digits, so ``prepare`` makes them once and
``measure`` runs any number of models over the same ones (the augmentation lesson compares three).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from core.checks import check_range
from core.experiments.invariance import DEFAULT_VALUES, TRANSFORMS, UNITS, InvarianceSweep, transform
from core.progress import ProgressCallback

SHIFTS = (2, 3)  # px: each test digit moved this far left, right, up or down (one direction per digit)
ROTATIONS = (15, 25)  # degrees: each test digit turned this far one way or the other
INVARIANCE_DIGITS = 200


@dataclass(frozen=True)
class RobustnessConfig:
    """``test_digits`` (None: all) of the test set for the accuracy and its moved copies, shifted by ``shifts`` px
    and rotated by ``rotations`` degrees; the invariance ranges over the first ``invariance_digits`` test digits;
    ``seed`` draws each digit's direction."""

    test_digits: int | None = None
    invariance_digits: int = INVARIANCE_DIGITS
    shifts: tuple[int, ...] = SHIFTS
    rotations: tuple[float, ...] = ROTATIONS
    seed: int = 0

    @property
    def units(self) -> int:
        """Steps of ``measure`` per model, for progress: the test set, each moved set, each transform, handwriting."""
        return 1 + len(self.shifts) + len(self.rotations) + len(TRANSFORMS) + 1

    def validate(self) -> None:
        if self.test_digits is not None:
            check_range("test_digits", self.test_digits, 10, 10_000, whole=True)
        check_range("invariance_digits", self.invariance_digits, 1, 2_000, whole=True)
        for shift in self.shifts:
            check_range("shift", shift, 1, 10, whole=True)
        for angle in self.rotations:
            check_range("rotation", angle, 1, 180)


@dataclass
class Probe:
    """The digits every model is measured on: ``x`` ``(N, 28, 28)`` test digits with labels ``y`` ``(N,)``; ``moved``
    name → ``(N, 28, 28)`` moved copies of ``x``; ``sweeps`` transform → ``(D·V, 28, 28)``: each of the first D test
    digits (labels ``y_sweep`` ``(D,)``) at each of the transform's V ``values``."""

    x: np.ndarray
    y: np.ndarray
    moved: dict[str, np.ndarray]
    y_sweep: np.ndarray
    values: dict[str, np.ndarray]
    sweeps: dict[str, np.ndarray]


def moved_name(kind: str, amount: float) -> str:
    return f"shifted ±{amount:g} px" if kind == "shift" else f"rotated ±{amount:g}°"


def shifted(x: np.ndarray, pixels: int, rng: np.random.Generator) -> np.ndarray:
    """Each digit of ``x`` ``(N, 28, 28)`` moved ``pixels`` whole px left, right, up or down (drawn per digit), blank
    where it came from."""
    out = np.zeros_like(x)
    direction = rng.integers(0, 4, len(x))
    p = int(pixels)
    out[direction == 0, :, p:] = x[direction == 0, :, :-p]  # right
    out[direction == 1, :, :-p] = x[direction == 1, :, p:]  # left
    out[direction == 2, p:, :] = x[direction == 2, :-p, :]  # down
    out[direction == 3, :-p, :] = x[direction == 3, p:, :]  # up
    return out


def rotated(x: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Each digit of ``x`` ``(N, 28, 28)`` turned by ``degrees`` one way or the other (drawn per digit), bilinear,
    blank outside, as the Experiments page turns a digit."""
    sign = rng.choice([-1.0, 1.0], len(x))
    out = np.empty(x.shape, np.float32)
    for s in (-1.0, 1.0):
        chosen = sign == s
        out[chosen] = ndimage.rotate(
            x[chosen].astype(np.float32), s * degrees, axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0
        )
    return np.clip(out, 0, 255)


def prepare(x_test: np.ndarray, y_test: np.ndarray, config: RobustnessConfig) -> Probe:
    """The moved test sets and the transformed digits of ``config`` from the raw test digits ``x_test``
    ``(N, 28, 28)``, ``y_test`` ``(N,)``."""
    config.validate()
    x, y = np.asarray(x_test)[: config.test_digits], np.asarray(y_test)[: config.test_digits].astype(np.int64)
    rng = np.random.default_rng(config.seed)
    moved = {moved_name("shift", p): shifted(x, p, rng) for p in config.shifts}
    moved.update({moved_name("rotate", a): rotated(x, a, rng) for a in config.rotations})
    few = np.asarray(x_test)[: config.invariance_digits].astype(np.float32)
    values = {kind: np.asarray(DEFAULT_VALUES[kind], np.float64) for kind in TRANSFORMS}
    sweeps = {kind: np.stack([transform(digit, kind, v) for digit in few for v in values[kind]]) for kind in TRANSFORMS}
    return Probe(x, y, moved, np.asarray(y_test)[: config.invariance_digits].astype(np.int64), values, sweeps)


@dataclass
class Robustness:
    """One model on a ``Probe``: ``test_accuracy``; ``moved`` name → accuracy; per transform the ``values`` ``(V,)``,
    ``curves`` ``(V,)`` (the share of the D digits still read right at each value) and ``ranges`` ``(D, 2)`` (the
    range around the untouched digit over which its prediction holds; NaN where it is wrong untouched); the
    ``handwriting`` accuracy (None without a set)."""

    name: str
    test_accuracy: float
    moved: dict[str, float]
    values: dict[str, np.ndarray]
    curves: dict[str, np.ndarray]
    ranges: dict[str, np.ndarray]
    handwriting: float | None = None
    handwriting_digits: int = 0
    notes: list[str] = field(default_factory=list)

    def median_range(self, kind: str) -> tuple[float, float]:
        """The median low and high ends of ``kind``'s ranges over the digits read right untouched."""
        held = self.ranges[kind][~np.isnan(self.ranges[kind][:, 0])]
        if not len(held):
            return float("nan"), float("nan")
        return float(np.median(held[:, 0])), float(np.median(held[:, 1]))

    def summary(self) -> dict:
        return {
            "model": self.name,
            "test_accuracy": round(self.test_accuracy, 4),
            **{name: round(acc, 4) for name, acc in self.moved.items()},
            "invariance_median": {
                kind: f"{lo:g}..{hi:g} {UNITS[kind]}" for kind in self.ranges for lo, hi in [self.median_range(kind)]
            },
            "handwriting": None if self.handwriting is None else round(self.handwriting, 4),
        }


def _accuracy(predict, images: np.ndarray, labels: np.ndarray) -> float:
    return float((predict(images).argmax(axis=1) == labels).mean()) if len(labels) else float("nan")


def measure(
    name: str,
    predict,
    probe: Probe,
    handwriting: tuple[np.ndarray, np.ndarray] | None = None,
    progress: ProgressCallback | None = None,
    offset: int = 0,
) -> Robustness:
    """``predict``: raw digits ``(M, 28, 28)`` 0..255 → probabilities ``(M, 10)`` (a model with its scaler, e.g.
    ``predictor``). ``handwriting``: the learner's ``(images (H, 28, 28), labels (H,))`` or None. Reports
    ``RobustnessConfig.units`` steps to ``progress`` after ``offset``."""
    progress = progress or ProgressCallback()
    step = offset

    def tick(phase: str) -> None:
        nonlocal step
        step += 1
        progress.on_step(step, {"phase": f"{name}: {phase}"})

    test_accuracy = _accuracy(predict, probe.x, probe.y)
    tick("test accuracy")
    moved = {}
    for moved_set, images in probe.moved.items():
        moved[moved_set] = _accuracy(predict, images, probe.y)
        tick(moved_set)
    curves, ranges = {}, {}
    for kind, images in probe.sweeps.items():
        values = probe.values[kind]
        probs = predict(images).reshape(len(probe.y_sweep), len(values), -1)
        right = probs.argmax(axis=2) == probe.y_sweep[:, None]
        curves[kind] = right.mean(axis=0)
        held = [
            InvarianceSweep(kind, values, images[:0], p, "out", np.zeros((len(values), 0))).holds(label)
            for p, label in zip(probs, probe.y_sweep)
        ]
        ranges[kind] = np.array([h if h is not None else (np.nan, np.nan) for h in held], np.float64)
        tick(f"{kind} over {len(probe.y_sweep)} digits")
    hand, hand_n = None, 0
    if handwriting is not None and len(handwriting[1]):
        hand, hand_n = _accuracy(predict, np.asarray(handwriting[0]), np.asarray(handwriting[1])), len(handwriting[1])
    tick("handwriting" if hand is not None else "done")
    return Robustness(name, test_accuracy, moved, dict(probe.values), curves, ranges, hand, hand_n)


def predictor(model, scaler, batch_size: int = 1024):
    """Raw digits ``(M, 28, 28)`` → probabilities ``(M, 10)`` of a Keras ``model`` fed through ``scaler``, in batches
    (one call per batch: no ``model.predict`` and its per-call function)."""

    def predict(images: np.ndarray) -> np.ndarray:
        x = scaler.transform(np.asarray(images, np.float32))
        if not len(x):
            return np.zeros((0, 10), np.float32)
        return np.concatenate(
            [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
        )

    return predict


__all__ = ["Probe", "Robustness", "RobustnessConfig", "measure", "predictor", "prepare"]
