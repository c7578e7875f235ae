"""``compare``: do two runs of one architecture learn the same maps? (map alignment, ``core.compare.alignment``)"""

from __future__ import annotations

import sys
import time


def register(sub) -> None:
    p = sub.add_parser("compare", help="align the maps of two runs: per conv layer, the share of maps learnt by both")
    p.add_argument("run_a", help="run folder (or its model.keras); 'bundled' for the bundled article-II model")
    p.add_argument("run_b", help="the other run folder")
    p.add_argument("--layers", default="conv1,conv2,conv3", help="map layers to align, comma-separated")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="correlation from which a matched pair counts as the same map (default 0.5)",
    )
    p.add_argument("--digits", type=int, default=10_000, help="how many MNIST test digits (default all 10,000)")
    p.add_argument("--mnist", default=None, help="Keras-layout mnist.npz (default: $MNIST_NPZ or Keras' download)")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args) -> int:
    from core.cli.common import _emit
    from core.compare.alignment import DEFAULT_THRESHOLD, align
    from core.data import load_mnist
    from core.progress import PrintProgress
    from core.runs import load_run, resolve_model_path

    started = time.perf_counter()
    layers = tuple(n.strip() for n in args.layers.split(",") if n.strip())
    if args.digits < 2:
        raise ValueError(f"--digits {args.digits} must be at least 2")
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    bundles = [load_run(resolve_model_path(None if r == "bundled" else r)) for r in (args.run_a, args.run_b)]
    mnist = load_mnist(args.mnist)
    result = align(bundles[0], bundles[1], mnist.x_test[: args.digits], layers, threshold, progress=PrintProgress())
    for layer in result.layers.values():
        print(layer.sentence(bundles[0].name, bundles[1].name), file=sys.stderr)
    summary = result.summary()
    summary.update(run_a=str(bundles[0].path), run_b=str(bundles[1].path), align_seconds=round(result.seconds, 3))
    return _emit(summary, started)
