"""Command line: ``python -m core <command> ...``, one module per command in this package.

Every command prints progress on stderr and, as its last stdout line, one JSON object
with its figures, ``seconds`` and ``device`` (``core.cli.common._emit``). Bad arguments end with a one-line
error and exit code 2. TensorFlow's own log lines are kept off stderr (``core.device.quiet_tensorflow_logs``)
unless ``--verbose`` (anywhere on the line) or ``MNIST_EXPLORER_VERBOSE=1`` asks for them.
Commands that run long work build a ``core.jobs.system.JobSpec`` and hand it to ``core.cli.common.run_job``, so the
command line computes exactly what the dashboard's job would (``--backend local|ray``).

A new command is a module here with ``register(subparsers)`` and its name in ``MODULES``.
"""

from __future__ import annotations

import argparse
import sys

MODULES = (
    "train",
    "activations",
    "oip",
    "precursor",
    "clustering",
    "dream",
    "compare",
    "knockout",
    "attack",
    "invariance",
    "handwriting",
    "lime",
    "attribute",
    "import_model",
    "replay",
    "transfer",
    "augment_lesson",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="python -m core", description="MNIST CNN Explorer command line")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also print TensorFlow's own log lines (C++ and absl; as MNIST_EXPLORER_VERBOSE=1 does); "
        "allowed anywhere on the line",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in MODULES:
        importlib.import_module(f"core.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    from core.device import quiet_tensorflow_logs

    quiet_tensorflow_logs(True if verbose else None)  # before the commands' modules import TensorFlow
    args = build_parser().parse_args([a for a in argv if a != "--verbose"])
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
