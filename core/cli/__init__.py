"""Command line: ``python -m core <command> ...``, one module per command in this package.

Every command prints progress on stderr and, as its last stdout line, one JSON object
with its figures and ``seconds``. Bad arguments end with a one-line error and exit code 2.
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
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="python -m core", description="MNIST CNN Explorer command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in MODULES:
        importlib.import_module(f"core.cli.{name}").register(sub)
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
