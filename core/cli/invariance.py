"""``invariance``: shift, rotate, scale or thicken one digit over a range; the prediction and each map's response."""

from __future__ import annotations

import sys
import time

from core.cli.activations import add_digit_args, digit_from_args


def register(sub) -> None:
    p = sub.add_parser("invariance", help="transform a digit over a range: the prediction and every map's response")
    add_digit_args(p)
    p.add_argument(
        "--transform",
        required=True,
        help="shift (px, to the right), rotate (degrees), scale (factor) "
        "or thickness (px of strokes added, negative: removed)",
    )
    p.add_argument("--values", default=None, help="comma-separated values (default: a range suited to the transform)")
    p.add_argument("--layer", default="conv3", help="the layer whose maps are followed (default conv3)")
    p.add_argument("--model", default=None, help="run folder or its model.keras (default: the bundled model)")
    p.set_defaults(func=_cmd_invariance)


def _cmd_invariance(args) -> int:
    import numpy as np

    from core.activations import ActivationModel
    from core.cli.common import _emit
    from core.experiments.invariance import UNITS, check_transform, sweep
    from core.runs import load_run, resolve_model_path

    started = time.perf_counter()
    values = None
    if args.values is not None:
        try:
            values = [float(v) for v in args.values.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--values {args.values!r} must be numbers separated by commas") from None
    check_transform(args.transform, values if values is not None else [0.0 if args.transform != "scale" else 1.0])
    raw, label, source = digit_from_args(args)
    am = ActivationModel.from_bundle(load_run(resolve_model_path(args.model)))
    result = sweep(am, raw, args.transform, values, args.layer)
    untouched = int(am.predict(am.scaler.transform(raw))[0].argmax())
    held = result.holds(untouched)
    span = "nowhere" if held is None else f"{held[0]:g}..{held[1]:g} {UNITS[args.transform]}"
    print(
        f"{source}: read as {untouched}; stays {untouched} for {args.transform} {span}; predictions "
        f"over the range: {' '.join(str(int(p)) for p in result.predicted)}",
        file=sys.stderr,
    )
    summary = result.summary(untouched)
    summary.update(
        source=source,
        label=label,
        predicted_untouched=untouched,
        most_changed_maps=[int(m) for m in np.argsort(-np.ptp(result.responses, axis=0))[:5]],
    )
    return _emit(summary, started)
