"""``augment-lesson``: article II trained without and with augmentation (same seed and epochs), both measured beside
the bundled blog model on the test set, shifted and rotated test sets, invariance ranges over 200 test digits and
optionally a handwriting set (``core.augmentation.lesson``)."""

from __future__ import annotations

import argparse
import time

from core.cli.common import _emit, add_backend_args, run_job


def cmd_augment_lesson(args: argparse.Namespace) -> int:
    from core.augmentation import parse_augment
    from core.augmentation.lesson import LessonConfig
    from core.experiments.robustness import RobustnessConfig
    from core.jobs.system import JobSpec

    started = time.perf_counter()
    config = LessonConfig(
        augment=parse_augment(args.augment),
        epochs=args.epochs,
        train_limit=args.train_limit,
        seed=args.seed,
        robustness=RobustnessConfig(test_digits=args.test_digits, invariance_digits=args.invariance_digits),
        mnist=args.mnist,
    )
    config.validate()
    inputs = {}
    if args.handwriting:
        from pathlib import Path

        from core.experiments.personal_set import PersonalSet

        hand = PersonalSet.from_npz(Path(args.handwriting).read_bytes(), Path(args.handwriting).name)
        inputs = {"images": hand.images, "labels": hand.labels}
    result = run_job(args, JobSpec("augment-lesson", config, inputs=inputs, title="augmentation lesson"))
    return _emit(result.summary() | {"lesson_seconds": round(result.seconds, 1)}, started)


def register(sub) -> None:
    from core.augmentation.lesson import LESSON_AUGMENT

    p = sub.add_parser(
        "augment-lesson",
        help="train article II without and with augmentation and measure both beside the blog's model",
    )
    p.add_argument("--augment", default=LESSON_AUGMENT, help=f"the augmentation to teach (default {LESSON_AUGMENT})")
    p.add_argument("--epochs", type=int, default=1, help="epochs of each training (the blog: 5)")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training digits")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--test-digits", type=int, default=None, help="test digits for the accuracies (default: all)")
    p.add_argument("--invariance-digits", type=int, default=200, help="test digits for the invariance ranges")
    p.add_argument("--handwriting", default=None, help="a handwriting set (.npz with images and labels)")
    p.add_argument("--mnist", default=None, help="path to a Keras-layout mnist.npz")
    add_backend_args(p)
    p.set_defaults(func=cmd_augment_lesson)
