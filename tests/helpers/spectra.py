"""Frequency checks shared by the start-image and OIP tests."""

import numpy as np

SIDE = 28


def radial_spectrum(images: np.ndarray) -> np.ndarray:
    """Mean power per radial frequency bin of ``(N, 28, 28)`` images → ``(15,)`` (bin 0 = DC).

    Used to check that a start has the intended mix of length scales."""
    x = np.asarray(images, dtype=np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0)
    f = np.fft.fftfreq(SIDE) * SIDE
    radius = np.rint(np.hypot(*np.meshgrid(f, f, indexing="ij"))).astype(int)
    bins = np.bincount(radius.ravel(), weights=power.ravel(), minlength=SIDE // 2 + 1)
    counts = np.bincount(radius.ravel(), minlength=SIDE // 2 + 1)
    return (bins / np.maximum(counts, 1))[: SIDE // 2 + 1]
