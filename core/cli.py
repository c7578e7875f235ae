"""Command line: ``python -m core <command> ...``.

Every command prints progress on stderr and, as its last stdout line, one JSON object
with its figures and ``seconds``. Bad arguments end with a one-line error and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

from .progress import PrintProgress


def _emit(result: dict, started: float) -> int:
    result["seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(result))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .data import load_mnist
    from .runs import save_run
    from .spec import preset
    from .training import TrainConfig, train

    started = time.perf_counter()
    config = TrainConfig(optimizer=args.optimizer, learning_rate=args.learning_rate, epochs=args.epochs,
                         batch_size=args.batch_size, seed=args.seed, l2=args.l2, schedule=args.schedule,
                         train_limit=args.train_limit)
    config.validate()
    spec = preset(args.preset)
    result = train(spec, config, load_mnist(args.mnist), progress=PrintProgress())
    run_dir = save_run(result, args.out, name=args.name, extra_meta={"preset": args.preset})
    return _emit({**result.summary(), "run": str(run_dir), "preset": args.preset}, started)


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .data import load_mnist
    from .runs import load_run, resolve_model_path
    from .spec import count_params

    started = time.perf_counter()
    bundle = load_run(resolve_model_path(args.model))
    mnist = load_mnist(args.mnist)
    probs = bundle.model.predict(bundle.scaler.transform(mnist.x_test), batch_size=1024, verbose=0)
    accuracy = float((probs.argmax(axis=1) == mnist.y_test).mean())
    return _emit({"test_accuracy": round(accuracy, 5), "params": count_params(bundle.spec),
                  "model": str(bundle.path), "n_test": int(len(mnist.y_test))}, started)


def _add_train(sub) -> None:
    from .spec import DEFAULT_PRESET, PRESETS
    from .training import OPTIMIZERS, SCHEDULES

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
    p.add_argument("--mnist", default=None, help="path to a Keras-layout mnist.npz")
    p.add_argument("--out", default=None, help="runs folder (default: $MNIST_EXPLORER_RUNS or ./runs)")
    p.add_argument("--name", default=None, help="run folder name")
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="test accuracy of a run (default: the bundled model)")
    p.add_argument("--model", default=None, help="run folder or its model.keras")
    p.add_argument("--mnist", default=None, help="path to a Keras-layout mnist.npz")
    p.set_defaults(func=cmd_evaluate)


COMMANDS: list[Callable] = [_add_train, _add_evaluate]
# Feature modules that add sub-commands through their own ``register_cli(subparsers)``.
FEATURE_MODULES = ("core.oip", "core.precursor", "core.clustering", "core.dream", "core.activations")


def build_parser() -> argparse.ArgumentParser:
    import importlib
    import importlib.util

    parser = argparse.ArgumentParser(prog="python -m core", description="MNIST CNN Explorer command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    for name in FEATURE_MODULES:
        if importlib.util.find_spec(name) is not None:
            module = importlib.import_module(name)
            if hasattr(module, "register_cli"):
                module.register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # MnistUnavailableError and friends: one clear line, no traceback
        if type(exc).__name__ == "MnistUnavailableError":
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
