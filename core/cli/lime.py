"""``lime``: LIME for one digit: the superpixels whose presence raises or lowers one class's probability."""

from __future__ import annotations

import sys
import time

from core.cli.activations import add_digit_args, digit_from_args


def register(sub) -> None:
    p = sub.add_parser("lime", help="LIME for one digit: which superpixels raise or lower a class's probability")
    add_digit_args(p)
    p.add_argument(
        "--class", dest="class_index", type=int, default=None, help="class to explain (default: the predicted one)"
    )
    p.add_argument("--samples", type=int, default=1000, help="perturbed copies, 10..20000 (default 1000)")
    p.add_argument(
        "--segments",
        default="ink",
        help="superpixels: ink (stroke pieces and paper per cell, default) or grid (square cells)",
    )
    p.add_argument("--size", type=int, default=4, help="cell side in pixels, 2..14 (default 4)")
    p.add_argument(
        "--hide", default="mean", help="what hidden superpixels show: mean (the grey mean digit, default) or black"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--model", default=None, help="run folder or its model.keras (default: the bundled model)")
    p.set_defaults(func=_cmd_lime)


def _where(entry: dict) -> str:
    top, left, bottom, right = entry["box"]
    what = "ink" if entry["ink"] else "paper"
    return f"the {what} at rows {top}..{bottom} cols {left}..{right} ({entry['weight']:+.3f})"


def _cmd_lime(args) -> int:
    from core.activations import ActivationModel
    from core.attribution.lime import check_arguments, explain
    from core.cli.common import _emit
    from core.runs import load_run, resolve_model_path

    started = time.perf_counter()
    check_arguments(
        0 if args.class_index is None else args.class_index,
        args.samples,
        args.segments,
        args.hide,
        args.size,
        args.seed,
    )
    raw, label, source = digit_from_args(args)
    am = ActivationModel.from_bundle(load_run(resolve_model_path(args.model)))
    probs = am.predict(am.scaler.transform(raw))[0]
    predicted = int(probs.argmax())
    k = predicted if args.class_index is None else args.class_index
    result = explain(
        am, raw, k, samples=args.samples, segmentation=args.segments, size=args.size, hide=args.hide, seed=args.seed
    )
    positive, negative = result.top(3, 1), result.top(3, -1)
    print(
        f"{source}: read as {predicted}; LIME for class {k} (p={result.probability:.4f}) over "
        f"{result.n_segments} {args.segments} superpixels, {args.samples} samples: most for it "
        f"{_where(positive[0]) if positive else 'none'}, most against it "
        f"{_where(negative[0]) if negative else 'none'}; local fit R² {result.score:.3f}",
        file=sys.stderr,
    )
    return _emit(
        {
            "source": source,
            "label": label,
            "predicted": predicted,
            "class": k,
            "probability": round(result.probability, 6),
            "segmentation": args.segments,
            "size": args.size,
            "hide": args.hide,
            "samples": args.samples,
            "seed": args.seed,
            "segments": result.n_segments,
            "score": round(result.score, 4),
            "intercept": round(result.intercept, 5),
            "top_positive": positive,
            "top_negative": negative,
            "explain_seconds": round(result.seconds, 3),
        },
        started,
    )
