"""The drawing component's browser-side arithmetic against the server's, in headless chromium: the 28×28 digit
read from a drawing (digit.js against core.images) byte for byte, and the TensorFlow.js forward pass (net.js)
against Keras within 1e-4 on the probabilities of 200 MNIST test digits and of drawn digits, for the bundled
model and a tiny variant with 'same' padding, stride 2, average pooling, batch norm and a GAP head."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

FRONTEND = "pages/ui/draw/frontend"
SCRIPTS = ("tf-core.min.js", "tf-backend-cpu.min.js", "digit.js", "net.js")
TOLERANCE = 1e-4


def _ellipse(cx, cy, rx, ry, n=40, start=0.0, end=2 * np.pi):
    t = np.linspace(start, end, n)
    return [[float(cx + rx * np.cos(a)), float(cy + ry * np.sin(a))] for a in t]


# (strokes in pad pixels, pen width): digits drawn as a person would, some thin, thick, small, off-centre
DRAWINGS = [
    ([[[70, 60], [210, 60], [130, 240]]], 22),
    ([[[140, 40], [140, 240]]], 22),
    ([_ellipse(140, 140, 60, 95)], 22),
    ([[[180, 240], [180, 40], [70, 170], [220, 170]]], 18),
    ([_ellipse(140, 95, 55, 45, start=np.pi, end=2.4 * np.pi), [[180, 120], [90, 240], [210, 240]]], 26),
    (
        [_ellipse(140, 90, 50, 45, start=-2.5, end=1.6), _ellipse(140, 185, 55, 50, start=-0.5, end=2.5)],
        20,
    ),
    ([[[200, 50], [90, 60], [80, 140], [190, 150], [190, 230], [80, 235]]], 30),
    ([_ellipse(150, 170, 50, 55), [[105, 150], [150, 40]]], 14),
    ([[[120, 100], [160, 100], [140, 170]]], 12),  # a small 7
    ([[[40, 40], [120, 50], [70, 150]]], 16),  # off-centre
    ([_ellipse(140, 85, 45, 45), _ellipse(140, 185, 55, 55)], 24),
    ([_ellipse(140, 100, 50, 50), [[190, 100], [180, 250]]], 22),
    ([[[140, 40]], [[140, 100], [140, 240]]], 22),  # a dot and a line (two marks)
]


@pytest.fixture(scope="module")
def blank(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_content("<canvas id='pad' width='280' height='280'></canvas>")
    for name in SCRIPTS:
        page.add_script_tag(path=f"{FRONTEND}/{name}")
    page.evaluate("() => DrawNet.ready()")
    yield page
    context.close()


def _js_probabilities(page, description: dict, digits: np.ndarray) -> np.ndarray:
    return np.array(
        page.evaluate(
            """([description, digits]) => {
                const net = DrawNet.load(description);
                const out = digits.map((d) => net.run(d).probabilities);
                net.dispose();
                return out;
            }""",
            [description, np.asarray(digits, np.uint8).reshape(len(digits), 784).tolist()],
        )
    )


def _drawn(page) -> tuple[list, list]:
    """Each drawing read in the browser: (its 28×28 digit or None, the pad as RGBA) per drawing."""
    found = page.evaluate(
        """(drawings) => drawings.map(([strokes, pen]) => {
            const ctx = document.getElementById('pad').getContext('2d', {willReadFrequently: true});
            DrawDigit.paint(ctx, strokes.map((p) => ({w: pen, p})));
            const r = DrawDigit.canvasToDigit(ctx.getImageData(0, 0, 280, 280).data, 280, 280);
            return [r.digit ? Array.from(r.digit) : null, ctx.canvas.toDataURL('image/png')];
        })""",
        DRAWINGS,
    )
    digits, pads = [], []
    for digit, png in found:
        digits.append(None if digit is None else np.array(digit, np.uint8).reshape(28, 28))
        raw = base64.b64decode(png.split(",", 1)[1])
        pads.append(np.asarray(Image.open(io.BytesIO(raw)).convert("RGBA")))
    return digits, pads


def test_drawn_digit_is_the_servers(blank):
    from core.images import canvas_to_gray, to_mnist_digit

    digits, pads = _drawn(blank)
    for i, (mine, rgba) in enumerate(zip(digits, pads)):
        server = to_mnist_digit(canvas_to_gray(rgba), invert=False)
        assert mine is not None, f"drawing {i}: the browser read no digit"
        diff = int((mine != server).sum())
        assert diff == 0, f"drawing {i}: {diff} of 784 pixels differ from the server's 28×28"


def _tiny_variant():
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="elu", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.AveragePooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="tanh", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(12, activation="sigmoid", name="dense1")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="out")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(3)
    model.set_weights(
        [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()[:2]]
        + [np.abs(rng.normal(1, 0.3, w.shape)).astype(np.float32) for w in model.get_weights()[2:6]]
        + [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()[6:]]
    )
    return model


def _dense_variant():
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(32, activation="selu", name="dense1")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="out")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("which", [pytest.param("bundled", marks=pytest.mark.slow), "tiny", "dense"])  # bundled: ~20 s
def test_browser_probabilities_agree_with_keras(blank, which):
    from core import runs
    from core.browser_model import describe, scale_input
    from core.data import PixelScaler

    bundle = runs.load_default()
    model, scaler = {
        "bundled": (bundle.model, bundle.scaler),
        "tiny": (_tiny_variant(), bundle.scaler),
        "dense": (_dense_variant(), PixelScaler(np.full((28, 28), 30.0), np.full((28, 28), 80.0))),
    }[which]
    images = np.load("assets/sample_digits.npz")["images"][:200]  # the first MNIST test digits
    drawn, _ = _drawn(blank)
    digits = np.concatenate([images, np.stack([d for d in drawn if d is not None])])
    description = json.loads(json.dumps(describe(model, scaler)))
    mine = _js_probabilities(blank, description, digits)
    keras_p = np.asarray(model(scale_input(description, digits), training=False))
    worst = float(np.abs(mine - keras_p).max())
    assert worst <= TOLERANCE, f"{which}: largest probability difference {worst:.2e} > {TOLERANCE}"
    assert (mine.argmax(1) == keras_p.argmax(1)).all()
