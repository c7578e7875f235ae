"""``oip``: optimal input patterns for the maps of a layer (one batched, compiled gradient ascent)."""

from __future__ import annotations

import time

from core.cli.common import _emit, add_backend_args, run_job


def layer_channels(model_path: str | None, layer: str) -> int:
    """How many maps (or units) ``layer`` of a run's model has; ValueError for an unknown layer."""
    from core.ascent.engine import AscentEngine
    from core.runs import load_run, resolve_model_path

    return AscentEngine(load_run(resolve_model_path(model_path)).model, layer).channels


def cmd_oip(args) -> int:
    from core.ascent.engine import CLASS_LAYER, parse_transforms
    from core.jobs.system import JobSpec
    from core.oip.search import OipConfig, parse_maps
    from core.runs import resolve_model_path

    started = time.perf_counter()
    try:
        weights = tuple(float(v) for v in args.scale_weights.split(","))
    except ValueError:
        raise ValueError(f"--scale-weights {args.scale_weights!r} must be 4 numbers separated by commas") from None
    layer, objective = args.layer, args.objective
    if objective == "class":  # a class score before the softmax: the maps of the output layer
        layer, objective = CLASS_LAYER, "map"
    neuron = None
    if objective == "neuron":
        try:
            neuron = tuple(int(v) for v in str(args.neuron).split(","))
            assert len(neuron) == 2
        except (ValueError, AssertionError):
            raise ValueError(f"--objective neuron needs --neuron ROW,COL (e.g. 3,3), got {args.neuron!r}") from None
    channels = layer_channels(args.model, layer)
    config = OipConfig(
        layer=layer,
        maps=parse_maps(args.maps, channels),
        epochs=args.epochs,
        step=args.step,
        starts=args.starts,
        scale_weights=weights,
        seed=args.seed,
        objective=objective,
        neuron=neuron,
        diversity=args.diversity,
        param=args.param,
        **parse_transforms(args.transforms),
    )
    config.validate()
    result = run_job(args, JobSpec("oip", config, model=args.model, title="OIP"))
    out = result.save_npz(args.out) if args.out else None
    return _emit(
        {**result.summary(), "model": str(resolve_model_path(args.model)), "out": str(out) if out else None}, started
    )


def register(sub) -> None:
    """``python -m core oip --layer conv3 --maps all --epochs 200 --out oips.npz``."""
    from core.ascent.engine import DEFAULT_DIVERSITY, MAX_DIVERSITY
    from core.ascent.starts import DEFAULT_SCALE_WEIGHTS
    from core.oip.search import OipConfig

    p = sub.add_parser("oip", help="optimal input patterns for the maps of a layer (batched gradient ascent)")
    p.add_argument("--model", default=None, help="run folder or its model.keras (default: the bundled model)")
    p.add_argument("--layer", default="conv3")
    p.add_argument("--maps", default="all", help="all, or indices/ranges like 0,3,10-15")
    p.add_argument("--epochs", type=int, default=OipConfig.epochs)
    p.add_argument("--step", type=float, default=OipConfig.step)
    p.add_argument(
        "--starts",
        type=int,
        default=1,
        help="random starts per map (≥ 2: the JSON gives each map's similarity of its starts' OIPs up to a shift)",
    )
    p.add_argument(
        "--objective",
        choices=("map", "neuron", "negative", "class"),
        default="map",
        help="map: its mean (the blog); neuron: one position (--neuron); negative: minimise the map "
        "(what it hates); class: a class score before the softmax (layer out)",
    )
    p.add_argument("--neuron", default=None, help="ROW,COL of the neuron for --objective neuron")
    p.add_argument(
        "--transforms",
        default="",
        help="robustness transforms each epoch, any of jitter,scale,rotate (tuned for digits: 1 px, "
        "±10 %% zoom, ±10°); default none, as the blog",
    )
    p.add_argument(
        "--param",
        choices=("pixel", "fourier"),
        default="pixel",
        help="what the ascent moves: the pixels (the blog) or a decorrelated Fourier parameterisation",
    )
    p.add_argument(
        "--diversity",
        type=float,
        nargs="?",
        default=0.0,
        const=DEFAULT_DIVERSITY,
        metavar="W",
        help="with --starts ≥ 2, push a map's starts apart: a penalty of W × 10 %% of each start's objective times its "
        f"similarity up to a shift to the map's other starts (the JSON's measure); 0..{MAX_DIVERSITY:g}; a bare "
        "--diversity is %(const)g (the page's default); default 0: off, as the blog",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--scale-weights",
        default=",".join(str(w) for w in DEFAULT_SCALE_WEIGHTS),
        help="weights of the 4 noise scales (28, 14, 7, 4 cells per side)",
    )
    p.add_argument("--out", default=None, help="write the OIPs to this .npz")
    add_backend_args(p)
    p.set_defaults(func=cmd_oip)
