"""What the CNN does with one digit: every layer's activations, the pixels that matter,
receptive fields, kernels, and classification by class-mean conv3 patterns (blog article VI).

``ActivationModel`` wraps a trained (read-only) Keras model with compiled functions:

* ``activations(x)`` — ONE call of a cached multi-output model: probabilities ``(C,)`` plus the
  output of every layer, e.g. conv1 ``(26, 26, 32)``, pool1 ``(13, 13, 32)``, conv2
  ``(11, 11, 64)``, pool2 ``(5, 5, 64)``, conv3 ``(3, 3, 64)``, dense1 ``(70,)``.
* ``saliency(x, k)`` — |∂ score_k / ∂ input| ``(28, 28)`` (Simonyan et al. 2014), optionally SmoothGrad.
* ``grad_cam(x, k)`` — Grad-CAM on the last conv layer, projected onto the input through the
  receptive-field centres computed from the architecture.
* ``occlusion(raw, k)`` — a patch slid over the raw image, all positions in one batched call;
  the drop in probability of class ``k`` per input pixel.

Inputs ``x`` are standardized model input ``(28, 28, 1)`` or ``(1, 28, 28, 1)`` float32
(``PixelScaler.transform``); ``raw`` images are ``(28, 28)`` with values 0..255.
The wrapped model is never modified.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy import ndimage  # noqa: E402

from core.checks import check_range
from core.data import PixelScaler  # noqa: E402
from core.device import FORWARD_BATCH  # noqa: E402
from core.model import feature_model, layer_names  # noqa: E402
from core.progress import ProgressCallback, progress_scope  # noqa: E402
from core.spec import ArchitectureSpec, LayerInfo, layer_table, receptive_box  # noqa: E402

OUTPUT_LAYER = "out"
SCORES = ("logit", "probability")
DEAD_TOLERANCE = 1e-6
_SKIPPED_KINDS = ("Flatten", "Dropout", "GlobalAveragePooling2D")  # reshaping steps, not shown as a layer


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class MapStats:
    """Per-map statistics of one spatial layer: each array has shape ``(C,)``."""

    mean: np.ndarray
    max: np.ndarray
    dead: np.ndarray  # bool: the map stays at zero for this input

    def order(self, by: str = "index") -> np.ndarray:
        """Map indices sorted ``by`` 'index', 'mean desc', 'mean asc' or 'max desc'."""
        n = len(self.mean)
        if by == "index":
            return np.arange(n)
        if by == "mean desc":
            return np.argsort(-self.mean, kind="stable")
        if by == "mean asc":
            return np.argsort(self.mean, kind="stable")
        if by == "max desc":
            return np.argsort(-self.max, kind="stable")
        raise ValueError(f"unknown sort order {by!r}; allowed: 'index', 'mean desc', 'mean asc', 'max desc'")


def map_stats(values: np.ndarray, tol: float = DEAD_TOLERANCE) -> MapStats:
    """Statistics of the maps of one layer ``(H, W, C)``."""
    values = np.asarray(values)
    if values.ndim != 3:
        raise ValueError(f"map statistics need one layer's maps (H, W, C), got shape {values.shape}")
    flat = values.reshape(-1, values.shape[-1])
    return MapStats(flat.mean(axis=0), flat.max(axis=0), np.all(np.abs(flat) <= tol, axis=0))


@dataclass(frozen=True)
class ActivationResult:
    """One digit's pass through the network.

    ``probabilities`` ``(C,)``; ``layers`` maps each layer name to its output for this digit:
    ``(H, W, C)`` for conv/pool/bn layers, ``(units,)`` for dense layers (``out`` included).
    """

    probabilities: np.ndarray
    layers: dict[str, np.ndarray]
    seconds: float = 0.0

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def spatial_names(self) -> list[str]:
        return [n for n, v in self.layers.items() if v.ndim == 3]

    @property
    def dense_names(self) -> list[str]:
        return [n for n, v in self.layers.items() if v.ndim == 1 and n != OUTPUT_LAYER]

    def stats(self, layer: str) -> MapStats:
        return map_stats(self.layer(layer))

    def layer(self, name: str) -> np.ndarray:
        if name not in self.layers:
            raise ValueError(f"unknown layer {name!r}; this result has {list(self.layers)}")
        return self.layers[name]


@dataclass(frozen=True)
class GradCam:
    """Grad-CAM of one class: ``cam`` ``(h, w)`` on the layer's grid, ``on_input`` ``(28, 28)``
    (both ≥ 0; ``on_input`` normalized to max 1 unless all zero), ``weights`` ``(C,)``."""

    layer: str
    class_index: int
    cam: np.ndarray
    on_input: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class Occlusion:
    """Occlusion sensitivity of one class.

    ``drops`` ``(ny, nx)``: the class score (``score``) without occlusion minus with the patch at
    each position (top-left at ``(i·stride, j·stride)``, the last row/column flush with the border);
    ``pixel_map`` ``(28, 28)``: the mean drop over all patch positions covering each pixel;
    ``base_value`` the unoccluded score (p or ln p).
    """

    class_index: int
    patch: int
    stride: int
    fill: float | str
    score: str
    base_value: float
    drops: np.ndarray
    pixel_map: np.ndarray


@dataclass(frozen=True)
class ReceptiveField:
    """The input region seen by neuron (row, col) of a layer.

    ``box`` (top, left, bottom, right), inclusive and clipped to the image; ``size`` the full side
    in input pixels from the architecture (the box is smaller where the field reaches past the
    border); ``jump`` the input distance between neighbouring neurons of the layer.
    """

    layer: str
    row: int
    col: int
    box: tuple[int, int, int, int]
    size: int
    jump: int

    @property
    def visible(self) -> tuple[int, int]:
        top, left, bottom, right = self.box
        return bottom - top + 1, right - left + 1

    @property
    def clipped(self) -> bool:
        return self.visible != (self.size, self.size)


# --------------------------------------------------------------------------- the model wrapper
def _as_batch(x: np.ndarray, side: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[None, ..., None]
    elif x.ndim == 3:
        x = x[None] if x.shape[-1] == 1 else x[..., None]
    if x.ndim != 4 or x.shape[1:] != (side, side, 1):
        raise ValueError(f"model input must be ({side}, {side}, 1) or (N, {side}, {side}, 1), got shape {x.shape}")
    return x


class ActivationModel:
    """Compiled views of one trained model (treated as read-only; nothing is added to it).

    Build it once per model and cache it (the Activations page keeps one per model path in
    ``st.cache_resource``). All functions are ``tf.function`` with fixed input signatures, so
    calls with new digits or classes do not retrace.
    """

    def __init__(self, model: keras.Model, spec: ArchitectureSpec, scaler: PixelScaler | None = None) -> None:
        self.model = model
        self.spec = spec
        self.scaler = scaler
        self.side = spec.input_side
        names = layer_names(model)
        if OUTPUT_LAYER not in names:
            raise ValueError(f"the model has no {OUTPUT_LAYER!r} layer; it has {names}")
        kinds = {row.name: row.kind for row in layer_table(spec)}
        self.layer_names = [n for n in names if not any(k in kinds.get(n, "") for k in _SKIPPED_KINDS)]
        self.layer_info = {row.name: row for row in layer_table(spec)}
        self.conv_names = [n for n in self.layer_names if n.startswith("conv")]
        # Grad-CAM's layer: the last conv (None for a dense-only model, whose gradients go through its flatten)
        self.cam_layer = self.conv_names[-1] if self.conv_names else None
        self._features = feature_model(model, self.layer_names)
        x_spec = tf.TensorSpec([None, self.side, self.side, 1], tf.float32)
        self._features_fn = tf.function(self._features_call, input_signature=[x_spec])
        self._extractors: dict[tuple[str, ...], tuple[keras.Model, object]] = {}
        out = model.get_layer(OUTPUT_LAYER)
        self._out_kernel, self._out_bias = out.kernel, out.bias
        self._grad_model = keras.Model(
            model.input, [model.get_layer(self.cam_layer or "flatten").output, out.input], name="grad_views"
        )
        k_spec, bool_spec = tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.bool)
        self._saliency_fn = tf.function(self._saliency_call, input_signature=[x_spec, k_spec, bool_spec])
        self._cam_fn = tf.function(self._cam_call, input_signature=[x_spec, k_spec, bool_spec])
        self._logits_fn = tf.function(self._logits_call, input_signature=[x_spec])

    @classmethod
    def from_bundle(cls, bundle) -> ActivationModel:
        """From a ``core.runs.ModelBundle`` (model, spec, scaler)."""
        return cls(bundle.model, bundle.spec, bundle.scaler)

    # -- forward
    def _features_call(self, x):
        outs = self._features(x, training=False)
        return outs if isinstance(outs, (list, tuple)) else [outs]

    def activations(self, x: np.ndarray) -> ActivationResult:
        """Standardized input ``(28, 28, 1)`` → probabilities and every layer's output, one compiled call."""
        started = time.perf_counter()
        batch = _as_batch(x, self.side)
        if len(batch) != 1:
            raise ValueError(f"activations() takes one digit, got a batch of {len(batch)}; use layer_batch()")
        outs = [o.numpy()[0] for o in self._features_fn(tf.constant(batch))]
        layers = dict(zip(self.layer_names, outs))
        return ActivationResult(layers[OUTPUT_LAYER], layers, time.perf_counter() - started)

    def layer_batch(
        self,
        x: np.ndarray,
        layers: tuple[str, ...] = (OUTPUT_LAYER,),
        batch_size: int = FORWARD_BATCH,
        progress: ProgressCallback | None = None,
    ) -> dict[str, np.ndarray]:
        """Outputs of ``layers`` for a batch ``(N, 28, 28, 1)``: each ``(N, ...)``; one compiled model per
        layer tuple, called once per ``batch_size`` digits."""
        unknown = [n for n in layers if n not in self.layer_names]
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; allowed: {self.layer_names}")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be ≥ 1")
        x = _as_batch(x, self.side)
        key = tuple(layers)
        if key not in self._extractors:
            fm = feature_model(self.model, list(key))
            fn = tf.function(
                lambda t: _as_list(fm(t, training=False)),
                input_signature=[tf.TensorSpec([None, self.side, self.side, 1], tf.float32)],
            )
            self._extractors[key] = (fm, fn)
        fn = self._extractors[key][1]
        parts: dict[str, list[np.ndarray]] = {n: [] for n in key}
        n_batches = max(1, -(-len(x) // batch_size))
        with progress_scope(progress, n_batches, "activations") as prog:
            for b in range(n_batches):
                outs = fn(tf.constant(x[b * batch_size : (b + 1) * batch_size]))
                for name, out in zip(key, outs):
                    parts[name].append(out.numpy())
                prog.on_step(b + 1)
                if prog.should_stop():
                    break
        return {n: np.concatenate(v) for n, v in parts.items()}

    def predict(self, x: np.ndarray, batch_size: int = FORWARD_BATCH) -> np.ndarray:
        """Probabilities ``(N, C)`` for standardized input ``(N, 28, 28, 1)``."""
        return self.layer_batch(x, (OUTPUT_LAYER,), batch_size)[OUTPUT_LAYER]

    # -- gradients
    def _score(self, x, class_index, use_probability):
        conv_out, hidden = self._grad_model(x, training=False)
        logits = tf.matmul(hidden, self._out_kernel) + self._out_bias
        chosen = tf.where(use_probability, tf.nn.softmax(logits), logits)
        return conv_out, chosen[:, class_index]

    def _logits_call(self, x):
        _, hidden = self._grad_model(x, training=False)
        return tf.matmul(hidden, self._out_kernel) + self._out_bias

    def _saliency_call(self, x, class_index, use_probability):
        with tf.GradientTape() as tape:
            tape.watch(x)
            _, score = self._score(x, class_index, use_probability)
        return tape.gradient(score, x)

    def _cam_call(self, x, class_index, use_probability):
        with tf.GradientTape() as tape:
            conv_out, score = self._score(x, class_index, use_probability)
        return conv_out, tape.gradient(score, conv_out)

    def check_class(self, class_index: int) -> int:
        n = self.spec.num_classes
        if not 0 <= int(class_index) < n:
            raise ValueError(f"class_index={class_index} is outside 0..{n - 1}")
        return int(class_index)

    @staticmethod
    def _check_score(score: str) -> bool:
        if score not in SCORES:
            raise ValueError(f"score {score!r} is not one of {SCORES}")
        return score == "probability"

    def saliency(
        self,
        x: np.ndarray,
        class_index: int,
        score: str = "logit",
        smooth_samples: int = 0,
        noise: float = 0.15,
        seed: int = 0,
    ) -> np.ndarray:
        """|∂ score / ∂ input| ``(28, 28)`` for one standardized digit ``(28, 28, 1)``.

        ``score`` 'logit' (the class score before softmax, as in Simonyan et al.) or 'probability'.
        ``smooth_samples`` > 0 averages the gradients of that many noisy copies (SmoothGrad; noise
        standard deviation ``noise`` in standardized units), all in one batched call.
        """
        batch = _as_batch(x, self.side)
        if len(batch) != 1:
            raise ValueError(f"saliency() takes one digit, got a batch of {len(batch)}")
        check_range("smooth_samples", smooth_samples, 0, 256)
        if smooth_samples:
            rng = np.random.default_rng(seed)
            batch = batch + rng.normal(0.0, noise, (smooth_samples, *batch.shape[1:])).astype(np.float32)
        return np.abs(self.gradients(batch, class_index, score)[..., 0]).mean(axis=0)

    def gradients(self, x: np.ndarray, class_index: int, score: str = "logit") -> np.ndarray:
        """∂ score / ∂ input for each standardized digit of a batch ``(N, 28, 28, 1)`` → ``(N, 28, 28, 1)``,
        one compiled call."""
        class_index, use_prob = self.check_class(class_index), self._check_score(score)
        batch = tf.constant(_as_batch(x, self.side))
        return self._saliency_fn(batch, tf.constant(class_index, tf.int32), tf.constant(use_prob)).numpy()

    def scores(self, x: np.ndarray, class_index: int, score: str = "logit") -> np.ndarray:
        """The class's logit or probability for each standardized digit of a batch ``(N, 28, 28, 1)`` → ``(N,)``."""
        class_index, use_prob = self.check_class(class_index), self._check_score(score)
        logits = self._logits_fn(tf.constant(_as_batch(x, self.side)))
        values = tf.nn.softmax(logits) if use_prob else logits
        return values.numpy()[:, class_index]

    def grad_cam(self, x: np.ndarray, class_index: int, score: str = "logit") -> GradCam:
        """Grad-CAM (Selvaraju et al. 2017) on the last conv layer for one digit ``(28, 28, 1)``."""
        if self.cam_layer is None:
            raise ValueError("this model has no conv layer: Grad-CAM needs the maps of one")
        class_index, use_prob = self.check_class(class_index), self._check_score(score)
        batch = _as_batch(x, self.side)
        conv_out, grads = self._cam_fn(
            tf.constant(batch[:1]), tf.constant(class_index, tf.int32), tf.constant(use_prob)
        )
        acts, grads = conv_out.numpy()[0], grads.numpy()[0]
        weights = grads.mean(axis=(0, 1))
        cam = np.maximum((acts * weights).sum(axis=-1), 0.0)
        on_input = project_to_input(cam, self.layer_info[self.cam_layer], self.side)
        top = float(on_input.max())
        return GradCam(self.cam_layer, class_index, cam, on_input / top if top > 0 else on_input, weights)

    # -- occlusion
    def occlusion(
        self,
        raw: np.ndarray,
        class_index: int,
        patch: int = 4,
        stride: int = 1,
        fill: float | str = "mean",
        score: str = "probability",
    ) -> Occlusion:
        """Slide a ``patch``×``patch`` square over the raw digit ``(28, 28)`` and record the drop in
        the class score; all positions go through the model in one batched call.

        ``score`` 'probability' (drop in p, 0..1), 'log-probability' (drop in ln p, from the logits)
        or 'logit' (drop in the class score before softmax, which still shows structure when a
        confident model keeps p ≈ 1).

        ``fill``: 'mean' (default) paints the patch with the training set's mean pixel values, the
        neutral grey of the standardized input (0 after scaling); 'black' erases ink (0); a number
        0..255 paints that grey value everywhere.
        """
        if self.scaler is None:
            raise ValueError("occlusion needs the model's scaler (build ActivationModel with scaler=...)")
        class_index = self.check_class(class_index)
        raw = np.asarray(raw, dtype=np.float32)
        if raw.shape != (self.side, self.side):
            raise ValueError(f"occlusion needs a raw ({self.side}, {self.side}) image, got shape {raw.shape}")
        if not 1 <= patch <= self.side // 2:
            raise ValueError(f"patch={patch} is outside 1..{self.side // 2}")
        if not 1 <= stride <= patch:
            raise ValueError(f"stride={stride} is outside 1..patch ({patch})")
        if score not in OCCLUSION_SCORES:
            raise ValueError(f"score {score!r} is not one of {OCCLUSION_SCORES}")
        fill_image, fill_value = _fill_image(fill, self.scaler, self.side)
        starts = np.arange(0, self.side - patch + 1, stride)
        if starts[-1] != self.side - patch:
            starts = np.append(starts, self.side - patch)  # the last patch touches the border
        n = len(starts)
        batch = np.repeat(raw[None], n * n + 1, axis=0)
        for i, top in enumerate(starts):
            for j, left in enumerate(starts):
                rows, cols = slice(top, top + patch), slice(left, left + patch)
                batch[1 + i * n + j, rows, cols] = fill_image[rows, cols]
        x = tf.constant(self.scaler.transform(batch))
        if score == "probability":
            values = self.predict(x.numpy())[:, class_index]
        elif score == "logit":
            values = self._logits_fn(x).numpy()[:, class_index]
        else:
            values = tf.nn.log_softmax(self._logits_fn(x), axis=-1).numpy()[:, class_index]
        base = float(values[0])
        drops = (base - values[1:]).reshape(n, n)
        total = np.zeros((self.side, self.side), np.float64)
        count = np.zeros_like(total)
        for i, top in enumerate(starts):
            for j, left in enumerate(starts):
                total[top : top + patch, left : left + patch] += drops[i, j]
                count[top : top + patch, left : left + patch] += 1
        return Occlusion(
            class_index,
            patch,
            stride,
            fill_value,
            score,
            base,
            drops.astype(np.float32),
            (total / np.maximum(count, 1)).astype(np.float32),
        )

    # -- weights
    def kernel_slices(self, layer: str, map_index: int | None = None) -> np.ndarray:
        """Kernel weights as images: without ``map_index`` (only for a layer with one input channel,
        e.g. conv1) all kernels ``(C_out, k, k)``; with it, the slices of that map's kernel over the
        input channels ``(C_in, k, k)``."""
        return kernel_slices(self.model, layer, map_index)

    def receptive_field(self, layer: str, row: int, col: int) -> ReceptiveField:
        return receptive_field(self.spec, layer, row, col)


OCCLUSION_FILLS = ("mean", "black")
OCCLUSION_SCORES = ("probability", "log-probability", "logit")


def _fill_image(fill, scaler: PixelScaler, side: int) -> tuple[np.ndarray, float | str]:
    if isinstance(fill, str):
        if fill == "mean":
            return scaler.mean.astype(np.float32), "mean"
        if fill == "black":
            return np.zeros((side, side), np.float32), 0.0
        raise ValueError(f"fill {fill!r} is not one of {OCCLUSION_FILLS} or a number 0..255")
    check_range("fill", fill, 0, 255)
    return np.full((side, side), float(fill), np.float32), float(fill)


def _as_list(outs):
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]


# --------------------------------------------------------------------------- architecture helpers
def spatial_layer_info(spec: ArchitectureSpec) -> dict[str, LayerInfo]:
    """Layer name → LayerInfo for the layers with 2-D maps (conv, bn, pool), in order."""
    return {row.name: row for row in layer_table(spec) if row.receptive_field is not None}


def receptive_field(spec: ArchitectureSpec, layer: str, row: int, col: int) -> ReceptiveField:
    """The input region seen by neuron (row, col) of ``layer`` (see ``core.spec.receptive_box``)."""
    infos = spatial_layer_info(spec)
    if layer not in infos:
        raise ValueError(f"layer {layer!r} has no spatial receptive field; choose one of {list(infos)}")
    info = infos[layer]
    box = receptive_box(info, int(row), int(col), spec.input_side)
    return ReceptiveField(layer, int(row), int(col), box, int(info.receptive_field), int(info.jump))


def project_to_input(values: np.ndarray, info: LayerInfo, input_side: int = 28) -> np.ndarray:
    """A layer-grid map ``(h, w)`` → ``(input_side, input_side)``: each neuron's value placed at the
    centre of its receptive field, bilinear in between, constant beyond the outermost centres."""
    values = np.asarray(values, dtype=np.float64)
    if info.receptive_field is None or values.shape != tuple(info.output_shape[:2]):
        raise ValueError(f"values of shape {values.shape} do not fit layer {info.name} {info.output_shape}")
    first_centre = info.start + (info.receptive_field - 1) / 2.0
    coords = (np.arange(input_side, dtype=np.float64) - first_centre) / info.jump
    rows, cols = np.meshgrid(coords, coords, indexing="ij")
    return ndimage.map_coordinates(values, [rows, cols], order=1, mode="nearest").astype(np.float32)


def kernel_slices(model: keras.Model, layer: str, map_index: int | None = None) -> np.ndarray:
    """See ``ActivationModel.kernel_slices``; ValueError for non-conv layers or a bad map index."""
    try:
        conv = model.get_layer(layer)
    except ValueError as exc:
        raise ValueError(f"unknown layer {layer!r}; this model has {layer_names(model)}") from exc
    if not isinstance(conv, keras.layers.Conv2D):
        convs = [n for n in layer_names(model) if isinstance(model.get_layer(n), keras.layers.Conv2D)]
        raise ValueError(f"layer {layer!r} has no kernels; choose a conv layer: {convs}")
    kernel = np.asarray(conv.kernel.numpy())  # (k, k, C_in, C_out)
    c_in, c_out = kernel.shape[2], kernel.shape[3]
    if map_index is None:
        if c_in != 1:
            raise ValueError(
                f"{layer} has {c_in} input channels: pass map_index (0..{c_out - 1}) to get that map's kernel slices"
            )
        return np.transpose(kernel[:, :, 0, :], (2, 0, 1))
    if not 0 <= int(map_index) < c_out:
        raise ValueError(f"map_index={map_index} is outside 0..{c_out - 1} for {layer}")
    return np.transpose(kernel[:, :, :, int(map_index)], (2, 0, 1))


# --------------------------------------------------------------------------- article VI: patterns
@dataclass(frozen=True)
class ClassPatterns:
    """Mean activation pattern of one layer per class over a set of digits.

    ``means`` ``(n_classes, H, W, C)``; ``counts`` ``(n_classes,)``; ``accuracy``: how often the
    nearest class mean (cosine similarity) matches the label on the same set;
    ``source``: which digits were used (e.g. 'MNIST test set (10,000)').
    """

    layer: str
    means: np.ndarray
    counts: np.ndarray
    accuracy: float
    source: str
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), int))


@dataclass(frozen=True)
class PatternMatch:
    """How close one pattern ``(H, W, C)`` is to each class mean: ``cosine`` and ``distance``
    (Euclidean) ``(n_classes,)``; ``nearest`` the class with the highest cosine similarity."""

    cosine: np.ndarray
    distance: np.ndarray

    @property
    def nearest(self) -> int:
        return int(np.argmax(self.cosine))


def _cosine(patterns: np.ndarray, means: np.ndarray) -> np.ndarray:
    a = patterns / np.maximum(np.linalg.norm(patterns, axis=1, keepdims=True), 1e-12)
    b = means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def class_patterns(
    am: ActivationModel,
    images: np.ndarray,
    labels: np.ndarray,
    layer: str = "conv3",
    source: str = "",
    batch_size: int = 500,
    progress: ProgressCallback | None = None,
) -> ClassPatterns:
    """Class-mean patterns of ``layer`` over raw digits ``(N, 28, 28)`` with ``labels`` ``(N,)``."""
    images, labels = np.asarray(images), np.asarray(labels).astype(int)
    if images.ndim != 3 or len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need raw digits (N, 28, 28) and N labels, got {images.shape} and {labels.shape}")
    if am.scaler is None:
        raise ValueError("class patterns need the model's scaler")
    n_classes = am.spec.num_classes
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {labels.min()}..{labels.max()}")
    chunks = []
    n_batches = -(-len(images) // batch_size)
    with progress_scope(progress, n_batches, f"{layer} patterns") as prog:
        for b in range(n_batches):
            part = am.scaler.transform(images[b * batch_size : (b + 1) * batch_size])
            chunks.append(am.layer_batch(part, (layer,), batch_size)[layer])
            prog.on_step(b + 1)
            if prog.should_stop():
                break
    acts = np.concatenate(chunks)
    labels = labels[: len(acts)]
    counts = np.bincount(labels, minlength=n_classes)
    means = np.zeros((n_classes, *acts.shape[1:]), np.float32)
    for k in range(n_classes):
        if counts[k]:
            means[k] = acts[labels == k].mean(axis=0)
    flat = acts.reshape(len(acts), -1)
    nearest = _cosine(flat, means.reshape(n_classes, -1)).argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), int)
    np.add.at(confusion, (labels, nearest), 1)
    return ClassPatterns(
        layer, means, counts, float((nearest == labels).mean()), source or f"{len(acts):,} digits", confusion
    )


def pattern_similarity(patterns: ClassPatterns, activation: np.ndarray) -> PatternMatch:
    """Compare one digit's activation of ``patterns.layer`` ``(H, W, C)`` with every class mean."""
    activation = np.asarray(activation, dtype=np.float32)
    if activation.shape != patterns.means.shape[1:]:
        raise ValueError(
            f"activation of shape {activation.shape} does not match the {patterns.layer} "
            f"patterns {patterns.means.shape[1:]}"
        )
    means = patterns.means.reshape(len(patterns.means), -1)
    flat = activation.reshape(1, -1)
    return PatternMatch(_cosine(flat, means)[0], np.linalg.norm(means - flat, axis=1))
