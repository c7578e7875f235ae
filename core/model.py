"""Building the CNN from a spec, and multi-output views of a trained model."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from core.spec import ArchitectureSpec, layer_table, validate  # noqa: E402


def layer_seed(seed: int | None, index: int) -> int | None:
    """The seed of the ``index``-th random layer part of a model seeded with ``seed`` (None: unseeded).

    Every initialiser and dropout layer gets its own seed derived from the model's, so the weights
    depend on the model's seed alone: no process-wide random state is read or changed.
    """
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0] % (2**31 - 1))


def build_model(spec: ArchitectureSpec, l2: float = 0.0, seed: int | None = None) -> keras.Model:
    """A functional Keras model for 28×28×1 input with the spec's stable layer names.

    Input ``(N, 28, 28, 1)`` standardized pixels → output ``(N, num_classes)`` probabilities.
    ``l2`` adds an L2 weight penalty to every conv and dense kernel. ``seed`` fixes the initial
    weights and the dropout masks (Glorot-uniform kernels and zero biases, as Keras' defaults).
    """
    validate(spec)
    if l2 < 0:
        raise ValueError(f"l2={l2} must be ≥ 0")
    counter = iter(range(1, 1000))

    def init():
        return keras.initializers.GlorotUniform(seed=layer_seed(seed, next(counter)))

    reg = keras.regularizers.L2(l2) if l2 > 0 else None
    inputs = keras.Input((spec.input_side, spec.input_side, 1), name="input")
    x = inputs
    for i, conv in enumerate(spec.convs, 1):
        x = keras.layers.Conv2D(
            conv.filters,
            conv.kernel,
            strides=conv.stride,
            activation=conv.activation,
            padding=conv.padding,
            kernel_initializer=init(),
            kernel_regularizer=reg,
            name=f"conv{i}",
        )(x)
        if spec.batch_norm:
            x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        pool = spec.pool_after(i)
        if pool == "max":
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
        elif pool == "avg":
            x = keras.layers.AveragePooling2D(2, name=f"pool{i}")(x)
    if spec.head == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(spec.dense, 1):
        x = keras.layers.Dense(
            units, activation=spec.dense_activation, kernel_initializer=init(), kernel_regularizer=reg, name=f"dense{i}"
        )(x)
        if spec.dropout > 0:
            x = keras.layers.Dropout(spec.dropout, seed=layer_seed(seed, 500 + i), name=f"drop{i}")(x)
    outputs = keras.layers.Dense(
        spec.num_classes, activation="softmax", kernel_initializer=init(), kernel_regularizer=reg, name="out"
    )(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def layer_names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def feature_model(model: keras.Model, names: list[str] | None = None) -> keras.Model:
    """A model with one output per named layer (default: every layer), sharing the weights.

    Input ``(N, 28, 28, 1)`` → list of each layer's output, e.g. conv1 ``(N, 26, 26, 32)``.
    """
    available = layer_names(model)
    names = names or available
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; this model has {available}")
    return keras.Model(model.inputs, [model.get_layer(n).output for n in names], name="features")


def check_matches_spec(model: keras.Model, spec: ArchitectureSpec) -> None:
    """Raise ValueError when a loaded model does not have the layers its spec promises."""
    expected = [row.name for row in layer_table(spec)]
    got = layer_names(model)
    if got != expected:
        raise ValueError(f"model layers {got} do not match the architecture spec {expected}")
