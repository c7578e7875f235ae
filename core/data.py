"""MNIST loading, the shipped sample of test digits, and the blog's pixel standardization.

Images are kept as ``uint8`` arrays of shape ``(N, 28, 28)`` (white digit on black, 0..255)
until they reach a model; ``PixelScaler`` turns them into model input ``(N, 28, 28, 1)``
float32 and back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
SAMPLE_DIGITS_PATH = ASSETS_DIR / "sample_digits.npz"
MNIST_ENV_VAR = "MNIST_NPZ"
IMAGE_SIDE = 28
NUM_PIXELS = IMAGE_SIDE * IMAGE_SIDE


class MnistUnavailableError(RuntimeError):
    """No MNIST file was given and Keras could not download it."""


@dataclass(frozen=True)
class Mnist:
    """The four MNIST arrays: images ``(N, 28, 28)`` uint8, labels ``(N,)`` uint8."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> Mnist:
        """The first ``n_train`` training and ``n_test`` test digits (all when None)."""
        return Mnist(
            self.x_train[:n_train], self.y_train[:n_train], self.x_test[:n_test], self.y_test[:n_test], self.source
        )


_EXPECTED = {"x_train": 3, "y_train": 1, "x_test": 3, "y_test": 1}


def read_mnist_npz(path: str | os.PathLike) -> Mnist:
    """Read a file in the layout of Keras' ``mnist.npz``; raise ValueError naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"MNIST file {str(path)!r} does not exist (expected a Keras-layout mnist.npz)")
    try:
        npz = np.load(path, allow_pickle=False)
        if not hasattr(npz, "files"):
            raise ValueError("a single array, not an archive of arrays")
    except Exception as exc:  # zip, pickle or header errors: not an npz at all
        raise ValueError(f"MNIST file {str(path)!r} is not a readable .npz file ({exc})") from exc
    with npz:
        missing = sorted(set(_EXPECTED) - set(npz.files))
        if missing:
            raise ValueError(
                f"MNIST file {str(path)!r} lacks the arrays {missing}; "
                f"it has {sorted(npz.files)}, expected {sorted(_EXPECTED)}"
            )
        arrays = {k: npz[k] for k in _EXPECTED}
    for key, ndim in _EXPECTED.items():
        arr = arrays[key]
        if arr.ndim != ndim or (ndim == 3 and arr.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE)):
            raise ValueError(
                f"MNIST array {key!r} in {str(path)!r} has shape {arr.shape}; "
                f"expected {'(N, 28, 28)' if ndim == 3 else '(N,)'}"
            )
    if len(arrays["x_train"]) != len(arrays["y_train"]) or len(arrays["x_test"]) != len(arrays["y_test"]):
        raise ValueError(f"MNIST file {str(path)!r}: image and label counts differ")
    return Mnist(*(arrays[k].astype(np.uint8, copy=False) for k in _EXPECTED), source=str(path))


def load_mnist(path: str | os.PathLike | None = None) -> Mnist:
    """Load MNIST: an explicit ``path``, else ``$MNIST_NPZ``, else Keras' download (cached in ~/.keras).

    Raises ``MnistUnavailableError`` with instructions when none of them works.
    """
    explicit = path or os.environ.get(MNIST_ENV_VAR)
    if explicit:
        return read_mnist_npz(explicit)
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:
        raise MnistUnavailableError(
            "MNIST could not be downloaded by Keras "
            f"({type(exc).__name__}: {exc}). Download mnist.npz on a machine with internet "
            "access and point to it with the environment variable MNIST_NPZ=/path/to/mnist.npz "
            "or the CLI flag --mnist /path/to/mnist.npz."
        ) from exc
    return Mnist(x_train, y_train, x_test, y_test, source="keras.datasets.mnist")


@dataclass(frozen=True)
class SampleDigits:
    """Real MNIST test digits shipped in assets/: images ``(N, 28, 28)`` uint8, labels, test-set indices."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray

    def by_test_index(self, index: int) -> tuple[np.ndarray, int]:
        """The digit with this index in the full MNIST test set; ValueError if not shipped."""
        hits = np.flatnonzero(self.indices == index)
        if hits.size == 0:
            raise ValueError(
                f"test digit {index} is not in the shipped sample "
                f"(it holds indices {int(self.indices.min())}..{int(self.indices.max())})"
            )
        return self.images[hits[0]], int(self.labels[hits[0]])


def load_sample_digits(path: str | os.PathLike = SAMPLE_DIGITS_PATH) -> SampleDigits:
    with np.load(path, allow_pickle=False) as npz:
        return SampleDigits(npz["images"], npz["labels"], npz["indices"])


class PixelScaler:
    """Per-pixel standardization, identical to scikit-learn's StandardScaler over 784 pixels.

    ``mean`` and ``std`` have shape ``(28, 28)``; pixels that never vary get std 1
    (as StandardScaler does), so they pass through shifted only.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        mean = np.asarray(mean, dtype=np.float64).reshape(IMAGE_SIDE, IMAGE_SIDE)
        std = np.asarray(std, dtype=np.float64).reshape(IMAGE_SIDE, IMAGE_SIDE)
        if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)) or np.any(std <= 0):
            raise ValueError("scaler mean/std must be finite and std positive")
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, images: np.ndarray) -> PixelScaler:
        """Fit on raw images ``(N, 28, 28)`` with values 0..255."""
        flat = np.asarray(images).reshape(len(images), NUM_PIXELS)
        mean = flat.mean(axis=0, dtype=np.float64)
        sq = np.zeros(NUM_PIXELS, dtype=np.float64)
        for start in range(0, len(flat), 8192):  # chunks: no 376 MB float64 copy of the training set
            centred = flat[start : start + 8192].astype(np.float64) - mean
            sq += np.einsum("ij,ij->j", centred, centred)
        std = np.sqrt(sq / len(flat))
        std[std < 10 * np.finfo(np.float64).eps] = 1.0  # StandardScaler's rule for constant features
        return cls(mean, std)

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Raw ``(N, 28, 28)`` or ``(28, 28)`` 0..255 → model input ``(N, 28, 28, 1)`` float32."""
        images = np.asarray(images)
        if images.dtype != np.uint8:  # uint8 pixels are cast exactly inside the subtraction below
            images = images.astype(np.float32, copy=False)
        if images.ndim == 2:
            images = images[None]
        if images.shape[-2:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise ValueError(f"images must be 28×28, got shape {images.shape}")
        # one output array, computed in place: temporaries of a whole test set cost more than the arithmetic
        out = np.empty((*images.shape, 1), np.float32)
        np.subtract(images, self.mean.astype(np.float32), out=out[..., 0])
        out[..., 0] /= self.std.astype(np.float32)
        return out

    def inverse(self, model_input: np.ndarray) -> np.ndarray:
        """Model input ``(N, 28, 28, 1)`` → raw pixel values ``(N, 28, 28)`` float32 (not clipped)."""
        x = np.asarray(model_input, dtype=np.float32)
        if x.shape[-1] == 1:
            x = x[..., 0]
        return (x * self.std.astype(np.float32) + self.mean.astype(np.float32)).astype(np.float32)

    def to_display(self, model_input: np.ndarray) -> np.ndarray:
        """Model input → uint8 grey images ``(N, 28, 28)`` clipped to 0..255."""
        return np.clip(np.rint(self.inverse(model_input)), 0, 255).astype(np.uint8)

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PixelScaler:
        with np.load(path, allow_pickle=False) as npz:
            return cls(npz["mean"], npz["std"])

    def to_json(self) -> str:
        return json.dumps({"mean": self.mean.ravel().tolist(), "std": self.std.ravel().tolist()})

    @classmethod
    def from_json(cls, text: str) -> PixelScaler:
        obj = json.loads(text)
        return cls(np.array(obj["mean"]), np.array(obj["std"]))
