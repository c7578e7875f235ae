"""What an OIP means, measured against the test digits and the kernels: the digits' strongest responses per
map (``digit_maxima``), the patches of the digits that excite a map most (``top_patches``), where an OIP's
response sits among the digits' (``activation_percentile``), a conv1 kernel beside its OIP
(``kernel_comparison``), and the display contrast of OIP images (``contrast_enhance``).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from core.ascent.engine import SIDE, AscentEngine
from core.checks import check_range


def contrast_enhance(images: np.ndarray, clip_percent: float = 1.0) -> np.ndarray:
    """Display values in 0..1 per image: clip to the ``clip_percent`` and ``100 − clip_percent``
    percentiles of the image, then min-max (a few extreme pixels do not flatten the rest).

    ``(..., H, W)`` → same shape float32. A constant image becomes 0.5."""
    x = np.asarray(images, dtype=np.float32)
    check_range("clip_percent", clip_percent, 0, 50, open_high=True)
    flat = x.reshape(*x.shape[:-2], -1)
    lo = np.percentile(flat, clip_percent, axis=-1)[..., None, None]
    hi = np.percentile(flat, 100 - clip_percent, axis=-1)[..., None, None]
    span = hi - lo
    return np.where(span > 1e-12, (np.clip(x, lo, hi) - lo) / np.maximum(span, 1e-12), 0.5).astype(np.float32)


@dataclass
class DigitMaxima:
    """Per test digit and map: the largest activation ``values`` ``(N, C)`` and where it is,
    ``positions`` ``(N, C)`` flat index into the ``(H, W)`` map."""

    values: np.ndarray
    positions: np.ndarray
    map_side: int
    source: str = ""  # which digits were scanned ("MNIST test set", "shipped sample of test digits")


def digit_maxima(engine: AscentEngine, model_inputs: np.ndarray, source: str = "") -> DigitMaxima:
    """Scan standardized digits ``(N, 28, 28, 1)`` once; used for top patches and percentiles."""
    vals, pos = engine.max_activations(model_inputs)
    side = engine.output_shape[0] if engine.spatial else 1
    if side * side <= np.iinfo(np.int16).max:  # a map has at most 26×26 positions: half the memory of int32
        pos = pos.astype(np.int16)
    return DigitMaxima(vals.astype(np.float32), pos, side, source)


def top_patches(
    maxima: DigitMaxima, raw_images: np.ndarray, map_index: int, receptive_field: int, jump: int, start: int, k: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` test digits that excite ``map_index`` most, cropped to the receptive field of the
    neuron where the map peaks.

    ``raw_images`` ``(N, 28, 28)`` (any values) → crops ``(k, rf, rf)`` (zero-padded where the field
    leaves the image), digit indices ``(k,)``, activations ``(k,)``."""
    if not 0 <= map_index < maxima.values.shape[1]:
        raise ValueError(f"map {map_index} is outside 0..{maxima.values.shape[1] - 1}")
    order = np.argsort(-maxima.values[:, map_index], kind="stable")[:k]
    rf = int(receptive_field)
    crops = np.zeros((len(order), rf, rf), np.float32)
    raw = np.asarray(raw_images, dtype=np.float32)
    for i, idx in enumerate(order):
        row, col = divmod(int(maxima.positions[idx, map_index]), maxima.map_side)
        top, left = start + row * jump, start + col * jump
        t0, l0 = max(top, 0), max(left, 0)
        t1, l1 = min(top + rf, SIDE), min(left + rf, SIDE)
        crops[i, t0 - top : t1 - top, l0 - left : l1 - left] = raw[idx, t0:t1, l0:l1]
    return crops, order, maxima.values[order, map_index]


def activation_percentile(maxima: DigitMaxima, map_index: int, oip_max: float) -> tuple[float, float]:
    """Where the OIP's largest activation of a map sits among the test digits' largest activations:
    (percentile 0..100 of digits below it, ratio OIP max / the digits' maximum)."""
    col = maxima.values[:, map_index]
    best = float(col.max()) if col.size else 0.0
    pct = float((col < oip_max).mean() * 100.0) if col.size else float("nan")
    return pct, (float(oip_max) / best if best > 0 else float("inf") if oip_max > 0 else float("nan"))


def kernel_comparison(
    model: keras.Model,
    layer: str,
    map_index: int,
    oip: np.ndarray,
    engine: AscentEngine | None = None,
    top_fraction: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Compare a first-layer map's kernel with its OIP.

    ``oip`` ``(28, 28)`` → (kernel ``(k, k)``, the activation-weighted mean of the OIP's ``k×k``
    patches at the top ``top_fraction`` of positions where the map responds most ``(k, k)``, their
    Pearson correlation). Only for a Conv2D layer on the 1-channel input (conv1)."""
    lyr = model.get_layer(layer)
    if not isinstance(lyr, keras.layers.Conv2D) or int(lyr.kernel.shape[2]) != 1:
        raise ValueError(f"layer {layer!r} is not a conv layer on the 1-channel input; kernels compare only for conv1")
    kernel = np.asarray(lyr.kernel.numpy())[:, :, 0, map_index]
    k = kernel.shape[0]
    engine = engine or AscentEngine(model, layer)
    act = engine.activations(np.asarray(oip, np.float32)[None])[0, :, :, map_index]
    img = np.asarray(oip, np.float32)
    if lyr.padding == "same":
        img = np.pad(img, k // 2)
    n = max(1, int(round(act.size * top_fraction)))
    flat = np.argsort(-act.ravel(), kind="stable")[:n]
    weights = np.maximum(act.ravel()[flat], 1e-12)
    patch = np.zeros((k, k), np.float64)
    for w, idx in zip(weights, flat):
        r, c = divmod(int(idx), act.shape[1])
        patch += w * img[r : r + k, c : c + k]
    patch /= weights.sum()
    a, b = patch.ravel() - patch.mean(), kernel.ravel() - kernel.mean()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return kernel, patch.astype(np.float32), float(a @ b / denom) if denom > 0 else float("nan")
