"""How alike two patterns are when a small shift is forgiven: the blog's question "are the OIPs unique per map?".

Two OIPs of one map often show the same strokes a pixel or two apart (a conv map responds the same wherever
its pattern sits), so a plain correlation calls them different. ``shift_similarity`` takes the best
correlation over all shifts up to ``max_shift`` pixels.
"""

from __future__ import annotations

import numpy as np

DEFAULT_MAX_SHIFT = 3  # px: about a pool cell of conv3 on a 28×28 digit


def shift_similarity(images: np.ndarray, max_shift: int = DEFAULT_MAX_SHIFT) -> np.ndarray:
    """Pairwise similarity up to a shift, ``(N, N)`` in [−1, 1] with 1 on the diagonal.

    ``images`` ``(N, H, W)``. For each pair, the largest over shifts (dy, dx), |dy|, |dx| ≤ ``max_shift``, of
    the cosine of the two mean-centred images with the second one shifted (zeros fill what moved in). An
    image without contrast (constant) is similar to nothing (0)."""
    x = np.asarray(images, np.float64)
    if x.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {x.shape}")
    s = int(max_shift)
    if not 0 <= s < min(x.shape[1:]):
        raise ValueError(f"max_shift={max_shift} is outside 0..{min(x.shape[1:]) - 1}")
    n, h, w = x.shape
    x = x - x.reshape(n, -1).mean(axis=1)[:, None, None]
    norms = np.linalg.norm(x.reshape(n, -1), axis=1)
    unit = np.divide(x, norms[:, None, None], out=np.zeros_like(x), where=norms[:, None, None] > 0)
    padded = np.pad(unit, ((0, 0), (s, s), (s, s)))
    flat = unit.reshape(n, -1)
    best = np.full((n, n), -np.inf)
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            moved = padded[:, s + dy : s + dy + h, s + dx : s + dx + w].reshape(n, -1)
            best = np.maximum(best, flat @ moved.T)
    best = np.maximum(best, best.T)  # every shift and its opposite were taken: symmetric up to rounding
    np.fill_diagonal(best, np.where(norms > 0, 1.0, 0.0))
    return best.clip(-1.0, 1.0)


def mean_pairwise(similarity: np.ndarray) -> float:
    """Mean of the off-diagonal entries of a square similarity matrix (NaN for fewer than 2 images)."""
    n = similarity.shape[0]
    if n < 2:
        return float("nan")
    return float((similarity.sum() - np.trace(similarity)) / (n * (n - 1)))
