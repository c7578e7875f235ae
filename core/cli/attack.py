"""``attack``: fool the network with a targeted change of one digit (FGSM or PGD, ``core.experiments.attack``)."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

from core.cli.activations import add_digit_args, digit_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "attack",
        help="change a digit by at most BUDGET grey levels per pixel so the model reads "
        "the target class; the smallest budget that does it",
    )
    add_digit_args(p)
    p.add_argument("--target", type=int, required=True, help="the class the model should read (0-9)")
    p.add_argument("--method", default="pgd", help="fgsm (one step) or pgd (iterated, projected; default)")
    p.add_argument("--budget", type=int, default=32, help="most grey levels a pixel may change, 1-255 (default 32)")
    p.add_argument("--steps", type=int, default=20, help="PGD steps (default 20)")
    p.add_argument(
        "--pixels",
        default="ink",
        help="ink: only pixels where training digits have ink (default); "
        "all: every pixel, the nearly constant border too",
    )
    p.add_argument("--model", default=None, help="run folder or its model.keras (default: the bundled model)")
    p.add_argument("--out", default=None, help="save the changed digit as this PNG")
    p.set_defaults(func=_cmd_attack)


def _cmd_attack(args) -> int:
    from PIL import Image

    from core.cli.common import _emit
    from core.experiments.attack import Attacker, check_budget, check_method, check_pixels
    from core.files import atomic_write_bytes
    from core.runs import load_run, resolve_model_path

    started = time.perf_counter()
    check_method(args.method)
    check_pixels(args.pixels)
    check_budget(args.budget)
    if args.out and Path(args.out).suffix.lower() != ".png":
        raise ValueError(f"--out {args.out!r} must end in .png")
    raw, label, source = digit_from_args(args)
    bundle = load_run(resolve_model_path(args.model))
    result = Attacker(bundle.model, bundle.scaler).attack(
        raw, args.target, args.budget, args.method, args.steps, args.pixels
    )
    print(
        f"{source}: {result.predicted_before} → {result.predicted_after} ({args.method}, at most {args.budget} grey "
        f"levels, {args.pixels} pixels); the smallest budget that makes it a {args.target}: "
        f"{result.smallest_budget if result.smallest_budget is not None else 'none up to 255'}",
        file=sys.stderr,
    )
    summary = result.summary()
    summary.pop("smallest_budget")  # the command's "budget" is the smallest one; the one allowed is "budget_used"
    summary.update(budget_used=summary.pop("budget"), budget=result.smallest_budget, source=source, label=label)
    if args.out:
        buf = io.BytesIO()
        Image.fromarray(result.changed).save(buf, format="PNG")
        atomic_write_bytes(Path(args.out), buf.getvalue())
        summary["out"] = str(args.out)
    return _emit(summary, started)
