"""``activations``: every layer's activations, saliency, occlusion and Grad-CAM for one digit."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np


def register(sub) -> None:
    p = sub.add_parser("activations", help="every layer's activations, saliency and occlusion for one digit")
    add_digit_args(p)
    p.add_argument("--model", default=None, help="run folder or its model.keras (default: the bundled model)")
    p.add_argument(
        "--class",
        dest="class_index",
        type=int,
        default=None,
        help="class for saliency/occlusion/Grad-CAM (default: the predicted one)",
    )
    p.add_argument("--patch", type=int, default=4, help="occlusion patch side in pixels")
    p.add_argument("--out", default=None, help="write all arrays to this .npz file")
    p.set_defaults(func=_cmd_activations)


def add_digit_args(p) -> None:
    """``--index`` (an MNIST test digit) or ``--image`` (a photo or scan of a digit), and ``--mnist``."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--index", type=int, default=227, help="MNIST test digit (default 227, the blog's 4)")
    src.add_argument("--image", default=None, help="an image file of a digit instead (PNG, JPEG, ...)")
    p.add_argument("--mnist", default=None, help="Keras-layout mnist.npz (needed for --index ≥ the shipped 2,000)")


def digit_from_args(args) -> tuple[np.ndarray, int | None, str]:
    """The digit ``--index`` or ``--image`` names: raw ``(28, 28)`` 0..255, its label (None for a file) and
    where it came from."""
    from core.data import load_mnist, load_sample_digits
    from core.images import ImageInputError, file_to_mnist_digit

    if args.image:
        path = Path(args.image)
        if not path.is_file():
            raise ValueError(f"--image {args.image!r} is not a file")
        try:
            return file_to_mnist_digit(path.read_bytes()), None, str(path)
        except ImageInputError as exc:
            raise ValueError(f"--image {args.image!r}: {exc}") from exc
    sample = load_sample_digits()
    if args.index < 0:
        raise ValueError(f"--index {args.index} must be ≥ 0")
    if args.index in set(sample.indices.tolist()):
        raw, label = sample.by_test_index(args.index)
    else:
        mnist = load_mnist(args.mnist)
        if args.index >= len(mnist.x_test):
            raise ValueError(f"--index {args.index} is outside 0..{len(mnist.x_test) - 1}")
        raw, label = mnist.x_test[args.index], int(mnist.y_test[args.index])
    return raw, label, f"MNIST test digit {args.index}"


def _cmd_activations(args) -> int:
    from core.activations import ActivationModel, spatial_layer_info
    from core.files import atomic_write_bytes
    from core.progress import PrintProgress, progress_scope
    from core.runs import load_run, resolve_model_path

    started = time.perf_counter()
    if args.out and Path(args.out).suffix != ".npz":
        raise ValueError(f"--out {args.out!r} must end in .npz")
    prog = PrintProgress()
    raw, label, source = digit_from_args(args)
    print(f"loading model {args.model or 'bundled'}", file=sys.stderr, flush=True)
    bundle = load_run(resolve_model_path(args.model))
    am = ActivationModel.from_bundle(bundle)
    x = bundle.scaler.transform(raw)
    am.activations(x)  # trace once, so the timing below is the steady-state call
    result = am.activations(x)
    k = result.predicted if args.class_index is None else am.check_class(args.class_index)
    with progress_scope(prog, 3, "explanations") as p:
        sal = am.saliency(x, k)
        p.on_step(1)
        occ = am.occlusion(raw, k, patch=args.patch, stride=1)
        p.on_step(2)
        cam = am.grad_cam(x, k) if am.cam_layer else None  # a dense-only model has no maps for Grad-CAM
        p.on_step(3)
    summary = {
        "source": source,
        "label": label,
        "predicted": result.predicted,
        "probabilities": [round(float(v), 5) for v in result.probabilities],
        "class": k,
        "activation_ms": round(result.seconds * 1000, 2),
        "layers": {n: list(v.shape) for n, v in result.layers.items()},
        "dead_maps": {n: int(result.stats(n).dead.sum()) for n in result.spatial_names},
        "receptive_fields": {n: info.receptive_field for n, info in spatial_layer_info(bundle.spec).items()},
        "grad_cam_layer": am.cam_layer,
        "model": str(bundle.path),
    }
    if args.out:
        out = Path(args.out)
        arrays = {f"layer_{n}": v for n, v in result.layers.items()}
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            image=raw,
            model_input=x[0, ..., 0],
            probabilities=result.probabilities,
            saliency=sal,
            occlusion=occ.pixel_map,
            **({"grad_cam": cam.on_input} if cam is not None else {}),
            **arrays,
        )
        atomic_write_bytes(out, buf.getvalue())
        summary["out"] = str(out)
    from core.cli.common import _emit

    return _emit(summary, started)
