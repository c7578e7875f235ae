"""Deep Dreams of the MNIST CNN on a photo (blog series "Deep Dreams of a CNN trained on MNIST").

The CNN only knows 28×28 grey digits, so it dreams on a coarse, "myopic" version of the photo,
and the photo's details are re-added afterwards. Three modes:

``map`` (article I)
    One map of one layer (default conv3 map 56). The photo is downscaled to 28×28 (bicubic),
    upscaled again, and the difference (the lost detail) is kept. ``loops`` times: ``epochs``
    steps of gradient ascent on the 28×28 image, upscale to full size, re-add the detail,
    downscale again.
``layers`` (the original DeepDream recipe)
    The cost is a weighted sum of whole layers' (or single maps') mean responses. ``octaves``
    sizes from coarse (short side 28) to the full working size; at each octave the image goes
    whole through the convolutional part of the network (the conv filters slide over it exactly
    as they slide over a 28×28 digit, so this equals all overlapping 28×28 crops at once); ascent,
    upscale, re-add the detail lost between the octaves, next octave. Conv / pool layers only.
``tiles`` (article III)
    Each octave's image is cut into 28×28 tiles (after a random roll every step, so no seams
    show) and all tiles go as one batch through the unchanged 28×28 network; any layer,
    including dense1 and out. Combinable with octaves (``octaves=1`` dreams at full size only).

Value mapping (model input space)
    The CNN is fed ``z = (grey − μ) / σ`` where μ, σ are the mean and standard deviation of the
    photo's luminance (after the optional inversion): zero mean and unit variance per image, as
    the blog standardized its images. We deliberately do *not* use the model's per-pixel
    ``PixelScaler``: 56 of its border pixels have a standard deviation below 1 (min ≈ 0.03), so a
    photo patch in 0..255 would reach values of several thousand there, and the gradient would be
    dominated by the border. During the ascent ``z`` is clipped to the values of grey 0 and 255,
    so every dream maps back into the photo's range with ``grey = z·σ + μ``.

Every ascent (one loop or octave) is one call of the product's one gradient-ascent engine
(``core.ascent.engine.AscentEngine``): the single map's loops ascend a 28×28 batch of one, the octaves ascend the
engine's canvas (``ascend_canvas``: tiles, or the whole image), all on the same compiled loop with a fixed
input signature (gradients divided by their standard deviation as in TensorFlow's DeepDream tutorial, the
pixels clipped to the photo's range). Changing the map, the terms or their weights never recompiles; one
engine serves all loops, octaves and image sizes. Nothing here mutates the model. A class map or term
(layer ``out``) is the class score before the softmax, as for OIPs (the probability saturates at 1).

The convention is the one of ``core.ascent.starts.standardize_pattern`` (zero mean, unit standard deviation per
image), but that helper works on 28×28 patterns and forgets the mean and std; a dream must map back to
grey values, so this module has its own invertible ``Standardizer`` for images of any size.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402,F401  (before tensorflow, see below)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# keras is imported first on purpose: the other modules reach TensorFlow through keras (core.runs), so
# two Streamlit script threads that import at a cold start queue on the same module lock instead of
# entering TensorFlow's import graph from two sides (which ends in _DeadlockError and a broken
# half-imported tensorflow for the life of the server).
from PIL import Image, PngImagePlugin  # noqa: E402

from core.ascent.engine import TILE, AscentEngine  # noqa: E402
from core.progress import ProgressCallback, progress_scope  # noqa: E402

MODES = ("map", "layers", "tiles")
MODE_TITLES = {"map": "Single map", "layers": "Layers & octaves", "tiles": "Tiles"}
DEFAULT_LAYER, DEFAULT_MAP = "conv3", 56  # the blog's "I never promised you a rose garden" map
DEFAULT_MAX_SIDE = 640
MAX_SIDE_LIMIT = 2048
MAX_ASPECT = 20.0
MAX_EPOCHS, MAX_LOOPS, MAX_OCTAVES = 2000, 50, 10
_TERM_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*(\d+))?\s*(?:=\s*([-+0-9.eE]+))?\s*$")


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """One part of the cost: the mean response of ``layer`` (all maps, or only map ``map``) × weight."""

    layer: str
    map: int | None = None
    weight: float = 1.0

    def label(self) -> str:
        return f"{self.layer}{'' if self.map is None else f':{self.map}'}={self.weight:g}"


def parse_terms(text: str | None) -> tuple[Term, ...]:
    """``"conv2=0.5, conv3:56=2, conv3"`` → terms (weight defaults to 1). Empty text → ``()``."""
    if text is None or not str(text).strip():
        return ()
    terms = []
    for part in str(text).split(","):
        if not part.strip():
            continue
        match = _TERM_RE.match(part)
        if not match:
            raise ValueError(
                f"layer term {part.strip()!r} is not understood; write layer, layer=weight, "
                "layer:map or layer:map=weight, e.g. 'conv2=0.5, conv3:56=2'"
            )
        name, map_text, weight_text = match.groups()
        try:
            weight = float(weight_text) if weight_text is not None else 1.0
        except ValueError:
            raise ValueError(f"weight {weight_text!r} in {part.strip()!r} is not a number") from None
        terms.append(Term(name, int(map_text) if map_text is not None else None, weight))
    return tuple(terms)


def format_terms(terms: Sequence[Term]) -> str:
    return ", ".join(t.label() for t in terms)


@dataclass(frozen=True)
class DreamConfig:
    """Everything that decides a dream; stored with each result (``to_dict``).

    ``terms`` is used by the ``layers`` and ``tiles`` modes; when empty, ``map`` and ``tiles`` use
    (``layer``, ``map``) and ``layers`` uses the two deepest conv layers with weight 1 each.
    ``octave_scale`` 0 means "auto": the coarsest octave has a short side of 28 pixels.
    ``widen``: percent of pixels clipped at each end when the final value distribution is stretched
    to 0..255 (0 switches widening off). ``max_side``: photos are dreamt at most this large.
    """

    mode: str = "map"
    layer: str = DEFAULT_LAYER
    map: int = DEFAULT_MAP
    terms: tuple[Term, ...] = ()
    loops: int = 4
    octaves: int = 4
    octave_scale: float = 0.0
    epochs: int = 20
    step_size: float = 0.05
    invert: bool = False
    recolour: bool = False
    widen: float = 1.0
    max_side: int = DEFAULT_MAX_SIDE
    seed: int = 0

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not known; choose one of {list(MODES)}")
        _int_in("loops", self.loops, 1, MAX_LOOPS)
        _int_in("octaves", self.octaves, 1, MAX_OCTAVES)
        _int_in("epochs", self.epochs, 0, MAX_EPOCHS)
        _int_in("max_side", self.max_side, TILE, MAX_SIDE_LIMIT)
        _int_in("seed", self.seed, 0, 2**31 - 1)
        if self.map is not None and (not isinstance(self.map, (int, np.integer)) or self.map < 0):
            raise ValueError(f"map={self.map!r} must be a whole number ≥ 0")
        if not (math.isfinite(self.step_size) and 0 <= self.step_size <= 10):
            raise ValueError(f"step_size={self.step_size} must be between 0 and 10")
        if not (self.octave_scale == 0 or (math.isfinite(self.octave_scale) and 1.05 <= self.octave_scale <= 8)):
            raise ValueError(f"octave_scale={self.octave_scale} must be 0 (auto) or between 1.05 and 8")
        if not (math.isfinite(self.widen) and 0 <= self.widen < 50):
            raise ValueError(f"widen={self.widen} must be a percentage between 0 and 50")
        for term in self.terms:
            if not math.isfinite(term.weight):
                raise ValueError(f"weight of {term.layer} must be a finite number, got {term.weight}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["terms"] = format_terms(self.terms)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DreamConfig:
        d = dict(d)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown dream settings {unknown}; allowed: {sorted(known)}")
        if isinstance(d.get("terms"), str):
            d["terms"] = parse_terms(d["terms"])
        return cls(**d)


def _int_in(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name}={value!r} must be a whole number from {low} to {high}")


# --------------------------------------------------------------------------------------------
# Model side: layer info, default target, the compiled ascents
# --------------------------------------------------------------------------------------------
def _chain_layers(model) -> list:
    """The model's layers in order, checked to form a single chain input → ... → out."""

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    prev = model.inputs[0]
    for layer in layers:
        if layer.input is not prev:
            raise ValueError(
                f"layer {layer.name!r} does not follow the previous layer; Deep Dream needs "
                "a simple chain of layers as built by core.model.build_model"
            )
        prev = layer.output
    return layers


def layer_info(model) -> dict[str, tuple[int, bool]]:
    """``{layer name: (number of maps/units, is spatial)}`` in model order (spatial: 4-D output)."""
    info = {}
    for layer in _chain_layers(model):
        shape = tuple(layer.output.shape)
        info[layer.name] = (int(shape[-1]), len(shape) == 4)
    return info


def default_target(model) -> tuple[str, int, str | None]:
    """The blog's conv3 map 56 if it exists; otherwise the nearest that does, with a message."""
    info = layer_info(model)
    if DEFAULT_LAYER in info:
        n = info[DEFAULT_LAYER][0]
        if DEFAULT_MAP < n:
            return DEFAULT_LAYER, DEFAULT_MAP, None
        return (
            DEFAULT_LAYER,
            n - 1,
            (
                f"{DEFAULT_LAYER} of this model has only {n} maps, so map {n - 1} "
                f"is used instead of the blog's map {DEFAULT_MAP}."
            ),
        )
    convs = [name for name, (_, spatial) in info.items() if spatial and name.startswith("conv")]
    layer = convs[-1] if convs else next(iter(info))
    n = info[layer][0]
    return (
        layer,
        min(DEFAULT_MAP, n - 1),
        (f"This model has no {DEFAULT_LAYER}; using {layer} map {min(DEFAULT_MAP, n - 1)}."),
    )


def resolve_terms(settings: DreamConfig, model) -> tuple[Term, ...]:
    """The cost terms for ``settings`` on ``model``, validated (ValueError names the bad term)."""
    info = layer_info(model)
    if settings.mode == "map":
        terms = (Term(settings.layer, settings.map, 1.0),)
    elif settings.terms:
        terms = settings.terms
    elif settings.mode == "tiles":
        terms = (Term(settings.layer, settings.map, 1.0),)
    else:
        convs = [name for name, (_, spatial) in info.items() if spatial and name.startswith("conv")]
        terms = tuple(Term(name, None, 1.0) for name in convs[-2:])
    for term in terms:
        if term.layer not in info:
            raise ValueError(f"layer {term.layer!r} is not in this model; it has {list(info)}")
        n, spatial = info[term.layer]
        if term.map is not None and not 0 <= term.map < n:
            raise ValueError(f"map {term.map} does not exist in {term.layer}, which has maps 0..{n - 1}")
        if settings.mode == "layers" and not spatial:
            spatial_names = [k for k, (_, s) in info.items() if s]
            raise ValueError(
                f"layer {term.layer!r} needs a 28×28 input; the layers mode sends whole octave images "
                f"through the network and allows only {spatial_names}. Use the tiles mode for {term.layer}."
            )
    if not any(t.weight != 0 for t in terms):
        raise ValueError("all layer weights are 0; give at least one layer or map a non-zero weight")
    return tuple(terms)


def deepest_layer(terms: Sequence[Term], model) -> str:
    """The deepest layer the terms name (the engine's layer: it reaches every shallower one)."""
    names = list(layer_info(model))
    return max((t.layer for t in terms), key=names.index)


# --------------------------------------------------------------------------------------------
# Image helpers
# --------------------------------------------------------------------------------------------
def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of ``(H, W)`` float to ``size`` = (h, w); antialiased when shrinking."""
    image = np.asarray(image, np.float32)
    if image.shape == tuple(size):
        return image.copy()
    out = tf.image.resize(image[None, :, :, None], size, method="bicubic", antialias=True)
    return out.numpy()[0, :, :, 0]


@dataclass(frozen=True)
class Standardizer:
    """Grey 0..255 ↔ model input: ``z = (grey − mean) / std`` over the whole image."""

    mean: float
    std: float

    @classmethod
    def of(cls, grey: np.ndarray) -> Standardizer:
        grey = np.asarray(grey, np.float64)
        return cls(float(grey.mean()), float(max(grey.std(), 1.0)))  # a flat image keeps std 1

    def forward(self, grey: np.ndarray) -> np.ndarray:
        return ((np.asarray(grey, np.float32) - self.mean) / self.std).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return (np.asarray(z, np.float32) * self.std + self.mean).astype(np.float32)

    @property
    def bounds(self) -> tuple[float, float]:
        """Model-space values of grey 0 and 255."""
        return (0.0 - self.mean) / self.std, (255.0 - self.mean) / self.std


def standardize(grey: np.ndarray) -> np.ndarray:
    """``(H, W)`` grey → zero mean, unit standard deviation (std floored at 1 grey level)."""
    return Standardizer.of(grey).forward(grey)


def to_uint8(grey: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def widen(grey: np.ndarray, percent: float = 1.0) -> np.ndarray:
    """Stretch the value distribution: the ``percent`` and ``100 − percent`` percentiles → 0 and 255.

    ``(H, W)`` float → ``(H, W)`` uint8. A flat image is returned clipped, not stretched.
    """
    grey = np.asarray(grey, np.float32)
    low, high = np.percentile(grey, [percent, 100.0 - percent]) if percent > 0 else (grey.min(), grey.max())
    if high - low < 1e-3:
        return to_uint8(grey)
    return to_uint8((grey - low) * (255.0 / (high - low)))


def recolour(grey: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Put luminance ``(H, W)`` uint8 into the colours of ``rgb`` ``(H, W, 3)`` uint8 (YCbCr swap)."""
    ycc = np.asarray(Image.fromarray(np.asarray(rgb, np.uint8), "RGB").convert("YCbCr")).copy()
    ycc[..., 0] = np.asarray(grey, np.uint8)
    return np.asarray(Image.fromarray(ycc, "YCbCr").convert("RGB"))


_VIRIDIS: np.ndarray | None = None


def viridis(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` values → ``(H, W, 3)`` uint8 RGB in the viridis colour map (min..max of the image)."""
    global _VIRIDIS
    if _VIRIDIS is None:
        from plotly.colors import sample_colorscale, unlabel_rgb

        _VIRIDIS = (
            np.array(
                [unlabel_rgb(c) for c in sample_colorscale("Viridis", list(np.linspace(0, 1, 256)))], dtype=np.float64
            )
            .round()
            .astype(np.uint8)
        )
    image = np.asarray(image, np.float32)
    span = float(image.max() - image.min())
    index = (
        np.zeros(image.shape, np.int64)
        if span < 1e-9
        else np.clip(((image - image.min()) / span * 255).round(), 0, 255).astype(np.int64)
    )
    return _VIRIDIS[index]


def octave_sizes(
    height: int, width: int, octaves: int, scale: float = 0.0, min_side: int = TILE
) -> list[tuple[int, int]]:
    """Octave sizes ``(h, w)`` from coarse to fine; the last is ``(height, width)``.

    Each octave is ``scale`` times smaller than the next; ``scale`` 0 spreads the octaves
    geometrically so that the coarsest has a short side of ``min_side``. No octave is smaller than
    ``min_side`` on its short side; sizes that would repeat are dropped, so fewer octaves can come back.
    """
    if octaves < 1:
        raise ValueError(f"octaves={octaves} must be ≥ 1")
    short = min(height, width)
    if scale == 0:
        scale = (short / min_side) ** (1.0 / (octaves - 1)) if octaves > 1 and short > min_side else 1.0
    sizes: list[tuple[int, int]] = []
    for k in range(octaves - 1, -1, -1):
        factor = max(scale**k, 1.0)
        factor = min(factor, short / min_side) if short >= min_side else 1.0
        size = (max(1, round(height / factor)), max(1, round(width / factor)))
        if not sizes or size != sizes[-1]:
            sizes.append(size)
    sizes[-1] = (height, width)
    return sizes


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def default_photo() -> np.ndarray:
    """scikit-learn's sample photo ``flower.jpg`` ``(427, 640, 3)`` uint8 (CC BY 2.0, ships with sklearn)."""
    from sklearn.datasets import load_sample_image

    return load_sample_image("flower.jpg")


def prepare_photo(photo, max_side: int = DEFAULT_MAX_SIDE) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """A photo (PIL image from ``core.images.decode_image``, or ``(H, W)`` / ``(H, W, 3)`` uint8) →
    working grey ``(h, w)`` float32 0..255, working RGB ``(h, w, 3)`` uint8 or None, notes.

    Shrinks to ``max_side`` on the long side; enlarges images whose short side is under 28.
    """
    notes: list[str] = []
    if isinstance(photo, Image.Image):
        img = photo if photo.mode in ("L", "RGB") else photo.convert("RGB")
    else:
        arr = np.asarray(photo)
        if arr.dtype != np.uint8:
            if arr.size and (not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 255):
                raise ValueError(f"a photo array must hold values 0..255, got {arr.min()}..{arr.max()}")
            arr = np.rint(arr).astype(np.uint8)
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[..., :3]
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
            raise ValueError(f"a photo must be an (H, W) or (H, W, 3) array, got shape {arr.shape}")
        img = Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB")
    w, h = img.size
    if w < 1 or h < 1:
        raise ValueError(f"the photo has no pixels ({w}×{h})")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ValueError(
            f"the photo is {w}×{h} pixels; its aspect ratio {max(w, h) / min(w, h):.0f}:1 is too "
            f"extreme (at most {MAX_ASPECT:.0f}:1). Crop it first."
        )
    factor = 1.0
    if max(w, h) > max_side:
        factor = max_side / max(w, h)
        notes.append(
            f"The photo ({w}×{h}) is dreamt at {round(w * factor)}×{round(h * factor)} (longest side {max_side})."
        )
    if min(w, h) * factor < TILE:
        factor = TILE / min(w, h)
        notes.append(
            f"The photo ({w}×{h}) is smaller than the CNN's {TILE}×{TILE} input; it was enlarged to "
            f"{round(w * factor)}×{round(h * factor)}."
        )
    if factor != 1.0:
        size = (max(TILE, round(w * factor)), max(TILE, round(h * factor)))
        img = img.resize(size, Image.Resampling.BICUBIC)
    rgb = np.asarray(img) if img.mode == "RGB" else None
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    return grey, rgb, notes


def photo_from_bytes(
    data: bytes, max_side: int = DEFAULT_MAX_SIDE, max_pixels: int | None = None
) -> tuple[np.ndarray, list[str]]:
    """Uploaded file bytes → working photo, RGB ``(h, w, 3)`` or grey ``(h, w)`` uint8, and notes.

    Decoding is ``core.images.decode_image`` (size limit checked before decoding, EXIF rotation,
    16-bit / CMYK / palette / transparent files); raises ``ImageInputError`` (a ValueError) with a
    user-facing reason.
    """
    from core import images

    limit = max_pixels or images.DEFAULT_MAX_PIXELS
    details = getattr(images, "decode_image_details", None)  # newer core.images: also says what it did
    if details is not None:
        decoded = details(data, limit)
        img, decode_notes = decoded.image, [n[:1].upper() + n[1:] + "." for n in decoded.notes]
    else:
        img, decode_notes = images.decode_image(data, limit), []
    grey, rgb, notes = prepare_photo(img, max_side)
    return (rgb if rgb is not None else to_uint8(grey)), decode_notes + notes


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class DreamStage:
    """One loop (map mode) or octave (other modes), as in the blog's rows.

    ``pattern``: the dreamt image at its own resolution in model space, ``(28, 28)`` in map mode,
    the octave size otherwise (as the CNN sees it: after any inversion). ``upscaled``: it enlarged
    to the full working size, grey uint8 ``(H, W)``. ``final``: with the photo's details re-added,
    uint8 ``(H, W)``. ``widened``: ``final`` with its value distribution stretched, uint8 ``(H, W)``.
    ``losses``: the cost after each ascent step ``(epochs,)``.
    """

    label: str
    size: tuple[int, int]
    pattern: np.ndarray
    upscaled: np.ndarray
    final: np.ndarray
    widened: np.ndarray
    losses: np.ndarray
    seconds: float

    @property
    def loss(self) -> float:
        return float(self.losses[-1]) if len(self.losses) else float("nan")


@dataclass
class DreamResult:
    """A finished (or stopped) dream with the settings that made it.

    ``original``: working photo, grey ``(H, W)`` uint8; ``original_rgb``: ``(H, W, 3)`` or None.
    ``image``: the final picture, ``(H, W)`` uint8 grey or ``(H, W, 3)`` when recoloured.
    ``final_grey``: the last stage's picture before widening, ``(H, W)`` float 0..255.
    """

    settings: dict
    original: np.ndarray
    original_rgb: np.ndarray | None
    image: np.ndarray
    final_grey: np.ndarray
    stages: list[DreamStage]
    notes: list[str]
    status: str
    seconds: float
    model: str = ""
    terms: tuple[Term, ...] = field(default_factory=tuple)

    def summary(self) -> dict:
        """Settings and figures, JSON-ready."""
        h, w = self.original.shape
        return {
            **self.settings,
            "model": self.model,
            "status": self.status,
            "width": w,
            "height": h,
            "stages": [
                {"label": s.label, "size": list(s.size), "loss": round(s.loss, 6), "seconds": round(s.seconds, 3)}
                for s in self.stages
            ],
            "notes": self.notes,
        }

    def png_bytes(self) -> bytes:
        """The final picture as PNG, with the settings as JSON in its ``dream_settings`` text chunk."""
        info = PngImagePlugin.PngInfo()
        info.add_text("dream_settings", json.dumps(self.summary()))
        buf = io.BytesIO()
        Image.fromarray(self.image, "RGB" if self.image.ndim == 3 else "L").save(buf, "PNG", pnginfo=info)
        return buf.getvalue()


# --------------------------------------------------------------------------------------------
# The dream
# --------------------------------------------------------------------------------------------
def dream(
    photo,
    model,
    settings: DreamConfig | None = None,
    progress: ProgressCallback | None = None,
    model_name: str = "",
    engine: AscentEngine | None = None,
) -> DreamResult:
    """Let ``model`` dream on ``photo`` (see the module docstring for the three modes).

    ``photo``: PIL image (e.g. from ``core.images.decode_image``) or uint8 ``(H, W)`` / ``(H, W, 3)``.
    ``engine``: a cached ``core.ascent.engine.AscentEngine`` for the deepest layer the settings name
    (``deepest_layer(resolve_terms(settings, model), model)``; built when None).
    Progress: one step per loop or octave; ``should_stop`` is honoured between them and the
    result then holds the stages finished so far (status ``"stopped"``).
    """
    settings = settings or DreamConfig()
    settings.validate()
    started = time.perf_counter()
    terms = resolve_terms(settings, model)
    layer = deepest_layer(terms, model)
    engine = engine or AscentEngine(model, layer)
    if engine.layer != layer:
        raise ValueError(f"the ascent engine is for layer {engine.layer!r}, but the settings need {layer!r}")
    weights = engine.term_weights([(t.layer, t.map, t.weight) for t in terms]) if settings.mode != "map" else None
    grey, rgb, notes = prepare_photo(photo, settings.max_side)
    original = to_uint8(grey)
    work = 255.0 - grey if settings.invert else grey
    scaler = Standardizer.of(work)
    z = scaler.forward(work)
    lo, hi = scaler.bounds
    h, w = z.shape

    def to_photo_grey(zimg: np.ndarray) -> np.ndarray:
        g = scaler.inverse(zimg)
        return 255.0 - g if settings.invert else g

    stages: list[DreamStage] = []
    status = "finished"
    if settings.mode == "map":
        total, label = settings.loops, f"Deep Dream · single map {terms[0].layer}:{terms[0].map}"
    else:
        sizes = octave_sizes(h, w, settings.octaves, settings.octave_scale)
        total, label = len(sizes), f"Deep Dream · {MODE_TITLES[settings.mode].lower()}"
        if len(sizes) < settings.octaves:
            notes.append(
                f"Only {len(sizes)} distinct octave sizes fit between {TILE} pixels and "
                f"{w}×{h}; {settings.octaves} were asked for."
            )
    final_z = z
    with progress_scope(progress, total, label) as prog:
        if settings.mode == "map":
            small = resize(z, (TILE, TILE))
            detail = z - resize(small, (h, w))  # what the 28×28 version cannot hold
            for k in range(settings.loops):
                if prog.should_stop():
                    status = "stopped"
                    break
                t0 = time.perf_counter()
                pattern, losses = ascend_map(engine, small, terms[0].map, settings.epochs, settings.step_size, lo, hi)
                up = resize(pattern, (h, w))
                final_z = up + detail
                small = resize(final_z, (TILE, TILE))
                stages.append(_stage(f"loop {k + 1}", pattern, up, final_z, to_photo_grey, settings.widen, losses, t0))
                prog.on_step(k + 1, {"loop": k + 1, "loss": stages[-1].loss})
        else:
            originals = [resize(z, size) for size in sizes]
            img = originals[0]
            for k, size in enumerate(sizes):
                if prog.should_stop():
                    status = "stopped"
                    break
                t0 = time.perf_counter()
                if k > 0:  # upscale the last octave's dream and re-add the detail lost between the sizes
                    img = resize(img, size) + (originals[k] - resize(originals[k - 1], size))
                img, losses = engine.ascend_canvas(
                    img,
                    weights,
                    settings.epochs,
                    settings.step_size,
                    view="whole" if settings.mode == "layers" else "tiles",
                    clip=(lo, hi),
                    seed=(settings.seed, k),
                )
                up = resize(img, (h, w))
                final_z = up + (z - resize(originals[k], (h, w)))  # the full picture at this point
                stages.append(
                    _stage(
                        f"octave {k + 1} · {size[1]}×{size[0]}",
                        img,
                        up,
                        final_z,
                        to_photo_grey,
                        settings.widen,
                        losses,
                        t0,
                    )
                )
                prog.on_step(k + 1, {"octave": k + 1, "loss": stages[-1].loss})
    final_grey = np.clip(to_photo_grey(final_z), 0, 255)
    image = widen(final_grey, settings.widen) if settings.widen > 0 else to_uint8(final_grey)
    if settings.recolour:
        if rgb is None:
            notes.append("The photo is grey, so there are no colours to recolour with.")
        else:
            image = recolour(image, rgb)
    return DreamResult(
        settings=settings.to_dict() | {"terms": format_terms(terms)},
        original=original,
        original_rgb=rgb,
        image=image,
        final_grey=final_grey,
        stages=stages,
        notes=notes,
        status=status,
        seconds=time.perf_counter() - started,
        model=model_name,
        terms=terms,
    )


def ascend_map(
    engine, image: np.ndarray, map_index: int, epochs: int, step: float, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """One single-map loop on the OIP engine: ``(28, 28)`` model-space image → dreamt ``(28, 28)`` and the
    cost per step ``(epochs,)`` (nothing moves with 0 epochs or step 0)."""
    moving = epochs if step > 0 else 0
    res = engine.ascend(
        np.asarray(image, np.float32)[None],
        [int(map_index)],
        moving,
        step if step > 0 else 1.0,
        clip=(lo, hi),
        normalize="std",
    )
    return res.images[0, ..., 0], res.history[:, 0]


def _stage(label, pattern, up, final_z, to_photo_grey, widen_pct, losses, t0) -> DreamStage:
    final_grey = to_photo_grey(final_z)
    return DreamStage(
        label=label,
        size=tuple(int(s) for s in pattern.shape),
        pattern=pattern.astype(np.float32),
        upscaled=to_uint8(to_photo_grey(up)),
        final=to_uint8(final_grey),
        widened=widen(final_grey, widen_pct if widen_pct > 0 else 0.0),
        losses=np.asarray(losses, np.float32),
        seconds=time.perf_counter() - t0,
    )
