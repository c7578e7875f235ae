"""Optimal input patterns (OIPs): gradient ascent on the input pixels for the maps of a layer.

An OIP is an input image that makes one map respond strongly. It is found with the trained
weights fixed, by gradient ascent on the pixels (blog articles VII–IX, XI; F. Chollet):

* loss of an image for its target map: the mean activation of that map (``objective="map"``), or
  one neuron of it (``objective="neuron"``); for the layer ``out`` the class score *before* the
  softmax (class visualisation);
* every epoch: ``x += step · g / rms(g)`` with ``g`` the gradient of the loss with respect to the
  image and ``rms(g)`` its root-mean-square over that image's pixels (per image of the batch);
* a map *has an OIP* when its loss ends above 0 (a map whose activations stay at zero has none).

All images of a batch, each with its own target map, go through **one** compiled TensorFlow
function (``tf.while_loop`` over the epochs), on the GPU when there is one. The images of a batch
are independent (no batch statistics are used), so a batch gives the same result as one image at a
time. ``AscentEngine.ascend`` is the entry point that the precursor search and Deep Dream reuse.

Synthetic images live in model-input space (what the CNN is fed, ``(N, 28, 28, 1)`` float32).
Start images are *standardised per image* (zero mean, unit standard deviation), as the blog did for
its generated images; see ``standardise_pattern`` for why the training ``PixelScaler`` is not used.
"""
from __future__ import annotations

import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .files import atomic_write_bytes  # noqa: E402
from .progress import ProgressCallback, progress_scope  # noqa: E402

SIDE = 28
SCALE_CELLS = (28, 14, 7, 4)  # the 4 length scales of the random start: cells per side
DEFAULT_SCALE_WEIGHTS = (0.5, 0.3, 0.2, 0.2)  # fine noise, 14×14, 7×7, 4×4 cells
OBJECTIVES = ("map", "neuron", "negative")  # negative: minimise the map (what it hates)
MAX_DIVERSITY = 100.0
MAX_SCALE = 0.5  # ± relative zoom: a 20-px MNIST digit must stay ≥ 10 px
MAX_ROTATE = 45.0  # ± degrees
# "robust" transforms tuned for 28×28 digits: a pixel of shift, ±10 % zoom, ±10° (MNIST's own variation)
ROBUST_TRANSFORMS = {"jitter": 1, "scale": 0.1, "rotate": 10.0}
TRANSFORMS = tuple(ROBUST_TRANSFORMS)
PARAMETERISATIONS = ("pixel", "fourier")


def fourier_weights(side: int = SIDE) -> np.ndarray:
    """``(side, side // 2 + 1)`` weights of the decorrelated (Fourier) parameterisation on ``rfft2`` frequencies:
    the square of 1 / frequency (floored at one cycle per image), normalised to mean 1.

    Ascending the image's spectrum scaled by 1 / frequency (as Lucid's ``fft_image``) moves the pixels by the
    pixel gradient filtered with these weights, so the ascent favours coarse structure over pixel noise."""
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.rfftfreq(side)[None, :]
    scale = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / side)
    w = scale ** 2
    return (w / w.mean()).astype(np.float32)
CLASS_LAYER = "out"  # "maps" of this layer are the class scores before the softmax
MAX_EPOCHS = 20_000
MAX_STARTS = 16
MAX_IMAGES = 4096  # maps × starts in one OIP run
EPS_RMS = 1e-5  # as Chollet: g / (sqrt(mean(g²)) + 1e-5)
EPS_STD = 1e-8  # the dreams' normalisation: g / (std(g) + 1e-8)
EPOCHS_ENV_VAR = "OIP_MAX_EPOCHS"  # caps epochs everywhere (tests), like tf-keras-vis' TF_KERAS_VIS_MAX_STEPS


def capped_epochs(epochs: int) -> int:
    """``epochs``, capped by ``$OIP_MAX_EPOCHS`` when that is set (keeps test runs short)."""
    cap = os.environ.get(EPOCHS_ENV_VAR)
    return min(int(epochs), int(cap)) if cap else int(epochs)


def device_name() -> str:
    """'GPU (name)' when TensorFlow sees one, else 'CPU'."""
    from .device import describe_device

    return describe_device()


# --- start images ------------------------------------------------------------------------------

def standardise_pattern(images: np.ndarray) -> np.ndarray:
    """Standardise each synthetic image on its own: zero mean and unit standard deviation.

    ``images`` ``(N, 28, 28)`` or ``(N, 28, 28, 1)`` any float → same shape, float32.
    A constant image (std below 1e-6 of its magnitude) becomes all zeros.

    Why per image and not through the model's ``PixelScaler``: the scaler divides by the per-pixel
    standard deviation of the training digits, which is tiny at the border (56 border pixels have
    std < 1 grey level, the smallest 0.03), so a smooth synthetic 0..1 pattern mapped through it gets
    border values in the hundreds that dominate every response. The blog standardised each
    generated image itself; we do the same, so a synthetic start has the value range of real
    standardised input (about −1..3) everywhere.
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


def random_start(seed: int, map_index: int, start_index: int,
                 scale_weights: Sequence[float] = DEFAULT_SCALE_WEIGHTS) -> np.ndarray:
    """One random start image ``(28, 28)`` float32, standardised.

    Uniform noise in [−1, 1] on 4 length scales (``SCALE_CELLS``: 28×28 fine noise, then 14×14,
    7×7 and 4×4 cells each upscaled bicubically to 28×28), summed with ``scale_weights`` and
    standardised per image. The random stream depends only on (seed, map, start), so a map gets the
    same start whichever other maps run beside it.
    """
    weights = _check_weights(scale_weights)
    rng = np.random.default_rng([int(seed), int(map_index), int(start_index)])
    img = np.zeros((SIDE, SIDE), np.float32)
    for cells, w in zip(SCALE_CELLS, weights):
        noise = rng.uniform(-1.0, 1.0, size=(1, cells, cells)).astype(np.float32)
        if w:
            img += w * upscale_bicubic(noise)[0]
    return standardise_pattern(img[None])[0]


def random_starts(maps: Sequence[int], starts: int, seed: int,
                  scale_weights: Sequence[float] = DEFAULT_SCALE_WEIGHTS) -> np.ndarray:
    """Start images for every (map, start): ``(len(maps), starts, 28, 28)`` float32."""
    out = np.empty((len(maps), starts, SIDE, SIDE), np.float32)
    for i, m in enumerate(maps):
        for s in range(starts):
            out[i, s] = random_start(seed, m, s, scale_weights)
    return out


def check_diversity(weight: float) -> float:
    """A diversity weight in 0..MAX_DIVERSITY, or ValueError naming it."""
    if not (math.isfinite(weight) and 0 <= weight <= MAX_DIVERSITY):
        raise ValueError(f"diversity={weight} is outside 0..{MAX_DIVERSITY:g} (0: off; 1–5 pushes a map's starts apart)")
    return float(weight)


def check_transforms(scale: float, rotate: float) -> None:
    """ValueError naming a zoom or rotation range outside what a 28×28 digit survives."""
    if not (math.isfinite(scale) and 0 <= scale < MAX_SCALE):
        smallest = 20 * (1 - scale) if math.isfinite(scale) else float("nan")
        raise ValueError(f"scale={scale} is outside 0..{MAX_SCALE} (exclusive): a zoom down to {1 - scale:.2f}× would "
                         f"shrink a 20-px digit to {smallest:.0f} px; MNIST digits vary by about ±0.1")
    if not (math.isfinite(rotate) and 0 <= rotate <= MAX_ROTATE):
        raise ValueError(f"rotate={rotate} degrees is outside 0..{MAX_ROTATE:g}")


def parse_transforms(text: str | None) -> dict:
    """``"jitter,scale,rotate"`` → the tuned settings of those transforms (``ROBUST_TRANSFORMS``); "" → none."""
    names = [t.strip().lower() for t in str(text or "").split(",") if t.strip()]
    unknown = [t for t in names if t not in TRANSFORMS]
    if unknown:
        raise ValueError(f"transform(s) {unknown} unknown; use any of {', '.join(TRANSFORMS)} separated by commas")
    return {t: ROBUST_TRANSFORMS[t] for t in names}


def _check_weights(scale_weights: Sequence[float]) -> tuple[float, ...]:
    weights = tuple(float(w) for w in scale_weights)
    if len(weights) != len(SCALE_CELLS):
        raise ValueError(f"scale_weights needs {len(SCALE_CELLS)} values (for cells {SCALE_CELLS}), "
                         f"got {len(weights)}: {weights}")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"scale_weights {weights} must be finite, ≥ 0 and not all 0")
    return weights


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


# --- the compiled engine ------------------------------------------------------------------------

@dataclass
class AscentResult:
    """``images`` ``(N, 28, 28, 1)`` after the ascent; ``history`` ``(epochs, N)``: the loss at the
    start of every epoch; ``final_loss`` ``(N,)``: the loss of the returned images."""

    images: np.ndarray
    history: np.ndarray
    final_loss: np.ndarray
    seconds: float
    stopped: bool = False


def _chain(model: keras.Model, layer: str) -> list:
    """The model's layers from the input up to and including ``layer`` (the models are chains)."""
    chain = []
    for lyr in model.layers:
        if isinstance(lyr, keras.layers.InputLayer):
            continue
        chain.append(lyr)
        if lyr.name == layer:
            return chain
    names = [lyr.name for lyr in model.layers if not isinstance(lyr, keras.layers.InputLayer)]
    raise ValueError(f"unknown layer {layer!r}; this model has {names}")


def _needed_side(model: keras.Model, chain: list) -> int:
    """Input rows/columns 0..n−1 that can reach the layer's output (valid convs and floor pooling drop
    the last ones: for conv3 of the 32-64-64 model only 26 of 28). Cropping the rest is exact and
    saves work; the cropped pixels get a zero gradient either way."""
    rf, jump, start, side = 1, 1, 0, SIDE
    for lyr in chain:
        if isinstance(lyr, keras.layers.Conv2D):
            k, s = lyr.kernel_size[0], lyr.strides[0]
            if lyr.padding != "valid" or s != 1:
                return SIDE
            rf += (k - 1) * jump
            side = side - k + 1
        elif isinstance(lyr, keras.layers.MaxPooling2D):
            p, s = lyr.pool_size[0], lyr.strides[0]
            if lyr.padding != "valid":
                return SIDE
            rf += (p - 1) * jump
            jump *= s
            side = (side - p) // s + 1
        elif isinstance(lyr, (keras.layers.Flatten, keras.layers.Dense)):
            return SIDE
    return min(SIDE, start + (side - 1) * jump + rf)


class AscentEngine:
    """Compiled, batched gradient ascent on input images for the maps (channels) of one layer.

    Built from a trained model and a layer name; it only *reads* the model (a model from a shared
    cache stays untouched). ``layer="out"`` targets the class scores before the softmax.
    The tf.function is traced once per engine (every argument is a tensor with a fixed signature).
    """

    def __init__(self, model: keras.Model, layer: str) -> None:
        self.layer = layer
        self._chain = _chain(model, layer)
        last = self._chain[-1]
        self._class_scores = layer == CLASS_LAYER
        if self._class_scores:
            if not isinstance(last, keras.layers.Dense):
                raise ValueError(f"layer {layer!r} is not a Dense layer; class scores need one")
            self._chain = self._chain[:-1]
            self._out_kernel = last.kernel
            self._out_bias = last.bias
        shape = tuple(int(d) for d in model.get_layer(layer).output.shape[1:])
        self.output_shape = shape  # (H, W, C) or (units,)
        self.channels = shape[-1]
        self.spatial = len(shape) == 3
        self.crop = _needed_side(model, self._chain) if not self._class_scores else SIDE
        # pre-activation access for fast screening (relu convs only)
        self._preact = None
        if isinstance(last, keras.layers.Conv2D) and getattr(last.activation, "__name__", "") == "relu" \
                and last.padding == "valid" and tuple(last.strides) == (1, 1) \
                and not self._class_scores:
            self._preact = last
        self._ascend_fn = tf.function(self._ascend, input_signature=[
            tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32),  # images
            tf.TensorSpec([None], tf.int32),                  # target map per image
            tf.TensorSpec([], tf.int32),                      # epochs
            tf.TensorSpec([], tf.float32),                    # step
            tf.TensorSpec([2], tf.int32),                     # neuron (row, col); (-1, -1): whole map
            tf.TensorSpec([], tf.int32),                      # jitter (px)
            tf.TensorSpec([], tf.float32),                    # blur (0..1)
            tf.TensorSpec([], tf.float32),                    # L2 decay per epoch
            tf.TensorSpec([], tf.float32),                    # TV weight
            tf.TensorSpec([2], tf.int32),                     # RNG seed (seed, epoch offset)
            tf.TensorSpec([None], tf.float32),                # sign per image: +1 maximise, −1 minimise
            tf.TensorSpec([], tf.float32),                    # diversity weight
            tf.TensorSpec([], tf.float32),                    # ± relative zoom per epoch
            tf.TensorSpec([], tf.float32),                    # ± rotation per epoch (degrees)
            tf.TensorSpec([2], tf.float32),                   # (low, high) clip of the pixels after each step
            tf.TensorSpec([], tf.bool),                       # divide the gradient by its std (dreams), not its RMS
            tf.TensorSpec([], tf.bool),                       # Fourier (decorrelated) parameterisation
        ])
        self._fourier = tf.constant(fourier_weights(), tf.complex64)
        self._loss_fn = tf.function(self._loss_only, input_signature=[
            tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32), tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([2], tf.int32), tf.TensorSpec([None], tf.float32)])
        self._act_fn = tf.function(self._forward, input_signature=[tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32)])
        self._scores_fn = tf.function(self._scores, input_signature=[tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32)])
        self._summary_fn = tf.function(self._summary, input_signature=[tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32)])

    # -- graph pieces
    def _forward(self, x):
        """(N, 28, 28, 1) → the layer's output (N, H, W, C) or (N, C) (class scores: logits)."""
        if self.crop < SIDE:
            x = x[:, : self.crop, : self.crop, :]
        for lyr in self._chain:
            x = lyr(x, training=False)
        if self._class_scores:
            x = tf.matmul(x, self._out_kernel) + self._out_bias
        return x

    def _objective(self, act, targets, neuron):
        """Per-image loss (N,) of each image's target map."""
        onehot = tf.one_hot(targets, self.channels, dtype=act.dtype)
        if not self.spatial:
            return tf.reduce_sum(act * onehot, axis=-1)
        per_map = tf.reduce_sum(act * onehot[:, None, None, :], axis=-1)  # (N, H, W)
        whole = tf.reduce_mean(per_map, axis=[1, 2])
        r = tf.clip_by_value(neuron[0], 0, tf.shape(per_map)[1] - 1)
        c = tf.clip_by_value(neuron[1], 0, tf.shape(per_map)[2] - 1)
        return tf.cond(neuron[0] < 0, lambda: whole, lambda: per_map[:, r, c])

    def _signed_objective(self, x, targets, neuron, sign):
        """Per-image objective (N,) times its sign. A minimised image (sign −1) of a relu conv layer works on
        the map's pre-activation: the activation stops at 0, where its gradient vanishes, while the
        pre-activation says how strongly the map is held down (what the map hates)."""
        if self._preact is None:
            return sign * self._objective(self._forward(x), targets, neuron)

        def with_preactivation():
            prev = x[:, : self.crop, : self.crop, :] if self.crop < SIDE else x
            for lyr in self._chain[:-1]:
                prev = lyr(prev, training=False)
            z = tf.nn.conv2d(prev, self._preact.kernel, 1, "VALID") + self._preact.bias
            act = tf.where((sign < 0)[:, None, None, None], z, tf.nn.relu(z))
            return sign * self._objective(act, targets, neuron)

        # all maximised (the blog's OIPs): the plain forward pass, unchanged results and cost
        return tf.cond(tf.reduce_any(sign < 0), with_preactivation,
                       lambda: sign * self._objective(self._forward(x), targets, neuron))

    @staticmethod
    def _similarity_penalty(x, targets, sign):
        """Per image (N,): mean cosine similarity of its centred pixels to the other images of the batch with
        the same target and sign (0 for an image without such company)."""
        flat = tf.reshape(x, [tf.shape(x)[0], -1])
        flat = tf.math.l2_normalize(flat - tf.reduce_mean(flat, axis=1, keepdims=True), axis=1)
        sim = tf.matmul(flat, flat, transpose_b=True)  # (N, N)
        same = tf.logical_and(tf.equal(targets[:, None], targets[None, :]), tf.equal(sign[:, None], sign[None, :]))
        same = tf.cast(same, tf.float32) * (1.0 - tf.eye(tf.shape(x)[0]))
        return tf.reduce_sum(sim * same, axis=1) / tf.maximum(tf.reduce_sum(same, axis=1), 1.0)

    def _loss_only(self, x, targets, neuron, sign):
        return self._signed_objective(x, targets, neuron, sign)

    @staticmethod
    def _zoom_rotate(x, scale, rotate, seed):
        """The batch zoomed by a factor in [1 − scale, 1 + scale] and rotated by an angle in ±rotate degrees
        about the centre (one random draw per epoch for the whole batch, mirrored at the border); bilinear,
        so the gradient flows back to the pixels."""
        u = tf.random.stateless_uniform([2], seed=seed, minval=-1.0, maxval=1.0)
        zoom = 1.0 + scale * u[0]
        angle = rotate * u[1] * (math.pi / 180.0)
        cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
        c = (SIDE - 1) / 2.0
        # output pixel (x, y) reads the input at (cos·x + sin·y + a2, −sin·x + cos·y + b2): the inverse map
        transform = tf.stack([cos, sin, c - cos * c - sin * c, -sin, cos, c + sin * c - cos * c, 0.0, 0.0])
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=x, transforms=tf.tile(transform[None], [tf.shape(x)[0], 1]), output_shape=[SIDE, SIDE],
            fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")

    def _fourier_step(self, g):
        """The pixel gradient ``(N, 28, 28, 1)`` as a step of the Fourier parameterisation (see fourier_weights)."""
        spectrum = tf.signal.rfft2d(g[..., 0]) * self._fourier
        return tf.signal.irfft2d(spectrum, fft_length=[SIDE, SIDE])[..., None]

    def _ascend(self, x, targets, epochs, step, neuron, jitter, blur, l2, tv, seed, sign, diversity, scale, rotate,
                clip, std_norm, fourier):
        n = tf.shape(x)[0]
        history = tf.TensorArray(tf.float32, size=epochs)
        blur_kernel = tf.constant([[1., 2., 1.], [2., 4., 2.], [1., 2., 1.]], tf.float32)[:, :, None, None] / 16.0

        def body(e, x, history):
            with tf.GradientTape() as tape:
                tape.watch(x)
                # jitter (off by default): shift the whole batch by (dy, dx) in [-j, j] px
                shift = tf.random.stateless_uniform([2], seed=tf.stack([seed[0], seed[1] + e]),
                                                    minval=-jitter, maxval=jitter + 1, dtype=tf.int32)
                xj = tf.cond(jitter > 0, lambda: tf.roll(x, shift, axis=[1, 2]), lambda: x)
                xj = tf.cond(tf.logical_or(scale > 0, rotate > 0),
                             lambda: self._zoom_rotate(xj, scale, rotate, tf.stack([seed[0] + 7919, seed[1] + e])),
                             lambda: xj)
                loss = self._signed_objective(xj, targets, neuron, sign)
                diversity_term = tf.cond(diversity > 0, lambda: diversity * self._similarity_penalty(x, targets, sign),
                                         lambda: tf.zeros([n]))
                tv_term = tf.cond(
                    tv > 0,
                    lambda: tv * (tf.reduce_mean(tf.abs(x[:, 1:] - x[:, :-1]), axis=[1, 2, 3])
                                  + tf.reduce_mean(tf.abs(x[:, :, 1:] - x[:, :, :-1]), axis=[1, 2, 3])),
                    lambda: tf.zeros([n]))
                total = tf.reduce_sum(loss - tv_term - diversity_term)
            g = tape.gradient(total, x)
            g = tf.cond(fourier, lambda: self._fourier_step(g), lambda: g)
            g = tf.cond(std_norm, lambda: g / (tf.math.reduce_std(g, axis=[1, 2, 3], keepdims=True) + EPS_STD),
                        lambda: g / (tf.sqrt(tf.reduce_mean(tf.square(g), axis=[1, 2, 3], keepdims=True)) + EPS_RMS))
            x = x + step * g
            x = tf.cond(tf.reduce_all(tf.math.is_finite(clip)), lambda: tf.clip_by_value(x, clip[0], clip[1]), lambda: x)
            x = tf.cond(l2 > 0, lambda: x * (1.0 - l2), lambda: x)
            x = tf.cond(blur > 0, lambda: (1.0 - blur) * x + blur * tf.nn.conv2d(
                tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC"), blur_kernel, 1, "VALID"),
                lambda: x)
            return e + 1, x, history.write(e, loss)

        _, x, history = tf.while_loop(lambda e, *_: e < epochs, body, [tf.constant(0), x, history],
                                      parallel_iterations=1)
        final = self._signed_objective(x, targets, neuron, sign)
        hist = tf.cond(epochs > 0, lambda: history.stack(), lambda: tf.zeros([0, n]))
        return x, hist, final

    def _scores(self, x):
        """Forward-only screening scores (N, C): the map's mean activation where it is > 0, else the
        largest pre-activation of the map (≤ 0: how far the map is from waking up)."""
        if self._preact is None:
            act = self._forward(x)
            return tf.reduce_mean(act, axis=[1, 2]) if self.spatial else act
        prev = x[:, : self.crop, : self.crop, :] if self.crop < SIDE else x
        for lyr in self._chain[:-1]:
            prev = lyr(prev, training=False)
        z = tf.nn.conv2d(prev, self._preact.kernel, 1, "VALID") + self._preact.bias
        mean = tf.reduce_mean(tf.nn.relu(z), axis=[1, 2])
        return tf.where(mean > 0, mean, tf.reduce_max(z, axis=[1, 2]))

    def _summary(self, x):
        act = self._forward(x)
        if not self.spatial:
            return act, tf.zeros_like(act, dtype=tf.int32)
        flat = tf.reshape(act, [tf.shape(act)[0], -1, self.channels])
        return tf.reduce_max(flat, axis=1), tf.cast(tf.argmax(flat, axis=1), tf.int32)

    # -- public API
    def _check(self, images: np.ndarray, targets: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[1:] != (SIDE, SIDE, 1):
            raise ValueError(f"images must have shape (N, 28, 28) or (N, 28, 28, 1), got {np.shape(images)}")
        t = np.asarray(targets, dtype=np.int64).reshape(-1)
        if t.shape[0] != x.shape[0]:
            raise ValueError(f"{x.shape[0]} images but {t.shape[0]} target maps; give one target per image")
        if t.size and (t.min() < 0 or t.max() >= self.channels):
            bad = int(t[(t < 0) | (t >= self.channels)][0])
            raise ValueError(f"map {bad} does not exist in layer {self.layer!r}, which has maps 0..{self.channels - 1}")
        return x, t.astype(np.int32)

    def _neuron(self, neuron: tuple[int, int] | None) -> np.ndarray:
        if neuron is None:
            return np.array([-1, -1], np.int32)
        if not self.spatial:
            raise ValueError(f"layer {self.layer!r} has no spatial maps; a neuron position needs a conv or pool layer")
        h, w = self.output_shape[:2]
        r, c = (int(v) for v in neuron)
        if not (0 <= r < h and 0 <= c < w):
            raise ValueError(f"neuron ({r}, {c}) is outside layer {self.layer!r}'s {h}×{w} maps")
        return np.array([r, c], np.int32)

    def ascend(self, images: np.ndarray, targets: Sequence[int], epochs: int, step: float = 1.0, *,
               neuron: tuple[int, int] | None = None, jitter: int = 0, blur: float = 0.0, l2_decay: float = 0.0,
               tv_weight: float = 0.0, seed: int = 0, batch_size: int | None = None, chunks: int = 1,
               progress: ProgressCallback | None = None, label: str = "OIP ascent", sign=None,
               diversity: float = 0.0, scale: float = 0.0, rotate: float = 0.0,
               clip: tuple[float, float] | None = None, normalise: str = "rms", param: str = "pixel") -> AscentResult:
        """Gradient ascent for ``epochs`` epochs on a batch of start images, each with its own target map.

        ``images`` ``(N, 28, 28)`` or ``(N, 28, 28, 1)`` model-input values; ``targets`` ``(N,)`` map
        indices. ``batch_size`` splits N into independent sub-batches (results are the same; smaller
        sub-batches are faster on a CPU's caches); ``chunks`` splits the epochs into that many calls of
        the same compiled function so that ``progress`` can report and ``should_stop`` can end the run
        early (the images reached so far are returned, ``stopped=True``). ``progress`` counts
        image-epochs. ``sign`` ``(N,)`` (or one number): +1 maximises the image's map, −1 minimises it
        (the loss then is −objective, on the pre-activation of a relu conv layer); ``diversity`` > 0 subtracts
        that weight times each image's mean cosine similarity to the batch's other images of the same map and
        sign (a sub-batch must hold them together). ``jitter``, ``scale`` and ``rotate`` transform the batch by a
        random shift (px), zoom (±relative) and rotation (±degrees) each epoch before the forward pass, so
        the image must excite the map wherever and however it sits (transformation robustness). ``clip``
        (low, high) bounds the pixels after every step and ``normalise="std"`` divides the gradient by its
        standard deviation instead of its RMS (both as the dreams do). ``param="fourier"`` ascends a decorrelated
        (Fourier) parameterisation instead of the pixels (``fourier_weights``). Returns images ``(N, 28, 28, 1)``, history ``(epochs, N)``,
        final loss ``(N,)`` (the signed objective).
        """
        x, t = self._check(images, targets)
        epochs = int(epochs)
        if not 0 <= epochs <= MAX_EPOCHS:
            raise ValueError(f"epochs={epochs} is outside 0..{MAX_EPOCHS}")
        if not (math.isfinite(step) and step > 0):
            raise ValueError(f"step={step} must be a positive number")
        if not 0 <= int(jitter) <= 4:
            raise ValueError(f"jitter={jitter} px is outside 0..4 (a 4-px shift is already 14 % of a digit)")
        if not 0 <= blur <= 1:
            raise ValueError(f"blur={blur} is outside 0..1")
        if not 0 <= l2_decay < 1:
            raise ValueError(f"l2_decay={l2_decay} is outside [0, 1)")
        if tv_weight < 0:
            raise ValueError(f"tv_weight={tv_weight} must be ≥ 0")
        check_diversity(diversity)
        check_transforms(scale, rotate)
        if param not in PARAMETERISATIONS:
            raise ValueError(f"param={param!r} is not one of {PARAMETERISATIONS}")
        if normalise not in ("rms", "std"):
            raise ValueError(f"normalise={normalise!r} is not 'rms' or 'std'")
        clip_bounds = (-np.inf, np.inf) if clip is None else (float(clip[0]), float(clip[1]))
        if not clip_bounds[0] < clip_bounds[1]:
            raise ValueError(f"clip={clip} needs low < high")
        signs = self._signs(sign, len(x))
        nrn = self._neuron(neuron)
        n = x.shape[0]
        bs = n if not batch_size else max(1, int(batch_size))
        chunks = max(1, min(int(chunks), max(1, epochs)))
        bounds = np.linspace(0, epochs, chunks + 1).astype(int)
        out = x.copy()
        history = np.zeros((epochs, n), np.float32)
        final = np.zeros(n, np.float32)
        completed = np.zeros(n, np.int64)  # epochs each image went through
        args = (tf.constant(float(step), tf.float32), tf.constant(nrn), tf.constant(int(jitter), tf.int32),
                tf.constant(float(blur), tf.float32), tf.constant(float(l2_decay), tf.float32),
                tf.constant(float(tv_weight), tf.float32))
        extra = (tf.constant(float(diversity), tf.float32), tf.constant(float(scale), tf.float32),
                 tf.constant(float(rotate), tf.float32), tf.constant(clip_bounds, tf.float32),
                 tf.constant(normalise == "std"), tf.constant(param == "fourier"))
        started = time.perf_counter()
        stopped = False
        with progress_scope(progress, n * epochs, label) as prog:
            done = 0
            for b0 in range(0, n, bs):
                b1 = min(n, b0 + bs)
                xb, tb, sb = tf.constant(out[b0:b1]), tf.constant(t[b0:b1]), tf.constant(signs[b0:b1])
                for c in range(chunks):
                    if done and prog.should_stop():
                        stopped = True
                        break
                    e0, e1 = int(bounds[c]), int(bounds[c + 1])
                    xb, hist, fin = self._ascend_fn(xb, tb, tf.constant(e1 - e0, tf.int32), *args,
                                                    tf.constant([int(seed), e0], tf.int32), sb, *extra)
                    history[e0:e1, b0:b1] = hist.numpy()
                    final[b0:b1] = fin.numpy()
                    completed[b0:b1] = e1
                    done += (b1 - b0) * (e1 - e0)
                    prog.on_step(done, {"epoch": e1, "loss": float(np.mean(final[b0:b1]))})
                out[b0:b1] = xb.numpy()
                if stopped:
                    break
        if stopped:  # history covers the epochs every image went through; losses of the images as they are
            history = history[: int(completed.min())]
            final = self.loss(out, t, neuron, sign=signs)
        return AscentResult(out, history, final, time.perf_counter() - started, stopped)

    def _signs(self, sign, n: int) -> np.ndarray:
        signs = np.broadcast_to(np.asarray(1.0 if sign is None else sign, np.float32), (n,)).copy()
        if not np.isin(signs, (-1.0, 1.0)).all():
            raise ValueError(f"sign must be +1 (maximise) or −1 (minimise) per image, got {sorted(set(signs.tolist()))}")
        return signs

    def loss(self, images: np.ndarray, targets: Sequence[int], neuron: tuple[int, int] | None = None,
             batch_size: int = 4096, sign=None) -> np.ndarray:
        """The (signed) objective of every image for its target map, without any update: ``(N,)``."""
        x, t = self._check(images, targets)
        signs = self._signs(sign, len(x))
        nrn = tf.constant(self._neuron(neuron))
        parts = [self._loss_fn(tf.constant(x[i:i + batch_size]), tf.constant(t[i:i + batch_size]), nrn,
                               tf.constant(signs[i:i + batch_size])).numpy()
                 for i in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def activations(self, images: np.ndarray) -> np.ndarray:
        """The layer's output for ``images`` ``(N, 28, 28[, 1])`` → ``(N, H, W, C)`` or ``(N, C)``."""
        x, _ = self._check(images, np.zeros(len(np.asarray(images)), np.int64))
        return self._act_fn(tf.constant(x)).numpy()

    def screen_scores(self, images: np.ndarray) -> np.ndarray:
        """Forward-only scores of every map for every image, ``(N, C)`` (see ``_scores``)."""
        x, _ = self._check(images, np.zeros(len(np.asarray(images)), np.int64))
        return self._scores_fn(tf.constant(x)).numpy()

    def max_activations(self, images: np.ndarray, batch_size: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Per image and map: the largest activation ``(N, C)`` and its flat position ``(N, C)``
        (row·W + col) in the map."""
        x, _ = self._check(images, np.zeros(len(np.asarray(images)), np.int64))
        vals, pos = [], []
        for i in range(0, len(x), batch_size):
            v, p = self._summary_fn(tf.constant(x[i:i + batch_size]))
            vals.append(v.numpy())
            pos.append(p.numpy())
        if not vals:
            return np.zeros((0, self.channels), np.float32), np.zeros((0, self.channels), np.int32)
        return np.concatenate(vals), np.concatenate(pos)


# --- OIP runs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OipConfig:
    """Settings of an OIP run. Defaults: all maps of conv3, 200 epochs, step 0.05, 1 start per map,
    improvements off (faithful to the blog)."""

    layer: str = "conv3"
    maps: tuple[int, ...] | None = None  # None: every map of the layer
    epochs: int = 200
    step: float = 0.05
    starts: int = 1
    scale_weights: tuple[float, float, float, float] = DEFAULT_SCALE_WEIGHTS
    seed: int = 0
    objective: str = "map"  # "neuron" (one position of the map) or "negative" (minimise the map)
    neuron: tuple[int, int] | None = None
    diversity: float = 0.0  # > 0: the starts of a map push each other apart (needs starts ≥ 2 to matter)
    scale: float = 0.0  # ± relative zoom per epoch (transformation robustness; see ROBUST_TRANSFORMS)
    rotate: float = 0.0  # ± degrees per epoch
    param: str = "pixel"  # or "fourier": ascend a decorrelated parameterisation (coarse structure first)
    jitter: int = 0
    blur: float = 0.0
    l2_decay: float = 0.0
    tv_weight: float = 0.0

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r} is not one of {OBJECTIVES}")
        if self.objective == "neuron" and self.neuron is None:
            raise ValueError("objective 'neuron' needs neuron=(row, col)")
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise ValueError(f"epochs={self.epochs} is outside 1..{MAX_EPOCHS}")
        if not (math.isfinite(self.step) and 0 < self.step <= 100):
            raise ValueError(f"step={self.step} is outside (0, 100]")
        if not 1 <= self.starts <= MAX_STARTS:
            raise ValueError(f"starts={self.starts} is outside 1..{MAX_STARTS}")
        _check_weights(self.scale_weights)
        check_diversity(self.diversity)
        check_transforms(self.scale, self.rotate)
        if self.param not in PARAMETERISATIONS:
            raise ValueError(f"param {self.param!r} is not one of {PARAMETERISATIONS}")
        if not 0 <= int(self.jitter) <= 4:
            raise ValueError(f"jitter={self.jitter} px is outside 0..4")
        if self.maps is not None:
            if len(self.maps) == 0:
                raise ValueError("maps is empty; give at least one map index or None for all maps")
            if len(set(self.maps)) != len(self.maps):
                raise ValueError(f"maps {list(self.maps)} contain duplicates")

    def key(self) -> str:
        """A stable text key of all settings (for caches and file metadata)."""
        return json.dumps(asdict(self), sort_keys=True)

    def with_(self, **changes) -> "OipConfig":
        return OipConfig(**{**asdict(self), **changes})


def parse_maps(text: str | None, channels: int) -> tuple[int, ...] | None:
    """``"all"`` / None / "" → None; ``"1,5,7-9"`` → (1, 5, 7, 8, 9); checked against ``channels``."""
    if text is None or str(text).strip().lower() in ("", "all"):
        return None
    maps: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                maps.extend(range(lo, hi + 1))
            else:
                maps.append(int(part))
        except ValueError:
            raise ValueError(f"maps {text!r}: {part!r} is not a map index or a range like 3-7") from None
    bad = [m for m in maps if not 0 <= m < channels]
    if bad:
        raise ValueError(f"maps {bad} do not exist; the layer has maps 0..{channels - 1}")
    if not maps:
        raise ValueError(f"maps {text!r} names no map; use 'all' or indices like 0,3,7")
    return tuple(dict.fromkeys(maps))


def oip_layers(model: keras.Model) -> list[str]:
    """Layers whose maps (or units) an OIP can target: convs, pools, batch-norms, dense, and ``out``."""
    names = []
    for lyr in model.layers:
        if isinstance(lyr, (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.BatchNormalization,
                            keras.layers.Dense)):
            names.append(lyr.name)
    return names


@dataclass
class OipResult:
    """The OIPs of the selected maps of a layer.

    ``maps`` ``(M,)``; ``images`` and ``initial`` ``(M, S, 28, 28)`` model-input values (S starts per
    map); ``history`` ``(epochs, M, S)`` loss per epoch; ``final_loss`` ``(M, S)``.
    """

    config: OipConfig
    maps: np.ndarray
    images: np.ndarray
    initial: np.ndarray
    history: np.ndarray
    final_loss: np.ndarray
    seconds: float
    device: str
    stopped: bool = False

    @property
    def best_start(self) -> np.ndarray:
        """Index of the start with the highest final loss, per map ``(M,)``."""
        return np.argmax(self.final_loss, axis=1)

    @property
    def best_loss(self) -> np.ndarray:
        return self.final_loss[np.arange(len(self.maps)), self.best_start]

    @property
    def best_images(self) -> np.ndarray:
        """``(M, 28, 28)``: each map's OIP from its best start."""
        return self.images[np.arange(len(self.maps)), self.best_start]

    @property
    def has_oip(self) -> np.ndarray:
        """``(M,)`` bool: the map's loss ended above 0."""
        return self.best_loss > 0

    @property
    def failed_maps(self) -> list[int]:
        return [int(m) for m, ok in zip(self.maps, self.has_oip) if not ok]

    @property
    def similarity(self) -> np.ndarray:
        """``(M,)``: per map, the mean pairwise similarity of its starts' OIPs up to a shift
        (``core.similarity``); NaN with one start. Near 1: the starts found the same pattern."""
        from .similarity import mean_pairwise, shift_similarity

        return np.array([mean_pairwise(shift_similarity(imgs)) for imgs in self.images], np.float64)

    def row(self, map_index: int) -> int:
        hits = np.flatnonzero(self.maps == map_index)
        if hits.size == 0:
            raise ValueError(f"map {map_index} is not in this result (maps {self.maps.tolist()})")
        return int(hits[0])

    def summary(self) -> dict:
        return {"layer": self.config.layer, "n_maps": int(len(self.maps)), "with_oip": int(self.has_oip.sum()),
                "failed_maps": self.failed_maps, "epochs": int(self.history.shape[0]),
                "starts": int(self.config.starts), "device": self.device, "stopped": self.stopped,
                "objective": self.config.objective, "diversity": self.config.diversity,
                "final_loss": {str(int(m)): round(float(v), 6) for m, v in zip(self.maps, self.best_loss)},
                **({"similarity": {str(int(m)): round(float(v), 4) for m, v in zip(self.maps, self.similarity)}}
                   if self.config.starts > 1 else {}),
                "run_seconds": round(self.seconds, 3)}

    def to_npz_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, maps=self.maps, images=self.images, initial=self.initial,
                            best_images=self.best_images, final_loss=self.final_loss, best_loss=self.best_loss,
                            has_oip=self.has_oip, history=self.history, config=np.array(self.config.key()))
        return buf.getvalue()

    def save_npz(self, path: str | os.PathLike) -> Path:
        """Write atomically (temporary file, then rename)."""
        return atomic_write_bytes(path, self.to_npz_bytes())


def run_oip(engine: AscentEngine, config: OipConfig, progress: ProgressCallback | None = None,
            batch_size: int | None = None, chunks: int = 20) -> OipResult:
    """OIPs for ``config.maps`` (all maps when None) of ``engine.layer``: all maps × starts in one batch.

    Returns an ``OipResult``; ``progress`` counts image-epochs over ``chunks`` updates.
    """
    config.validate()
    if config.layer != engine.layer:
        raise ValueError(f"config.layer {config.layer!r} differs from the engine's layer {engine.layer!r}")
    maps = np.arange(engine.channels) if config.maps is None else np.asarray(config.maps, np.int64)
    bad = maps[(maps < 0) | (maps >= engine.channels)]
    if bad.size:
        raise ValueError(f"map {int(bad[0])} does not exist in layer {engine.layer!r}, which has maps "
                         f"0..{engine.channels - 1}")
    if len(maps) * config.starts > MAX_IMAGES:
        raise ValueError(f"{len(maps)} maps × {config.starts} starts = {len(maps) * config.starts} images; "
                         f"at most {MAX_IMAGES} per run")
    epochs = capped_epochs(config.epochs)
    neuron = config.neuron if config.objective == "neuron" else None
    starts = random_starts(maps.tolist(), config.starts, config.seed, config.scale_weights)
    m, s = starts.shape[:2]
    if batch_size and config.diversity > 0:  # a map's starts must share a sub-batch to push each other apart
        batch_size = max(s, batch_size // s * s)
    res = engine.ascend(starts.reshape(m * s, SIDE, SIDE), np.repeat(maps, s), epochs, config.step,
                        neuron=neuron, jitter=config.jitter, blur=config.blur, l2_decay=config.l2_decay,
                        tv_weight=config.tv_weight, seed=config.seed, batch_size=batch_size,
                        chunks=chunks, progress=progress, label=f"OIPs of {engine.layer}",
                        sign=-1.0 if config.objective == "negative" else 1.0, diversity=config.diversity,
                        scale=config.scale, rotate=config.rotate, param=config.param)
    return OipResult(config=config, maps=maps, images=res.images[..., 0].reshape(m, s, SIDE, SIDE),
                     initial=starts, history=res.history.reshape(-1, m, s), final_loss=res.final_loss.reshape(m, s),
                     seconds=res.seconds, device=device_name(), stopped=res.stopped)


# --- analysis of one map -------------------------------------------------------------------------

def contrast_enhance(images: np.ndarray, clip_percent: float = 1.0) -> np.ndarray:
    """Display values in 0..1 per image: clip to the ``clip_percent`` and ``100 − clip_percent``
    percentiles of the image, then min-max (a few extreme pixels do not flatten the rest).

    ``(..., H, W)`` → same shape float32. A constant image becomes 0.5."""
    x = np.asarray(images, dtype=np.float32)
    if not 0 <= clip_percent < 50:
        raise ValueError(f"clip_percent={clip_percent} is outside [0, 50)")
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


def digit_maxima(engine: AscentEngine, model_inputs: np.ndarray) -> DigitMaxima:
    """Scan standardised digits ``(N, 28, 28, 1)`` once; used for top patches and percentiles."""
    vals, pos = engine.max_activations(model_inputs)
    side = engine.output_shape[0] if engine.spatial else 1
    return DigitMaxima(vals, pos, side)


def top_patches(maxima: DigitMaxima, raw_images: np.ndarray, map_index: int, receptive_field: int,
                jump: int, start: int, k: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        crops[i, t0 - top:t1 - top, l0 - left:l1 - left] = raw[idx, t0:t1, l0:l1]
    return crops, order, maxima.values[order, map_index]


def activation_percentile(maxima: DigitMaxima, map_index: int, oip_max: float) -> tuple[float, float]:
    """Where the OIP's largest activation of a map sits among the test digits' largest activations:
    (percentile 0..100 of digits below it, ratio OIP max / the digits' maximum)."""
    col = maxima.values[:, map_index]
    best = float(col.max()) if col.size else 0.0
    pct = float((col < oip_max).mean() * 100.0) if col.size else float("nan")
    return pct, (float(oip_max) / best if best > 0 else float("inf") if oip_max > 0 else float("nan"))


def kernel_comparison(model: keras.Model, layer: str, map_index: int, oip: np.ndarray,
                      engine: AscentEngine | None = None, top_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray, float]:
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
        patch += w * img[r:r + k, c:c + k]
    patch /= weights.sum()
    a, b = patch.ravel() - patch.mean(), kernel.ravel() - kernel.mean()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return kernel, patch.astype(np.float32), float(a @ b / denom) if denom > 0 else float("nan")


def kernel_correlation(model: keras.Model, layer: str, map_index: int, oip: np.ndarray,
                       engine: AscentEngine | None = None, top_fraction: float = 0.1) -> float:
    """Pearson correlation of a conv1 kernel with its OIP's most active patches (see ``kernel_comparison``)."""
    return kernel_comparison(model, layer, map_index, oip, engine, top_fraction)[2]
