"""The one gradient-ascent engine: compiled, batched ascent on the input of a trained model.

Every "what input makes this layer respond?" computation of the product runs here: OIPs
(``core.oip.search``), the precursor screens (``core.oip.precursor``), the variants of one map
(``core.oip.variants``) and
all three Deep Dream modes (``core.dream.deep_dream``). Its parts, in the order a step uses them:

* **parameterisation**: the batch of 28×28 images itself (pixels), or the pixel gradient filtered as a
  decorrelated (Fourier) parameterisation would move them (``param="fourier"``); for dreams, a canvas of any
  size seen as one batch of rolled 28×28 tiles, or whole (``ascend_canvas``). Start images live in
  ``core.ascent.starts``; the precursor's coarse grids in ``core.oip.precursor``;
* **transforms** for robustness, each epoch before the forward pass: jitter, zoom, rotation (after the step: blur);
* **objective** per image: the mean of its target map, one neuron of it, a class score before the softmax,
  any of them **negated** (minimised, on a relu conv's pre-activation), minus a **diversity** penalty (the
  image's similarity up to a shift to the batch's other images of the same map, the measure of
  ``core.oip.similarity``, weighted in tenths of the image's own objective) and a total-variation penalty; for
  a canvas, a weighted sum of maps and whole layers (``term_weights``);
* **the loop**: ``x += step · g / rms(g)`` (or ``/ std(g)``, the dreams' rule), clipped, decayed, blurred,
  one ``tf.while_loop`` inside one ``tf.function`` with a fixed input signature: changing any setting never
  retraces. The batch loop and the canvas loop are the same Python function (``_loop``), compiled once per
  input geometry.

The engine only reads the model: a model from a shared cache stays untouched, and images of a batch are
independent (no batch statistics), so a batch gives the same result as one image at a time.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from core.checks import check_range
from core.oip.similarity import DEFAULT_MAX_SHIFT as DIVERSITY_SHIFT  # the penalty is the measure
from core.progress import ProgressCallback, progress_scope  # noqa: E402

SIDE = 28
# diversity: a weight w subtracts w × 10 % of an image's own objective times its similarity up to a shift to the
# other starts of its map (core.oip.similarity's measure), so a weight means the same on every layer
MAX_DIVERSITY = 100.0
DEFAULT_DIVERSITY = 2.5  # the CLI's bare --diversity and the page's: see docs/features.md for what it does on conv3
DIVERSITY_UNIT = 0.1  # weight 1: a start as alike as can be to its map's others costs 10 % of its objective
FFT_PAD = 4  # the diversity's correlations on 32×32: a shift up to DIVERSITY_SHIFT never wraps round
MAX_SCALE = 0.5  # ± relative zoom: a 20-px MNIST digit must stay ≥ 10 px
MAX_ROTATE = 45.0  # ± degrees
# "robust" transforms tuned for 28×28 digits: a pixel of shift, ±10 % zoom, ±10° (MNIST's own variation)
ROBUST_TRANSFORMS = {"jitter": 1, "scale": 0.1, "rotate": 10.0}
TRANSFORMS = tuple(ROBUST_TRANSFORMS)
PARAMETERISATIONS = ("pixel", "fourier")
CLASS_LAYER = "out"  # "maps" of this layer are the class scores before the softmax
MAX_EPOCHS = 20_000
EPS_RMS = 1e-5  # as Chollet: g / (sqrt(mean(g²)) + 1e-5)
EPS_STD = 1e-8  # the dreams' normalization: g / (std(g) + 1e-8)
EPOCHS_ENV_VAR = "OIP_MAX_EPOCHS"  # caps epochs everywhere (tests), like tf-keras-vis' TF_KERAS_VIS_MAX_STEPS
CANVAS_VIEWS = ("tiles", "whole")
TILE = 28  # a canvas is cut into tiles of the network's input size


def fourier_weights(side: int = SIDE) -> np.ndarray:
    """``(side, side // 2 + 1)`` weights of the decorrelated (Fourier) parameterisation on ``rfft2`` frequencies:
    the square of 1 / frequency (floored at one cycle per image), normalized to mean 1.

    Ascending the image's spectrum scaled by 1 / frequency (as Lucid's ``fft_image``) moves the pixels by the
    pixel gradient filtered with these weights, so the ascent favours coarse structure over pixel noise."""
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.rfftfreq(side)[None, :]
    scale = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / side)
    w = scale**2
    return (w / w.mean()).astype(np.float32)


def capped_epochs(epochs: int) -> int:
    """``epochs``, capped by ``$OIP_MAX_EPOCHS`` when that is set (keeps test runs short)."""
    cap = os.environ.get(EPOCHS_ENV_VAR)
    return min(int(epochs), int(cap)) if cap else int(epochs)


# --- checks of the settings -------------------------------------------------------------------


def check_diversity(weight: float) -> float:
    """A diversity weight in 0..MAX_DIVERSITY, or ValueError naming it."""
    if not (math.isfinite(weight) and 0 <= weight <= MAX_DIVERSITY):
        raise ValueError(
            f"diversity={weight} is outside 0..{MAX_DIVERSITY:g} (0: off; 1–5 pushes a map's starts apart, "
            f"{DEFAULT_DIVERSITY:g} by default)"
        )
    return float(weight)


def check_transforms(scale: float, rotate: float) -> None:
    """ValueError naming a zoom or rotation range outside what a 28×28 digit survives."""
    if not (math.isfinite(scale) and 0 <= scale < MAX_SCALE):
        smallest = 20 * (1 - scale) if math.isfinite(scale) else float("nan")
        raise ValueError(
            f"scale={scale} is outside 0..{MAX_SCALE} (exclusive): a zoom down to {1 - scale:.2f}× would "
            f"shrink a 20-px digit to {smallest:.0f} px; MNIST digits vary by about ±0.1"
        )
    if not (math.isfinite(rotate) and 0 <= rotate <= MAX_ROTATE):
        raise ValueError(f"rotate={rotate} degrees is outside 0..{MAX_ROTATE:g}")


def parse_transforms(text: str | None) -> dict:
    """``"jitter,scale,rotate"`` → the tuned settings of those transforms (``ROBUST_TRANSFORMS``); "" → none."""
    names = [t.strip().lower() for t in str(text or "").split(",") if t.strip()]
    unknown = [t for t in names if t not in TRANSFORMS]
    if unknown:
        raise ValueError(f"transform(s) {unknown} unknown; use any of {', '.join(TRANSFORMS)} separated by commas")
    return {t: ROBUST_TRANSFORMS[t] for t in names}


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


def _compiled(method, input_signature):
    """``method`` as a TensorFlow graph function with a fixed signature. Without AutoGraph: the engine writes
    its loops and branches as ``tf.while_loop``/``tf.cond`` itself, and AutoGraph's rewriting of every Python
    function on the way (the engine's and Keras' own) was two thirds of the ~3 s a new engine took to trace."""
    return tf.function(method, input_signature=input_signature, autograph=False)


def _apply(layer, x):
    """One layer of the chain on ``x`` inside a compiled function: ``layer.call`` (the layer's maths, in
    inference mode: the models have no dropout or batch statistics) rather than Keras' ``__call__``, whose
    per-call bookkeeping made tracing the engine's loop take ~3 s (each forward is traced several times:
    the plain and pre-activation branches, the gradient, the final loss)."""
    return layer.call(x)


class AscentEngine:
    """Compiled, batched gradient ascent on input images for the maps (channels) of one layer.

    Built from a trained model and a layer name; it only *reads* the model (a model from a shared
    cache stays untouched). ``layer="out"`` targets the class scores before the softmax.
    ``ascend`` ascends a batch of 28×28 images, each for its own map of the layer (OIPs, precursor, the
    single-map dreams); ``ascend_canvas`` one image of any size for weighted maps and layers up to this one (the
    tiles and layers dreams). Both run the same loop (``_loop``); each compiled function is traced once per
    engine (every argument is a tensor with a fixed signature).
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
        if (
            isinstance(last, keras.layers.Conv2D)
            and getattr(last.activation, "__name__", "") == "relu"
            and last.padding == "valid"
            and tuple(last.strides) == (1, 1)
            and not self._class_scores
        ):
            self._preact = last
        self._ascend_fn = _compiled(
            self._ascend,
            input_signature=[
                tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32),  # images
                tf.TensorSpec([None], tf.int32),  # target map per image
                tf.TensorSpec([], tf.int32),  # epochs
                tf.TensorSpec([], tf.float32),  # step
                tf.TensorSpec([2], tf.int32),  # neuron (row, col); (-1, -1): whole map
                tf.TensorSpec([], tf.int32),  # jitter (px)
                tf.TensorSpec([], tf.float32),  # blur (0..1)
                tf.TensorSpec([], tf.float32),  # L2 decay per epoch
                tf.TensorSpec([], tf.float32),  # TV weight
                tf.TensorSpec([2], tf.int32),  # RNG seed (seed, epoch offset)
                tf.TensorSpec([None], tf.float32),  # sign per image: +1 maximise, −1 minimise
                tf.TensorSpec([], tf.float32),  # diversity weight
                tf.TensorSpec([], tf.float32),  # ± relative zoom per epoch
                tf.TensorSpec([], tf.float32),  # ± rotation per epoch (degrees)
                tf.TensorSpec([2], tf.float32),  # (low, high) clip of the pixels after each step
                tf.TensorSpec([], tf.bool),  # divide the gradient by its std (dreams), not its RMS
                tf.TensorSpec([], tf.bool),  # Fourier (decorrelated) parameterisation
            ],
        )
        self._fourier = tf.constant(fourier_weights(), tf.complex64)
        self._loss_fn = _compiled(
            self._loss_only,
            input_signature=[
                tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([2], tf.int32),
                tf.TensorSpec([None], tf.float32),
            ],
        )
        self._act_fn = _compiled(self._forward, input_signature=[tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32)])
        self._scores_fn = _compiled(self._scores, input_signature=[tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32)])
        self._summary_fn = _compiled(self._summary, input_signature=[tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32)])
        # the canvas (dreams): a weight per channel of every chain layer, so any weighted sum of maps and layers
        # is one input tensor of a fixed length (changing the terms never retraces)
        widths = [int(lyr.output.shape[-1]) for lyr in self._chain] + ([self.channels] if self._class_scores else [])
        self.term_layers = tuple([lyr.name for lyr in self._chain] + ([CLASS_LAYER] if self._class_scores else []))
        self._term_slices = tuple(zip(np.cumsum([0] + widths[:-1]).tolist(), widths))
        self.whole_canvas = not self._class_scores and all(len(lyr.output.shape) == 4 for lyr in self._chain)
        canvas = [
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([sum(widths)], tf.float32),
            tf.TensorSpec([2], tf.float32),
            tf.TensorSpec([2], tf.int32),
        ]
        self._canvas_fns = {
            "tiles": _compiled(self._canvas_tiles, input_signature=canvas),
            "whole": _compiled(self._canvas_whole, input_signature=canvas),
        }

    # -- graph pieces
    def _cropped(self, x):
        """``x`` ``(N, 28, 28, 1)`` → its top-left ``(N, crop, crop, 1)``, the part the layer's maps see. A slice
        rather than ``x[:, :crop, :crop]``: its gradient is a pad, where a strided slice's was ~4 % of an epoch."""
        if self.crop >= SIDE:
            return x
        return tf.slice(x, [0, 0, 0, 0], [-1, self.crop, self.crop, -1])

    def _forward(self, x):
        """(N, 28, 28, 1) → the layer's output (N, H, W, C) or (N, C) (class scores: logits)."""
        x = self._cropped(x)
        for lyr in self._chain:
            x = _apply(lyr, x)
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
        return tf.where(neuron[0] < 0, whole, per_map[:, r, c])

    def _signed_objective(self, x, targets, neuron, sign):
        """Per-image objective (N,) times its sign. A minimised image (sign −1) of a relu conv layer works on
        the map's pre-activation: the activation stops at 0, where its gradient vanishes, while the
        pre-activation says how strongly the map is held down (what the map hates)."""
        if self._preact is None:
            return sign * self._objective(self._forward(x), targets, neuron)

        def with_preactivation():
            prev = self._cropped(x)
            for lyr in self._chain[:-1]:
                prev = _apply(lyr, prev)
            z = tf.nn.conv2d(prev, self._preact.kernel, 1, "VALID") + self._preact.bias
            act = tf.where((sign < 0)[:, None, None, None], z, tf.nn.relu(z))
            return sign * self._objective(act, targets, neuron)

        # one path for both signs (relu(z) is the layer's own output for a maximised image): a branch here
        # doubled the forward pass and its gradient in the graph, and so the time to trace a new engine
        return with_preactivation()

    @staticmethod
    def _similarity_penalty(x, targets, sign):
        """Per image (N,): its mean similarity up to a shift to the other images of the batch with the same target
        and sign (0 for an image without such company), the product's own measure (``core.oip.similarity``): the
        largest cosine of the two mean-centred images over shifts of up to ``DIVERSITY_SHIFT`` px (zeros fill
        what moved in). Computed only for the pairs of a group, each once, so a batch of many maps costs what its
        groups cost, not N² pairs.

        Why up to a shift: a penalty on the plain (zero-shift) cosine was met by moving the same pattern a pixel or
        two, and the starts ended no less alike by the measure (issue 25: 0.24 without it, 0.30 at weight 100)."""
        n = tf.shape(x)[0]
        s = DIVERSITY_SHIFT
        flat = tf.reshape(x, [n, -1])
        unit = tf.math.l2_normalize(flat - tf.reduce_mean(flat, axis=1, keepdims=True), axis=1)
        unit = tf.reshape(unit, [n, SIDE, SIDE])
        same = tf.logical_and(tf.equal(targets[:, None], targets[None, :]), tf.equal(sign[:, None], sign[None, :]))
        company = tf.reduce_sum(tf.cast(same, tf.float32), axis=1) - 1.0  # the image's others in its group
        # each pair once (i < j): its similarity is symmetric, as the measure's
        pairs = tf.where(tf.logical_and(same, tf.range(n)[:, None] < tf.range(n)[None, :]))  # (P, 2)
        first, second = pairs[:, 0], pairs[:, 1]
        # the correlation of a pair at every shift through the FFT, padded so that shifts up to s never wrap;
        # gathered as pixels, not as spectra: the FFT's gradient does not take a gather's sparse one
        side = SIDE + FFT_PAD
        padded = tf.pad(unit, [[0, 0], [0, FFT_PAD], [0, FFT_PAD]])
        cross = tf.math.conj(tf.signal.rfft2d(tf.gather(padded, first))) * tf.signal.rfft2d(tf.gather(padded, second))
        corr = tf.signal.irfft2d(cross, fft_length=[side, side])  # (P, side, side): shift (dy, dx) at (dy, dx) mod side
        cosines = tf.slice(tf.roll(corr, [s, s], axis=[1, 2]), [0, 0, 0], [-1, 2 * s + 1, 2 * s + 1])
        best = tf.reduce_max(cosines, axis=[1, 2])  # (P,)
        total = tf.math.unsorted_segment_sum(tf.concat([best, best], 0), tf.concat([first, second], 0), n)
        return total / tf.maximum(company, 1.0)

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
            images=x,
            transforms=tf.tile(transform[None], [tf.shape(x)[0], 1]),
            output_shape=[SIDE, SIDE],
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="REFLECT",
        )

    def _fourier_step(self, g):
        """The pixel gradient ``(N, 28, 28, 1)`` as a step of the Fourier parameterisation (see fourier_weights)."""
        spectrum = tf.signal.rfft2d(g[..., 0]) * self._fourier
        return tf.signal.irfft2d(spectrum, fft_length=[SIDE, SIDE])[..., None]

    def _loop(self, x, epochs, step, value_and_grad, clip, std_norm, fourier=None, l2=None, blur=None):
        """The one ascent loop, shared by the batch (``_ascend``) and the canvas (``_ascend_canvas``).

        ``x`` ``(N, H, W, 1)``; ``value_and_grad(x, e)`` → the objective ``(N,)`` at epoch ``e`` and the gradient
        ``(N, H, W, 1)`` of what is maximised (``_taped`` makes one from an objective and penalties). Each epoch:
        the gradient (optionally as a Fourier step), divided per image by its std (``std_norm``) or RMS, a step,
        the clip, then L2 decay and blur. ``fourier``, ``l2`` and ``blur`` are tensors, or None where a
        geometry has no use for them (left out of its graph). Returns ``x`` and the history ``(epochs, N)``
        of the objective at the start of every epoch."""
        n = tf.shape(x)[0]
        history = tf.TensorArray(tf.float32, size=epochs)
        blur_kernel = (
            tf.constant([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], tf.float32)[:, :, None, None] / 16.0
        )

        def body(e, x, history):
            loss, g = value_and_grad(x, e)
            if fourier is not None:
                g = tf.cond(fourier, lambda: self._fourier_step(g), lambda: g)
            g = tf.cond(
                std_norm,
                lambda: g / (tf.math.reduce_std(g, axis=[1, 2, 3], keepdims=True) + EPS_STD),
                lambda: g / (tf.sqrt(tf.reduce_mean(tf.square(g), axis=[1, 2, 3], keepdims=True)) + EPS_RMS),
            )
            x = x + step * g
            x = tf.cond(
                tf.reduce_all(tf.math.is_finite(clip)), lambda: tf.clip_by_value(x, clip[0], clip[1]), lambda: x
            )
            if l2 is not None:
                x = tf.cond(l2 > 0, lambda: x * (1.0 - l2), lambda: x)
            if blur is not None:
                x = tf.cond(
                    blur > 0,
                    lambda: (
                        (1.0 - blur) * x
                        + blur
                        * tf.nn.conv2d(
                            tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC"), blur_kernel, 1, "VALID"
                        )
                    ),
                    lambda: x,
                )
            return e + 1, x, history.write(e, loss)

        _, x, history = tf.while_loop(
            lambda e, *_: e < epochs, body, [tf.constant(0), x, history], parallel_iterations=1
        )
        return x, tf.cond(epochs > 0, lambda: history.stack(), lambda: tf.zeros([0, n]))

    @staticmethod
    def _taped(objective, penalties=()):
        """``(x, e)`` → the objective ``(N,)`` and the gradient of its sum less the ``penalties`` (callables
        ``(x, objective) → (N,)``) with respect to ``x``; transforms and views happen inside ``objective``, under
        the tape."""

        def value_and_grad(x, e):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = objective(x, e)
                total = loss
                for penalty in penalties:
                    total = total - penalty(x, loss)
                total = tf.reduce_sum(total)
            return loss, tape.gradient(total, x)

        return value_and_grad

    def _ascend(
        self,
        x,
        targets,
        epochs,
        step,
        neuron,
        jitter,
        blur,
        l2,
        tv,
        seed,
        sign,
        diversity,
        scale,
        rotate,
        clip,
        std_norm,
        fourier,
    ):
        n = tf.shape(x)[0]

        def objective(x, e):
            # jitter (off by default): shift the whole batch by (dy, dx) in [-j, j] px
            shift = tf.random.stateless_uniform(
                [2], seed=tf.stack([seed[0], seed[1] + e]), minval=-jitter, maxval=jitter + 1, dtype=tf.int32
            )
            xj = tf.cond(jitter > 0, lambda: tf.roll(x, shift, axis=[1, 2]), lambda: x)
            xj = tf.cond(
                tf.logical_or(scale > 0, rotate > 0),
                lambda: self._zoom_rotate(xj, scale, rotate, tf.stack([seed[0] + 7919, seed[1] + e])),
                lambda: xj,
            )
            return self._signed_objective(xj, targets, neuron, sign)

        def total_variation(x, _objective):
            return tf.cond(
                tv > 0,
                lambda: (
                    tv
                    * (
                        tf.reduce_mean(tf.abs(x[:, 1:] - x[:, :-1]), axis=[1, 2, 3])
                        + tf.reduce_mean(tf.abs(x[:, :, 1:] - x[:, :, :-1]), axis=[1, 2, 3])
                    )
                ),
                lambda: tf.zeros([n]),
            )

        def similarity(x, objective):
            # in units of the image's own objective (its size, not its gradient): a weight means the same on
            # every layer, whose objectives differ a hundredfold (conv1 ~2, conv3 ~30, the class scores ~300)
            scale = DIVERSITY_UNIT * diversity * tf.stop_gradient(tf.abs(objective))
            return tf.cond(
                diversity > 0, lambda: scale * self._similarity_penalty(x, targets, sign), lambda: tf.zeros([n])
            )

        x, hist = self._loop(
            x,
            epochs,
            step,
            self._taped(objective, (total_variation, similarity)),
            clip,
            std_norm,
            fourier=fourier,
            l2=l2,
            blur=blur,
        )
        return x, hist, self._signed_objective(x, targets, neuron, sign)

    # -- the canvas: an image of any size, for the dreams
    def _layer_outputs(self, x):
        """Every chain layer's output for ``x`` ``(N, H, W, 1)`` (no crop: any size for conv/pool chains), and
        the class scores before the softmax for the class layer."""
        outputs = []
        for lyr in self._chain:
            x = _apply(lyr, x)
            outputs.append(x)
        if self._class_scores:
            outputs.append(tf.matmul(x, self._out_kernel) + self._out_bias)
        return outputs

    def _term_objective(self, x, weights, deepest_only: bool = False):
        """``x`` ``(N, H, W, 1)``, ``weights`` ``(Σ channels,)`` (``term_weights``) → ``(N,)``: Σ over the chain's
        layers and channels of weight × the channel's mean response. A layer without weight is not summed;
        ``deepest_only``: only the last layer's terms are (the caller knows the others weigh nothing)."""
        parts = []
        outputs = self._layer_outputs(x)
        for i, (act, (offset, width)) in enumerate(zip(outputs, self._term_slices)):
            w = weights[offset : offset + width]
            axes = list(range(1, len(act.shape) - 1))
            weighted = lambda act=act, w=w, axes=axes: tf.linalg.matvec(  # noqa: E731
                tf.reduce_mean(act, axis=axes) if axes else act, w
            )
            if i == len(outputs) - 1:
                parts.append(weighted())
            elif not deepest_only:
                parts.append(tf.cond(tf.reduce_any(w != 0), weighted, lambda: tf.zeros([tf.shape(x)[0]])))
        return tf.add_n(parts)

    def _ascend_canvas(self, image, epochs, step, weights, clip, seed, tiles: bool):
        def objective(deepest_only):
            def at_epoch(x, e):
                if not tiles:  # the whole canvas through the conv layers: every 28×28 crop at once
                    return self._term_objective(x, weights, deepest_only)
                shift = tf.random.stateless_uniform(
                    [2], seed=tf.random.experimental.stateless_fold_in(seed, e), minval=0, maxval=TILE, dtype=tf.int32
                )
                # one batch of 28×28 tiles of the rolled canvas; the gradient flows back through the cut and the
                # roll (a reshape, not x[0, :, :, 0]: a strided slice's gradient is a slow StridedSliceGrad)
                canvas = tf.reshape(x, tf.shape(x)[1:3])
                return tf.reduce_sum(self._term_objective(split_tiles(canvas, shift), weights, deepest_only))[None]

            return at_epoch

        # Two tapes, one chosen per step: the gradient of a layer's tf.cond is a zeros_like of that layer's
        # whole output added into its gradient even where the layer weighs nothing (~9 % of a tiles step), so
        # the usual case (only the deepest layer weighs) gets a gradient without the other layers' branches.
        only_deepest = tf.reduce_all(weights[: self._term_slices[-1][0]] == 0)
        deepest, every_layer = self._taped(objective(True)), self._taped(objective(False))

        def value_and_grad(x, e):
            return tf.cond(only_deepest, lambda: deepest(x, e), lambda: every_layer(x, e))

        x, hist = self._loop(image[None, :, :, None], epochs, step, value_and_grad, clip, tf.constant(True))
        return tf.reshape(x, tf.shape(image)), hist[:, 0]

    def _canvas_tiles(self, image, epochs, step, weights, clip, seed):
        return self._ascend_canvas(image, epochs, step, weights, clip, seed, tiles=True)

    def _canvas_whole(self, image, epochs, step, weights, clip, seed):
        return self._ascend_canvas(image, epochs, step, weights, clip, seed, tiles=False)

    def _scores(self, x):
        """Forward-only screening scores (N, C): the map's mean activation where it is > 0, else the
        largest pre-activation of the map (≤ 0: how far the map is from waking up)."""
        if self._preact is None:
            act = self._forward(x)
            return tf.reduce_mean(act, axis=[1, 2]) if self.spatial else act
        prev = self._cropped(x)
        for lyr in self._chain[:-1]:
            prev = _apply(lyr, prev)
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

    def ascend(
        self,
        images: np.ndarray,
        targets: Sequence[int],
        epochs: int,
        step: float = 1.0,
        *,
        neuron: tuple[int, int] | None = None,
        jitter: int = 0,
        blur: float = 0.0,
        l2_decay: float = 0.0,
        tv_weight: float = 0.0,
        seed: int = 0,
        batch_size: int | None = None,
        chunks: int = 1,
        progress: ProgressCallback | None = None,
        label: str = "OIP ascent",
        sign=None,
        diversity: float = 0.0,
        scale: float = 0.0,
        rotate: float = 0.0,
        clip: tuple[float, float] | None = None,
        normalize: str = "rms",
        param: str = "pixel",
    ) -> AscentResult:
        """Gradient ascent for ``epochs`` epochs on a batch of start images, each with its own target map.

        ``images`` ``(N, 28, 28)`` or ``(N, 28, 28, 1)`` model-input values; ``targets`` ``(N,)`` map
        indices. ``batch_size`` splits N into independent sub-batches (results are the same; smaller
        sub-batches are faster on a CPU's caches); ``chunks`` splits the epochs into that many calls of
        the same compiled function so that ``progress`` can report and ``should_stop`` can end the run
        early (the images reached so far are returned, ``stopped=True``). ``progress`` counts
        image-epochs. ``sign`` ``(N,)`` (or one number): +1 maximises the image's map, −1 minimises it
        (the loss then is −objective, on the pre-activation of a relu conv layer); ``diversity`` > 0 subtracts
        that weight × ``DIVERSITY_UNIT`` (a tenth) of each image's objective (its size, without gradient) times
        its mean similarity up to a shift of ``DIVERSITY_SHIFT`` px to the batch's other images of the same map and
        sign (``_similarity_penalty``; a sub-batch must hold them together). ``jitter``, ``scale`` and ``rotate``
        transform the batch by a random shift (px), zoom (±relative) and rotation (±degrees) each epoch before the
        forward pass, so the image must excite the map wherever and however it sits (transformation robustness).
        ``clip``
        (low, high) bounds the pixels after every step and ``normalize="std"`` divides the gradient by its
        standard deviation instead of its RMS (both as the dreams do). ``param="fourier"`` ascends a decorrelated
        (Fourier) parameterisation instead of the pixels (``fourier_weights``). Returns images ``(N, 28, 28, 1)``,
        history ``(epochs, N)``,
        final loss ``(N,)`` (the signed objective).
        """
        x, t = self._check(images, targets)
        epochs = int(epochs)
        check_range("epochs", epochs, 0, MAX_EPOCHS)
        if not (math.isfinite(step) and step > 0):
            raise ValueError(f"step={step} must be a positive number")
        if not 0 <= int(jitter) <= 4:
            raise ValueError(f"jitter={jitter} px is outside 0..4 (a 4-px shift is already 14 % of a digit)")
        check_range("blur", blur, 0, 1)
        check_range("l2_decay", l2_decay, 0, 1, open_high=True)
        if tv_weight < 0:
            raise ValueError(f"tv_weight={tv_weight} must be ≥ 0")
        check_diversity(diversity)
        check_transforms(scale, rotate)
        if param not in PARAMETERISATIONS:
            raise ValueError(f"param={param!r} is not one of {PARAMETERISATIONS}")
        if normalize not in ("rms", "std"):
            raise ValueError(f"normalize={normalize!r} is not 'rms' or 'std'")
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
        args = (
            tf.constant(float(step), tf.float32),
            tf.constant(nrn),
            tf.constant(int(jitter), tf.int32),
            tf.constant(float(blur), tf.float32),
            tf.constant(float(l2_decay), tf.float32),
            tf.constant(float(tv_weight), tf.float32),
        )
        extra = (
            tf.constant(float(diversity), tf.float32),
            tf.constant(float(scale), tf.float32),
            tf.constant(float(rotate), tf.float32),
            tf.constant(clip_bounds, tf.float32),
            tf.constant(normalize == "std"),
            tf.constant(param == "fourier"),
        )
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
                    xb, hist, fin = self._ascend_fn(
                        xb,
                        tb,
                        tf.constant(e1 - e0, tf.int32),
                        *args,
                        tf.constant([int(seed), e0], tf.int32),
                        sb,
                        *extra,
                    )
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
            raise ValueError(
                f"sign must be +1 (maximise) or −1 (minimise) per image, got {sorted(set(signs.tolist()))}"
            )
        return signs

    def loss(
        self,
        images: np.ndarray,
        targets: Sequence[int],
        neuron: tuple[int, int] | None = None,
        batch_size: int = 4096,
        sign=None,
    ) -> np.ndarray:
        """The (signed) objective of every image for its target map, without any update: ``(N,)``."""
        x, t = self._check(images, targets)
        signs = self._signs(sign, len(x))
        nrn = tf.constant(self._neuron(neuron))
        parts = [
            self._loss_fn(
                tf.constant(x[i : i + batch_size]),
                tf.constant(t[i : i + batch_size]),
                nrn,
                tf.constant(signs[i : i + batch_size]),
            ).numpy()
            for i in range(0, len(x), batch_size)
        ]
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
            v, p = self._summary_fn(tf.constant(x[i : i + batch_size]))
            vals.append(v.numpy())
            pos.append(p.numpy())
        if not vals:
            return np.zeros((0, self.channels), np.float32), np.zeros((0, self.channels), np.int32)
        return np.concatenate(vals), np.concatenate(pos)

    # -- the canvas (dreams)
    def term_weights(self, terms: Sequence[tuple[str, int | None, float]]) -> np.ndarray:
        """Terms ``(layer, map or None, weight)`` → the canvas objective's weights ``(Σ channels,)``: a map term puts
        its weight on that channel, a whole-layer term spreads it over the layer's channels (the layer's mean)."""
        weights = np.zeros(sum(width for _, width in self._term_slices), np.float32)
        for layer, m, w in terms:
            if layer not in self.term_layers:
                raise ValueError(
                    f"layer {layer!r} is not below this engine's layer {self.layer!r}; "
                    f"it reaches {list(self.term_layers)}"
                )
            offset, width = self._term_slices[self.term_layers.index(layer)]
            if m is None:
                weights[offset : offset + width] += float(w) / width
            elif not 0 <= int(m) < width:
                raise ValueError(f"map {m} does not exist in layer {layer!r}, which has maps 0..{width - 1}")
            else:
                weights[offset + int(m)] += float(w)
        return weights

    def ascend_canvas(
        self,
        image: np.ndarray,
        weights: np.ndarray,
        epochs: int,
        step: float,
        *,
        view: str = "tiles",
        clip: tuple[float, float] | None = None,
        seed: tuple[int, int] = (0, 0),
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ascent on one image of any size ``(H, W)`` (model-input values) for the weighted terms ``weights``
        (``term_weights``), on the same loop as the batches, the gradient divided by its std over the image.

        ``view="tiles"``: every epoch the image is rolled by a random shift (from ``seed`` and the epoch) and
        cut into 28×28 tiles, all of them one batch through the unchanged network (any layer; H, W ≥ 28).
        ``view="whole"``: the image goes whole through the conv/pool layers, which equals all its overlapping
        28×28 crops at once (conv/pool chains only). Returns the image ``(H, W)`` and the objective per epoch
        ``(epochs,)`` (tiles: the mean over the tiles)."""
        image = np.asarray(image, np.float32)
        if view not in CANVAS_VIEWS:
            raise ValueError(f"view={view!r} is not one of {CANVAS_VIEWS}")
        if image.ndim != 2:
            raise ValueError(f"the canvas must be one grey image (H, W), got shape {image.shape}")
        if view == "tiles" and min(image.shape) < TILE:
            raise ValueError(f"tiles need an image of at least {TILE}×{TILE}, got {image.shape}")
        if view == "whole" and not self.whole_canvas:
            raise ValueError(
                f"the whole-image ascent needs conv/pool layers only, and {self.layer!r} is not one; "
                "use tiles for dense layers"
            )
        weights = np.asarray(weights, np.float32)
        if weights.shape != (sum(width for _, width in self._term_slices),):
            raise ValueError(f"weights have shape {weights.shape}; term_weights gives the right one")
        epochs = int(epochs)
        check_range("epochs", epochs, 0, MAX_EPOCHS)
        clip_bounds = (-np.inf, np.inf) if clip is None else (float(clip[0]), float(clip[1]))
        out, hist = self._canvas_fns[view](
            tf.constant(image),
            tf.constant(epochs, tf.int32),
            tf.constant(float(step), tf.float32),
            tf.constant(weights),
            tf.constant(clip_bounds, tf.float32),
            tf.constant([int(v) % 2**31 for v in seed], tf.int32),
        )
        history = hist.numpy()
        if view == "tiles":
            history = history / tile_count(*image.shape)
        return out.numpy(), history


# --- tiles of a canvas ----------------------------------------------------------------------------


def split_tiles(image: tf.Tensor, shift: tf.Tensor, tile: int = TILE) -> tf.Tensor:
    """Roll ``(H, W)`` by ``shift`` (2,), pad at the bottom/right by mirroring to whole tiles, cut
    into ``(ceil(H/t)·ceil(W/t), t, t, 1)`` tiles, row by row. Needs H, W ≥ t (for the mirror)."""
    image = tf.convert_to_tensor(image, tf.float32)
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    rolled = tf.roll(image, shift=shift, axis=[0, 1])
    pad_h, pad_w = (-h) % tile, (-w) % tile
    padded = tf.pad(rolled, [[0, pad_h], [0, pad_w]], mode="SYMMETRIC")
    nh, nw = (h + pad_h) // tile, (w + pad_w) // tile
    tiles = tf.reshape(padded, [nh, tile, nw, tile])
    return tf.reshape(tf.transpose(tiles, [0, 2, 1, 3]), [nh * nw, tile, tile, 1])


def tile_count(height: int, width: int, tile: int = TILE) -> int:
    """Number of tiles one ascent step sends through the network for an ``height × width`` image."""
    return -(-height // tile) * -(-width // tile)
