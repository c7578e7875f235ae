"""A personal handwriting set: the learner's own digits with their true labels, and how a model does on them.

The set is a value (a frozen dataclass): adding or removing a digit makes a new set, so a page that keeps one
per browser session never holds a half-changed set. It travels as a small ``.npz`` with two arrays,
``images`` ``(N, 28, 28)`` uint8 (white ink on black, MNIST's way round) and ``labels`` ``(N,)``; a file read
back is checked whole before it replaces anything (``from_npz``), and every refusal names what is wrong. A server
keeps each person's set in a file of that format (``save_set``, written whole or not at all; ``load_set``).
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.scores import TestScore, score

SIDE = 28
N_CLASSES = 10
MAX_DIGITS = 1000  # a personal set is small; this keeps uploads, session state and fine-tuning quick
MAX_FILE_BYTES = 4 * 1024 * 1024  # 1,000 uncompressed digits are 0.8 MB; anything far larger is not a set
IMAGES_KEY, LABELS_KEY = "images", "labels"


class PersonalSetError(ValueError):
    """A personal set (or a file meant to be one) that cannot be used; the message says why."""


def check_label(label) -> int:
    """The label as an int; PersonalSetError unless it is a whole number 0..9."""
    try:
        value = float(label)
    except (TypeError, ValueError):
        raise PersonalSetError(f"label {label!r} is not a number; a label is a digit 0..9") from None
    if not value.is_integer() or not 0 <= value <= N_CLASSES - 1:
        raise PersonalSetError(f"label {label!r} is outside 0..9; a label is a digit 0..9")
    return int(value)


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.shape != (SIDE, SIDE):
        raise PersonalSetError(f"a digit must be a {SIDE}×{SIDE} image, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.number) or not np.all(np.isfinite(image)):
        raise PersonalSetError("a digit must hold finite grey levels 0..255")
    if image.min() < 0 or image.max() > 255:
        raise PersonalSetError(f"grey levels {image.min():g}..{image.max():g} are outside 0..255")
    return np.rint(image).astype(np.uint8)


check_image = _check_image  # public: the transfer-learning symbol set checks its images the same way


@dataclass(frozen=True)
class PersonalSet:
    """``images`` ``(N, 28, 28)`` uint8 and ``labels`` ``(N,)`` int64 (0..9), N ≤ ``MAX_DIGITS``."""

    images: np.ndarray = field(default_factory=lambda: np.zeros((0, SIDE, SIDE), np.uint8))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        images, labels = np.asarray(self.images), np.asarray(self.labels)
        if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
            raise PersonalSetError(f"images must have shape (N, {SIDE}, {SIDE}), got {images.shape}")
        if labels.shape != (len(images),):
            raise PersonalSetError(
                f"{len(images)} images need {len(images)} labels, got labels of shape {labels.shape}"
            )
        if len(images) > MAX_DIGITS:
            raise PersonalSetError(f"{len(images)} digits are more than a personal set holds ({MAX_DIGITS})")
        if not np.issubdtype(labels.dtype, np.number) or (
            len(labels) and (not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)))
        ):
            raise PersonalSetError(f"labels must be whole numbers 0..9, got {labels[:10].tolist()}")
        bad = np.flatnonzero((labels < 0) | (labels > N_CLASSES - 1))
        if len(bad):
            raise PersonalSetError(f"label {labels[bad[0]]:g} (digit {int(bad[0])}) is outside 0..9")
        if len(images) and (
            not np.issubdtype(images.dtype, np.number)
            or not np.all(np.isfinite(images))
            or images.min() < 0
            or images.max() > 255
        ):
            raise PersonalSetError("images must hold grey levels 0..255")
        images = np.rint(images).astype(np.uint8) if images.dtype != np.uint8 else images
        images, labels = images.copy(), labels.astype(np.int64)
        images.flags.writeable = labels.flags.writeable = False  # a value: shared across reruns, never edited
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, image: np.ndarray, label) -> PersonalSet:
        """A new set with ``image`` ``(28, 28)`` (0..255) labelled ``label`` appended."""
        if len(self) >= MAX_DIGITS:
            raise PersonalSetError(
                f"the set is full ({MAX_DIGITS} digits); remove some or download it and start another"
            )
        return PersonalSet(
            np.concatenate([self.images, _check_image(image)[None]]), np.append(self.labels, check_label(label))
        )

    def add_many(self, images: np.ndarray, label) -> PersonalSet:
        """A new set with every image of ``images`` ``(K, 28, 28)`` labelled ``label``."""
        images = np.asarray(images)
        checked = np.stack([_check_image(im) for im in images]) if len(images) else images.reshape(0, SIDE, SIDE)
        if len(self) + len(checked) > MAX_DIGITS:
            raise PersonalSetError(
                f"{len(self)} + {len(checked)} digits are more than a personal set holds ({MAX_DIGITS})"
            )
        return PersonalSet(
            np.concatenate([self.images, checked.astype(np.uint8)]),
            np.append(self.labels, np.full(len(checked), check_label(label))),
        )

    def without(self, indices) -> PersonalSet:
        """A new set without the digits at ``indices``."""
        drop = sorted({int(i) for i in indices})
        for i in drop:
            if not 0 <= i < len(self):
                raise PersonalSetError(f"digit {i} is not in the set (it has {len(self)}: 0..{len(self) - 1})")
        keep = np.setdiff1d(np.arange(len(self)), drop)
        return PersonalSet(self.images[keep], self.labels[keep])

    def counts(self) -> np.ndarray:
        """How many digits of each class ``(10,)``."""
        return np.bincount(self.labels, minlength=N_CLASSES)

    def to_npz(self) -> bytes:
        """The set as ``.npz`` bytes (compressed; ``images`` and ``labels``)."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{IMAGES_KEY: self.images, LABELS_KEY: self.labels.astype(np.uint8)})
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes, name: str = "the file") -> PersonalSet:
        """Read a set written by ``to_npz`` (or any ``.npz`` with ``images`` ``(N, 28, 28)`` 0..255 and
        ``labels`` ``(N,)`` 0..9); PersonalSetError naming the problem otherwise. Nothing is pickled."""
        if len(data) > MAX_FILE_BYTES:
            raise PersonalSetError(
                f"{name} is {len(data) / 1e6:.1f} MB; a personal set is at most "
                f"{MAX_FILE_BYTES / 1e6:.0f} MB ({MAX_DIGITS} digits)"
            )
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise PersonalSetError(
                f"{name} is not a personal set: an .npz file (a zip of arrays) is expected, "
                "as the Download button writes it"
            )
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                missing = [k for k in (IMAGES_KEY, LABELS_KEY) if k not in npz.files]
                if missing:
                    raise PersonalSetError(
                        f"{name} has no {' and no '.join(repr(k) for k in missing)} array "
                        f"(it holds {sorted(npz.files)}); a personal set has 'images' and "
                        "'labels'"
                    )
                images, labels = npz[IMAGES_KEY], npz[LABELS_KEY]
        except PersonalSetError:
            raise
        except Exception as exc:  # a damaged zip, an object array (pickle refused), a bad header
            raise PersonalSetError(
                f"{name} could not be read as an .npz of arrays ({type(exc).__name__}: {exc})"
            ) from None
        for key, value in ((IMAGES_KEY, images), (LABELS_KEY, labels)):
            if not isinstance(value, np.ndarray):  # NpzFile hands back the raw bytes of a member that is not .npy
                raise PersonalSetError(f"{name} could not be read: its {key!r} is not a saved numpy array")
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]  # (N, 28, 28, 1), as Keras-ready arrays often are
        if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
            raise PersonalSetError(f"{name}: images must have shape (N, {SIDE}, {SIDE}), got {images.shape}")
        return cls(images, labels)


def save_set(personal: PersonalSet, path: str | os.PathLike) -> None:
    """Keep ``personal`` in the ``.npz`` file at ``path`` (its folder is made): a temporary file renamed over the
    old one, so a reader finds the old set or the new one, never half of one. An empty set removes the file."""
    path = Path(path)
    if len(personal) == 0:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-set-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(personal.to_npz())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_set(path: str | os.PathLike) -> PersonalSet | None:
    """The set kept at ``path``, None when there is none; PersonalSetError when the file is damaged."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    return PersonalSet.from_npz(data, Path(path).name)


@dataclass
class SetScore:
    """How a model does on a labelled set: ``labels`` ``(N,)`` (true), ``predicted`` ``(N,)``, ``confidence``
    ``(N,)`` (the probability of the predicted class) and ``accuracy`` (overall and per class)."""

    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    accuracy: TestScore

    @property
    def missed(self) -> np.ndarray:
        """Indices of the digits read wrongly ``(M,)``."""
        return np.flatnonzero(self.predicted != self.labels)

    @property
    def misses(self) -> np.ndarray:
        """Digits read wrongly per true class ``(10,)``."""
        return np.bincount(self.labels[self.missed], minlength=N_CLASSES)

    @property
    def counts(self) -> np.ndarray:
        """Digits per true class ``(10,)``."""
        return np.bincount(self.labels, minlength=N_CLASSES)


def score_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> SetScore:
    """``probabilities`` ``(N, 10)`` of a model on a set whose true ``labels`` are ``(N,)`` → its SetScore."""
    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities).reshape(len(labels), N_CLASSES)
    predicted = np.argmax(probabilities, axis=1).astype(np.int64)
    confidence = probabilities[np.arange(len(labels)), predicted]
    return SetScore(labels, predicted, confidence, score(probabilities, labels))


def score_set(model, scaler, images: np.ndarray, labels: np.ndarray, batch_size: int = 1024) -> SetScore:
    """A Keras ``model`` fed through its ``scaler`` on raw ``images`` ``(N, 28, 28)`` with ``labels`` ``(N,)``.
    One batched call (no ``model.predict``: it rebuilds its function each call)."""
    if len(labels) == 0:
        return score_probabilities(np.zeros((0, N_CLASSES)), np.zeros(0, np.int64))
    x = scaler.transform(np.asarray(images))
    probs = np.concatenate(
        [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    )
    return score_probabilities(probs, labels)


__all__ = [
    "MAX_DIGITS",
    "MAX_FILE_BYTES",
    "PersonalSet",
    "PersonalSetError",
    "SetScore",
    "check_image",
    "check_label",
    "load_set",
    "save_set",
    "score_probabilities",
    "score_set",
]
