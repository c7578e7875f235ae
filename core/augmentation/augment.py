"""Random changes to training digits, drawn anew for every batch: shift, rotation, zoom, stroke thickness and
elastic distortion, each up to a range (0: off). All ranges 0 is the blog's training (no augmentation), the default.

``augment_batch`` is TensorFlow ops only, so it runs inside the training's ``tf.data`` map (compiled with the rest of
the input pipeline); its random numbers are stateless draws from the ``seed`` given, so the same seed gives the
same batch, whatever else runs in the process. The geometric changes and the elastic field become one sampling grid
per digit and one bilinear lookup (blank outside the image); thickness is a grey dilation or erosion with the
4-neighbour cross, as on the Experiments page (``core.experiments.invariance``).

No flips: a mirrored 2, 3 or 7 is not a digit any more (the course's Keras example flips photos).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields

from core.checks import check_range

SIDE = 28
# key → (low, high, whole, what it means); ranges are "up to": each digit draws its own value from ±range
RANGES = {
    "shift": (0.0, 8.0, False, "px, up to this far in x and in y"),
    "rotate": (0.0, 90.0, False, "degrees, either way"),
    "zoom": (0.0, 0.5, False, "fraction: a size factor from 1−zoom to 1+zoom"),
    "thickness": (0, 2, True, "px, strokes thinned or thickened by up to this many pixels"),
    "elastic": (0.0, 4.0, False, "px, the largest displacement of the smooth random field"),
    "sigma": (2.0, 14.0, False, "px, the spacing of the elastic field's control points (larger: smoother)"),
}
AUGMENT_KEYS = tuple(RANGES)
AUGMENT_HELP = ", ".join(f"{k} {low:g}..{high:g}" for k, (low, high, _, _) in RANGES.items() if k != "sigma")
DEFAULT_SIGMA = 5.0
OFF_TEXT = "none"


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation ranges (all 0: off, the blog's training). ``sigma`` only shapes the elastic field."""

    shift: float = 0.0
    rotate: float = 0.0
    zoom: float = 0.0
    thickness: int = 0
    elastic: float = 0.0
    sigma: float = DEFAULT_SIGMA

    @property
    def enabled(self) -> bool:
        return any(getattr(self, k) for k in AUGMENT_KEYS if k != "sigma")

    def validate(self) -> None:
        for key, (low, high, whole, unit) in RANGES.items():
            check_range(key, getattr(self, key), low, high, whole=whole, note=unit)

    def text(self) -> str:
        """``shift=2,rotate=10`` (the ranges that are on; sigma only with elastic and when not the default), or
        ``none``; ``parse_augment`` reads it back."""
        parts = [f"{k}={getattr(self, k):g}" for k in AUGMENT_KEYS if k != "sigma" and getattr(self, k)]
        if self.elastic and self.sigma != DEFAULT_SIGMA:
            parts.append(f"sigma={self.sigma:g}")
        return ",".join(parts) or OFF_TEXT

    def to_dict(self) -> dict:
        return asdict(self)


OFF = AugmentConfig()


def parse_augment(text: str | None) -> AugmentConfig:
    """``shift=2,rotate=10,zoom=0.1,thickness=1,elastic=2,sigma=5`` (any subset, any order; ``none`` or empty: off)
    → a validated AugmentConfig. ValueError naming the bad part and what is allowed."""
    text = (text or "").strip()
    if text.lower() in ("", OFF_TEXT, "off"):
        return OFF
    values: dict = {}
    allowed = ", ".join(f"{k} ({RANGES[k][0]:g}..{RANGES[k][1]:g})" for k in AUGMENT_KEYS)
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, raw = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in RANGES:
            raise ValueError(f"augmentation {part!r} is not key=value with a key among: {allowed}")
        if key in values:
            raise ValueError(f"augmentation {key!r} is given twice")
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"augmentation {key}={raw.strip()!r} is not a number ({RANGES[key][3]})") from None
        values[key] = int(number) if RANGES[key][2] and number.is_integer() else number
    config = AugmentConfig(**values)
    config.validate()
    return config


def augment_from_dict(data) -> AugmentConfig:
    """A run's saved augmentation (its run.json ``config.augment``: the text, or a dict) → AugmentConfig; a run saved
    before augmentation existed (None) reads as off."""
    if data is None:
        return OFF
    if isinstance(data, str):
        return parse_augment(data)
    known = {f.name for f in fields(AugmentConfig)}
    return AugmentConfig(**{k: v for k, v in dict(data).items() if k in known})


def augment_of(meta: dict) -> AugmentConfig:
    """The augmentation a run was trained with (its run.json's ``config.augment``); off for runs saved before
    augmentation existed. ValueError naming the value when it is damaged."""
    return augment_from_dict((meta.get("config") or {}).get("augment"))


def augment_label(meta: dict) -> str:
    """``augment_of(meta)`` as text for a table (``shift=2,rotate=10``, ``none``), or what is wrong with it."""
    try:
        return augment_of(meta).text()
    except (ValueError, TypeError) as exc:
        return f"unreadable ({exc})"


def augment_batch(images, config: AugmentConfig, seed):
    """Raw digits ``images`` ``(B, 28, 28)`` (0..255, any real dtype) → augmented ``(B, 28, 28)`` float32, each digit
    with its own random shift, rotation, zoom, thickness and elastic field within ``config``'s ranges.

    ``seed``: an int or a ``(2,)`` int tensor; the draws are stateless, so the same seed gives the same batch. With
    augmentation off the digits come back unchanged (as float32). TensorFlow ops only: usable inside ``tf.data``.
    """
    import tensorflow as tf

    images = tf.cast(images, tf.float32)
    if not config.enabled:
        return images
    return apply_changes(images, draw_changes(config, seed, tf.shape(images)[0]))


def augment_digits(images, config: AugmentConfig, seed: int, chunk: int = 4096):
    """``augment_batch`` over many raw digits ``(N, 28, 28)`` in chunks of ``chunk`` (chunk k seeded by ``(seed, k)``)
    → ``(N, 28, 28)`` float32 numpy: one augmented copy of a set (the scaler's fit, samples for a page)."""
    import numpy as np
    import tensorflow as tf

    images = np.asarray(images)
    if not config.enabled:
        return images.astype(np.float32)
    step = _compiled(config)
    parts = [
        step(tf.constant(images[i : i + chunk]), tf.constant([int(seed), i // chunk], tf.int64)).numpy()
        for i in range(0, len(images), chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, SIDE, SIDE), np.float32)


@functools.lru_cache(maxsize=8)
def _compiled(config: AugmentConfig):
    """One compiled ``augment_batch`` per config, kept: a new ``tf.function`` on every call traced the graph anew
    each time (TensorFlow's retracing warning on the Train page's samples)."""
    import tensorflow as tf

    return tf.function(lambda x, s: augment_batch(x, config, s), reduce_retracing=True)


def draw_changes(config: AugmentConfig, seed, batch) -> dict:
    """Each digit's random changes within ``config``'s ranges, for a batch of ``batch`` digits: ``dx``, ``dy`` (px,
    right and down), ``angle`` (degrees), ``scale`` (size factor), ``thickness`` (whole px, −: thinner) ``(B,)``
    each, and ``field`` ``(B, 28, 28, 2)`` (the elastic displacement in px, rows then columns) or None. Only what
    ``config`` turns on is drawn; the rest is the identity."""
    import tensorflow as tf

    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.zeros([], tf.int64)])
    seeds = tf.random.experimental.stateless_split(seed, num=6)

    def uniform(i, most, shape=None):
        if not most:
            return tf.zeros([batch] if shape is None else shape)
        return tf.random.stateless_uniform([batch] if shape is None else shape, seeds[i], -float(most), float(most))

    thickness = (
        tf.random.stateless_uniform([batch], seeds[0], -config.thickness, config.thickness + 1, dtype=tf.int32)
        if config.thickness
        else tf.zeros([batch], tf.int32)
    )
    field = None
    if config.elastic:
        # a coarse grid of random displacements, smoothly upsampled: as smooth as a Gaussian-filtered field of
        # that width, at a fraction of its cost (no 28×28 convolution per digit)
        knots = max(2, round(SIDE / config.sigma) + 1)
        coarse = uniform(5, config.elastic, [batch, knots, knots, 2])
        field = tf.image.resize(coarse, [SIDE, SIDE], method="bilinear")  # within ±elastic
    return {
        "dx": uniform(1, config.shift),
        "dy": uniform(2, config.shift),
        "angle": uniform(3, config.rotate),
        "scale": 1.0 + uniform(4, config.zoom),
        "thickness": thickness,
        "field": field,
        "most_thickness": int(config.thickness),  # how many dilations/erosions to prepare
        "warp": bool(config.shift or config.rotate or config.zoom or config.elastic),
    }


def apply_changes(images, changes: dict):
    """``images`` ``(B, 28, 28)`` float32 with ``changes`` (``draw_changes``) applied: thickness first (in the
    digit's own pixels), then shift, rotation (anticlockwise for a positive angle), zoom and the elastic field as one
    sampling grid per digit and one bilinear lookup (blank outside) → ``(B, 28, 28)``."""
    import math

    import tensorflow as tf

    batch = tf.shape(images)[0]
    images = _thickness(images, changes["thickness"], changes.get("most_thickness", 2))
    if not changes.get("warp", True):
        return images
    centre = (SIDE - 1) / 2.0
    grid = tf.range(SIDE, dtype=tf.float32) - centre
    rows, cols = tf.meshgrid(grid, grid, indexing="ij")
    points = tf.stack([tf.reshape(rows, [-1]), tf.reshape(cols, [-1]), tf.ones([SIDE * SIDE])])  # (3, 784)
    angle = changes["angle"] * (math.pi / 180.0)
    cos, sin = tf.cos(angle) / changes["scale"], tf.sin(angle) / changes["scale"]
    dx, dy = changes["dx"], changes["dy"]
    # output pixel → input pixel: undo the shift, then the rotation, then the zoom; (B, 2, 3) affine maps
    affine = tf.stack(
        [
            tf.stack([cos, sin, -cos * dy - sin * dx + centre], axis=1),
            tf.stack([-sin, cos, sin * dy - cos * dx + centre], axis=1),
        ],
        axis=1,
    )
    source = tf.einsum("bij,jp->bip", affine, points)  # (B, 2, 784): source row and column of every output pixel
    if changes.get("field") is not None:
        source += tf.transpose(tf.reshape(changes["field"], [batch, SIDE * SIDE, 2]), [0, 2, 1])
    return _bilinear(images, source, batch)


def _thickness(images, thickness, most: int):
    """Each digit ``(B, 28, 28)`` dilated (+) or eroded (−) by its ``thickness`` ``(B,)`` whole pixels (at most
    ``most`` either way) with the 4-neighbour cross; unchanged where 0."""
    import tensorflow as tf

    def step(x, op):
        padded = tf.pad(x, [[0, 0], [1, 1], [1, 1]])
        neighbours = [
            padded[:, 1:-1, 1:-1],
            padded[:, :-2, 1:-1],
            padded[:, 2:, 1:-1],
            padded[:, 1:-1, :-2],
            padded[:, 1:-1, 2:],
        ]
        return op(tf.stack(neighbours), axis=0)

    if not most:
        return images
    versions, thin, thick = [images], images, images
    for _ in range(most):
        thin, thick = step(thin, tf.reduce_min), step(thick, tf.reduce_max)
        versions = [thin, *versions, thick]
    stacked = tf.stack(versions, axis=1)  # (B, 2·most+1, 28, 28): thinnest … thickest
    return tf.gather(stacked, tf.clip_by_value(thickness, -most, most) + most, batch_dims=1)


def _bilinear(images, source, batch):
    """``images`` ``(B, 28, 28)`` sampled at ``source`` ``(B, 2, 784)`` (row, column per output pixel) → ``(B, 28,
    28)``; blank (0) outside."""
    import tensorflow as tf

    pad = 2  # two blank rows and columns around: a lookup outside (clipped into the border) reads only zeros
    side = SIDE + 2 * pad
    flat = tf.reshape(tf.pad(images, [[0, 0], [pad, pad], [pad, pad]]), [-1])
    where = tf.clip_by_value(source + pad, 0.0, side - 1.001)
    low = tf.floor(where)
    frac = where - low  # (B, 2, 784)
    low = tf.cast(low, tf.int32)
    first = low[:, 0] * side + low[:, 1] + (tf.range(batch) * side * side)[:, None]  # (B, 784) top-left corner
    corners = tf.gather(flat, tf.stack([first, first + 1, first + side, first + side + 1]))  # (4, B, 784)
    fr, fc = frac[:, 0], frac[:, 1]
    top = corners[0] * (1 - fc) + corners[1] * fc
    bottom = corners[2] * (1 - fc) + corners[3] * fc
    return tf.reshape(top * (1 - fr) + bottom * fr, [batch, SIDE, SIDE])
