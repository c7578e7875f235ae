"""``train`` (a CNN, saved as a run) and ``evaluate`` (a run's test accuracy)."""

from __future__ import annotations

import argparse
import time

from core.cli.common import _emit, add_backend_args, run_job


def cmd_train(args: argparse.Namespace) -> int:
    from core.augmentation import parse_augment
    from core.jobs.kinds import TrainJobConfig
    from core.jobs.system import JobSpec
    from core.runs import read_meta
    from core.spec import preset
    from core.training import TrainConfig

    started = time.perf_counter()
    config = TrainConfig(
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        l2=args.l2,
        schedule=args.schedule,
        train_limit=args.train_limit,
        checkpoints=args.checkpoints,
        augment=parse_augment(args.augment),
    )
    config.validate()
    job = TrainJobConfig(preset(args.preset), config, args.preset, args.name, args.out, args.mnist)
    outcome = run_job(args, JobSpec("train", job, title="training"))
    if outcome.run_dir is None:
        raise ValueError(outcome.message or "training diverged before its first epoch; nothing was saved")
    meta = read_meta(outcome.run_dir)
    return _emit(
        {
            "test_accuracy": round(meta["test_accuracy"], 5),
            "test_loss": round(meta["test_loss"], 5),
            "params": meta["params"],
            "train_seconds": round(meta["seconds"], 2),
            "epochs_done": len(meta["epoch_seconds"]),
            "device": meta["device"],
            "status": meta["status"],
            "run": str(outcome.run_dir),
            "preset": args.preset,
            "seed": config.seed,
            "checkpoints": len(meta.get("checkpoints", [])),
            "augment": config.augment.text(),
            "epoch_seconds": [round(s, 2) for s in meta["epoch_seconds"]],
        },
        started,
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.data import load_mnist
    from core.device import FORWARD_BATCH
    from core.runs import load_run, resolve_model_path
    from core.spec import count_params

    started = time.perf_counter()
    bundle = load_run(resolve_model_path(args.model))
    mnist = load_mnist(args.mnist)
    probs = bundle.model.predict(bundle.scaler.transform(mnist.x_test), batch_size=FORWARD_BATCH, verbose=0)
    accuracy = float((probs.argmax(axis=1) == mnist.y_test).mean())
    return _emit(
        {
            "test_accuracy": round(accuracy, 5),
            "params": count_params(bundle.spec),
            "model": str(bundle.path),
            "n_test": int(len(mnist.y_test)),
        },
        started,
    )


def register(sub) -> None:
    from core.augmentation.augment import AUGMENT_HELP
    from core.spec import DEFAULT_PRESET, PRESETS
    from core.training import CHECKPOINTS, OPTIMIZERS, SCHEDULES

    p = sub.add_parser("train", help="train a CNN and save it as a run")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", default="rmsprop", choices=OPTIMIZERS)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--schedule", default="none", choices=SCHEDULES)
    p.add_argument("--l2", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training digits")
    p.add_argument(
        "--checkpoints",
        default="none",
        choices=CHECKPOINTS,
        help="keep the weights for a replay: after every epoch, or also every tenth of the first epoch",
    )
    p.add_argument(
        "--augment",
        default="none",
        help="random changes to every training batch, e.g. shift=2,rotate=10,zoom=0.1,thickness=1,elastic=2 "
        "(ranges: " + AUGMENT_HELP + "; sigma=N shapes the elastic field); none (the default): the blog's training",
    )
    p.add_argument("--mnist", default=None, help="path to a Keras-layout mnist.npz")
    p.add_argument("--out", default=None, help="runs folder (default: $MNIST_EXPLORER_RUNS or ./runs)")
    p.add_argument("--name", default=None, help="run folder name")
    add_backend_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy of a run (default: the bundled model)")
    p.add_argument("--model", default=None, help="run folder or its model.keras")
    p.add_argument("--mnist", default=None, help="path to a Keras-layout mnist.npz")
    p.set_defaults(func=cmd_evaluate)
