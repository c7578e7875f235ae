"""``knockout``: switch maps off and see what one digit and the whole test set lose (``core.experiments.knockout``)."""

from __future__ import annotations

import sys
import time

from core.cli.activations import add_digit_args, digit_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "knockout",
        help="switch off maps of conv layers: this digit's probabilities and the test "
        "accuracy (overall and per class) before and after",
    )
    add_digit_args(p)
    p.add_argument("--maps", default=None, help="maps to switch off, e.g. conv3:3,17 or 'conv2:5;conv3:0-7'")
    p.add_argument(
        "--most-active",
        type=int,
        default=None,
        metavar="K",
        help="switch off the K maps of --layer that respond most to this digit (instead of --maps)",
    )
    p.add_argument("--layer", default="conv3", help="the layer of --most-active and --rank (default conv3)")
    p.add_argument(
        "--rank",
        action="store_true",
        help="also rank every map of --layer by the accuracy lost when it alone is switched off",
    )
    p.add_argument("--model", default=None, help="run folder or its model.keras (default: the bundled model)")
    p.set_defaults(func=_cmd_knockout)


def _rounded(values) -> list:
    return [None if v != v else round(float(v), 4) for v in values]  # NaN (a class without digits) → null


def _cmd_knockout(args) -> int:
    import numpy as np

    from core.cli.common import _emit
    from core.data import load_mnist
    from core.experiments.knockout import Knockout, most_active, parse_knockout, score
    from core.progress import PrintProgress
    from core.runs import load_run, resolve_model_path

    started = time.perf_counter()
    if (args.maps is None) == (args.most_active is None):
        raise ValueError("name the maps to switch off with either --maps (e.g. conv3:3,17) or --most-active K")
    raw, label, source = digit_from_args(args)
    bundle = load_run(resolve_model_path(args.model))
    ko = Knockout(bundle.model)
    x = bundle.scaler.transform(raw)
    if args.maps is not None:
        maps = parse_knockout(args.maps)
    else:
        if args.layer not in ko.mask_layers:
            raise ValueError(f"--layer {args.layer!r} has no maps to knock out; allowed: {', '.join(ko.mask_layers)}")
        maps = {args.layer: most_active(ko.layer_output(x, args.layer)[0], args.most_active)}
    keep = ko.keep_vector(maps)
    before, after = ko.probabilities(x)[0], ko.probabilities(x, keep)[0]
    mnist = load_mnist(args.mnist)
    x_test = bundle.scaler.transform(mnist.x_test)
    t0 = time.perf_counter()
    test_before, test_after = (
        score(ko.probabilities(x_test), mnist.y_test),
        score(ko.probabilities(x_test, keep), mnist.y_test),
    )
    test_seconds = time.perf_counter() - t0
    print(
        f"{source}: predicted {int(np.argmax(before))} → {int(np.argmax(after))} with {maps} off; test accuracy "
        f"{test_before.overall:.2%} → {test_after.overall:.2%}",
        file=sys.stderr,
    )
    result = {
        "source": source,
        "label": label,
        "maps": maps,
        "digit": {
            "before": _rounded(before),
            "after": _rounded(after),
            "predicted_before": int(np.argmax(before)),
            "predicted_after": int(np.argmax(after)),
        },
        "test": {
            "digits": test_before.n,
            "accuracy_before": round(test_before.overall, 4),
            "accuracy_after": round(test_after.overall, 4),
            "per_class_before": _rounded(test_before.per_class),
            "per_class_after": _rounded(test_after.per_class),
            "seconds": round(test_seconds, 3),
        },
    }
    if args.rank:
        if args.layer not in ko.mask_layers:
            raise ValueError(f"--layer {args.layer!r} has no maps to rank; allowed: {', '.join(ko.mask_layers)}")
        imp = ko.importance(x_test, mnist.y_test, args.layer, progress=PrintProgress())
        order = imp.ranking()
        result["ranking"] = {
            "layer": args.layer,
            "maps": [int(m) for m in order],
            "accuracy_drop": _rounded(imp.drop()[order]),
            "seconds": round(imp.seconds, 3),
        }
    return _emit(result, started)
