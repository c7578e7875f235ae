"""The model as the drawing pad gets it (core.browser_model) and what the page reads back from the pad
(pages.ui.draw): tiny models made here, no MNIST file, no browser. The browser's own arithmetic is checked
against Keras in tests/browser/test_draw_agreement.py."""

from __future__ import annotations

import base64
import io
import json

import keras
import numpy as np
import pytest
from PIL import Image

from core.browser_model import NotInBrowser, check_description, describe, export_json, run_description, scale_input
from core.data import PixelScaler

pytestmark = pytest.mark.fast


def _model(*layers, shape=(28, 28, 1)):
    inputs = keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def _digits(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28)).astype(np.uint8)


SCALER = PixelScaler(np.full((28, 28), 33.0), np.full((28, 28), 78.0))


def test_the_description_runs_like_the_model_layer_by_layer():
    model = _model(
        keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv1"),
        keras.layers.BatchNormalization(name="bn1"),
        keras.layers.AveragePooling2D(2, name="pool1"),
        keras.layers.Conv2D(5, 3, activation="tanh", name="conv2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dropout(0.5, name="drop1"),
        keras.layers.Dense(10, activation="softmax", name="out"),
    )
    description = json.loads(export_json(model, SCALER, _digits()))
    assert description["outputs"] == ["conv1", "bn1", "pool1", "conv2", "flatten", "out"]
    x = scale_input(description, _digits(3, 1))
    mine = run_description(description, x)
    for name in ("conv1", "pool1", "conv2"):
        reference = keras.Model(model.inputs, model.get_layer(name).output)(x)
        assert np.abs(mine[name] - np.asarray(reference)).max() < 1e-5, name
    assert mine["out"].shape == (3, 10)


def test_input_scaling_is_the_servers():
    description = describe(_model(keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")), SCALER)
    raw = _digits(2)
    assert np.array_equal(scale_input(description, raw), SCALER.transform(raw))


@pytest.mark.parametrize(
    "layer, words",
    [
        (keras.layers.Conv2D(2, 3, dilation_rate=2), "dilated"),
        (keras.layers.LayerNormalization(), "LayerNormalization"),
        (keras.layers.Conv2D(2, 3, activation="gelu"), "gelu"),
    ],
)
def test_what_the_browser_cannot_run_is_refused_by_name(layer, words):
    model = _model(layer, keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax"))
    with pytest.raises(NotInBrowser, match=words):
        describe(model, None)


def test_a_branching_model_is_refused():
    inputs = keras.Input((28, 28, 1))
    a = keras.layers.Conv2D(2, 3, name="a")(inputs)
    b = keras.layers.Conv2D(2, 3, name="b")(inputs)
    x = keras.layers.Flatten()(keras.layers.Add()([a, b]))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    with pytest.raises(NotInBrowser):
        describe(model, None)


def test_a_description_that_is_not_the_model_is_never_sent():
    model = _model(keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax", name="out"))
    description = describe(model, SCALER)
    description["layers"][-1]["weights"]["bias"]["data"] = base64.b64encode(
        np.arange(10, dtype="<f4").tobytes()
    ).decode()
    with pytest.raises(NotInBrowser, match="differs from the model"):
        check_description(model, description, _digits())


def test_the_page_reads_the_pads_picture_and_digit():
    from core.images import ImageInputError
    from pages.ui import draw

    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[60:220, 130:150, :3] = 255
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert np.array_equal(draw.pad_pixels(url), rgba)
    with pytest.raises(ImageInputError):
        draw.pad_pixels("data:image/jpeg;base64,AAAA")
    assert draw.browser_digit({"digit": list(range(784))}).shape == (28, 28)
    assert draw.browser_digit({"digit": [1, 2]}) is None and draw.browser_digit({}) is None


def test_input_layers_and_other_activations_run_like_the_model():
    normalization = keras.layers.Normalization(mean=0.1, variance=0.09)
    model = _model(
        keras.layers.Rescaling(1 / 255.0, offset=-0.2),
        normalization,
        keras.layers.Conv2D(3, 3, activation="selu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(6, activation="softplus"),
        keras.layers.Dense(10, activation="softmax"),
    )
    assert check_description(model, describe(model, None), _digits(5, 2)) <= 1e-6


@pytest.mark.fast
def test_model_files_for_browsers_are_written_once_and_the_oldest_go(tmp_path):
    from core.browser_model import write_export

    names = [write_export(f'{{"model": {i}}}', tmp_path, keep=3) for i in range(5)]
    assert len(set(names)) == 5
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(names[2:])  # the newest three
    assert write_export('{"model": 2}', tmp_path, keep=3) == names[2]  # the same content: the same file
    assert not list(tmp_path.glob("*.tmp"))
