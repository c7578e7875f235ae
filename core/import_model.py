"""Bring your own model: a Keras file trained elsewhere (a notebook, Keras' own MNIST example, a Keras-2-era
``.h5``) becomes a run that every page can open.

**Formats**, told apart by their content, not their name: a Keras 3 ``.keras`` file is a zip archive
(``config.json`` + weights); a legacy HDF5 file (``.h5``, and ``.keras`` files that are HDF5 inside) holds the
model's JSON config in its ``model_config`` attribute. Before Keras sees the file, that config is read as plain
JSON and every layer in it is checked by name: a ``Lambda`` layer (Python code stored in the file) or a layer that
is not one of Keras' own (a custom layer, a ``TFOpLambda``) is refused, naming the layer. Only then is the file
loaded with ``keras.saving.load_model(..., compile=False, safe_mode=True)``; for HDF5 files Keras 3.15's legacy
loader runs inside ``SafeModeScope(safe_mode)`` too, so it would also refuse a Lambda's code (see docs/cli.md).

**Inputs** of (28, 28, 1), (28, 28) or (784,) are adapted in front of the model: the rebuilt model always takes
28×28×1 (a channel axis is added, or the 784 pixels come from its Flatten in row-major order, as
``reshape(-1, 784)`` makes them). Anything else (channels-first 1×28×28, three colour channels, other sizes,
several inputs) is refused with the shape found.

**Layers** are read as a chain the pages can show: Conv2D (square kernel, stride 1–4, 'valid' or 'same', any of
``core.spec.ACTIVATIONS``), BatchNormalization after every conv or none (one between a conv or dense layer and
its activation layer is folded into that layer's weights), 2×2 max- or average-pooling after any
conv, Flatten or GlobalAveragePooling2D, Dense layers with one activation and a 10-way softmax output (logits get
the softmax added; an activation or softmax given as its own layer is folded into the layer before). A model
without a conv layer (Flatten–Dense–Dense, the most common MNIST model) imports as a dense-only run. What does
nothing at inference (Dropout, noise, a Reshape of the input) is left out; Rescaling and Normalization layers at
the input become the run's scaler. The chain is rebuilt with the stable layer names (conv1, pool1, ..., flatten,
dense1, out) by ``core.model.build_model``, the weights copied across, and the rebuilt model is checked to compute
what the original computes. Anything else is refused with the layer and the reason.

**Scaler**: the user's choice (``SCALERS``); 'auto' picks the one under which the model reads the 2,000 shipped
test digits best (notebooks usually divide by 255; the blog standardizes each pixel; PyTorch-minded code
uses MNIST's global mean and spread). A model that scales its own
input keeps that scaling.

The result carries an ``ImportReport``: the file's layers and what became of each, the rebuilt architecture,
what the pages cannot show and why, the scaler with the reason, and the accuracy on MNIST's test set (or on the
shipped digits without MNIST); ``ImportReport.to_dict()`` is what the CLI prints and the page shows.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import tempfile
import time
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from core.data import IMAGE_SIDE, NUM_PIXELS, Mnist, PixelScaler, load_sample_digits
from core.device import FORWARD_BATCH
from core.model import build_model
from core.progress import ProgressCallback, progress_scope
from core.runs import DEFAULT_MODEL_DIR, MODEL_FILE, SCALER_FILE, SPEC_FILE, RunPayload
from core.scores import score
from core.spec import ACTIVATIONS, MAX_STRIDE, ArchitectureSpec, ConvSpec, count_params, layer_table, validate

MAX_FILE_BYTES = 20 * 1024 * 1024  # the dashboard's upload limit (.streamlit/config.toml maxUploadSize)
SCALERS = ("auto", "unit", "article-ii", "mnist", "global")
SCALER_TEXT = {
    "unit": "pixels / 255 (as most notebooks)",
    "global": "(pixels / 255 − 0.1307) / 0.3081: MNIST's mean and spread over all pixels (PyTorch's habit)",
    "article-ii": "the bundled article-II scaler",
    "mnist": "per-pixel standardization fitted on MNIST's training digits",
    "rescaling": "the model's own input layers (Rescaling) on pixels 0..255",
    "normalization": "the model's own Normalization layer on pixels 0..255",
    "normalization-unit": "the model's own Normalization layer on pixels / 255",
}
NUM_CLASSES = 10
PASS_THROUGH = (
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
)
INPUT_SHAPES = {
    (IMAGE_SIDE, IMAGE_SIDE, 1): "28×28×1 (as the pages feed it)",
    (IMAGE_SIDE, IMAGE_SIDE): "28×28: a channel axis is added in front of the model",
    (NUM_PIXELS,): "784 pixels: the digit is flattened row by row in front of the model (as reshape(-1, 784))",
}
FORMATS = {"keras-zip": "Keras 3 .keras (zip)", "hdf5": "legacy HDF5 (Keras 2 era .h5)"}
ZIP_MAGIC, HDF5_MAGIC = b"PK\x03\x04", b"\x89HDF\r\n\x1a\n"
_MODEL_CLASSES = {"Sequential", "Functional", "Model", "InputLayer"}
_LEFT_OUT = "left out (does nothing at inference)"
_ADAPTED = "left out (the input adapter in front of the model does this)"


class ImportRefused(ValueError):
    """A file that cannot become a run; the message names the layer or the problem and what is allowed."""


# --------------------------------------------------------------------------- reading the file
@dataclass(frozen=True)
class LoadedFile:
    """A model file read safely: the Keras ``model``, its ``format`` ('keras-zip' or 'hdf5', from the content) and
    the Keras version that wrote it (when the file says)."""

    model: keras.Model
    format: str
    keras_version: str | None = None


def file_format(data: bytes, name: str = "the file") -> str:
    """'keras-zip' or 'hdf5' from the first bytes (not the file's name); ImportRefused for anything else."""
    if data[:4] == ZIP_MAGIC:
        return "keras-zip"
    if data[:8] == HDF5_MAGIC:
        return "hdf5"
    raise ImportRefused(
        f"{name} is not a Keras model: a .keras file is a zip archive and a .h5 file an HDF5 file, and it is neither"
    )


def read_config(data: bytes, fmt: str, name: str = "the file") -> tuple[dict, str | None]:
    """The model's config as plain JSON (nothing from the file is run or built) and the Keras version that wrote it."""
    if fmt == "keras-zip":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                if "config.json" not in z.namelist():
                    raise ImportRefused(f"{name} is a zip archive but not a Keras model (it has no config.json)")
                config = json.loads(z.read("config.json"))
                meta = json.loads(z.read("metadata.json")) if "metadata.json" in z.namelist() else {}
        except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ImportRefused(f"{name} is a damaged Keras archive: {exc}") from None
        return config, meta.get("keras_version") if isinstance(meta, dict) else None
    import h5py

    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version")
    except OSError as exc:
        raise ImportRefused(f"{name} is a damaged HDF5 file: {exc}") from None
    if raw is None:
        raise ImportRefused(
            f"{name} is an HDF5 file without a model in it (weights only, as save_weights writes them); "
            "save the whole model with model.save(...)"
        )
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if isinstance(version, bytes):
        version = version.decode("utf-8")
    try:
        return json.loads(raw), (str(version) if version is not None else None)
    except json.JSONDecodeError as exc:
        raise ImportRefused(f"{name} is an HDF5 file whose model_config is not JSON: {exc}") from None


def _is_keras_layer_class(class_name: str) -> bool:
    if class_name in _MODEL_CLASSES:
        return True
    cls = getattr(keras.layers, class_name, None)
    return isinstance(cls, type) and issubclass(cls, keras.layers.Layer)


def _foreign_module(node) -> str | None:
    """The first ``module`` outside Keras, or a stored Python function, anywhere in ``node``; None if none."""
    if isinstance(node, dict):
        if node.get("class_name") == "__lambda__":
            return "Python code (a lambda)"
        module = node.get("module")
        if isinstance(module, str) and module != "keras" and not module.startswith("keras."):
            return f"module {module!r}"
        for value in node.values():
            found = _foreign_module(value)
            if found:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _foreign_module(value)
            if found:
                return found
    return None


def _layers_of(config: dict):
    """Every layer config in a model config (nested models included), as (layer name, class name, layer config)."""
    body = config.get("config", {}) if isinstance(config, dict) else {}
    layers = body.get("layers", []) if isinstance(body, dict) else body  # Keras ≤ 2.2 Sequential: a list of layers
    for entry in layers if isinstance(layers, list) else []:
        if not isinstance(entry, dict):
            continue
        inner = entry.get("config", {}) if isinstance(entry.get("config"), dict) else {}
        name = str(entry.get("name") or inner.get("name") or "?")
        yield name, str(entry.get("class_name", "?")), entry
        if isinstance(inner.get("layers"), list) or isinstance(entry.get("config"), list):
            yield from _layers_of(entry)


# Keras 2 wrote arguments into some layers' configs that Keras 3's classes no longer take (their __init__ has no
# **kwargs): those keys are dropped before loading. Nothing else changes: these layers do nothing at inference.
_KERAS3_ARGS = {f"SpatialDropout{d}D": {"rate", "data_format", "seed", "name", "dtype"} for d in (1, 2, 3)}


def _drop_keras2_arguments(config: dict) -> bool:
    """Drop, in place, the Keras-2 arguments that Keras 3 refuses (``_KERAS3_ARGS``); True when any were there."""
    changed = False
    for _, class_name, entry in _layers_of(config):
        allowed = _KERAS3_ARGS.get(class_name)
        inner = entry.get("config")
        if allowed is None or not isinstance(inner, dict):
            continue
        for key in [k for k in inner if k not in allowed]:
            del inner[key]
            changed = True
    return changed


def check_config(config: dict, name: str = "the file") -> None:
    """Refuse, by the layer's name, a model config holding a Lambda layer or anything that is not Keras' own: the
    check that makes loading run nothing from the file."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ImportRefused(f"{name} does not hold a Keras model config")
    if not _is_keras_layer_class(str(config["class_name"])):
        raise ImportRefused(
            f"{name} holds a custom model class ({config['class_name']}) whose code is not in the file; "
            "only Keras' Sequential and functional models are loaded"
        )
    for layer_name, class_name, entry in _layers_of(config):
        if class_name in ("Lambda", "TFOpLambda", "SlicingOpLambda"):
            raise ImportRefused(
                f"{name} has a Lambda layer ({layer_name!r}, {class_name}): it runs Python code stored in the "
                "file, which is never loaded for safety; rebuild the model without it"
            )
        if not _is_keras_layer_class(class_name):
            raise ImportRefused(
                f"{name} uses a custom layer {layer_name!r} ({class_name}) whose code is not in the file; "
                "only Keras' own layers are loaded"
            )
        registered = entry.get("registered_name")
        if registered not in (None, class_name) and not str(registered).startswith("keras"):
            raise ImportRefused(
                f"{name} uses a custom layer {layer_name!r} (registered as {registered!r}) whose code is not in "
                "the file; only Keras' own layers are loaded"
            )
        foreign = _foreign_module(entry)
        if foreign:
            raise ImportRefused(
                f"{name} uses a custom layer or function in layer {layer_name!r} ({foreign}) whose code is not "
                "in the file; only Keras' own layers and functions are loaded"
            )
    foreign = _foreign_module(config)  # anything outside the layers (the model's own settings)
    if foreign:
        raise ImportRefused(
            f"{name} refers to code outside Keras ({foreign}) whose code is not in the file; only Keras' own "
            "layers and functions are loaded"
        )


def load_model_bytes(data: bytes, name: str = "the file") -> LoadedFile:
    """The bytes of a ``.keras`` or ``.h5`` file → a Keras model (config checked first, then Keras' safe_mode);
    ImportRefused otherwise."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportRefused(
            f"{name} is {len(data) / 2**20:.1f} MB; models up to {MAX_FILE_BYTES / 2**20:.0f} MB can "
            "be imported (the article-II model is 0.4 MB)"
        )
    fmt = file_format(data, name)
    config, version = read_config(data, fmt, name)
    if fmt == "keras-zip" and str(version or "").startswith(("1.", "2.")):
        raise ImportRefused(
            f"{name} was saved by Keras {version} (tf.keras) in its own .keras format, which Keras 3 cannot read; "
            "open it where it was made (TensorFlow ≤ 2.15, or the tf_keras package) and save it as HDF5 with "
            "model.save('model.h5'): .h5 files of Keras 2 import"
        )
    check_config(config, name)
    patched = fmt == "hdf5" and _drop_keras2_arguments(config)
    with tempfile.TemporaryDirectory(prefix="mnist-explorer-import-") as tmp:
        path = Path(tmp) / ("model.keras" if fmt == "keras-zip" else "model.h5")  # Keras picks its reader by name
        path.write_bytes(data)
        if patched:  # the temporary copy gets the adjusted config; the user's file is never written
            import h5py

            with h5py.File(path, "r+") as f:
                f.attrs["model_config"] = json.dumps(config)
        try:
            with warnings.catch_warnings():  # Keras-2-era configs warn about renamed arguments: not the user's news
                warnings.simplefilter("ignore")
                model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises many kinds; the learner needs the reason in words
            text = str(exc)
            first = _root_reason(exc)
            if "Lambda" in text or "safe_mode" in text:
                raise ImportRefused(
                    f"{name} has a Lambda layer (arbitrary Python code), which is not loaded for "
                    "safety; rebuild the model without it"
                ) from None
            if "Could not locate" in text or "Unknown layer" in text or "custom" in text.lower():
                raise ImportRefused(
                    f"{name} uses a custom layer or function that this app does not know: {first}"
                ) from None
            raise ImportRefused(
                f"{name} could not be loaded as a Keras model ({FORMATS[fmt]}): {type(exc).__name__}: {first}"
            ) from None
    if not isinstance(model, keras.Model):
        raise ImportRefused(f"{name} holds a {type(model).__name__}, not a Keras model")
    return LoadedFile(model, fmt, version)


def _root_reason(exc: BaseException, limit: int = 240) -> str:
    """The sentence that says why Keras failed: the innermost exception it raised from (``raise ... from``), and
    within Keras' "could not be deserialized" text the part after its last "Exception encountered:", cut at a word
    within ``limit`` characters."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).rsplit("Exception encountered:", 1)[-1].strip()
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + " …"


def load_keras_file(data: bytes, name: str = "the file") -> keras.Model:
    """The bytes of a ``.keras`` or ``.h5`` file → a Keras model (``load_model_bytes(...).model``)."""
    return load_model_bytes(data, name).model


# --------------------------------------------------------------------------- reading the layers
@dataclass
class Plan:
    """How a loaded model maps onto the stable names: its ``spec``, ``weights`` (stable name → the original
    layer's weight arrays), ``mapping`` (original layer name → stable name, or what became of it), the affine
    ``input_scale`` ``(a, b)`` (each ``(28, 28)``: the model's own Rescaling/Normalization layers compute
    ``a·x + b`` on the pixels it is fed) and which layers made it (``input_layers``), and ``notes`` for the
    learner."""

    spec: ArchitectureSpec
    weights: dict[str, list[np.ndarray]]
    mapping: dict[str, str]
    input_scale: tuple[np.ndarray, np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)
    added_softmax: bool = False  # the file's model outputs logits
    input_shape: tuple[int, ...] = (IMAGE_SIDE, IMAGE_SIDE, 1)
    input_layers: tuple[str, ...] = ()  # kinds of the layers that make input_scale, e.g. ('Rescaling',)

    @property
    def rescaling(self) -> tuple[float, float] | None:
        """``(scale, offset)`` when the input layers scale every pixel alike, else None."""
        if self.input_scale is None:
            return None
        a, b = self.input_scale
        if np.ptp(a) > 1e-9 * max(1.0, float(np.abs(a).max())) or np.ptp(b) > 1e-9 * max(1.0, float(np.abs(b).max())):
            return None
        return float(a.flat[0]), float(b.flat[0])


def _activation(layer) -> str:
    act = layer.get_config().get("activation", "linear")
    return act if isinstance(act, str) else str(act.get("config", {}).get("name", act))


def _standalone_activation(layer) -> str | None:
    """The activation of an Activation/ReLU/Softmax layer, or None for another layer."""
    kind = type(layer).__name__
    if kind == "Activation":
        return _activation(layer)
    if kind == "Softmax":
        return "softmax"
    if kind == "ReLU":
        c = layer.get_config()
        if c.get("max_value") is None and not c.get("negative_slope") and not c.get("threshold"):
            return "relu"
    return None


def _refuse(layer, why: str) -> ImportRefused:
    return ImportRefused(f"layer {layer.name!r} ({type(layer).__name__}) {why}")


def _shape_text(shape) -> str:
    return "×".join("?" if d is None else str(d) for d in shape)


def check_input(shape: tuple) -> None:
    """ImportRefused unless the model's input (without the batch axis) is (28, 28, 1), (28, 28) or (784,)."""
    shape = tuple(shape)
    if shape in INPUT_SHAPES:
        return
    hint = ""
    if shape == (1, IMAGE_SIDE, IMAGE_SIDE):
        hint = " (channels-first: save the model with channels-last input, 28×28×1)"
    elif len(shape) == 3 and shape[-1] == 3:
        hint = " (three colour channels: MNIST digits are grey, one channel)"
    elif len(shape) == 3 and shape[-1] not in (1, None):
        hint = f" ({shape[-1]} channels: MNIST digits have one)"
    raise ImportRefused(
        f"the model's input is {_shape_text(shape)}{hint}; the pages feed MNIST digits: an input of 28×28×1, "
        "28×28 or 784 is understood"
    )


KNOWN_KINDS = (
    "Conv2D, BatchNormalization (after each conv), MaxPooling2D or AveragePooling2D (2×2), Flatten, "
    "GlobalAveragePooling2D, Dense, activation layers (Activation, ReLU, Softmax) with one of "
    f"{', '.join(ACTIVATIONS)}, Dropout, Rescaling, Normalization or Reshape at the input"
)


def plan_import(model: keras.Model) -> Plan:
    """Read a loaded model as the chain the pages can show; ImportRefused naming the first layer that does not fit."""
    if len(model.inputs) != 1:
        raise ImportRefused(f"the model has {len(model.inputs)} inputs; the pages feed one 28×28×1 digit")
    if len(model.outputs) != 1:
        raise ImportRefused(f"the model has {len(model.outputs)} outputs; the pages need one 10-way output")
    in_shape = tuple(model.inputs[0].shape[1:])
    check_input(in_shape)
    out_shape = tuple(model.outputs[0].shape[1:])
    if out_shape != (NUM_CLASSES,):
        raise ImportRefused(f"the model's output has shape {out_shape}; a 10-way output (one per digit) is needed")
    layers = [lyr for lyr in model.layers if not isinstance(lyr, keras.layers.InputLayer)]
    convs: list[ConvSpec] = []
    weights: dict[str, list[np.ndarray]] = {}
    mapping: dict[str, str] = {}
    notes: list[str] = []
    dense_units: list[int] = []
    dense_acts: list[str] = []
    bn_after: list[bool] = []
    pools: list[str] = []
    prefix: list = []  # the input's Reshape/Rescaling/Normalization layers, in order
    head = None  # 'flatten' or 'gap' once the maps end
    pending = None  # [kind, stable name, layer, activation] whose activation may still come as its own layer
    folded_bn: list[str] = []  # batch normalizations folded into the weights before them
    last_kind = None
    state = "image" if len(in_shape) == 3 else ("grid" if len(in_shape) == 2 else "pixels")
    for lyr in layers:
        kind = type(lyr).__name__
        own = _standalone_activation(lyr)
        if own is not None:
            if pending is None or pending[3] != "linear":
                raise _refuse(
                    lyr,
                    "applies an activation where the pages expect none (only right after a conv or "
                    "dense layer without its own activation)",
                )
            pending[3] = own
            mapping[lyr.name] = f"folded into {pending[1]}"
            continue
        if kind in PASS_THROUGH:
            mapping[lyr.name] = _LEFT_OUT
            continue
        if kind == "BatchNormalization" and pending is not None and pending[3] == "linear":
            # conv → BN → activation (the usual order): at inference the BN is an affine map of each channel,
            # folded exactly into the weights before it; the activation after it then folds in as well
            weights[pending[1]] = _fold_batch_norm(lyr, *weights[pending[1]])
            mapping[lyr.name] = f"folded into {pending[1]}"
            folded_bn.append(lyr.name)
            continue
        if kind in ("Rescaling", "Normalization"):
            if convs or dense_units or head == "gap":
                raise _refuse(lyr, "scales inside the network; only scaling right at the input is understood")
            prefix.append(lyr)
            mapping[lyr.name] = "became the scaler"
            continue
        if kind == "Reshape":
            target = tuple(lyr.target_shape)
            targets = {(IMAGE_SIDE, IMAGE_SIDE, 1): "image", (IMAGE_SIDE, IMAGE_SIDE): "grid"}
            targets.update({(NUM_PIXELS,): "pixels", (-1,): "pixels"})
            if convs or head or dense_units or target not in targets:
                raise _refuse(
                    lyr,
                    f"reshapes to {_shape_text(target)}; only a Reshape of the input to 28×28×1, 28×28 or 784 "
                    "is understood",
                )
            prefix.append(lyr)
            state = targets[target]
            mapping[lyr.name] = _ADAPTED
            continue
        _close(pending, convs, dense_acts)
        pending = None
        if kind == "Conv2D":
            if head:
                raise _refuse(lyr, f"comes after {'Flatten' if head == 'flatten' else 'global pooling'}")
            if state != "image":
                raise _refuse(lyr, "gets an input without a channel axis; a Reshape to 28×28×1 before it is needed")
            c = lyr.get_config()
            k = tuple(c["kernel_size"])
            strides = tuple(c["strides"])
            if k[0] != k[1]:
                raise _refuse(lyr, f"has a {k[0]}×{k[1]} kernel; square kernels are understood")
            if strides[0] != strides[1] or not 1 <= strides[0] <= MAX_STRIDE:
                raise _refuse(
                    lyr, f"has strides {strides}; equal strides of 1 to {MAX_STRIDE} in both directions are understood"
                )
            if tuple(c["dilation_rate"]) != (1, 1) or c.get("groups", 1) != 1:
                raise _refuse(lyr, "uses dilation or groups; the pages show plain convolutions")
            if c["padding"] not in ("valid", "same"):
                raise _refuse(lyr, f"has padding {c['padding']!r}; 'valid' or 'same' are understood")
            if c.get("data_format", "channels_last") not in (None, "channels_last"):
                raise _refuse(lyr, "is channels-first; save the model with channels-last convolutions")
            name = f"conv{len(convs) + 1}"
            kernel = lyr.kernel.numpy()
            bias = lyr.bias.numpy() if lyr.use_bias else np.zeros(kernel.shape[-1], np.float32)
            weights[name] = [kernel, bias]
            convs.append(ConvSpec(int(c["filters"]), int(k[0]), "linear", c["padding"], int(strides[0])))
            bn_after.append(False)
            pools.append("none")
            pending = ["conv", name, lyr, _activation(lyr)]
            mapping[lyr.name] = name
            last_kind = "conv"
        elif kind == "BatchNormalization":
            if last_kind != "conv" or bn_after[-1] or pools[-1] != "none":
                raise _refuse(lyr, "is not right after a conv layer; batch normalization is understood only there")
            if lyr.get_config().get("axis") not in (-1, 3, [-1], [3]):
                raise _refuse(lyr, "normalizes another axis than the channels")
            if abs(float(lyr.epsilon) - 1e-3) > 1e-9:
                raise _refuse(lyr, f"uses epsilon={lyr.epsilon}; Keras' default 0.001 is understood")
            name = f"bn{len(convs)}"
            gamma = lyr.gamma.numpy() if lyr.gamma is not None else np.ones(convs[-1].filters, np.float32)
            beta = lyr.beta.numpy() if lyr.beta is not None else np.zeros(convs[-1].filters, np.float32)
            weights[name] = [gamma, beta, lyr.moving_mean.numpy(), lyr.moving_variance.numpy()]
            bn_after[-1] = True
            mapping[lyr.name] = name
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            c = lyr.get_config()
            strides = tuple(c["strides"]) if c.get("strides") else tuple(c["pool_size"])
            if last_kind != "conv" or pools[-1] != "none":
                raise _refuse(lyr, "does not follow a conv layer")
            if tuple(c["pool_size"]) != (2, 2) or strides != (2, 2) or c.get("padding", "valid") != "valid":
                raise _refuse(
                    lyr,
                    f"pools {tuple(c['pool_size'])} with strides {strides} and padding {c.get('padding')!r}; "
                    "2×2 pooling with stride 2 and 'valid' padding is understood",
                )
            pools[-1] = "max" if kind == "MaxPooling2D" else "avg"
            mapping[lyr.name] = f"pool{len(convs)}"
        elif kind == "Flatten":
            if head:
                raise _refuse(lyr, "flattens a second time")
            head = "flatten"
            mapping[lyr.name] = "flatten"
            last_kind = "flatten"
            state = "pixels"
            if not convs:
                prefix.append(lyr)  # a Rescaling/Normalization may still follow it, on the 784 pixels
        elif kind == "GlobalAveragePooling2D":
            if not convs or head or lyr.get_config().get("keepdims"):
                raise _refuse(lyr, "is understood only once, after the conv layers, without keepdims")
            head = "gap"
            mapping[lyr.name] = "gap"
            last_kind = "gap"
        elif kind == "Dense":
            if not head:
                if convs or state != "pixels":
                    raise _refuse(
                        lyr,
                        "comes before Flatten; Dense layers are understood on a flat input: after Flatten, or "
                        "on a 784-pixel input",
                    )
                head = "flatten"  # a dense network on a 784-pixel input: the rebuilt model's Flatten adapts it
            name = f"dense{len(dense_units) + 1}"
            kernel = lyr.kernel.numpy()
            bias = lyr.bias.numpy() if lyr.use_bias else np.zeros(kernel.shape[-1], np.float32)
            weights[name] = [kernel, bias]
            dense_units.append(int(lyr.units))
            dense_acts.append(_activation(lyr))
            pending = ["dense", name, lyr, dense_acts[-1]]
            mapping[lyr.name] = name
            last_kind = "dense"
        else:
            raise _refuse(lyr, f"is a kind the pages cannot show; they understand {KNOWN_KINDS}")
    _close(pending, convs, dense_acts)
    if not dense_units:
        raise ImportRefused("the model does not end in a Dense layer; the pages need a 10-way Dense output")
    if any(bn_after) and not all(bn_after):
        raise ImportRefused("only some conv layers are followed by batch normalization; all or none is understood")
    # the output: units 10, softmax (added to a model that outputs logits)
    out_units, out_act = dense_units.pop(), dense_acts.pop()
    out_name = f"dense{len(dense_units) + 1}"
    weights["out"] = weights.pop(out_name)
    for original, stable in mapping.items():
        if stable == out_name:
            mapping[original] = "out"
        elif stable == f"folded into {out_name}":
            mapping[original] = "folded into out"
    if out_units != NUM_CLASSES:
        raise ImportRefused(f"the last Dense layer has {out_units} units; a 10-way output is needed")
    if out_act == "linear":
        notes.append("The model outputs logits; a softmax was added, so the pages show probabilities.")
    elif out_act != "softmax":
        raise ImportRefused(f"the output activation is {out_act!r}; a softmax (or logits) over the 10 digits is needed")
    for i, conv in enumerate(convs, 1):
        if conv.activation not in ACTIVATIONS:
            raise ImportRefused(f"conv{i} has activation {conv.activation!r}; the pages understand {ACTIVATIONS}")
    if len(set(dense_acts)) > 1:
        raise ImportRefused(f"the hidden Dense layers mix activations {sorted(set(dense_acts))}; one is understood")
    dense_act = dense_acts[0] if dense_acts else "relu"
    if dense_act not in ACTIVATIONS:
        raise ImportRefused(f"the hidden Dense activation {dense_act!r} is not one of {ACTIVATIONS}")
    classic = all(p == "max" for p in pools[:-1]) and (not pools or pools[-1] in ("max", "none"))
    spec = ArchitectureSpec(
        tuple(convs),
        dense=tuple(dense_units),
        dense_activation=dense_act,
        batch_norm=any(bn_after),
        final_pool=bool(classic and pools and pools[-1] == "max"),
        pools=None if classic else tuple(pools),
        head=head or "flatten",
        dense_only=not convs,
    )
    try:
        validate(spec)
    except ValueError as exc:
        raise ImportRefused(f"the model's architecture cannot be shown: {exc}") from None
    scaling = tuple(type(p).__name__ for p in prefix if type(p).__name__ in ("Rescaling", "Normalization"))
    input_scale = _input_scale(prefix, in_shape) if scaling else None
    if in_shape != (IMAGE_SIDE, IMAGE_SIDE, 1):
        notes.append(f"The model's input is {INPUT_SHAPES[in_shape]}.")
    if not convs:
        notes.append(
            "The model has no conv layer: it imports as a dense network (input → flatten → dense layers → out); "
            "what shows conv maps has nothing to show for it."
        )
    if folded_bn:
        notes.append(
            f"Batch normalization before an activation ({', '.join(folded_bn)}) was folded into the weights of "
            "the layer before it: the same outputs at inference, one layer fewer to show."
        )
    left_out = [o for o, s in mapping.items() if s == _LEFT_OUT]
    if left_out:
        notes.append(f"Left out, as they do nothing at inference: {', '.join(left_out)}.")
    return Plan(
        spec,
        weights,
        mapping,
        input_scale,
        notes,
        added_softmax=out_act == "linear",
        input_shape=in_shape,
        input_layers=scaling,
    )


def _input_scale(prefix: list, in_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The input layers as ``a·x + b`` per pixel, each ``(28, 28)``: run on constant images 0 and 1 (and checked on
    a random one, so only an elementwise affine scaling passes)."""
    rng = np.random.default_rng(0)
    probe = np.stack(
        [np.zeros(in_shape), np.ones(in_shape), rng.uniform(0, 255, in_shape)],
    ).astype(np.float32)
    x = probe
    for lyr in prefix:
        x = lyr(x)
    out = np.asarray(x, np.float64).reshape(3, IMAGE_SIDE, IMAGE_SIDE)
    b, a = out[0], out[1] - out[0]
    names = ", ".join(repr(p.name) for p in prefix if type(p).__name__ in ("Rescaling", "Normalization"))
    if not np.allclose(out[2], a * probe[2].reshape(IMAGE_SIDE, IMAGE_SIDE) + b, rtol=1e-4, atol=1e-3):
        raise ImportRefused(f"the input layers {names} do not scale each pixel on its own; they cannot become a scaler")
    if not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)) or np.any(a <= 0):
        raise ImportRefused(
            f"the input layers {names} scale some pixels by a factor ≤ 0 (or not finite); a positive scale is "
            "understood"
        )
    return a, b


def _fold_batch_norm(layer, kernel: np.ndarray, bias: np.ndarray) -> list[np.ndarray]:
    """A conv or dense layer's ``[kernel, bias]`` (kernel's last axis: the channels) followed by the inference-time
    BatchNormalization ``layer`` as one ``[kernel, bias]``: ``γ·(x·k + b − μ)/√(σ² + ε) + β``."""
    channel_axis = kernel.ndim - 1  # of the layer's output: 3 after a conv (N, H, W, C), 1 after a dense (N, C)
    if layer.get_config().get("axis") not in (-1, channel_axis, [-1], [channel_axis]):
        raise _refuse(layer, "normalizes another axis than the channels")
    channels = kernel.shape[-1]
    gamma = layer.gamma.numpy() if layer.gamma is not None else np.ones(channels, np.float32)
    beta = layer.beta.numpy() if layer.beta is not None else np.zeros(channels, np.float32)
    mean, var = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + float(layer.epsilon))
    folded_kernel = (kernel.astype(np.float64) * scale).astype(np.float32)
    folded_bias = ((bias.astype(np.float64) - mean) * scale + beta).astype(np.float32)
    return [folded_kernel, folded_bias]


def _close(pending, convs: list[ConvSpec], dense_acts: list[str]) -> None:
    """Give the conv or dense layer in ``pending`` its final activation (its own, or a folded activation layer)."""
    if pending is None:
        return
    kind, name, _, act = pending
    if kind == "conv":
        i = int(name[4:]) - 1
        c = convs[i]
        convs[i] = ConvSpec(c.filters, c.kernel, act, c.padding, c.stride)
    else:
        dense_acts[int(name[5:]) - 1] = act


def rebuild(plan: Plan) -> keras.Model:
    """The model of ``plan`` with the stable layer names and the original weights."""
    model = build_model(plan.spec)
    for name, arrays in plan.weights.items():
        model.get_layer(name).set_weights(arrays)
    return model


# --------------------------------------------------------------------------- scalers
@dataclass(frozen=True)
class ScalerChoice:
    """One way to feed the model: ``feed`` turns raw pixels into what the file's model is fed; ``run`` into what the
    rebuilt model is fed (``feed`` followed by the model's own input layers, when it has them)."""

    feed: PixelScaler
    run: PixelScaler


def _compose(feed: PixelScaler, a: np.ndarray, b: np.ndarray) -> PixelScaler:
    """``a·feed(x) + b`` as one scaler: ``a·(x − m)/s + b = (x − (m − b·s/a)) / (s/a)``."""
    std = feed.std / a
    return PixelScaler(feed.mean - b * std, std)


def candidate_scalers(plan: Plan, mnist: Mnist | None) -> dict[str, ScalerChoice]:
    """The scalers a run of this model can have: the model's own input layers (fed pixels 0..255 after a Rescaling;
    0..255 or /255 before a Normalization alone), else pixels/255, the article-II scaler, (with MNIST) one
    fitted on the training digits and MNIST's global mean and spread (PyTorch's ``Normalize((0.1307,), (0.3081,))``).
    Each candidate costs a screen of the shipped digits, and the full read of them when it reads close to the best."""
    raw = PixelScaler(np.zeros((28, 28)), np.ones((28, 28)))
    unit = PixelScaler(np.zeros((28, 28)), np.full((28, 28), 255.0))
    if plan.input_scale is not None:
        a, b = plan.input_scale
        if "Rescaling" in plan.input_layers:
            return {"rescaling": ScalerChoice(raw, _compose(raw, a, b))}
        return {
            "normalization": ScalerChoice(raw, _compose(raw, a, b)),
            "normalization-unit": ScalerChoice(unit, _compose(unit, a, b)),
        }
    article = PixelScaler.load(DEFAULT_MODEL_DIR / SCALER_FILE)
    scalers = {"unit": unit, "article-ii": article}
    if mnist is not None:
        scalers["mnist"] = _mnist_scaler(mnist, article)
    scalers["global"] = PixelScaler(np.full((28, 28), 0.1307 * 255), np.full((28, 28), 0.3081 * 255))
    return {k: ScalerChoice(s, s) for k, s in scalers.items()}


def _mnist_scaler(mnist: Mnist, article: PixelScaler) -> PixelScaler:
    """The scaler fitted on ``mnist``'s training digits. The article-II scaler was fitted on MNIST's training set:
    when the pixel means agree (a 50 ms check), it is that one (the same object, evaluated once), else a fit."""
    mean = np.asarray(mnist.x_train).reshape(len(mnist.x_train), NUM_PIXELS).mean(axis=0, dtype=np.float64)
    if np.allclose(mean.reshape(IMAGE_SIDE, IMAGE_SIDE), article.mean, rtol=0, atol=1e-9):
        return article
    return PixelScaler.fit(mnist.x_train)


def _scaler_text(name: str, plan: Plan) -> str:
    if name == "rescaling":
        return f"the model's own input layers ({', '.join(plan.input_layers)}) on pixels 0..255"
    return SCALER_TEXT[name]


# --------------------------------------------------------------------------- the report
# what the pages cannot show, by the rebuilt layer's kind
NOT_SHOWN = {
    "GlobalAveragePooling2D": "averages each map of the last conv layer to one number; the pages show the maps "
    "before it (it is not a layer of its own on Activations, and no OIP targets it)",
    "AveragePooling2D": "average pooling: shown on Activations like a max-pool, but the gradient-ascent pages "
    "(OIP, precursor, dreams) may not target it",
}


@dataclass
class ImportReport:
    """What an import found and did, for the page and the CLI JSON (``to_dict``).

    ``layers``: the file's layers in order, each ``{"name", "kind", "output_shape", "params", "became"}``
    (``became``: the stable name, or 'folded into conv1', 'became the scaler', 'left out (...)');
    ``architecture``: the rebuilt model, ``core.spec.layer_table`` rows ``{"name", "kind", "output_shape",
    "params", "receptive_field"}``; ``not_shown``: ``{"layer", "kind", "reason"}`` for what the pages cannot show;
    ``scaler``: ``{"name", "text", "reason", "accuracy", "digits"}`` (each candidate's accuracy on the shipped
    digits, and on how many: all 2,000 for the chosen one and those close to it, the first 250 for clearly worse
    ones); ``test_accuracy`` on ``test_source`` (``test_digits`` digits)."""

    file_name: str
    format: str
    format_text: str
    keras_version: str | None
    input_shape: list[int]
    input_adapter: str
    dense_only: bool
    layers: list[dict]
    architecture: list[dict]
    not_shown: list[dict]
    scaler: dict
    test_accuracy: float
    test_source: str
    test_digits: int
    params: int
    notes: list[str]
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _original_layers(model: keras.Model, mapping: dict[str, str]) -> list[dict]:
    rows = []
    for lyr in model.layers:
        if isinstance(lyr, keras.layers.InputLayer):
            continue
        try:
            shape = [None if d is None else int(d) for d in lyr.output.shape[1:]]
        except (AttributeError, ValueError):
            shape = None
        rows.append(
            {
                "name": lyr.name,
                "kind": type(lyr).__name__,
                "output_shape": shape,
                "params": int(lyr.count_params()),
                "became": mapping.get(lyr.name, ""),
            }
        )
    return rows


def _not_shown(spec: ArchitectureSpec) -> list[dict]:
    rows = [
        {"layer": r.name, "kind": r.kind, "reason": NOT_SHOWN[r.kind]} for r in layer_table(spec) if r.kind in NOT_SHOWN
    ]
    if spec.dense_only:
        rows.insert(
            0,
            {
                "layer": "(conv layers)",
                "kind": "none",
                "reason": "a dense network: no conv maps, so no OIPs, precursors, dreams, Grad-CAM, receptive "
                "fields or map knock-outs; the dense units and the output are shown",
            },
        )
    return rows


# --------------------------------------------------------------------------- the import
@dataclass
class ImportOutcome:
    """What an import job sends back: the run as bytes (``payload``), the ``mapping`` and ``notes``, the chosen
    ``scaler`` and every candidate's accuracy on the shipped test digits, the ``report``; after ``finish`` the run
    folder."""

    payload: RunPayload
    mapping: dict[str, str]
    notes: list[str]
    scaler: str
    scaler_accuracy: dict[str, float]
    test_accuracy: float
    test_source: str
    report: ImportReport | None = None
    run_dir: Path | None = None
    status: str = "completed"


# The scalers are first compared on this many of the shipped digits: a trained model reads ~98 % with the right
# scaling and far less with a wrong one, so 250 digits (standard error < 2 points) tell them apart.
SCREEN_DIGITS = 250
PREFER_MARGIN = 0.01  # 'auto' keeps the most common scaling within this of the best (1 point: 20 of 2,000 digits)
SCREEN_MARGIN = 0.05  # ... and those within 5 points of the best (2.5 standard errors) read all 2,000


def _predictor(model: keras.Model, batch: int = FORWARD_BATCH):
    """``predict(scaler, images, rows=None)``: raw digits ``(N, 28, 28)`` 0..255 (or the ``rows`` of them) →
    probabilities ``(N, 10)``, ``batch`` digits per call of one compiled graph (twice as fast as eager calls for a
    CNN on 2 cores: the graph fuses each conv with its bias and activation). Each batch is scaled on its own: scaling
    the whole test set at once allocates ~100 MB of temporaries, and touching that fresh memory cost a second on
    the first import of a process (the scaler's ``transform`` took 0.73 s of a 4.2 s import under cProfile)."""
    import tensorflow as tf

    fn = tf.function(
        lambda t: model(t, training=False),
        input_signature=[tf.TensorSpec([None, IMAGE_SIDE, IMAGE_SIDE, 1])],
        autograph=False,  # a plain call has no Python control flow to convert; converting it cost 0.16 s a model
    )

    def predict(scaler: PixelScaler, images: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        n = len(images) if rows is None else len(rows)
        probs = np.empty((n, NUM_CLASSES), np.float32)
        for start in range(0, n, batch):
            raw = images[start : start + batch] if rows is None else images[rows[start : start + batch]]
            probs[start : start + batch] = fn(scaler.transform(raw)).numpy()
        return probs

    return predict


def _screen_scalers(predict, candidates: dict[str, ScalerChoice], sample, keep: str | None):
    """Each candidate's accuracy on the shipped digits: all are read on the first ``SCREEN_DIGITS``; those within
    ``SCREEN_MARGIN`` of the best read all of them, unless an earlier (more common) candidate reads as well: one
    that cannot beat it by ``PREFER_MARGIN`` (two standard errors of their paired difference on the screen digits)
    is never chosen over it, so it is not read further. ``keep``, a scaler asked for by name, reads all. Scalers
    that are the same object are read once. Returns ``(accuracy, digits, probabilities)``: per name the accuracy,
    the number of digits it was measured on, and, for those that read all, the probabilities ``(N, 10)``."""
    groups: dict[int, list[str]] = {}
    for name, choice in candidates.items():
        groups.setdefault(id(choice.run), []).append(name)
    n = len(sample.images)
    first = min(SCREEN_DIGITS, n) if len(groups) > 1 else n
    head = {gid: predict(candidates[names[0]].run, sample.images[:first]) for gid, names in groups.items()}
    hits = {gid: p.argmax(1) == sample.labels[:first] for gid, p in head.items()}
    best = max(float(h.mean()) for h in hits.values())
    full_read: list[int] = []
    for gid, names in groups.items():
        close = hits[gid].mean() >= best - SCREEN_MARGIN
        if keep in names or (close and not any(_cannot_beat(hits[gid], hits[e], first) for e in full_read)):
            full_read.append(gid)
    accuracy, digits, probs = {}, {}, {}
    for gid, names in groups.items():
        p = head[gid]
        if gid in full_read and first < n:
            p = np.concatenate([p, predict(candidates[names[0]].run, sample.images[first:])])
        acc = float((p.argmax(1) == sample.labels[: len(p)]).mean())
        for name in names:
            accuracy[name], digits[name] = acc, len(p)
            if len(p) == n:
                probs[name] = p
    return accuracy, digits, probs


def _cannot_beat(hits: np.ndarray, earlier: np.ndarray, n: int) -> bool:
    """True when a scaler right on ``hits`` (booleans, one per screen digit) is, on those digits, short of beating the
    one right on ``earlier`` by ``PREFER_MARGIN`` by more than two standard errors of the paired difference."""
    difference = float(hits.mean() - earlier.mean())
    standard_error = float(np.sqrt(np.count_nonzero(hits != earlier))) / n
    return difference + 2 * standard_error < PREFER_MARGIN


def import_model(
    data: bytes,
    file_name: str,
    scaler: str = "auto",
    mnist: Mnist | None = None,
    progress: ProgressCallback | None = None,
) -> ImportOutcome:
    """A ``.keras`` or ``.h5`` file's bytes → a run payload (write it with ``core.runs.write_run``). ``scaler``: one
    of ``SCALERS`` (a model that scales its own input keeps that); ``mnist``: for the 'mnist' scaler and the test
    figures (without it, the 2,000 shipped test digits)."""
    if scaler not in SCALERS:
        raise ImportRefused(f"scaler {scaler!r} is not one of {SCALERS}")
    started = time.perf_counter()
    with progress_scope(progress, 4, "importing a model") as prog:
        prog.on_step(0, {"phase": f"loading {file_name} (safe_mode)"})
        loaded = load_model_bytes(data, repr(file_name))
        original = loaded.model
        prog.on_step(1, {"phase": "mapping its layers"})
        plan = plan_import(original)
        model = rebuild(plan)
        sample = load_sample_digits()
        candidates = candidate_scalers(plan, mnist)
        if scaler == "mnist" and "mnist" not in candidates and plan.input_scale is None:
            raise ImportRefused("the 'mnist' scaler needs the MNIST training digits (set MNIST_NPZ or pick another)")
        # the rebuilt chain must compute what the file computes (the same digits fed to both)
        probe = next(iter(candidates.values()))
        raw = sample.images[:64]
        fed = probe.feed.transform(raw).reshape(len(raw), *plan.input_shape)
        with warnings.catch_warnings():  # a Keras 2 functional model names its input as a list: Keras 3 warns
            warnings.simplefilter("ignore", UserWarning)
            want = np.asarray(original(fed, training=False), np.float64)
        if plan.added_softmax:
            want = np.exp(want - want.max(axis=1, keepdims=True))
            want /= want.sum(axis=1, keepdims=True)
        got = np.asarray(model(probe.run.transform(raw), training=False), np.float64)
        if not np.allclose(got, want, atol=1e-4):
            raise ImportRefused(
                "the layers could be mapped but the rebuilt model does not compute what the file "
                f"computes (largest difference {np.abs(got - want).max():.3g}); it may have "
                "branches or a layer used twice"
            )
        prog.on_step(2, {"phase": "choosing the scaler"})
        predict = _predictor(model)
        keep = _asked_for(scaler, candidates)
        accuracy, digits, shipped_probs = _screen_scalers(predict, candidates, sample, keep)
        chosen, reason = _choose(scaler, plan, accuracy, digits)
        notes = list(plan.notes)
        notes.append(f"Scaler: {_scaler_text(chosen, plan)}; {reason}")
        if accuracy[chosen] < 0.5:
            notes.append(
                "It reads fewer than half of the test digits right: it may expect another scaling of the "
                "pixels, or digits drawn another way."
            )
        prog.on_step(3, {"phase": "measuring it on the test digits"})
        run_scaler = candidates[chosen].run
        if mnist is None:
            images, labels, source = sample.images, sample.labels, "the 2,000 shipped test digits"
            probs = shipped_probs[chosen]
        else:
            images, labels, source = mnist.x_test, mnist.y_test, "MNIST test set"
            probs = _test_probabilities(predict, run_scaler, images, sample, shipped_probs[chosen])
        predicted = probs.argmax(axis=1)
        confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
        np.add.at(confusion, (labels.astype(int), predicted), 1)
        test_accuracy = score(probs, labels).overall
        report = ImportReport(
            file_name=file_name,
            format=loaded.format,
            format_text=FORMATS[loaded.format],
            keras_version=loaded.keras_version,
            input_shape=list(plan.input_shape),
            input_adapter=INPUT_SHAPES[plan.input_shape],
            dense_only=plan.spec.dense_only,
            layers=_original_layers(original, plan.mapping),
            architecture=[
                {
                    "name": r.name,
                    "kind": r.kind,
                    "output_shape": list(r.output_shape),
                    "params": r.params,
                    "receptive_field": r.receptive_field,
                }
                for r in layer_table(plan.spec)
            ],
            not_shown=_not_shown(plan.spec),
            scaler={
                "name": chosen,
                "text": _scaler_text(chosen, plan),
                "reason": reason,
                "accuracy": {k: round(v, 4) for k, v in accuracy.items()},
                "digits": digits,
            },
            test_accuracy=round(float(test_accuracy), 5),
            test_source=source,
            test_digits=int(len(labels)),
            params=count_params(plan.spec),
            notes=notes,
        )
        payload = _payload(
            model, plan, run_scaler, file_name, chosen, notes, test_accuracy, source, confusion, predicted, labels
        )
        report.seconds = round(time.perf_counter() - started, 3)
        payload.meta["import_report"] = report.to_dict()
        prog.on_step(4)
    return ImportOutcome(payload, plan.mapping, notes, chosen, accuracy, test_accuracy, source, report)


def _asked_for(scaler: str, candidates: dict[str, ScalerChoice]) -> str | None:
    """The candidate a scaler asked for by name stands for (it is read on all the shipped digits)."""
    if scaler == "auto":
        return None
    if "normalization-unit" in candidates:
        return "normalization-unit" if scaler == "unit" else "normalization"
    return scaler if scaler in candidates else next(iter(candidates))


def _test_probabilities(predict, scaler: PixelScaler, images: np.ndarray, sample, shipped: np.ndarray) -> np.ndarray:
    """Probabilities ``(N, 10)`` for the MNIST test digits ``images`` ``(N, 28, 28)``. The shipped digits are
    MNIST test digits (``sample.indices``): where ``images`` holds them there, their probabilities, already computed
    while the scaler was chosen, are reused and only the other digits go through the model."""
    idx = sample.indices
    if idx.max(initial=-1) >= len(images) or not np.array_equal(images[idx], sample.images):
        return predict(scaler, images)
    rest = np.ones(len(images), bool)
    rest[idx] = False
    probs = np.zeros((len(images), NUM_CLASSES), np.float32)
    probs[idx] = shipped
    probs[rest] = predict(scaler, images, np.flatnonzero(rest))
    return probs


def _choose(scaler: str, plan: Plan, accuracy: dict[str, float], digits: dict[str, int]) -> tuple[str, str]:
    """The scaler to keep and why, in words."""
    shipped = "of the 2,000 shipped test digits"
    if "rescaling" in accuracy:
        if scaler not in ("auto",):
            return "rescaling", (
                f"the model scales its own input, so --scaler {scaler} is not used; it reads "
                f"{accuracy['rescaling']:.1%} {shipped} with it."
            )
        return "rescaling", f"the model scales its own input; it reads {accuracy['rescaling']:.1%} {shipped} with it."
    if scaler == "auto" and len(accuracy) > 1:
        full = max(digits.values())
        best = max(accuracy[k] for k in accuracy if digits[k] == full)
        # candidates come most common first: a rarer scaling must read clearly better to be taken (an under-
        # trained model can read a few digits more under a scaling it never saw)
        chosen = next(k for k in accuracy if digits[k] == full and accuracy[k] >= best - PREFER_MARGIN)
        others = ", ".join(
            f"{v:.1%} with {_scaler_text(k, plan)}" + (f" on the first {digits[k]}" if digits[k] < full else "")
            for k, v in accuracy.items()
            if k != chosen
        )
        close = "" if accuracy[chosen] == best else f", within {PREFER_MARGIN:.0%} of the best and more common"
        return chosen, (
            f"chosen automatically: the model reads {accuracy[chosen]:.1%} {shipped} with it{close} ({others})."
        )
    if plan.input_scale is not None:
        chosen = "normalization-unit" if scaler == "unit" else "normalization"
        given = "" if scaler == "auto" else f" (--scaler {scaler})"
        return chosen, f"given{given}; the model reads {accuracy[chosen]:.1%} {shipped} with it."
    chosen = next(iter(accuracy)) if scaler == "auto" else scaler
    return chosen, f"given; the model reads {accuracy[chosen]:.1%} {shipped} with it."


def _payload(
    model,
    plan: Plan,
    scaler: PixelScaler,
    file_name: str,
    chosen: str,
    notes: list[str],
    test_accuracy: float,
    source: str,
    confusion,
    predicted,
    labels,
) -> RunPayload:
    meta = {
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "imported": True,
        "imported_from": file_name,
        "preset": "imported",
        "mapping": plan.mapping,
        "notes": notes,
        "scaler": chosen,
        "test_accuracy": float(test_accuracy),
        "test_source": source,
        "confusion": confusion.tolist(),
        "predictions": predicted.tolist(),
        "misclassified": np.flatnonzero(predicted != labels).tolist(),
        "history": {},
        "batch_history": [],
        "epoch_seconds": [],
        "seconds": 0.0,
        "device": "imported",
        "status": "completed",
        "message": "",
        "params": count_params(plan.spec),
        "seed": None,
        "read_only": False,
        "config": {},
    }
    with tempfile.TemporaryDirectory(prefix="mnist-explorer-import-") as tmp:
        model.save(Path(tmp) / MODEL_FILE)
        scaler.save(Path(tmp) / SCALER_FILE)
        files = {
            MODEL_FILE: (Path(tmp) / MODEL_FILE).read_bytes(),
            SCALER_FILE: (Path(tmp) / SCALER_FILE).read_bytes(),
            SPEC_FILE: plan.spec.to_json().encode(),
        }
    return RunPayload(files, meta)


__all__ = [
    "ImportOutcome",
    "ImportRefused",
    "ImportReport",
    "LoadedFile",
    "MAX_FILE_BYTES",
    "Plan",
    "SCALERS",
    "candidate_scalers",
    "check_config",
    "check_input",
    "file_format",
    "import_model",
    "load_keras_file",
    "load_model_bytes",
    "plan_import",
    "read_config",
    "rebuild",
]
