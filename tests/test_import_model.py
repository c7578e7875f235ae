"""Bring your own model (core/import_model.py): Keras files made in the test, mapped to the stable names or refused
with the reason; the CLI; a model trained the notebook way (pixels / 255) imported and opened by every page."""

from __future__ import annotations

import io
import json
import zipfile

import keras
import numpy as np
import pytest
from keras import layers as L

from core.import_model import ImportRefused, import_model, load_keras_file, plan_import


def keras_bytes(model: keras.Model, tmp_path, name: str = "m") -> bytes:
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return path.read_bytes()


def seq(*layers, shape=(28, 28, 1)) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(shape), *layers])


ACCEPTED = {
    # Keras' own "simple MNIST convnet": a pool after the last conv, Dropout before the output
    "keras.io example": (
        lambda: seq(
            L.Conv2D(8, 3, activation="relu", name="c1"),
            L.MaxPooling2D(2, name="p1"),
            L.Conv2D(16, 3, activation="relu", name="c2"),
            L.MaxPooling2D(2, name="p2"),
            L.Flatten(name="f"),
            L.Dropout(0.5, name="drop"),
            L.Dense(10, activation="softmax", name="probs"),
        ),
        {"c1": "conv1", "p2": "pool2", "drop": "left out (does nothing at inference)", "probs": "out"},
        ["conv1", "pool1", "conv2", "pool2", "flatten", "out"],
    ),
    # input (28, 28) reshaped, Rescaling, activations as layers, batch norm, 'same' padding, logits out
    "notebook variants": (
        lambda: seq(
            L.Reshape((28, 28, 1)),
            L.Rescaling(1 / 255.0, name="scale"),
            L.Conv2D(4, 3),
            L.ReLU(name="relu1"),
            L.BatchNormalization(name="norm1"),
            L.MaxPooling2D(),
            L.Conv2D(6, 5, padding="same"),
            L.Activation("tanh"),
            L.BatchNormalization(),
            L.Flatten(),
            L.Dense(12, activation="elu"),
            L.Dense(10),
            shape=(28, 28),
        ),
        {"scale": "became the scaler", "relu1": "folded into conv1", "norm1": "bn1"},
        ["conv1", "bn1", "pool1", "conv2", "bn2", "flatten", "dense1", "out"],
    ),
    "the blog's article II": (
        lambda: seq(
            L.Conv2D(32, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Conv2D(64, 3, activation="relu"),
            L.Flatten(),
            L.Dense(70, activation="relu"),
            L.Dense(10, activation="softmax"),
        ),
        {},
        ["conv1", "pool1", "conv2", "pool2", "conv3", "flatten", "dense1", "out"],
    ),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_accepted_models_get_the_stable_names_and_compute_the_same(case, tmp_path):
    from core.data import load_sample_digits
    from core.runs import load_run, write_run

    make, mapped, names = ACCEPTED[case]
    original = make()
    outcome = import_model(keras_bytes(original, tmp_path), f"{case}.keras")
    for k, v in mapped.items():
        assert outcome.mapping[k] == v, outcome.mapping
    run = load_run(write_run(outcome.payload, tmp_path / "runs", "mine"))
    assert [lyr.name for lyr in run.model.layers[1:]] == names
    assert (
        run.meta["imported"] and run.meta["imported_from"] == f"{case}.keras" and run.meta["mapping"] == outcome.mapping
    )
    # the run (its scaler + the rebuilt model) reads raw digits as the file's model does
    raw = load_sample_digits().images[:32]
    fed = raw.astype(np.float32)
    if outcome.scaler == "unit":
        fed = fed / 255.0
    elif outcome.scaler == "article-ii":
        fed = run.scaler.transform(raw)[..., 0]
    want = np.asarray(original(fed if original.inputs[0].shape[-1] != 1 else fed[..., None], training=False))
    if case == "notebook variants":
        want = np.exp(want) / np.exp(want).sum(axis=1, keepdims=True)  # the logits model got a softmax
        assert outcome.scaler == "rescaling" and any("logits" in n for n in outcome.notes)
    np.testing.assert_allclose(run.model(run.scaler.transform(raw), training=False), want, atol=1e-4)


def _two_inputs():
    a, b = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    x = L.Flatten()(L.Conv2D(2, 3)(L.Concatenate()([a, b])))
    return keras.Model([a, b], L.Dense(10, activation="softmax")(x))


def _residual():
    a = keras.Input((28, 28, 1))
    x = L.Conv2D(1, 3, padding="same")(a)
    x = L.Add()([a, x])
    return keras.Model(a, L.Dense(10, activation="softmax")(L.Flatten()(L.Conv2D(2, 3)(x))))


def _h5(tmp_path) -> bytes:
    return b"\x89HDF\r\n\x1a\n" + b"\0" * 100


def _zip_without_config(tmp_path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a model")
    return buf.getvalue()


REFUSED = [
    (
        "a Lambda layer",
        lambda: seq(L.Lambda(lambda x: x * 2), L.Conv2D(2, 3), L.Flatten(), L.Dense(10, activation="softmax")),
        "has a Lambda layer",
    ),
    ("two inputs", _two_inputs, "the model has 2 inputs"),
    (
        "a 32×32×3 input",
        lambda: seq(L.Conv2D(2, 3), L.Flatten(), L.Dense(10, activation="softmax"), shape=(32, 32, 3)),
        "input is 32×32×3",
    ),
    ("5 classes", lambda: seq(L.Conv2D(2, 3), L.Flatten(), L.Dense(5, activation="softmax")), "a 10-way output"),
    (
        "global average pooling",
        lambda: seq(L.Conv2D(2, 3), L.GlobalAveragePooling2D(), L.Dense(10, activation="softmax")),
        "(GlobalAveragePooling2D) is a kind the pages cannot show",
    ),
    (
        "a strided conv",
        lambda: seq(L.Conv2D(2, 3, strides=2), L.Flatten(), L.Dense(10, activation="softmax")),
        "uses strides",
    ),
    (
        "3×3 pooling",
        lambda: seq(L.Conv2D(2, 3), L.MaxPooling2D(3), L.Conv2D(2, 3), L.Flatten(), L.Dense(10, activation="softmax")),
        "2×2 pooling with stride 2",
    ),
    (
        "convs without pooling",
        lambda: seq(L.Conv2D(2, 3), L.Conv2D(2, 3), L.Flatten(), L.Dense(10, activation="softmax")),
        "without a pooling layer between",
    ),
    ("no conv", lambda: seq(L.Flatten(), L.Dense(10, activation="softmax")), "before any conv layer"),
    (
        "a sigmoid output",
        lambda: seq(L.Conv2D(2, 3), L.Flatten(), L.Dense(10, activation="sigmoid")),
        "the output activation is 'sigmoid'",
    ),
    ("a residual branch", _residual, "(Add) is a kind the pages cannot show"),
]


@pytest.mark.parametrize("case, make, message", REFUSED, ids=[c for c, _, _ in REFUSED])
def test_models_the_pages_cannot_show_are_refused_with_the_reason(case, make, message, tmp_path):
    with pytest.raises(ImportRefused) as err:
        import_model(keras_bytes(make(), tmp_path), "mine.keras")
    assert message in str(err.value)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: b"just some text", "is not a Keras model: a .keras file is a zip archive"),
        (_h5, "an HDF5 .h5 file: open it in Keras and save it again as .keras"),
        (_zip_without_config, "it has no config.json"),
        (lambda tmp: b"PK" + b"\0" * (21 * 1024 * 1024), "models up to 20 MB can be imported"),
    ],
)
def test_files_that_are_not_models(make, message, tmp_path):
    with pytest.raises(ImportRefused, match=None) as err:
        load_keras_file(make(tmp_path), "'upload.keras'")
    assert message in str(err.value)


def test_a_plan_names_what_it_folded_and_left_out(tmp_path):
    model = load_keras_file(keras_bytes(ACCEPTED["notebook variants"][0](), tmp_path))
    plan = plan_import(model)
    assert plan.spec.batch_norm and not plan.spec.final_pool and plan.spec.dense == (12,)
    assert [c.activation for c in plan.spec.convs] == ["relu", "tanh"] and plan.spec.dense_activation == "elu"
    assert plan.rescaling == (pytest.approx(1 / 255), 0.0) and plan.added_softmax


def test_cli_import_model(tmp_path, capsys, monkeypatch):
    from core.cli import main

    monkeypatch.delenv("MNIST_NPZ", raising=False)
    path = tmp_path / "notebook.keras"
    path.write_bytes(keras_bytes(ACCEPTED["keras.io example"][0](), tmp_path))
    assert main(["import-model", str(path), "--out", str(tmp_path / "runs"), "--scaler", "unit"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["run"].endswith("notebook") and out["scaler"] == "unit"
    assert out["test_source"] == "the 2,000 shipped test digits" and out["mapping"]["probs"] == "out"
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"nope")
    assert main(["import-model", str(bad), "--out", str(tmp_path / "runs")]) == 2
    assert "is not a Keras model" in capsys.readouterr().err
    assert main(["import-model", str(path), "--scaler", "weird"]) == 2
    assert "scaler 'weird' is not one of" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["notebook"]  # nothing half-written


@pytest.fixture(scope="module")
def notebook_model(mnist, tmp_path_factory) -> bytes:
    """Keras' MNIST example trained the notebook way (pixels / 255) for two epochs on 20,000 digits."""
    keras.utils.set_random_seed(1)
    model = ACCEPTED["keras.io example"][0]()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(mnist.x_train[:20000, ..., None] / 255.0, mnist.y_train[:20000], epochs=2, batch_size=64, verbose=0)
    return keras_bytes(model, tmp_path_factory.mktemp("notebook"))


def test_a_notebook_model_is_read_with_its_own_scaling_and_every_page_opens_it(
    notebook_model, mnist, runs_dir, app_test
):
    from core.runs import write_run

    outcome = import_model(notebook_model, "notebook.keras", "auto", mnist)
    assert outcome.scaler == "unit", outcome.scaler_accuracy  # chosen by the accuracy on the shipped digits
    assert outcome.scaler_accuracy["unit"] > max(0.9, outcome.scaler_accuracy["article-ii"])
    assert outcome.test_accuracy > 0.9 and outcome.test_source == "MNIST test set"
    run = write_run(outcome.payload, runs_dir, "notebook")
    at = app_test("pages/train.py")
    at.session_state["active_model"] = str(run)
    at.selectbox(key="train_view_run").set_value(str(run)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Scaler: pixels / 255" in c.value for c in at.caption)
    for page in (
        "pages/activations.py",
        "pages/experiments.py",
        "pages/oip.py",
        "pages/precursor.py",
        "pages/deep_dream.py",
        "pages/clustering.py",
        "pages/compare.py",
    ):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert at.session_state["active_model"] == str(run)
