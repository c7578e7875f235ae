"""The active model written for the browser: a small JSON description plus float32 weights (base64), which the
Activations page's drawing component (pages/ui/draw/) runs with TensorFlow.js while the pen moves.

``describe(model, scaler)`` → ``dict``::

    {"format": 1, "input": [28, 28, 1], "scaler": {"mean": b64 (28*28 f32), "std": b64} | None,
     "layers": [{"name": "conv1", "op": "conv2d", "strides": [1, 1], "padding": "valid",
                 "activation": "relu", "weights": {"kernel": {"shape": [3, 3, 1, 32], "data": b64}, ...}}, ...],
     "outputs": ["conv1", "pool1", ..., "out"]}

Ops: conv2d, maxpool, avgpool, gap, flatten, dense, batchnorm, activation, rescaling, normalization, reshape
(``OPS``); dropout is left out. A layer outside these, dilation, a non-chain graph or an activation outside
``ACTIVATIONS`` raises ``NotInBrowser`` (the page then computes on the server as before).
``run_description`` runs a description with TensorFlow's ops in the same order as the browser does: it is
the check that the description is the model (``check_description``), the browser's own agreement is a test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

FORMAT = 1
OPS = (
    "conv2d",
    "maxpool",
    "avgpool",
    "gap",
    "flatten",
    "dense",
    "batchnorm",
    "activation",
    "rescaling",
    "normalization",
    "reshape",
)
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "elu", "selu", "softmax", "softplus", "relu6")
AGREEMENT = 1e-4  # largest difference of a probability between the description and the Keras model


class NotInBrowser(ValueError):
    """The model has something the browser's forward pass does not run; the message names it."""


def _b64(array: np.ndarray) -> dict:
    a = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _array(blob: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(blob["data"]), dtype="<f4").reshape(blob["shape"])


def _activation(layer) -> str:
    fn = getattr(layer, "activation", None)
    name = "linear" if fn is None else getattr(fn, "__name__", str(fn))
    if name not in ACTIVATIONS:
        raise NotInBrowser(f"layer {layer.name!r} uses activation {name!r}; the browser runs {ACTIVATIONS}")
    return name


def _pair(value) -> list[int]:
    return [int(v) for v in (value if isinstance(value, (tuple, list)) else (value, value))]


def _layer(layer) -> dict | None:
    """One Keras layer → its entry (None for layers that do nothing at inference)."""
    kind = type(layer).__name__
    name = layer.name
    if kind in ("InputLayer", "Dropout", "GaussianNoise", "GaussianDropout", "SpatialDropout2D"):
        return None
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise NotInBrowser(f"layer {name!r} is channels_first; the browser runs channels_last only")
    if kind == "Conv2D":
        if _pair(layer.dilation_rate) != [1, 1] or getattr(layer, "groups", 1) != 1:
            raise NotInBrowser(f"layer {name!r} is a dilated or grouped convolution")
        weights = {"kernel": _b64(layer.kernel.numpy())}
        if layer.use_bias:
            weights["bias"] = _b64(layer.bias.numpy())
        return {
            "name": name,
            "op": "conv2d",
            "strides": _pair(layer.strides),
            "padding": layer.padding,
            "activation": _activation(layer),
            "weights": weights,
        }
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return {
            "name": name,
            "op": "maxpool" if kind == "MaxPooling2D" else "avgpool",
            "pool": _pair(layer.pool_size),
            "strides": _pair(layer.strides),
            "padding": layer.padding,
        }
    if kind == "GlobalAveragePooling2D":
        if layer.keepdims:
            raise NotInBrowser(f"layer {name!r} keeps its dimensions")
        return {"name": name, "op": "gap"}
    if kind == "Flatten":
        return {"name": name, "op": "flatten"}
    if kind == "Dense":
        weights = {"kernel": _b64(layer.kernel.numpy())}
        if layer.use_bias:
            weights["bias"] = _b64(layer.bias.numpy())
        return {"name": name, "op": "dense", "activation": _activation(layer), "weights": weights}
    if kind == "BatchNormalization":
        if layer.axis not in (-1, 3, [-1], [3]):
            raise NotInBrowser(f"layer {name!r} normalizes axis {layer.axis}; the browser runs the last axis")
        channels = int(layer.moving_mean.shape[0])
        gamma = layer.gamma.numpy() if layer.scale else np.ones(channels, np.float32)
        beta = layer.beta.numpy() if layer.center else np.zeros(channels, np.float32)
        return {
            "name": name,
            "op": "batchnorm",
            "epsilon": float(layer.epsilon),
            "weights": {
                "mean": _b64(layer.moving_mean.numpy()),
                "variance": _b64(layer.moving_variance.numpy()),
                "gamma": _b64(gamma),
                "beta": _b64(beta),
            },
        }
    if kind in ("Activation", "ReLU", "Softmax"):
        if kind == "ReLU" and (layer.max_value is not None or float(layer.negative_slope) or float(layer.threshold)):
            raise NotInBrowser(f"layer {name!r} is a ReLU with a cap, slope or threshold")
        act = {"ReLU": "relu", "Softmax": "softmax"}.get(kind) or _activation(layer)
        return {"name": name, "op": "activation", "activation": act}
    if kind == "Rescaling":
        return {
            "name": name,
            "op": "rescaling",
            "weights": {
                "scale": _b64(np.atleast_1d(np.asarray(layer.scale, np.float32))),
                "offset": _b64(np.atleast_1d(np.asarray(layer.offset, np.float32))),
            },
        }
    if kind == "Normalization":
        if getattr(layer, "invert", False):
            raise NotInBrowser(f"layer {name!r} is an inverted Normalization")
        mean = np.asarray(layer.mean, np.float32)
        std = np.maximum(np.sqrt(np.asarray(layer.variance, np.float32)), np.float32(keras.backend.epsilon()))
        return {"name": name, "op": "normalization", "weights": {"mean": _b64(mean), "std": _b64(std)}}
    if kind == "Reshape":
        return {"name": name, "op": "reshape", "shape": [int(s) for s in layer.target_shape]}
    raise NotInBrowser(f"layer {name!r} is a {kind}; the browser runs {', '.join(OPS)}")


def _check_chain(model: keras.Model) -> None:
    """Every layer must take the previous layer's output: the browser runs the layers in order."""
    layers = model.layers
    for before, layer in zip(layers, layers[1:]):
        inbound = getattr(layer, "_inbound_nodes", None) or []
        parents = {t._keras_history[0].name for node in inbound for t in node.input_tensors}
        if parents and parents != {before.name}:
            raise NotInBrowser(f"layer {layer.name!r} takes {sorted(parents)}, not only {before.name!r}")


def describe(model: keras.Model, scaler=None) -> dict:
    """The model (and its ``core.data.PixelScaler``, or None for raw pixels) as the browser runs it."""
    _check_chain(model)
    shape = [int(s) for s in model.input_shape[1:]]
    if shape not in ([28, 28, 1], [28, 28], [784]):
        raise NotInBrowser(f"the model takes input of shape {shape}; the browser feeds 28×28×1, 28×28 or 784")
    layers = [entry for entry in (_layer(lyr) for lyr in model.layers) if entry is not None]
    return {
        "format": FORMAT,
        "input": shape,
        "scaler": None if scaler is None else {"mean": _b64(scaler.mean), "std": _b64(scaler.std)},
        "layers": layers,
        "outputs": [entry["name"] for entry in layers],
    }


# --------------------------------------------------------------------------- the same steps with TensorFlow
def _activate(x, name: str):
    if name == "linear":
        return x
    if name == "relu6":
        return tf.nn.relu6(x)
    return getattr(tf.nn, name)(x) if name in ("relu", "sigmoid", "tanh", "elu", "selu", "softmax", "softplus") else x


def scale_input(description: dict, raw: np.ndarray) -> np.ndarray:
    """Raw digits ``(N, 28, 28)`` 0..255 → the model's input ``(N, *description['input'])`` float32, as the
    browser computes it: ``(raw - mean) / std`` in float32 (``PixelScaler.transform``)."""
    x = np.asarray(raw, np.float32).reshape(-1, 28, 28)
    s = description["scaler"]
    if s is not None:
        x = (x - _array(s["mean"])) / _array(s["std"])
    return x.reshape(-1, *description["input"]).astype(np.float32)


def run_description(description: dict, x: np.ndarray) -> dict[str, np.ndarray]:
    """Model input ``(N, *input)`` → every layer's output by name, computed op by op from the description."""
    out: dict[str, np.ndarray] = {}
    t = tf.constant(np.asarray(x, np.float32))
    for entry in description["layers"]:
        w = {k: tf.constant(_array(v)) for k, v in entry.get("weights", {}).items()}
        op = entry["op"]
        if op == "conv2d":
            t = tf.nn.conv2d(t, w["kernel"], entry["strides"], entry["padding"].upper())
            t = _activate(t + w["bias"] if "bias" in w else t, entry["activation"])
        elif op in ("maxpool", "avgpool"):
            pool = tf.nn.max_pool2d if op == "maxpool" else tf.nn.avg_pool2d
            t = pool(t, entry["pool"], entry["strides"], entry["padding"].upper())
        elif op == "gap":
            t = tf.reduce_mean(t, axis=[1, 2])
        elif op == "flatten":
            t = tf.reshape(t, [t.shape[0], -1])
        elif op == "dense":
            t = tf.matmul(t, w["kernel"])
            t = _activate(t + w["bias"] if "bias" in w else t, entry["activation"])
        elif op == "batchnorm":
            t = (t - w["mean"]) / tf.sqrt(w["variance"] + entry["epsilon"]) * w["gamma"] + w["beta"]
        elif op == "activation":
            t = _activate(t, entry["activation"])
        elif op == "rescaling":
            t = t * w["scale"] + w["offset"]
        elif op == "normalization":
            t = (t - w["mean"]) / w["std"]
        elif op == "reshape":
            t = tf.reshape(t, [t.shape[0], *entry["shape"]])
        else:
            raise NotInBrowser(f"unknown op {op!r}; allowed: {OPS}")
        out[entry["name"]] = t.numpy()
    return out


def check_description(model: keras.Model, description: dict, raw: np.ndarray) -> float:
    """Largest probability difference between the description and ``model`` on raw digits ``(N, 28, 28)``;
    raises NotInBrowser above ``AGREEMENT`` (a description that is not the model is never sent)."""
    x = scale_input(description, raw)
    mine = list(run_description(description, x).values())[-1]
    keras_out = np.asarray(model(x.reshape(-1, *model.input_shape[1:]), training=False))
    worst = float(np.abs(mine - keras_out).max())
    if not worst <= AGREEMENT:
        raise NotInBrowser(f"the browser's description differs from the model by {worst:.2e} (allowed {AGREEMENT})")
    return worst


def export_json(model: keras.Model, scaler, check_digits: np.ndarray) -> str:
    """The checked description as JSON text (``describe`` + ``check_description`` on ``check_digits``)."""
    description = describe(model, scaler)
    check_description(model, description, check_digits)
    return json.dumps(description, separators=(",", ":"))


KEEP_EXPORTS = 32  # model files kept for browsers; older ones are removed as new ones are written


def write_export(text: str, folder: Path, keep: int = KEEP_EXPORTS) -> str:
    """Write the JSON once under its content hash in ``folder``; returns the file's name (``<hash>.json``). Only
    the ``keep`` most recently used files stay (a class trying many models would otherwise fill the disk)."""
    name = hashlib.sha256(text.encode()).hexdigest()[:20] + ".json"
    path = Path(folder) / name
    if path.exists():
        path.touch()  # in use: the newest
        return name
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(f".{os.getpid()}.tmp")
    temp.write_text(text)
    temp.replace(path)  # atomic: a browser never reads half a file
    exports = sorted(Path(folder).glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in exports[keep:]:
        old.unlink(missing_ok=True)
    return name
