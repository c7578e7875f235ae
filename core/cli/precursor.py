"""``precursor``: the coarse-pattern search for OIPs of maps that random starts miss (blog article X)."""

from __future__ import annotations

import time

from core.cli.common import _emit, add_backend_args, run_job


def cmd_precursor(args) -> int:
    from core.cli.oip import layer_channels
    from core.jobs.system import JobSpec
    from core.oip.precursor import DEFAULT_MODE, PrecursorConfig, check_feasible, parse_values
    from core.oip.search import OipConfig, parse_maps
    from core.runs import resolve_model_path

    started = time.perf_counter()
    channels = layer_channels(args.model, args.layer)
    base = PrecursorConfig(
        layer=args.layer,
        maps=(0,),
        grid=args.grid,
        values=parse_values(args.values),
        test_epochs=args.test_epochs,
        keep=args.keep,
        epochs=args.epochs,
        mode=args.mode or DEFAULT_MODE,
        step=args.step,
        refine=args.refine,
        compare_maps=args.compare,
    )
    base.validate()
    if args.backend == "local":
        check_feasible(base)  # on Ray the limit scales with the cluster's workers (checked there)
    if str(args.maps).strip().lower() == "failed":
        plain = run_job(args, JobSpec("oip", OipConfig(layer=args.layer), model=args.model, title="OIP"))
        maps = plain.failed_maps
        if not maps:
            return _emit(
                {
                    "layer": args.layer,
                    "n_maps": 0,
                    "rescued": 0,
                    "maps": {},
                    "note": "every map already has an OIP from a plain run",
                },
                started,
            )
    else:
        maps = parse_maps(args.maps, channels) or tuple(range(channels))
    config = base.with_(maps=tuple(int(m) for m in maps))
    result = run_job(args, JobSpec("precursor", config, model=args.model, title="precursor search"))
    out = result.save_npz(args.out) if args.out else None
    return _emit(
        {
            **result.summary(),
            "model": str(resolve_model_path(args.model)),
            "out": str(out) if out else None,
            "run_seconds": round(result.seconds, 3),
        },
        started,
    )


def register(sub) -> None:
    """``python -m core precursor --layer conv3 --maps failed --grid 3 ...``."""
    from core.oip.precursor import DEFAULT_MODE, MODES, PrecursorConfig
    from core.oip.search import OipConfig

    p = sub.add_parser("precursor", help="coarse-pattern search for OIPs of maps that random starts miss")
    p.add_argument("--model", default=None, help="run folder or its model.keras (default: the bundled model)")
    p.add_argument("--layer", default="conv3")
    p.add_argument("--maps", default="failed", help="failed (no OIP from a plain run), all, or indices like 5,7,16")
    p.add_argument("--grid", type=int, default=3, help="squares per side (2..5)")
    p.add_argument("--values", default="0.2,0.5,0.8", help="grey values of the squares (2..5 values in [0, 1])")
    p.add_argument("--test-epochs", type=int, default=10)
    p.add_argument("--keep", type=int, default=8, help="best patterns per map that are optimised fully")
    p.add_argument("--epochs", type=int, default=1200, help="epochs of the full optimisation")
    p.add_argument(
        "--mode",
        default=DEFAULT_MODE,
        choices=MODES,
        help="fast (default: one forward pass ranks all patterns for all maps) or faithful (the blog's "
        "test epochs on every pattern, map by map; many times slower)",
    )
    p.add_argument("--step", type=float, default=OipConfig.step)
    p.add_argument(
        "--refine",
        type=int,
        default=PrecursorConfig.refine,
        help="fast mode: candidates per map that get the test epochs (0: forward pass only)",
    )
    p.add_argument(
        "--compare", type=int, default=0, help="fast mode: sample maps that also get a faithful screen (overlap report)"
    )
    p.add_argument("--out", default=None, help="write the results to this .npz")
    add_backend_args(p)
    p.set_defaults(func=cmd_precursor)
