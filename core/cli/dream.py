"""``dream``: let the CNN dream on a photo (Deep Dream), writing a PNG that carries its settings."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from core.cli.common import _emit, add_backend_args, run_job


def read_photo(path: str | None):
    """(photo as an (H, W) or (H, W, 3) uint8 array, its name): the file, or scikit-learn's flower."""
    import numpy as np

    from core.dream.deep_dream import default_photo
    from core.images import decode_image

    if path is None:
        return default_photo(), "scikit-learn flower.jpg"
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--image {path!r} is not a file")
    return np.asarray(decode_image(p.read_bytes())), str(p)


def cmd_dream(args) -> int:
    from core.dream.deep_dream import DreamConfig, parse_terms
    from core.files import atomic_write_bytes
    from core.jobs.system import JobSpec

    started = time.perf_counter()
    settings = DreamConfig(
        mode=args.mode,
        layer=args.layer,
        map=args.map,
        terms=parse_terms(args.layers),
        loops=args.loops,
        octaves=args.octaves,
        octave_scale=args.octave_scale,
        epochs=args.epochs,
        step_size=args.step_size,
        invert=args.invert,
        recolour=args.recolour,
        widen=args.widen,
        max_side=args.max_side,
        seed=args.seed,
    )
    settings.validate()
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {args.out!r} must end in .png")
    photo, source = read_photo(args.image)
    result = run_job(args, JobSpec("dream", settings, model=args.model, inputs={"photo": photo}, title="Deep Dream"))
    atomic_write_bytes(out, result.png_bytes())  # never a half-written PNG
    for note in result.notes:
        print(note, file=sys.stderr)
    return _emit(
        {**result.summary(), "image": source, "out": str(out), "dream_seconds": round(result.seconds, 3)}, started
    )


def register(sub) -> None:
    from core.dream.deep_dream import MODES, DreamConfig

    d = DreamConfig()
    p = sub.add_parser(
        "dream",
        help="let the CNN dream on a photo (Deep Dream)",
        description="Deep Dream of the MNIST CNN on a photo; writes a PNG and prints one "
        "JSON line with the settings and seconds.",
    )
    p.add_argument("--model", default=None, help="run folder or its model.keras (default: the bundled model)")
    p.add_argument("--image", default=None, help="photo file (default: scikit-learn's flower.jpg)")
    p.add_argument("--mode", default=d.mode, choices=MODES)
    p.add_argument("--layer", default=d.layer, help="layer of the single map (map and tiles modes)")
    p.add_argument("--map", type=int, default=d.map, help="map index in --layer")
    p.add_argument(
        "--layers", default=None, help="weighted cost terms for layers/tiles modes, e.g. 'conv2=0.5,conv3=1,conv3:56=2'"
    )
    p.add_argument("--loops", type=int, default=d.loops, help="map mode: ascent/upscale/re-add loops")
    p.add_argument("--octaves", type=int, default=d.octaves, help="layers/tiles modes: number of octaves")
    p.add_argument("--octave-scale", type=float, default=d.octave_scale, help="size ratio between octaves (0: auto)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="ascent steps per loop or octave")
    p.add_argument("--step-size", type=float, default=d.step_size)
    p.add_argument("--invert", action="store_true", help="invert the photo's polarity before dreaming")
    p.add_argument("--recolour", action="store_true", help="recolour the result with the photo's colours")
    p.add_argument("--widen", type=float, default=d.widen, help="percent clipped when widening the values (0: off)")
    p.add_argument("--max-side", type=int, default=d.max_side, help="dream at most this many pixels wide/high")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", required=True, help="output PNG file")
    add_backend_args(p)
    p.set_defaults(func=cmd_dream)
