"""``handwriting``: your own digits as a personal set (``core.experiments.personal_set``): add images to it, score a
model on
it beside MNIST, and fine-tune a copy of the model on MNIST plus the set (``core.experiments.fine_tune``, a new run)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from core.cli.common import add_backend_args


def register(sub) -> None:
    p = sub.add_parser(
        "handwriting",
        help="your own digits: add images to a personal set (.npz), score a model on "
        "it beside MNIST, fine-tune a copy on MNIST plus the set",
    )
    p.add_argument("set", help="the personal set (.npz with images and labels; the page's Download writes one)")
    p.add_argument(
        "--add",
        nargs="+",
        default=None,
        metavar="IMAGE",
        help="image files of digits to add to the set (all with --label); the set is created if missing "
        "and written atomically",
    )
    p.add_argument("--label", default=None, help="the true digit (0-9) of the --add images")
    p.add_argument("--model", default=None, help="run folder or its model.keras (default: the bundled model)")
    p.add_argument("--mnist", default=None, help="Keras-layout mnist.npz (default: $MNIST_NPZ or Keras' download)")
    p.add_argument(
        "--fine-tune",
        action="store_true",
        help="fine-tune a copy of the model on MNIST plus the set and keep it as a new run",
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--mnist-digits", type=int, default=10_000, help="MNIST training digits mixed in (default 10000)")
    p.add_argument("--repeat", type=int, default=20, help="times each of your digits is shown per epoch (default 20)")
    p.add_argument("--hold-out", type=float, default=0.25, help="share of your digits kept out of training (0-0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="name of the new run (default: <model>-yours)")
    p.add_argument("--out", default=None, help="runs folder for the new run (default: $MNIST_EXPLORER_RUNS or ./runs)")
    add_backend_args(p)
    p.set_defaults(func=_cmd_handwriting)


def _read_set(path: Path):
    from core.experiments.personal_set import PersonalSet

    if not path.exists():
        return PersonalSet()
    return PersonalSet.from_npz(path.read_bytes(), str(path))


def _cmd_handwriting(args) -> int:
    from core.cli.common import _emit, run_job
    from core.data import load_mnist
    from core.experiments.personal_set import check_label, score_set
    from core.files import atomic_write_bytes
    from core.images import file_to_mnist_digit
    from core.runs import load_run, resolve_model_path, run_title, sanitize_name

    started = time.perf_counter()
    path = Path(args.set)
    if args.add is None and not path.is_file():
        raise ValueError(
            f"{str(path)!r} is not a file; make a set with --add IMAGE ... --label K, or download one "
            "from the Experiments page"
        )
    personal = _read_set(path)
    added = 0
    if args.add is not None:
        if args.label is None:
            raise ValueError("--add needs --label: the true digit (0-9) of those images")
        label = check_label(args.label)
        digits = []
        for name in args.add:
            try:
                digits.append(file_to_mnist_digit(Path(name).read_bytes()))
            except OSError as exc:
                raise ValueError(f"{name!r} could not be read: {exc.strerror or exc}") from None
            except ValueError as exc:
                raise ValueError(f"{name!r}: {exc}") from None
        import numpy as np

        personal = personal.add_many(np.stack(digits), label)  # every image read before the set is written
        atomic_write_bytes(path, personal.to_npz())
        added = len(digits)
    if len(personal) == 0:
        raise ValueError(f"{str(path)!r} holds no digits; add some with --add IMAGE ... --label K")
    bundle = load_run(resolve_model_path(args.model))
    mnist = load_mnist(args.mnist)
    yours = score_set(bundle.model, bundle.scaler, personal.images, personal.labels)
    theirs = score_set(bundle.model, bundle.scaler, mnist.x_test, mnist.y_test)
    print(
        f"{bundle.name}: {yours.accuracy.overall:.1%} of your {len(personal)} digits, "
        f"{theirs.accuracy.overall:.2%} of MNIST's {len(mnist.y_test):,} test digits",
        file=sys.stderr,
    )
    result = {
        "set": str(path),
        "digits": len(personal),
        "added": added,
        "model": bundle.name,
        "accuracy_yours": round(yours.accuracy.overall, 4),
        "accuracy_mnist": round(theirs.accuracy.overall, 4),
        "per_class_count": yours.counts.tolist(),
        "per_class_missed": yours.misses.tolist(),
        "missed": yours.missed.tolist(),
    }
    if args.fine_tune:
        from core.experiments.fine_tune import FineTuneConfig
        from core.jobs.kinds import FineTuneJobConfig
        from core.jobs.system import JobSpec

        config = FineTuneConfig(
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            mnist_digits=args.mnist_digits,
            repeat=args.repeat,
            hold_out=args.hold_out,
            seed=args.seed,
        )
        job = FineTuneJobConfig(
            config, args.name or sanitize_name(f"{run_title(bundle.path)}-yours"), args.out, args.mnist
        )
        outcome = run_job(
            args,
            JobSpec(
                "fine-tune",
                job,
                model=str(bundle.path),
                title="fine-tuning",
                inputs={"images": personal.images, "labels": personal.labels},
            ),
        )
        for note in outcome.notes:
            print(note, file=sys.stderr)
        result["fine_tune"] = {
            "status": outcome.status,
            "run": str(outcome.run_dir) if outcome.run_dir else None,
            "held_out": int(len(outcome.held_out)),
            "seconds": round(outcome.seconds, 2),
            **{
                name: {
                    "before": round(outcome.before[name].accuracy.overall, 4),
                    "after": round(outcome.after[name].accuracy.overall, 4),
                }
                for name in outcome.after
            },
        }
    return _emit(result, started)
