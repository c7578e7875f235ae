"""The augmentation lesson: train the blog's article-II model twice with the same seed and epochs, without and with
augmentation, then measure both and the bundled blog model (the baseline) on the same digits: test accuracy,
shifted and rotated test sets, the Experiments page's invariance ranges over 200 test digits and the learner's
handwriting set (``core.experiments.robustness``).

Neither trained model is kept as a run: the lesson's result is its figures (a learner who likes the augmented model
trains it on the Train page with the same settings).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from core.augmentation.augment import OFF, AugmentConfig, parse_augment
from core.checks import check_range
from core.experiments.robustness import Robustness, RobustnessConfig, measure, predictor, prepare
from core.progress import PartProgress, ProgressCallback, progress_scope

LESSON_AUGMENT = "shift=2,rotate=10,zoom=0.1"  # the course's Keras example without the flips (digits do not flip)
BLOG, WITHOUT, WITH = "blog model (bundled)", "trained without augmentation", "trained with augmentation"


@dataclass(frozen=True)
class LessonConfig:
    """Train article II (``preset``) ``epochs`` epochs on the first ``train_limit`` training digits (None: all
    60,000) with ``seed``, without and with ``augment``; measure the three models as ``robustness`` says. ``mnist``:
    a Keras-layout mnist.npz (None: ``$MNIST_NPZ``)."""

    augment: AugmentConfig = field(default_factory=lambda: parse_augment(LESSON_AUGMENT))
    epochs: int = 1
    train_limit: int | None = None
    seed: int = 42
    robustness: RobustnessConfig = RobustnessConfig()
    mnist: str | None = None
    preset: str = "article II"  # the architecture trained twice (core.spec.PRESETS; tests use a tiny one)

    def validate(self) -> None:
        self.augment.validate()
        if not self.augment.enabled:
            raise ValueError("the lesson compares training with and without augmentation: turn at least one range on")
        check_range("epochs", self.epochs, 1, 20, whole=True)
        from core.spec import PRESETS

        if self.preset not in PRESETS:
            raise ValueError(f"preset {self.preset!r} is not one of {', '.join(PRESETS)}")
        if self.train_limit is not None:
            check_range("train_limit", self.train_limit, 100, 60_000, whole=True)
        self.robustness.validate()

    def train_config(self, augment: AugmentConfig):
        from core.training import TrainConfig

        # validated on the digits the lesson measures: no second pass over the whole test set per epoch
        return TrainConfig(
            epochs=self.epochs,
            seed=self.seed,
            train_limit=self.train_limit,
            test_limit=self.robustness.test_digits,
            augment=augment,
        )


@dataclass
class LessonResult:
    """The three models measured (``reports``: the blog model, without, with), each training's figures
    (``trainings``: name → test accuracy, seconds per epoch, status), and whether it was stopped part-way."""

    config: LessonConfig
    reports: list[Robustness]
    trainings: dict[str, dict]
    stopped: bool = False
    seconds: float = 0.0

    def summary(self) -> dict:
        return {
            "augment": self.config.augment.text(),
            "epochs": self.config.epochs,
            "train_digits": self.config.train_limit or 60_000,
            "seed": self.config.seed,
            "stopped": self.stopped,
            "trainings": self.trainings,
            "models": [r.summary() for r in self.reports],
        }


def run_lesson(
    mnist,
    blog_bundle,
    config: LessonConfig,
    handwriting: tuple[np.ndarray, np.ndarray] | None = None,
    progress: ProgressCallback | None = None,
) -> LessonResult:
    """``mnist`` (``core.data.Mnist``), ``blog_bundle`` (the bundled article-II ``ModelBundle``), ``handwriting``:
    the learner's ``(images (H, 28, 28), labels (H,))`` or None. A stop ends the lesson after the current batch or
    measurement, with what was measured so far."""
    from core.spec import preset
    from core.training import train

    config.validate()
    started = time.perf_counter()
    n_train = min(config.train_limit or len(mnist.x_train), len(mnist.x_train))
    steps = math.ceil(n_train / config.train_config(OFF).batch_size) * config.epochs
    units = config.robustness.units
    reports, trainings, models, stopped = [], {}, [], False
    with progress_scope(progress, 2 * steps + 3 * units, "augmentation lesson") as prog:
        prog.on_step(0, {"phase": "moving and turning the test digits"})
        probe = prepare(mnist.x_test, mnist.y_test, config.robustness)
        for offset, (name, augment) in enumerate(((WITHOUT, OFF), (WITH, config.augment))):
            part = PartProgress(prog, offset * steps, {"model": name})
            result = train(preset(config.preset), config.train_config(augment), mnist, part)
            trainings[name] = {
                "test_accuracy": round(result.test_accuracy, 4),
                "epoch_seconds": [round(s, 2) for s in result.epoch_seconds],
                "status": result.status,
                "augment": augment.text(),
            }
            models.append((name, result.model, result.scaler))
            if result.status == "stopped" or prog.should_stop():
                stopped = True
                break
        if not stopped:
            for k, (name, model, scaler) in enumerate([(BLOG, blog_bundle.model, blog_bundle.scaler), *models]):
                reports.append(measure(name, predictor(model, scaler), probe, handwriting, prog, 2 * steps + k * units))
                if prog.should_stop() and len(reports) < 3:
                    stopped = True
                    break
    return LessonResult(config, reports, trainings, stopped, time.perf_counter() - started)
