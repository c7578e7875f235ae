"""Fine-tune a copy of a model on MNIST plus a personal handwriting set, and measure it before and after.

The blog's point, made testable: a CNN trained on US MNIST reads European digits badly. A short training of a
*copy* (the original run stays untouched) on some MNIST training digits with the learner's digits mixed in,
each shown ``repeat`` times per epoch so a few dozen digits count against thousands. Some of the learner's
digits are held out (``hold_out``): the fine-tuned model has seen the others, so only the held-out ones say
whether it learned the handwriting rather than those very images.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from core.checks import check_range
from core.data import Mnist
from core.experiments.personal_set import PersonalSet, SetScore, score_set
from core.model import build_model
from core.progress import ProgressCallback, progress_scope
from core.training import TrainConfig, TrainResult, fit_model

MIN_FOR_HOLD_OUT = 8  # fewer digits than this are all used for training (a hold-out of one says nothing)
SETS = ("MNIST test", "your digits (trained on)", "your digits (held out)")


@dataclass(frozen=True)
class FineTuneConfig:
    """Settings of a fine-tuning. RMSprop as the blog trains, with a small learning rate: adapt, not retrain."""

    epochs: int = 2
    learning_rate: float = 2e-4
    mnist_digits: int = 10_000  # the first N MNIST training digits, so it does not forget MNIST
    repeat: int = 20  # each personal digit appears this often per epoch
    hold_out: float = 0.25  # share of each class of personal digits kept out of training
    batch_size: int = 64
    seed: int = 0

    def validate(self) -> None:
        check_range("epochs", self.epochs, 1, 20, note="fine-tuning is short")
        check_range("learning_rate", self.learning_rate, 0, 0.1, open_low=True)
        check_range("mnist_digits", self.mnist_digits, 0, 60_000)
        check_range("repeat", self.repeat, 1, 1000)
        check_range("hold_out", self.hold_out, 0, 0.5)
        check_range("batch_size", self.batch_size, 1, 8192)

    def train_config(self) -> TrainConfig:
        """The TrainConfig a fine-tuned run records (its optimizer, epochs, batch size, seed, MNIST digits)."""
        return TrainConfig(
            optimizer="rmsprop",
            learning_rate=self.learning_rate,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            train_limit=self.mnist_digits or None,
        )


def split_hold_out(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, held_out)`` of a personal set: ``share`` of each class (rounded down, at least one
    digit of a class with 4 or more) held out, chosen by ``seed``; nothing is held out from fewer than
    ``MIN_FOR_HOLD_OUT`` digits."""
    labels = np.asarray(labels)
    everything = np.arange(len(labels))
    if share <= 0 or len(labels) < MIN_FOR_HOLD_OUT:
        return everything, everything[:0]
    rng = np.random.default_rng(seed)
    held = []
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        n = int(len(members) * share) or (1 if len(members) >= 4 else 0)
        held.extend(members[:n].tolist())
    held_out = np.array(sorted(held), dtype=np.int64)
    return np.setdiff1d(everything, held_out), held_out


@dataclass
class FineTuneResult:
    """The fine-tuned copy (``train``, a TrainResult: model, curves, test figures) and the three sets' scores
    before and after (``before``/``after``: SETS → SetScore; a set with no digits is left out); ``held_out``:
    indices of the personal digits not trained on ``(H,)``."""

    train: TrainResult
    before: dict[str, SetScore]
    after: dict[str, SetScore]
    held_out: np.ndarray
    personal_digits: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        out = {
            "status": self.train.status,
            "personal_digits": self.personal_digits,
            "held_out": len(self.held_out),
            "epochs_done": len(self.train.epoch_seconds),
            "seconds": round(self.train.seconds, 2),
        }
        for name in SETS:
            if name in self.before:
                out[name] = {
                    "before": round(self.before[name].accuracy.overall, 4),
                    "after": round(self.after[name].accuracy.overall, 4),
                }
        return out


def _scores(model, scaler, mnist: Mnist, personal: PersonalSet, train_idx, held_idx) -> dict[str, SetScore]:
    scores = {SETS[0]: score_set(model, scaler, mnist.x_test, mnist.y_test)}
    for name, idx in ((SETS[1], train_idx), (SETS[2], held_idx)):
        if len(idx):
            scores[name] = score_set(model, scaler, personal.images[idx], personal.labels[idx])
    return scores


def fine_tune(
    bundle,
    mnist: Mnist,
    personal: PersonalSet,
    config: FineTuneConfig = FineTuneConfig(),
    progress: ProgressCallback | None = None,
) -> FineTuneResult:
    """Train a copy of ``bundle``'s model (core.runs.ModelBundle; its weights are read, never changed) on the
    first ``mnist_digits`` MNIST training digits plus the personal digits not held out, each ``repeat`` times,
    through the bundle's own scaler; score MNIST test and the personal digits before and after."""
    config.validate()
    if len(personal) == 0:
        raise ValueError("the personal set is empty: add some of your digits (with their labels) first")
    started = time.perf_counter()
    train_idx, held_idx = split_hold_out(personal.labels, config.hold_out, config.seed)
    notes = []
    if len(held_idx) == 0:
        notes.append(
            f"All {len(personal)} of your digits were trained on (fewer than {MIN_FOR_HOLD_OUT} or no "
            "hold-out): the 'after' on them shows what it memorised, not how it reads new ones."
        )
    x_train = np.concatenate(
        [mnist.x_train[: config.mnist_digits], np.repeat(personal.images[train_idx], config.repeat, axis=0)]
    )
    y_train = np.concatenate(
        [mnist.y_train[: config.mnist_digits], np.repeat(personal.labels[train_idx], config.repeat)]
    )
    steps = math.ceil(len(x_train) / config.batch_size)
    with progress_scope(progress, steps * config.epochs, "fine-tuning") as prog:
        prog.on_step(0, {"phase": "measuring the model before fine-tuning"})
        before = _scores(bundle.model, bundle.scaler, mnist, personal, train_idx, held_idx)
        prog.on_step(0, {"phase": "copying the model"})
        copy = build_model(bundle.spec, seed=config.seed)
        copy.set_weights(bundle.model.get_weights())
        result = fit_model(
            copy,
            bundle.spec,
            bundle.scaler,
            config.train_config(),
            x_train,
            y_train,
            mnist.x_test,
            mnist.y_test,
            prog,
            started,
        )
        after = _scores(copy, bundle.scaler, mnist, personal, train_idx, held_idx)
    return FineTuneResult(result, before, after, held_idx, len(personal), notes)


__all__ = ["FineTuneConfig", "FineTuneResult", "MIN_FOR_HOLD_OUT", "SETS", "fine_tune", "split_hold_out"]
