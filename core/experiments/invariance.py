"""What survives pooling: shift, rotate, scale or thicken one digit over a range and follow the prediction and
every map's response.

A transform acts on the raw digit (0..255, ``scipy.ndimage``, bilinear, blank outside); all transformed
copies go through the network as one batch. Each map's response is its mean over positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

TRANSFORMS = ("shift", "rotate", "scale", "thickness")
DEFAULT_VALUES = {
    "shift": tuple(range(-8, 9)),  # pixels to the right (negative: left)
    "rotate": tuple(range(-60, 61, 5)),  # degrees, anticlockwise
    "scale": tuple(np.round(np.arange(0.5, 1.51, 0.05), 2)),  # size factor about the centre
    "thickness": (-2, -1, 0, 1, 2, 3),  # strokes thinned (−) or thickened (+), px
}
UNITS = {"shift": "px", "rotate": "°", "scale": "×", "thickness": "px"}
LIMITS = {"shift": (-27, 27), "rotate": (-180, 180), "scale": (0.1, 4.0), "thickness": (-5, 5)}
SIDE = 28


def check_transform(kind: str, values: Sequence[float]) -> tuple[float, ...]:
    if kind not in TRANSFORMS:
        raise ValueError(f"transform {kind!r} is not one of {', '.join(TRANSFORMS)}")
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError(f"no {kind} values given")
    lo, hi = LIMITS[kind]
    bad = [v for v in values if not (np.isfinite(v) and lo <= v <= hi)]
    if bad:
        raise ValueError(f"{kind} value(s) {bad} are outside {lo:g}..{hi:g}")
    if kind == "thickness" and any(v != int(v) for v in values):
        raise ValueError(f"thickness values must be whole pixels, got {list(values)}")
    return values


def transform(raw: np.ndarray, kind: str, value: float) -> np.ndarray:
    """One raw digit ``(28, 28)`` 0..255, transformed → ``(28, 28)`` float32 0..255."""
    check_transform(kind, [value])
    img = np.asarray(raw, np.float32)
    if kind == "shift":
        out = ndimage.shift(img, (0.0, value), order=1, mode="constant", cval=0.0)
    elif kind == "rotate":
        out = ndimage.rotate(img, value, reshape=False, order=1, mode="constant", cval=0.0)
    elif kind == "scale":
        centre = (np.array(img.shape) - 1) / 2.0
        matrix = np.eye(2) / value  # output pixel → input pixel
        out = ndimage.affine_transform(img, matrix, offset=centre - matrix @ centre, order=1, mode="constant", cval=0.0)
    else:
        out = img
        step = ndimage.grey_dilation if value > 0 else ndimage.grey_erosion
        for _ in range(int(abs(value))):
            out = step(out, footprint=ndimage.generate_binary_structure(2, 1))
    return np.clip(out, 0, 255).astype(np.float32)


@dataclass
class InvarianceSweep:
    """``values`` ``(V,)`` of ``kind``; the transformed ``images`` ``(V, 28, 28)``; ``probabilities`` ``(V, 10)``;
    ``responses`` ``(V, C)``: each map of ``layer`` (its mean over positions) on each image."""

    kind: str
    values: np.ndarray
    images: np.ndarray
    probabilities: np.ndarray
    layer: str
    responses: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        return np.argmax(self.probabilities, axis=1)

    def holds(self, digit_class: int, identity: float | None = None) -> tuple[float, float] | None:
        """The range of values around the untouched digit (``identity``: 0, or 1 for scale) over which the
        prediction stays ``digit_class``; None when it is not even predicted there."""
        identity = (1.0 if self.kind == "scale" else 0.0) if identity is None else identity
        order = np.argsort(self.values)
        values, ok = self.values[order], self.predicted[order] == int(digit_class)
        start = int(np.argmin(np.abs(values - identity)))
        if not ok[start]:
            return None
        lo = hi = start
        while lo > 0 and ok[lo - 1]:
            lo -= 1
        while hi < len(values) - 1 and ok[hi + 1]:
            hi += 1
        return float(values[lo]), float(values[hi])

    def summary(self, digit_class: int | None = None) -> dict:
        held = None if digit_class is None else self.holds(digit_class)
        return {
            "transform": self.kind,
            "unit": UNITS[self.kind],
            "values": [float(v) for v in self.values],
            "predicted": [int(p) for p in self.predicted],
            "confidence": [round(float(p.max()), 4) for p in self.probabilities],
            "layer": self.layer,
            "responses": np.round(self.responses, 4).tolist(),
            "holds": None if held is None else list(held),
        }


def sweep(
    activation_model, raw: np.ndarray, kind: str, values: Sequence[float] | None = None, layer: str = "conv3"
) -> InvarianceSweep:
    """The digit ``raw`` ``(28, 28)`` under ``kind`` at each of ``values`` (default ``DEFAULT_VALUES``), through
    ``activation_model`` (``core.activations.ActivationModel``, with its scaler) in one batch."""
    values = check_transform(kind, DEFAULT_VALUES[kind] if values is None else values)
    raw = np.asarray(raw, np.float32)
    if raw.shape != (SIDE, SIDE):
        raise ValueError(f"the digit must be 28×28 grey levels, got shape {raw.shape}")
    if layer not in activation_model.layer_names or layer == "out":
        raise ValueError(
            f"layer {layer!r} cannot be followed; allowed: "
            f"{', '.join(n for n in activation_model.layer_names if n != 'out')}"
        )
    images = np.stack([transform(raw, kind, v) for v in values])
    outs = activation_model.layer_batch(activation_model.scaler.transform(images), (layer, "out"))
    act = outs[layer]
    responses = act.reshape(len(values), -1, act.shape[-1]).mean(axis=1) if act.ndim == 4 else act
    return InvarianceSweep(kind, np.asarray(values), images, outs["out"], layer, responses)
