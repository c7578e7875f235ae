"""Bring your own model: a Keras ``.keras`` file trained elsewhere (a notebook, Keras' own MNIST example) becomes a
run that every page can open.

The file is loaded with ``safe_mode`` (no code from the file runs), then read as a chain of layers the pages can
show: Conv2D (stride 1, any of ``core.spec.ACTIVATIONS``, 'valid' or 'same'), BatchNormalization after every conv,
2×2 max-pooling between the convs and optionally after the last, Flatten, Dense layers with one activation and a
10-way softmax output. What does nothing at inference (Dropout, noise, an input Reshape to 28×28×1) is left out;
an activation or softmax given as its own layer is folded into the layer before; a model that outputs logits gets
the softmax added; a ``Rescaling`` at the input becomes the run's scaler. The chain is rebuilt with the stable
layer names (conv1, pool1, ..., dense1, out) by ``core.model.build_model``, the weights copied across, and the
rebuilt model is checked to compute what the original computes. Anything else is refused with the layer and the
reason. The run's scaler is the user's choice (``SCALERS``); 'auto' picks the one under which the model reads the
2,000 shipped test digits best (notebooks usually divide by 255; the blog standardizes each pixel).
"""

from __future__ import annotations

import datetime as _dt
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from core.data import IMAGE_SIDE, Mnist, PixelScaler, load_sample_digits
from core.model import build_model
from core.progress import ProgressCallback, progress_scope
from core.runs import DEFAULT_MODEL_DIR, MODEL_FILE, SCALER_FILE, SPEC_FILE, RunPayload
from core.scores import score
from core.spec import ACTIVATIONS, ArchitectureSpec, ConvSpec, count_params, validate

MAX_FILE_BYTES = 20 * 1024 * 1024  # the dashboard's upload limit (.streamlit/config.toml maxUploadSize)
SCALERS = ("auto", "unit", "article-ii", "mnist")
SCALER_TEXT = {
    "unit": "pixels / 255 (as most notebooks)",
    "article-ii": "the bundled article-II scaler",
    "mnist": "per-pixel standardization fitted on MNIST's training digits",
    "rescaling": "the model's own Rescaling layer",
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


class ImportRefused(ValueError):
    """A file that cannot become a run; the message names the layer or the problem and what is allowed."""


@dataclass
class Plan:
    """How a loaded model maps onto the stable names: its ``spec``, ``weights`` (stable name → the original
    layer's weight arrays), ``mapping`` (original layer name → stable name, or what became of it), the
    ``rescaling`` ``(scale, offset)`` of an input Rescaling layer, and ``notes`` for the learner."""

    spec: ArchitectureSpec
    weights: dict[str, list[np.ndarray]]
    mapping: dict[str, str]
    rescaling: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)
    added_softmax: bool = False  # the file's model outputs logits


def load_keras_file(data: bytes, name: str = "the file") -> keras.Model:
    """The bytes of a ``.keras`` file → a Keras model, loaded with safe_mode; ImportRefused otherwise."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportRefused(
            f"{name} is {len(data) / 2**20:.1f} MB; models up to {MAX_FILE_BYTES / 2**20:.0f} MB can "
            "be imported (the article-II model is 0.4 MB)"
        )
    with tempfile.TemporaryDirectory(prefix="mnist-explorer-import-") as tmp:
        path = Path(tmp) / "model.keras"
        path.write_bytes(data)
        if not zipfile.is_zipfile(path):
            hint = " (an HDF5 .h5 file: open it in Keras and save it again as .keras)" if data[:4] == b"\x89HDF" else ""
            raise ImportRefused(f"{name} is not a Keras model: a .keras file is a zip archive{hint}")
        with zipfile.ZipFile(path) as z:
            if "config.json" not in z.namelist():
                raise ImportRefused(f"{name} is a zip archive but not a Keras model (it has no config.json)")
        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises many kinds; the learner needs the reason in words
            text = str(exc)
            if "Lambda" in text or "safe_mode" in text:
                raise ImportRefused(
                    f"{name} has a Lambda layer (arbitrary Python code), which is not loaded for "
                    "safety; rebuild the model without it"
                ) from None
            if "Could not locate" in text or "Unknown layer" in text or "custom" in text.lower():
                raise ImportRefused(
                    f"{name} uses a custom layer or function that this app does not know: {text.splitlines()[0][:200]}"
                ) from None
            raise ImportRefused(
                f"{name} could not be loaded as a Keras model: {type(exc).__name__}: "
                f"{text.splitlines()[0][:200] if text else ''}"
            ) from None


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


def plan_import(model: keras.Model) -> Plan:
    """Read a loaded model as the chain the pages can show; ImportRefused naming the first layer that does not fit."""
    if len(model.inputs) != 1:
        raise ImportRefused(f"the model has {len(model.inputs)} inputs; the pages feed one 28×28×1 digit")
    if len(model.outputs) != 1:
        raise ImportRefused(f"the model has {len(model.outputs)} outputs; the pages need one 10-way output")
    shape = tuple(model.inputs[0].shape[1:])
    if shape not in ((IMAGE_SIDE, IMAGE_SIDE, 1), (IMAGE_SIDE, IMAGE_SIDE)):
        raise ImportRefused(
            f"the model's input is {'×'.join(str(d) for d in shape)}; the pages feed MNIST digits, 28×28×1 (grey)"
        )
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
    pools_after: list[bool] = []
    rescaling = None
    flattened = False
    pending = None  # ("conv"|"dense", stable name, layer) whose activation may still come as its own layer
    last_kind = None
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
            mapping[lyr.name] = "left out (does nothing at inference)"
            continue
        if kind == "Rescaling":
            if convs or flattened or rescaling is not None:
                raise _refuse(lyr, "rescales inside the network; only a Rescaling right at the input is understood")
            scale, offset = np.asarray(lyr.scale, float), np.asarray(lyr.offset, float)
            if scale.size != 1 or offset.size != 1 or float(scale) <= 0:
                raise _refuse(lyr, "has a per-channel or non-positive scale; one positive number is understood")
            rescaling = (float(scale), float(offset))
            mapping[lyr.name] = "became the scaler"
            continue
        if kind == "Reshape":
            if convs or flattened or tuple(lyr.target_shape) != (IMAGE_SIDE, IMAGE_SIDE, 1):
                raise _refuse(lyr, "reshapes inside the network; only a Reshape of the input to 28×28×1 is understood")
            mapping[lyr.name] = "left out (the input is 28×28×1 already)"
            continue
        _close(pending, convs, dense_acts)
        pending = None
        if kind == "Conv2D":
            if flattened:
                raise _refuse(lyr, "comes after Flatten")
            c = lyr.get_config()
            k = tuple(c["kernel_size"])
            if k[0] != k[1]:
                raise _refuse(lyr, f"has a {k[0]}×{k[1]} kernel; square kernels are understood")
            if tuple(c["strides"]) != (1, 1) or tuple(c["dilation_rate"]) != (1, 1) or c.get("groups", 1) != 1:
                raise _refuse(lyr, "uses strides, dilation or groups; the pages show stride-1 convolutions")
            if c["padding"] not in ("valid", "same"):
                raise _refuse(lyr, f"has padding {c['padding']!r}; 'valid' or 'same' are understood")
            if c.get("data_format", "channels_last") != "channels_last":
                raise _refuse(lyr, "is channels-first; save the model with channels-last convolutions")
            if convs and not pools_after[-1] and last_kind == "conv":
                raise _refuse(
                    lyr,
                    "follows a conv without a pooling layer between; the pages show conv layers "
                    "separated by 2×2 max-pooling",
                )
            name = f"conv{len(convs) + 1}"
            kernel = lyr.kernel.numpy()
            bias = lyr.bias.numpy() if lyr.use_bias else np.zeros(kernel.shape[-1], np.float32)
            weights[name] = [kernel, bias]
            convs.append(ConvSpec(int(c["filters"]), int(k[0]), "linear", c["padding"]))
            bn_after.append(False)
            pools_after.append(False)
            pending = ["conv", name, lyr, _activation(lyr)]
            mapping[lyr.name] = name
            last_kind = "conv"
        elif kind == "BatchNormalization":
            if last_kind != "conv" or bn_after[-1] or pools_after[-1]:
                raise _refuse(lyr, "is not right after a conv layer; batch normalization is understood only there")
            if lyr.get_config().get("axis") not in (-1, 3, [-1], [3]):
                raise _refuse(lyr, "normalizes another axis than the channels")
            name = f"bn{len(convs)}"
            gamma = lyr.gamma.numpy() if lyr.gamma is not None else np.ones(convs[-1].filters, np.float32)
            beta = lyr.beta.numpy() if lyr.beta is not None else np.zeros(convs[-1].filters, np.float32)
            weights[name] = [gamma, beta, lyr.moving_mean.numpy(), lyr.moving_variance.numpy()]
            if abs(float(lyr.epsilon) - 1e-3) > 1e-9:
                raise _refuse(lyr, f"uses epsilon={lyr.epsilon}; Keras' default 0.001 is understood")
            bn_after[-1] = True
            mapping[lyr.name] = name
        elif kind == "MaxPooling2D":
            c = lyr.get_config()
            strides = tuple(c["strides"]) if c.get("strides") else tuple(c["pool_size"])
            if last_kind != "conv" or pools_after[-1]:
                raise _refuse(lyr, "does not follow a conv layer")
            if tuple(c["pool_size"]) != (2, 2) or strides != (2, 2):
                raise _refuse(
                    lyr, f"pools {c['pool_size']} with strides {strides}; 2×2 pooling with stride 2 is understood"
                )
            pools_after[-1] = True
            mapping[lyr.name] = f"pool{len(convs)}"
        elif kind == "Flatten":
            if not convs:
                raise _refuse(lyr, "comes before any conv layer; the pages need at least one conv layer")
            flattened = True
            mapping[lyr.name] = "flatten"
            last_kind = "flatten"
        elif kind == "Dense":
            if not flattened:
                raise _refuse(lyr, "comes before Flatten; Dense layers are understood after the conv part only")
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
            raise _refuse(
                lyr,
                "is a kind the pages cannot show; they understand Conv2D, BatchNormalization, "
                "MaxPooling2D (2×2), Flatten, Dense, activation layers, Dropout, an input Rescaling "
                "or Reshape",
            )
    _close(pending, convs, dense_acts)
    if not convs:
        raise ImportRefused("the model has no Conv2D layer; the pages look inside convolutional networks")
    if not flattened or not dense_units:
        raise ImportRefused("the model does not end in Flatten and Dense layers; the pages need a 10-way Dense output")
    if not all(pools_after[:-1]):
        raise ImportRefused(
            "not every conv layer but the last is followed by 2×2 max-pooling; the pages show "
            "conv layers separated by pooling"
        )
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
    spec = ArchitectureSpec(
        tuple(convs),
        dense=tuple(dense_units),
        dense_activation=dense_act,
        batch_norm=any(bn_after),
        final_pool=pools_after[-1],
    )
    try:
        validate(spec)
    except ValueError as exc:
        raise ImportRefused(f"the model's architecture cannot be shown: {exc}") from None
    left_out = [o for o, s in mapping.items() if s.startswith("left out")]
    if left_out:
        notes.append(f"Left out, as they do nothing at inference: {', '.join(left_out)}.")
    return Plan(spec, weights, mapping, rescaling, notes, added_softmax=out_act == "linear")


def _close(pending, convs: list[ConvSpec], dense_acts: list[str]) -> None:
    """Give the conv or dense layer in ``pending`` its final activation (its own, or a folded activation layer)."""
    if pending is None:
        return
    kind, name, _, act = pending
    if kind == "conv":
        i = int(name[4:]) - 1
        convs[i] = ConvSpec(convs[i].filters, convs[i].kernel, act, convs[i].padding)
    else:
        dense_acts[int(name[5:]) - 1] = act


def rebuild(plan: Plan) -> keras.Model:
    """The model of ``plan`` with the stable layer names and the original weights."""
    model = build_model(plan.spec)
    for name, arrays in plan.weights.items():
        model.get_layer(name).set_weights(arrays)
    return model


def candidate_scalers(plan: Plan, mnist: Mnist | None) -> dict[str, PixelScaler]:
    """The scalers a run of this model can have: the model's own Rescaling (when it has one), else pixels/255, the
    article-II scaler and (with MNIST) one fitted on the training digits."""
    if plan.rescaling is not None:
        scale, offset = plan.rescaling
        return {"rescaling": PixelScaler(np.full((28, 28), -offset / scale), np.full((28, 28), 1 / scale))}
    scalers = {
        "unit": PixelScaler(np.zeros((28, 28)), np.full((28, 28), 255.0)),
        "article-ii": PixelScaler.load(DEFAULT_MODEL_DIR / SCALER_FILE),
    }
    if mnist is not None:
        scalers["mnist"] = PixelScaler.fit(mnist.x_train)
    return scalers


@dataclass
class ImportOutcome:
    """What an import job sends back: the run as bytes (``payload``), the ``mapping`` and ``notes``, the chosen
    ``scaler`` and every candidate's accuracy on the shipped test digits; after ``finish`` the run folder."""

    payload: RunPayload
    mapping: dict[str, str]
    notes: list[str]
    scaler: str
    scaler_accuracy: dict[str, float]
    test_accuracy: float
    test_source: str
    run_dir: Path | None = None
    status: str = "completed"


def import_model(
    data: bytes,
    file_name: str,
    scaler: str = "auto",
    mnist: Mnist | None = None,
    progress: ProgressCallback | None = None,
) -> ImportOutcome:
    """A ``.keras`` file's bytes → a run payload (write it with ``core.runs.write_run``). ``scaler``: one of
    ``SCALERS`` (the model's own Rescaling always wins); ``mnist``: for the 'mnist' scaler and the test figures
    (without it, the 2,000 shipped test digits)."""
    if scaler not in SCALERS:
        raise ImportRefused(f"scaler {scaler!r} is not one of {SCALERS}")
    with progress_scope(progress, 4, "importing a model") as prog:
        prog.on_step(0, {"phase": f"loading {file_name} (safe_mode)"})
        original = load_keras_file(data, repr(file_name))
        prog.on_step(1, {"phase": "mapping its layers"})
        plan = plan_import(original)
        model = rebuild(plan)
        sample = load_sample_digits()
        candidates = candidate_scalers(plan, mnist)
        if scaler == "mnist" and "mnist" not in candidates and plan.rescaling is None:
            raise ImportRefused("the 'mnist' scaler needs the MNIST training digits (set MNIST_NPZ or pick another)")
        # the rebuilt chain must compute what the file computes (same input to both)
        probe = next(iter(candidates.values()))
        x_probe = probe.transform(sample.images[:64])
        original_in = x_probe if plan.rescaling is None else sample.images[:64, ..., None].astype(np.float32)
        if tuple(original.inputs[0].shape[1:]) == (IMAGE_SIDE, IMAGE_SIDE):
            original_in = original_in[..., 0]
        want = np.asarray(original(original_in, training=False), np.float64)
        if plan.added_softmax:
            want = np.exp(want - want.max(axis=1, keepdims=True))
            want /= want.sum(axis=1, keepdims=True)
        got = np.asarray(model(x_probe, training=False), np.float64)
        if not np.allclose(got, want, atol=1e-4):
            raise ImportRefused(
                "the layers could be mapped but the rebuilt model does not compute what the file "
                f"computes (largest difference {np.abs(got - want).max():.3g}); it may have "
                "branches or a layer used twice"
            )
        prog.on_step(2, {"phase": "choosing the scaler"})
        accuracy = {
            name: float(
                (np.argmax(np.asarray(model(s.transform(sample.images), training=False)), 1) == sample.labels).mean()
            )
            for name, s in candidates.items()
        }
        if plan.rescaling is not None:
            chosen = "rescaling"
        elif scaler == "auto":
            chosen = max(accuracy, key=accuracy.get)
        else:
            chosen = scaler
        notes = list(plan.notes)
        if scaler == "auto" and len(accuracy) > 1:
            others = ", ".join(f"{v:.1%} with {SCALER_TEXT[k]}" for k, v in accuracy.items() if k != chosen)
            notes.append(
                f"Scaler: {SCALER_TEXT[chosen]}, chosen automatically: the model reads {accuracy[chosen]:.1%} "
                f"of the 2,000 shipped test digits with it ({others})."
            )
        else:
            notes.append(
                f"Scaler: {SCALER_TEXT[chosen]}; the model reads {accuracy[chosen]:.1%} of the 2,000 shipped "
                "test digits with it."
            )
        if accuracy[chosen] < 0.5:
            notes.append(
                "It reads fewer than half of the test digits right: it may expect another scaling of the "
                "pixels, or digits drawn another way."
            )
        prog.on_step(3, {"phase": "measuring it on the test digits"})
        run_scaler = candidates[chosen]
        images, labels, source = (
            (mnist.x_test, mnist.y_test, "MNIST test set")
            if mnist is not None
            else (sample.images, sample.labels, "the 2,000 shipped test digits")
        )
        x = run_scaler.transform(images)
        probs = np.concatenate([np.asarray(model(x[i : i + 1024], training=False)) for i in range(0, len(x), 1024)])
        predicted = probs.argmax(axis=1)
        confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
        np.add.at(confusion, (labels.astype(int), predicted), 1)
        test_accuracy = score(probs, labels).overall
        payload = _payload(
            model, plan, run_scaler, file_name, chosen, notes, test_accuracy, source, confusion, predicted, labels
        )
        prog.on_step(4)
    return ImportOutcome(payload, plan.mapping, notes, chosen, accuracy, test_accuracy, source)


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
    "MAX_FILE_BYTES",
    "Plan",
    "SCALERS",
    "candidate_scalers",
    "import_model",
    "load_keras_file",
    "plan_import",
    "rebuild",
]
