"""Fool the network: a targeted adversarial change of one digit, within a budget in grey levels.

The change lives on the raw pixels (0..255) and goes through the run's own scaler, so a budget of 8 means
"no pixel moves by more than 8 grey levels". Each step lowers the cross-entropy towards the target class
(the scores before the softmax, which do not saturate): FGSM takes one step of the whole budget along the
gradient's sign, PGD takes ``steps`` smaller ones and projects back into the budget after each. The result
is rounded to whole grey levels (what a saved PNG holds) before it is judged.

The smallest budget that flips the prediction is found in one batched run: the digit is attacked at every
budget of a grid at once, one image per budget.

``pixels="ink"`` (the default) changes only pixels where the training digits have ink (their std over the
training set at least ``INK_STD`` grey levels): the per-pixel scaler divides a border pixel by a std as small
as 0.03, so two grey levels there are 60 standard deviations to the network, and ``pixels="all"`` shows how
the bundled model falls for that (2 grey levels flip the blog's 4 into a 9).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

METHODS = ("fgsm", "pgd")
PIXELS = ("ink", "all")
INK_STD = 5.0  # grey levels: a pixel whose training digits vary less than this is (almost) always blank
DEFAULT_STEPS = 20
STEP_FRACTION = 0.25  # PGD step as a share of the budget: 20 steps can cross the budget five times
MAX_BUDGET = 255
BUDGET_GRID = (
    tuple(range(1, 17))
    + tuple(range(18, 33, 2))
    + tuple(range(36, 65, 4))
    + tuple(range(72, 129, 8))
    + tuple(range(144, 256, 16))
    + (255,)
)  # fine where digits flip, coarse above: 56 budgets


def check_budget(budget) -> int:
    if not isinstance(budget, (int, np.integer)) or not 1 <= int(budget) <= MAX_BUDGET:
        raise ValueError(f"budget={budget!r} must be a whole number of grey levels from 1 to {MAX_BUDGET}")
    return int(budget)


def check_pixels(pixels: str) -> str:
    if pixels not in PIXELS:
        raise ValueError(f"pixels={pixels!r} is not one of {', '.join(PIXELS)}")
    return pixels


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}")
    return method


@dataclass
class AttackResult:
    """``original`` and ``changed`` ``(28, 28)`` grey levels 0..255 (``changed`` rounded), their probabilities
    ``(10,)``, whether the prediction became ``target`` at ``budget`` (``flipped``), the smallest budget of the
    grid that flips it (None when even 255 does not), and per layer how far the changed digit's activations
    moved from the original's (``divergence``: ‖a′ − a‖ / ‖a‖)."""

    method: str
    target: int
    budget: int
    pixels: str
    original: np.ndarray
    changed: np.ndarray
    probabilities_before: np.ndarray
    probabilities_after: np.ndarray
    flipped: bool
    smallest_budget: int | None
    divergence: dict[str, float]
    seconds: float

    @property
    def change(self) -> np.ndarray:
        """``changed − original`` ``(28, 28)`` in grey levels (within ±budget)."""
        return self.changed.astype(np.float32) - self.original.astype(np.float32)

    @property
    def predicted_before(self) -> int:
        return int(np.argmax(self.probabilities_before))

    @property
    def predicted_after(self) -> int:
        return int(np.argmax(self.probabilities_after))

    def summary(self) -> dict:
        return {
            "method": self.method,
            "target": self.target,
            "budget": self.budget,
            "pixels": self.pixels,
            "flipped": self.flipped,
            "smallest_budget": self.smallest_budget,
            "predicted_before": self.predicted_before,
            "predicted_after": self.predicted_after,
            "probabilities_before": [round(float(p), 4) for p in self.probabilities_before],
            "probabilities_after": [round(float(p), 4) for p in self.probabilities_after],
            "max_change": int(np.abs(self.change).max()),
            "divergence": {k: round(v, 4) for k, v in self.divergence.items()},
        }


class Attacker:
    """Targeted FGSM/PGD on raw digits for one model and its scaler (``core.data.PixelScaler``)."""

    def __init__(self, model: keras.Model, scaler) -> None:
        self._layers = [lyr for lyr in model.layers if not isinstance(lyr, keras.layers.InputLayer)]
        out = self._layers[-1]
        if not isinstance(out, keras.layers.Dense) or int(out.units) != 10:
            raise ValueError("the last layer must be a 10-way Dense layer (the class scores)")
        self._out = out
        self._mean = tf.constant(np.asarray(scaler.mean, np.float32))
        self._std = tf.constant(np.asarray(scaler.std, np.float32))
        self._ink = (np.asarray(scaler.std) >= INK_STD).astype(np.float32)  # (28, 28) pixels with ink in training
        raw = tf.TensorSpec([None, 28, 28], tf.float32)
        scalar = lambda dtype: tf.TensorSpec([], dtype)  # noqa: E731
        self._attack_fn = tf.function(
            self._attack,
            input_signature=[
                raw,
                tf.TensorSpec([None], tf.float32),
                scalar(tf.int32),
                scalar(tf.int32),
                scalar(tf.float32),
                tf.TensorSpec([28, 28]),
            ],
            autograph=False,
        )
        self._probs_fn = tf.function(lambda r: tf.nn.softmax(self._logits(r)), input_signature=[raw], autograph=False)
        self._trace_fn = tf.function(self._activations, input_signature=[raw], autograph=False)

    def _inputs(self, raw):
        return ((raw - self._mean) / self._std)[..., None]

    def _logits(self, raw):
        h = self._inputs(raw)
        for lyr in self._layers[:-1]:
            h = lyr(h, training=False)
        return tf.matmul(h, self._out.kernel) + self._out.bias

    def _activations(self, raw):
        h, outs = self._inputs(raw), []
        for lyr in self._layers:
            h = lyr(h, training=False)
            outs.append(h)
        return outs

    def _attack(self, raw, budgets, target, steps, step_fraction, movable):
        """``raw`` ``(N, 28, 28)``, one budget per image ``(N,)``, ``movable`` ``(28, 28)`` 1 where pixels may
        change → the changed images ``(N, 28, 28)``."""
        labels = tf.fill([tf.shape(raw)[0]], target)
        lo = tf.maximum(raw - budgets[:, None, None], 0.0)
        hi = tf.minimum(raw + budgets[:, None, None], 255.0)
        step = (budgets * step_fraction)[:, None, None]

        def body(i, x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, self._logits(x)))
            x = x - step * movable * tf.sign(tape.gradient(loss, x))  # towards the target
            return i + 1, tf.clip_by_value(x, lo, hi)

        return tf.while_loop(lambda i, x: i < steps, body, [tf.constant(0), raw], parallel_iterations=1)[1]

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Raw digits ``(N, 28, 28)`` 0..255 → probabilities ``(N, 10)``."""
        return self._probs_fn(tf.constant(np.asarray(raw, np.float32))).numpy()

    def changed(
        self,
        raw: np.ndarray,
        target: int,
        budgets,
        method: str = "pgd",
        steps: int = DEFAULT_STEPS,
        pixels: str = "ink",
    ) -> np.ndarray:
        """One digit ``(28, 28)`` attacked at each of ``budgets`` → ``(len(budgets), 28, 28)``, rounded to grey
        levels."""
        check_method(method)
        movable = self._ink if check_pixels(pixels) == "ink" else np.ones((28, 28), np.float32)
        budgets = np.asarray(budgets, np.float32)
        n_steps, fraction = (1, 1.0) if method == "fgsm" else (int(steps), STEP_FRACTION)
        batch = np.repeat(np.asarray(raw, np.float32)[None], len(budgets), axis=0)
        out = self._attack_fn(
            tf.constant(batch),
            tf.constant(budgets),
            tf.constant(int(target), tf.int32),
            tf.constant(n_steps, tf.int32),
            tf.constant(fraction, tf.float32),
            tf.constant(movable),
        ).numpy()
        return np.clip(np.rint(out), 0, 255)

    def attack(
        self,
        raw: np.ndarray,
        target: int,
        budget: int = 32,
        method: str = "pgd",
        steps: int = DEFAULT_STEPS,
        pixels: str = "ink",
    ) -> AttackResult:
        """Change ``raw`` ``(28, 28)`` 0..255 by at most ``budget`` grey levels per pixel so the model says
        ``target``; also the smallest budget of ``BUDGET_GRID`` that does it and where the layers part ways."""
        started = time.perf_counter()
        check_method(method)
        check_pixels(pixels)
        budget = check_budget(budget)
        if not 0 <= int(target) <= 9:
            raise ValueError(f"target={target!r} must be a digit class from 0 to 9")
        if method == "pgd" and not 1 <= int(steps) <= 1000:
            raise ValueError(f"steps={steps} must be from 1 to 1000")
        raw = np.asarray(raw, np.float32)
        if raw.shape != (28, 28):
            raise ValueError(f"the digit must be 28×28 grey levels, got shape {raw.shape}")
        before = self.probabilities(raw[None])[0]
        if int(np.argmax(before)) == int(target):
            raise ValueError(f"the model already reads this digit as {int(target)}; pick another target class")
        grid = [b for b in BUDGET_GRID if b != budget] + [budget]
        candidates = self.changed(raw, target, grid, method, steps, pixels)
        predicted = np.argmax(self.probabilities(candidates), axis=1)
        flips = {b: bool(p == int(target)) for b, p in zip(grid, predicted)}
        changed = candidates[-1]
        after = self.probabilities(changed[None])[0]
        smallest = min((b for b, ok in flips.items() if ok and b in BUDGET_GRID), default=None)
        if flips[budget] and (smallest is None or budget < smallest):
            smallest = budget
        acts = self._trace_fn(tf.constant(np.stack([raw, changed])))
        divergence = {}
        for lyr, act in zip(self._layers, acts):
            a = act.numpy().reshape(2, -1)
            norm = float(np.linalg.norm(a[0]))
            divergence[lyr.name] = float(np.linalg.norm(a[1] - a[0]) / norm) if norm > 0 else float("nan")
        return AttackResult(
            method,
            int(target),
            budget,
            pixels,
            raw.astype(np.uint8),
            changed.astype(np.uint8),
            before,
            after,
            bool(int(np.argmax(after)) == int(target)),
            smallest,
            divergence,
            time.perf_counter() - started,
        )
