"""Start images of the ascent (``core.ascent.engine``), in model-input space ``(N, 28, 28)`` float32.

The OIPs start from random noise on 4 length scales (blog articles VII–IX), standardized per image as the
blog did for its generated images; the precursor search (``core.oip.precursor``) starts from coarse grids of
grey values, upscaled with ``upscale_bicubic`` and standardized with ``standardize_pattern``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from core.ascent.engine import SIDE

SCALE_CELLS = (28, 14, 7, 4)  # the 4 length scales of the random start: cells per side
DEFAULT_SCALE_WEIGHTS = (0.5, 0.3, 0.2, 0.2)  # fine noise, 14×14, 7×7, 4×4 cells


def standardize_pattern(images: np.ndarray) -> np.ndarray:
    """Standardize each synthetic image on its own: zero mean and unit standard deviation.

    ``images`` ``(N, 28, 28)`` or ``(N, 28, 28, 1)`` any float → same shape, float32.
    A constant image (std below 1e-6 of its magnitude) becomes all zeros.

    Why per image and not through the model's ``PixelScaler``: the scaler divides by the per-pixel
    standard deviation of the training digits, which is tiny at the border (56 border pixels have
    std < 1 grey level, the smallest 0.03), so a smooth synthetic 0..1 pattern mapped through it gets
    border values in the hundreds that dominate every response. The blog standardized each
    generated image itself; we do the same, so a synthetic start has the value range of real
    standardized input (about −1..3) everywhere.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim not in (3, 4) or x.shape[1:3] != (SIDE, SIDE):
        raise ValueError(f"images must have shape (N, 28, 28) or (N, 28, 28, 1), got {x.shape}")
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    flat = std <= 1e-6 * np.maximum(1.0, np.abs(mean))
    out = np.where(flat, 0.0, (x - mean) / np.where(flat, 1.0, std))
    return out.astype(np.float32)


def upscale_bicubic(cells: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Bicubic upscale of coarse grids ``(N, c, c)`` to ``(N, side, side)`` float32 (TensorFlow's
    Keys kernel, half-pixel centres); ``c == side`` is returned unchanged."""
    cells = np.asarray(cells, dtype=np.float32)
    if cells.ndim != 3 or cells.shape[1] != cells.shape[2]:
        raise ValueError(f"cells must have shape (N, c, c), got {cells.shape}")
    if cells.shape[1] == side:
        return cells.copy()
    up = tf.image.resize(cells[..., None], (side, side), method="bicubic", antialias=False)
    return up.numpy()[..., 0].astype(np.float32)


def random_start(
    seed: int, map_index: int, start_index: int, scale_weights: Sequence[float] = DEFAULT_SCALE_WEIGHTS
) -> np.ndarray:
    """One random start image ``(28, 28)`` float32, standardized.

    Uniform noise in [−1, 1] on 4 length scales (``SCALE_CELLS``: 28×28 fine noise, then 14×14,
    7×7 and 4×4 cells each upscaled bicubically to 28×28), summed with ``scale_weights`` and
    standardized per image. The random stream depends only on (seed, map, start), so a map gets the
    same start whichever other maps run beside it.
    """
    weights = check_scale_weights(scale_weights)
    rng = np.random.default_rng([int(seed), int(map_index), int(start_index)])
    img = np.zeros((SIDE, SIDE), np.float32)
    for cells, w in zip(SCALE_CELLS, weights):
        noise = rng.uniform(-1.0, 1.0, size=(1, cells, cells)).astype(np.float32)
        if w:
            img += w * upscale_bicubic(noise)[0]
    return standardize_pattern(img[None])[0]


def random_starts(
    maps: Sequence[int], starts: int, seed: int, scale_weights: Sequence[float] = DEFAULT_SCALE_WEIGHTS
) -> np.ndarray:
    """Start images for every (map, start): ``(len(maps), starts, 28, 28)`` float32."""
    out = np.empty((len(maps), starts, SIDE, SIDE), np.float32)
    for i, m in enumerate(maps):
        for s in range(starts):
            out[i, s] = random_start(seed, m, s, scale_weights)
    return out


def check_scale_weights(scale_weights: Sequence[float]) -> tuple[float, ...]:
    """The 4 weights of the random start's length scales, checked (ValueError naming them)."""
    weights = tuple(float(w) for w in scale_weights)
    if len(weights) != len(SCALE_CELLS):
        raise ValueError(
            f"scale_weights needs {len(SCALE_CELLS)} values (for cells {SCALE_CELLS}), got {len(weights)}: {weights}"
        )
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"scale_weights {weights} must be finite, ≥ 0 and not all 0")
    return weights
