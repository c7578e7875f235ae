"""Bring your own model (core/import_model.py): Keras files made in the test, in both formats (.keras zip and legacy
HDF5), mapped to the stable names or refused with the reason; files that would run code refused before Keras
reads them; dense-only runs opened by the rest of core; the CLI and its report; a model trained the notebook way
(pixels / 255) imported and opened by every page."""

from __future__ import annotations

import io
import json
import zipfile

import h5py
import keras
import numpy as np
import pytest
from keras import layers as L

from core.import_model import ImportRefused, import_model, load_keras_file, plan_import

FORMATS = ("keras", "h5")


def model_bytes(model: keras.Model, tmp_path, fmt: str = "keras", name: str = "m") -> bytes:
    """The model saved as a Keras 3 zip (``fmt`` 'keras') or a legacy HDF5 file ('h5')."""
    path = tmp_path / f"{name}.{fmt}"
    model.save(path)
    return path.read_bytes()


def keras_bytes(model: keras.Model, tmp_path, name: str = "m") -> bytes:
    return model_bytes(model, tmp_path, "keras", name)


def seq(*layers, shape=(28, 28, 1)) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(shape), *layers])


# case → (model maker, expected mapping entries, the rebuilt model's layer names)
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
    # the most common MNIST model: Flatten–Dense–Dense, on each input shape
    "dense-only, 784 input": (
        lambda: seq(L.Dense(24, activation="relu", name="h"), L.Dense(10, activation="softmax"), shape=(784,)),
        {"h": "dense1"},
        ["flatten", "dense1", "out"],
    ),
    "dense-only, 28×28 input, softmax as a layer": (
        lambda: seq(
            L.Flatten(name="f"),
            L.Dense(24, activation="relu"),
            L.Dropout(0.2),
            L.Dense(16, activation="relu"),
            L.Dense(10, name="logits"),
            L.Activation("softmax", name="sm"),
            shape=(28, 28),
        ),
        {"f": "flatten", "logits": "out", "sm": "folded into out"},
        ["flatten", "dense1", "dense2", "out"],
    ),
    "dense-only, 28×28×1, Rescaling after Flatten": (
        lambda: seq(
            L.Flatten(), L.Rescaling(1 / 255.0, name="r"), L.Dense(16, activation="tanh"), L.Dense(10, name="o")
        ),
        {"r": "became the scaler", "o": "out"},
        ["flatten", "dense1", "out"],
    ),
    "Normalization per pixel, 784 input": (
        lambda: seq(
            L.Normalization(mean=np.linspace(0.0, 0.3, 784), variance=np.linspace(0.05, 0.2, 784), name="n"),
            L.Dense(16, activation="relu"),
            L.Dense(10),
            L.Softmax(),
            shape=(784,),
        ),
        {"n": "became the scaler"},
        ["flatten", "dense1", "out"],
    ),
    "Rescaling then Normalization, CNN": (
        lambda: seq(
            L.Rescaling(1 / 255.0),
            L.Normalization(mean=0.13, variance=0.09, name="n"),
            L.Conv2D(4, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ),
        {"n": "became the scaler"},
        ["conv1", "pool1", "flatten", "out"],
    ),
    "average pooling and global average pooling": (
        lambda: seq(
            L.Conv2D(4, 3, activation="relu", padding="same", name="c1"),
            L.AveragePooling2D(2, name="avg"),
            L.Conv2D(6, 3, activation="relu"),
            L.GlobalAveragePooling2D(name="g"),
            L.Dense(10, activation="softmax"),
        ),
        {"avg": "pool1", "g": "gap"},
        ["conv1", "pool1", "conv2", "gap", "out"],
    ),
    # the usual batch-norm order, conv → BN → activation (and dense → BN → activation): folded into the weights
    "batch norm before the activation": (
        lambda: _with_trained_batch_norm(
            seq(
                L.Conv2D(4, 3, name="c"),
                L.BatchNormalization(name="bn"),
                L.Activation("relu", name="act"),
                L.MaxPooling2D(),
                L.Conv2D(6, 3, use_bias=False),
                L.BatchNormalization(epsilon=1e-5),
                L.ReLU(),
                L.Flatten(),
                L.Dense(12, name="d"),
                L.BatchNormalization(name="dbn"),
                L.Activation("relu"),
                L.Dense(10, activation="softmax"),
            )
        ),
        {"bn": "folded into conv1", "act": "folded into conv1", "d": "dense1", "dbn": "folded into dense1"},
        ["conv1", "pool1", "conv2", "flatten", "dense1", "out"],
    ),
    "stride-2 convs instead of pooling": (
        lambda: seq(
            L.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="s1"),
            L.Conv2D(8, 3, strides=2, activation="relu"),
            L.Conv2D(8, 3, activation="selu"),
            L.Flatten(),
            L.Dense(10),
        ),
        {"s1": "conv1"},
        ["conv1", "conv2", "conv3", "flatten", "out"],
    ),
}


def _with_trained_batch_norm(model: keras.Model) -> keras.Model:
    """``model`` with every BatchNormalization's statistics and scales set as training leaves them (not 0 and 1)."""
    rng = np.random.default_rng(1)
    for lyr in model.layers:
        if isinstance(lyr, L.BatchNormalization):
            n = lyr.gamma.shape[0]
            lyr.set_weights(
                [rng.uniform(0.5, 2, n), rng.normal(0, 0.5, n), rng.normal(0, 1, n), rng.uniform(0.2, 3, n)]
            )
    return model


def _fed_like_the_file(outcome, run, raw: np.ndarray, shape: tuple) -> np.ndarray:
    """What the file's own model is fed for raw digits under the scaler the import chose."""
    if outcome.scaler == "normalization-unit":
        fed = raw.astype(np.float32) / 255.0
    elif outcome.scaler in ("rescaling", "normalization"):  # the model's own input layers see pixels 0..255
        fed = raw.astype(np.float32)
    else:  # a scaler in front of a model without input layers of its own: the run's scaler is what it is fed
        fed = run.scaler.transform(raw)
    return fed.reshape(len(raw), *shape)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(ACCEPTED))
def test_accepted_models_get_the_stable_names_and_compute_the_same(case, fmt, tmp_path):
    from core.data import load_sample_digits
    from core.runs import load_run, write_run

    make, mapped, names = ACCEPTED[case]
    original = make()
    outcome = import_model(model_bytes(original, tmp_path, fmt), f"{case}.{fmt}")
    for k, v in mapped.items():
        assert outcome.mapping[k] == v, outcome.mapping
    run = load_run(write_run(outcome.payload, tmp_path / "runs", "mine"))  # checks every shape against the spec
    assert [lyr.name for lyr in run.model.layers[1:]] == names
    assert (
        run.meta["imported"] and run.meta["imported_from"] == f"{case}.{fmt}" and run.meta["mapping"] == outcome.mapping
    )
    assert outcome.report.format == ("keras-zip" if fmt == "keras" else "hdf5")
    assert run.meta["import_report"]["architecture"] == outcome.report.to_dict()["architecture"]
    # the run (its scaler + the rebuilt model) reads raw digits as the file's model does
    raw = load_sample_digits().images[:32]
    want = np.asarray(original(_fed_like_the_file(outcome, run, raw, tuple(original.inputs[0].shape[1:]))))
    if original.layers[-1].get_config().get("activation") == "linear" and type(original.layers[-1]).__name__ == "Dense":
        want = np.exp(want) / np.exp(want).sum(axis=1, keepdims=True)  # the logits model got a softmax
        assert any("logits" in n for n in outcome.notes)
    np.testing.assert_allclose(run.model(run.scaler.transform(raw), training=False), want, atol=1e-4)


def test_input_layers_become_the_scaler(tmp_path):
    outcome = import_model(keras_bytes(ACCEPTED["notebook variants"][0](), tmp_path), "n.keras", scaler="unit")
    assert outcome.scaler == "rescaling" and "--scaler unit is not used" in outcome.report.scaler["reason"]
    norm = import_model(keras_bytes(ACCEPTED["Normalization per pixel, 784 input"][0](), tmp_path), "p.keras")
    # a Normalization alone may have been fed pixels 0..255 or /255: both were tried
    assert set(norm.scaler_accuracy) == {"normalization", "normalization-unit"}
    assert norm.report.input_adapter.startswith("784 pixels")


def _two_inputs():
    a, b = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    x = L.Flatten()(L.Conv2D(2, 3)(L.Concatenate()([a, b])))
    return keras.Model([a, b], L.Dense(10, activation="softmax")(x))


def _residual():
    a = keras.Input((28, 28, 1))
    x = L.Conv2D(1, 3, padding="same")(a)
    x = L.Add()([a, x])
    return keras.Model(a, L.Dense(10, activation="softmax")(L.Flatten()(L.Conv2D(2, 3)(x))))


@keras.saving.register_keras_serializable(package="Mine")
class Doubler(L.Layer):
    def call(self, x):
        return x * 2


@keras.saving.register_keras_serializable(package="Mine")
def my_activation(x):
    return keras.ops.relu(x) * 2


REFUSED = [
    (
        "a Lambda layer",
        lambda: seq(L.Lambda(lambda x: x * 2), L.Conv2D(2, 3), L.Flatten(), L.Dense(10, activation="softmax")),
        "has a Lambda layer",
    ),
    (
        "a custom layer",
        lambda: seq(Doubler(name="twice"), L.Flatten(), L.Dense(10, activation="softmax")),
        "custom layer 'twice'",
    ),
    (
        "a custom activation",
        lambda: seq(L.Flatten(), L.Dense(10, activation=my_activation, name="odd")),
        "custom layer or function in layer 'odd'",
    ),
    ("two inputs", _two_inputs, "the model has 2 inputs"),
    (
        "a 32×32×3 input",
        lambda: seq(L.Conv2D(2, 3), L.Flatten(), L.Dense(10, activation="softmax"), shape=(32, 32, 3)),
        "input is 32×32×3",
    ),
    (
        "a 28×28×3 input",
        lambda: seq(L.Conv2D(2, 3), L.Flatten(), L.Dense(10, activation="softmax"), shape=(28, 28, 3)),
        "input is 28×28×3 (three colour channels",
    ),
    (
        "a channels-first input",
        lambda: seq(L.Flatten(), L.Dense(10, activation="softmax"), shape=(1, 28, 28)),
        "input is 1×28×28 (channels-first",
    ),
    ("5 classes", lambda: seq(L.Conv2D(2, 3), L.Flatten(), L.Dense(5, activation="softmax")), "a 10-way output"),
    (
        "global max pooling",
        lambda: seq(L.Conv2D(2, 3), L.GlobalMaxPooling2D(), L.Dense(10, activation="softmax")),
        "(GlobalMaxPooling2D) is a kind the pages cannot show",
    ),
    (
        "a stride-5 conv",
        lambda: seq(L.Conv2D(2, 3, strides=5), L.Flatten(), L.Dense(10, activation="softmax")),
        "has strides (5, 5)",
    ),
    (
        "3×3 pooling",
        lambda: seq(L.Conv2D(2, 3), L.MaxPooling2D(3), L.Conv2D(2, 3), L.Flatten(), L.Dense(10, activation="softmax")),
        "2×2 pooling with stride 2",
    ),
    (
        "Dense on a 28×28 grid",
        lambda: seq(L.Dense(8), L.Flatten(), L.Dense(10, activation="softmax"), shape=(28, 28)),
        "comes before Flatten",
    ),
    (
        "Rescaling inside the network",
        lambda: seq(L.Conv2D(2, 3), L.Rescaling(0.5), L.Flatten(), L.Dense(10, activation="softmax")),
        "scales inside the network",
    ),
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


H5_REFUSED = [
    r for r in REFUSED if r[0] in ("a Lambda layer", "a custom layer", "a channels-first input", "two inputs")
]


@pytest.mark.parametrize("case, make, message", H5_REFUSED, ids=[c for c, _, _ in H5_REFUSED])
def test_hdf5_files_get_the_same_checks(case, make, message, tmp_path):
    with pytest.raises(ImportRefused) as err:
        import_model(model_bytes(make(), tmp_path, "h5"), "mine.h5")
    assert message in str(err.value)


def test_a_keras2_h5_with_spatial_dropout_imports_though_keras3_cannot_read_its_config(tmp_path):
    """Keras 2 wrote ``trainable`` and ``noise_shape`` into SpatialDropout2D's config, which Keras 3's class refuses;
    the import drops them from a temporary copy (the layer does nothing at inference)."""
    model = seq(
        L.Conv2D(4, 3, activation="relu"), L.SpatialDropout2D(0.1, name="sd"), L.Flatten(), L.Dense(10, "softmax")
    )
    file = tmp_path / "keras2.h5"
    model.save(file)
    with h5py.File(file, "r+") as f:  # as tf.keras 2.x writes the layer
        config = json.loads(f.attrs["model_config"])
        sd = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "SpatialDropout2D")
        sd["config"].update(trainable=True, noise_shape=None)
        f.attrs["model_config"] = json.dumps(config)
    data = file.read_bytes()
    with pytest.raises(TypeError, match="trainable"):
        keras.saving.load_model(file, compile=False)  # what Keras 3 alone does with it
    outcome = import_model(data, "keras2.h5")
    assert outcome.mapping["sd"] == "left out (does nothing at inference)"
    assert file.read_bytes() == data  # the user's file is not written


def test_a_functional_model_with_its_input_as_a_list_imports_without_a_warning(tmp_path):
    """Keras 2 saved functional models with ``input_layers`` as a list; Keras 3 warns when such a model is called
    with one tensor. The import's own check calls it so: the learner sees no warning."""
    import warnings

    inputs = keras.Input((28, 28, 1))
    outputs = L.Dense(10, activation="softmax")(L.Flatten()(L.Conv2D(2, 3, activation="relu")(inputs)))
    model = keras.Model([inputs], outputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = import_model(model_bytes(model, tmp_path, "h5"), "functional.h5")
    assert outcome.payload is not None
    assert not [w for w in caught if "structure" in str(w.message)], [str(w.message) for w in caught]


def test_a_file_keras_cannot_read_is_refused_with_the_reason_keras_gives_at_the_bottom(tmp_path):
    """Keras wraps the cause of a failed load in a long "could not be deserialized ... config=..." text; the refusal
    quotes the cause itself."""
    file = tmp_path / "odd.h5"
    seq(L.Conv2D(2, 3, activation="relu"), L.Flatten(), L.Dense(10, activation="softmax")).save(file)
    with h5py.File(file, "r+") as f:  # an argument no Keras version knows
        config = json.loads(f.attrs["model_config"])
        next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")["config"]["foo"] = 1
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ImportRefused) as err:
        import_model(file.read_bytes(), "odd.h5")
    assert str(err.value).endswith("Unrecognized keyword arguments passed to Conv2D: {'foo': 1}"), str(err.value)


@pytest.mark.parametrize(
    "make, reason",
    [
        (
            lambda: TypeError(
                "<class 'Sequential'> could not be deserialized properly. Please ensure ...\n\nconfig={'a': 1}.\n\n"
                "Exception encountered: Unrecognized keyword arguments passed to Conv2D: {'batch_input_shape': [1]}"
            ),
            "Unrecognized keyword arguments passed to Conv2D: {'batch_input_shape': [1]}",
        ),
        (lambda: _raised_from(ValueError("outer"), KeyError("inner")), "'inner'"),
        (lambda: ValueError("word " * 100), ("word " * 48).strip() + " …"),
        (lambda: OSError(""), "OSError"),
    ],
    ids=["keras-wrapped", "chained", "long", "empty"],
)
def test_the_reason_quoted_from_a_keras_error(make, reason):
    from core.import_model import _root_reason

    assert _root_reason(make()) == reason


def _raised_from(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as exc:
        return exc


def test_a_keras2_keras_zip_is_refused_saying_how_to_bring_it(tmp_path):
    """tf.keras 2.13–2.15 also wrote .keras zips, in a layout Keras 3 cannot read: the message says what to do."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "2.15.0", "date_saved": "2024-01-01"}))
        z.writestr(
            "config.json",
            json.dumps({"module": "tf_keras.src.engine.functional", "class_name": "Functional", "config": {}}),
        )
        z.writestr("model.weights.h5", b"")
    with pytest.raises(ImportRefused) as err:
        import_model(buf.getvalue(), "old.keras")
    assert "saved by Keras 2.15.0 (tf.keras)" in str(err.value) and "model.save('model.h5')" in str(err.value)


def test_a_model_trained_on_mnists_global_mean_and_spread_gets_that_scaler(tmp_path):
    """PyTorch's ``Normalize((0.1307,), (0.3081,))`` habit: one mean and spread for every pixel."""
    from core.data import load_sample_digits

    sample = load_sample_digits()
    x = ((sample.images / 255.0 - 0.1307) / 0.3081).reshape(-1, 784).astype(np.float32)
    model = seq(L.Dense(32, activation="relu"), L.Dense(10, activation="softmax"), shape=(784,))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, sample.labels, epochs=8, batch_size=64, verbose=0)
    outcome = import_model(model_bytes(model, tmp_path, "h5"), "torchish.h5")
    assert outcome.scaler == "global", outcome.scaler_accuracy
    assert "0.1307" in outcome.report.scaler["text"]


@pytest.mark.parametrize(
    "accuracy, chosen, says",
    [
        ({"unit": 0.900, "article-ii": 0.905, "mnist": 0.905, "global": 0.93}, "global", ""),  # clearly better
        ({"unit": 0.900, "article-ii": 0.860, "mnist": 0.860, "global": 0.905}, "unit", "within 1% of the best"),
        ({"unit": 0.300, "article-ii": 0.97, "mnist": 0.97, "global": 0.975}, "article-ii", "within 1% of the best"),
    ],
    ids=["a rarer scaling clearly better", "the common one within a point", "the first good one in order"],
)
def test_auto_keeps_the_most_common_scaling_within_a_point_of_the_best(accuracy, chosen, says):
    from core.import_model import Plan, _choose

    plan = Plan(spec=None, weights={}, mapping={})
    got, reason = _choose("auto", plan, accuracy, dict.fromkeys(accuracy, 2000))
    assert got == chosen and says in reason, reason


def test_a_later_scaler_is_read_in_full_only_if_it_could_beat_an_earlier_one_by_a_point():
    from core.import_model import _cannot_beat

    earlier = np.arange(250) % 10 != 0  # 90 % right
    same = earlier.copy()
    better = earlier | (np.arange(250) % 20 == 0)  # 95 %: right on 12 more digits
    slightly = earlier.copy()
    slightly[[0, 10]] = True  # 2 digits more: within the noise of a paired difference
    assert _cannot_beat(same, earlier, 250)
    assert not _cannot_beat(better, earlier, 250)
    assert not _cannot_beat(slightly, earlier, 250)


def test_an_activation_the_pages_cannot_show_is_refused_naming_those_they_can(tmp_path):
    with pytest.raises(ImportRefused) as err:
        import_model(keras_bytes(seq(L.Conv2D(2, 3), L.LeakyReLU(), L.Flatten(), L.Dense(10)), tmp_path), "l.keras")
    assert "(LeakyReLU) is a kind the pages cannot show" in str(err.value)
    assert "activation layers (Activation, ReLU, Softmax) with one of relu, sigmoid, elu, tanh, selu" in str(err.value)


def _lambda_h5(tmp_path, marker, keras2: bool) -> bytes:
    """An HDF5 file whose Lambda layer would create ``marker`` when run; ``keras2``: its config rewritten the way
    Keras 2 (tf.keras) wrote Lambdas: ``function`` as [marshalled bytecode, defaults, closure]."""
    path = str(marker)
    model = seq(  # a lambda, stored as bytecode (a named function would be stored by its name)
        L.Lambda(lambda x: (open(path, "w").close(), x)[1], name="sneaky"),  # noqa: SIM115 - must never run here
        L.Flatten(),
        L.Dense(10, activation="softmax"),
    )
    marker.unlink()  # building the model in the test ran it once
    file = tmp_path / "lambda.h5"
    model.save(file)
    if keras2:
        with h5py.File(file, "r+") as f:
            config = json.loads(f.attrs["model_config"])
            lam = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Lambda")
            code = lam["config"]["function"]["config"]
            lam["config"]["function"] = [code["code"], code["defaults"], code["closure"]]
            lam["config"]["function_type"] = "lambda"
            lam["config"]["module"] = "__main__"
            f.attrs["model_config"] = json.dumps(config)
    return file.read_bytes()


@pytest.mark.parametrize("keras2", [False, True], ids=["keras3-h5", "keras2-h5"])
def test_a_lambda_in_hdf5_is_refused_by_name_and_runs_nothing(keras2, tmp_path):
    marker = tmp_path / "ran"
    marker.touch()
    data = _lambda_h5(tmp_path, marker, keras2)
    for name in ("mine.h5", "mine.keras"):  # by content: an HDF5 file named .keras too
        with pytest.raises(ImportRefused, match=r"has a Lambda layer \('sneaky', Lambda\)"):
            import_model(data, name)
    assert not marker.exists()
    # what docs/cli.md says of Keras itself: its legacy HDF5 loader honours safe_mode (SafeModeScope)
    with pytest.raises(ValueError, match="safe_mode"):
        keras.saving.load_model(tmp_path / "lambda.h5", compile=False, safe_mode=True)
    assert not marker.exists()


@pytest.mark.parametrize(
    "config, message",
    [
        (  # Keras ≤ 2.2 wrote a Sequential's config as a bare list of layers
            {"class_name": "Sequential", "config": [{"class_name": "Lambda", "config": {"name": "old"}}]},
            "has a Lambda layer ('old', Lambda)",
        ),
        (  # tf.keras wrote TensorFlow functions called on tensors as TFOpLambda layers
            {"class_name": "Functional", "config": {"layers": [{"class_name": "TFOpLambda", "name": "tf.math.add"}]}},
            "has a Lambda layer ('tf.math.add', TFOpLambda)",
        ),
        (  # a custom layer inside a nested model
            {
                "class_name": "Sequential",
                "config": {
                    "layers": [
                        {"class_name": "Sequential", "config": {"name": "inner", "layers": [{"class_name": "Mine"}]}}
                    ]
                },
            },
            "uses a custom layer '?' (Mine)",
        ),
        ({"class_name": "MyModel", "config": {}}, "holds a custom model class (MyModel)"),
    ],
)
def test_configs_that_would_run_code_are_refused_before_keras_reads_them(config, message):
    from core.import_model import check_config

    with pytest.raises(ImportRefused) as err:
        check_config(config, "'f.h5'")
    assert message in str(err.value)


def test_the_format_is_told_by_content_not_by_name(tmp_path):
    make = ACCEPTED["keras.io example"][0]
    h5_named_keras = import_model(model_bytes(make(), tmp_path, "h5"), "downloaded.keras")
    zip_named_h5 = import_model(model_bytes(make(), tmp_path, "keras"), "downloaded.h5")
    assert h5_named_keras.report.format == "hdf5" and zip_named_h5.report.format == "keras-zip"
    assert h5_named_keras.mapping == zip_named_h5.mapping


def _h5(tmp_path) -> bytes:
    return b"\x89HDF\r\n\x1a\n" + b"\0" * 100


def _weights_only_h5(tmp_path) -> bytes:
    path = tmp_path / "w.weights.h5"
    seq(L.Flatten(), L.Dense(10)).save_weights(path)
    return path.read_bytes()


def _zip_without_config(tmp_path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a model")
    return buf.getvalue()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: b"just some text", "is not a Keras model: a .keras file is a zip archive"),
        (_h5, "is a damaged HDF5 file"),
        (_weights_only_h5, "an HDF5 file without a model in it (weights only"),
        (_zip_without_config, "it has no config.json"),
        (lambda tmp: b"PK" + b"\0" * (21 * 1024 * 1024), "models up to 20 MB can be imported"),
    ],
)
def test_files_that_are_not_models(make, message, tmp_path):
    with pytest.raises(ImportRefused) as err:
        load_keras_file(make(tmp_path), "'upload.keras'")
    assert message in str(err.value)


def test_a_plan_names_what_it_folded_and_left_out(tmp_path):
    model = load_keras_file(keras_bytes(ACCEPTED["notebook variants"][0](), tmp_path))
    plan = plan_import(model)
    assert plan.spec.batch_norm and not plan.spec.final_pool and plan.spec.dense == (12,)
    assert [c.activation for c in plan.spec.convs] == ["relu", "tanh"] and plan.spec.dense_activation == "elu"
    assert plan.rescaling == (pytest.approx(1 / 255), 0.0) and plan.added_softmax
    assert plan.spec.pools is None and plan.spec.head == "flatten"  # the classic layout: the spec file as before


def test_the_report_has_the_tables_the_page_shows(tmp_path):
    outcome = import_model(
        model_bytes(ACCEPTED["average pooling and global average pooling"][0](), tmp_path, "h5"), "gap.h5"
    )
    report = json.loads(json.dumps(outcome.report.to_dict()))  # plain JSON all the way down
    assert {"layers", "architecture", "not_shown", "scaler", "test_accuracy", "test_source", "format"} <= set(report)
    assert [(r["name"], r["became"]) for r in report["layers"]][:2] == [("c1", "conv1"), ("avg", "pool1")]
    assert report["architecture"][0] == {
        "name": "conv1",
        "kind": "Conv2D",
        "output_shape": [28, 28, 4],
        "params": 40,
        "receptive_field": 3,
    }
    assert {r["layer"] for r in report["not_shown"]} == {"pool1", "gap"}
    assert report["scaler"]["name"] in report["scaler"]["accuracy"] and report["scaler"]["reason"]
    assert report["test_source"] == "the 2,000 shipped test digits" and report["test_digits"] == 2000


def test_spec_variants_have_true_shapes_and_receptive_fields():
    """layer_table's shapes and receptive boxes for stride-2 'same' convs, average pooling and gap, checked against
    Keras: the input pixels with a non-zero gradient for one neuron fill its receptive box."""
    import tensorflow as tf

    from core.model import build_model
    from core.spec import ArchitectureSpec, ConvSpec, layer_table, receptive_box

    spec = ArchitectureSpec(
        (ConvSpec(2, 3, "elu", "same", 2), ConvSpec(3, 4, "elu", "valid", 2), ConvSpec(2, 3, "elu", "same")),
        dense=(),
        pools=("none", "avg", "none"),
        head="gap",
    )
    assert ArchitectureSpec.from_json(spec.to_json()) == spec
    model = build_model(spec, seed=0)
    x = tf.constant(np.random.default_rng(0).normal(size=(1, 28, 28, 1)), tf.float32)
    for info in layer_table(spec):
        out = model.get_layer(info.name).output
        assert tuple(out.shape[1:]) == info.output_shape, info.name
        if info.receptive_field is None:
            continue
        probe = keras.Model(model.inputs, out)
        for row, col in ((0, 0), (info.output_shape[0] - 1, info.output_shape[1] // 2)):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = tf.reduce_sum(probe(x)[0, row, col])
            seen = np.argwhere(np.abs(tape.gradient(value, x).numpy()[0, ..., 0]) > 0)
            top, left, bottom, right = receptive_box(info, row, col)
            assert (*seen.min(0), *seen.max(0)) == (top, left, bottom, right), (info.name, row, col)


def test_a_dense_only_run_opens_in_core(tmp_path):
    """What the rest of core does with a run without conv layers: it loads, shows its dense units and saliency,
    and says why Grad-CAM has nothing to show."""
    from core.activations import ActivationModel
    from core.data import load_sample_digits
    from core.runs import load_run, write_run

    make = ACCEPTED["dense-only, 28×28 input, softmax as a layer"][0]
    run = load_run(write_run(import_model(keras_bytes(make(), tmp_path), "d.keras").payload, tmp_path, "dense"))
    assert run.spec.dense_only and run.spec.convs == ()
    am = ActivationModel.from_bundle(run)
    assert am.layer_names == ["dense1", "dense2", "out"] and am.conv_names == [] and am.cam_layer is None
    x = run.scaler.transform(load_sample_digits().images[:1])[0]
    result = am.activations(x)
    assert result.dense_names == ["dense1", "dense2"] and result.spatial_names == []
    assert am.saliency(x, 3).shape == (28, 28)
    with pytest.raises(ValueError, match="no conv layer"):
        am.grad_cam(x, 3)


def test_cli_import_model(tmp_path, capsys, monkeypatch):
    from core.cli import main

    monkeypatch.delenv("MNIST_NPZ", raising=False)
    path = tmp_path / "notebook.h5"
    path.write_bytes(model_bytes(ACCEPTED["keras.io example"][0](), tmp_path, "h5"))
    assert main(["import-model", str(path), "--out", str(tmp_path / "runs"), "--scaler", "unit"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["run"].endswith("notebook") and out["scaler"] == "unit"
    assert out["device"] == "CPU" or out["device"].startswith("GPU")
    assert out["test_source"] == "the 2,000 shipped test digits" and out["mapping"]["probs"] == "out"
    assert out["report"]["format"] == "hdf5" and out["report"]["scaler"]["name"] == "unit"
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


def test_a_dense_only_run_works_on_every_page_or_says_why_and_offers_the_cnn(tmp_path, runs_dir, app_test):
    """Issue 26: a Flatten–Dense network on every page and every Experiments tab: its units, saliency, attacks,
    invariances and handwriting work; what needs conv maps says so in one sentence and offers the bundled CNN."""
    from core.runs import write_run

    make = ACCEPTED["dense-only, 28×28 input, softmax as a layer"][0]
    run = write_run(import_model(keras_bytes(make(), tmp_path), "d.keras").payload, runs_dir, "dense")
    at = app_test("pages/train.py")
    at.session_state["active_model"] = str(run)
    at.run()
    offered = {}
    for page in ("pages/activations.py", "pages/oip.py", "pages/precursor.py", "pages/deep_dream.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        offered[page] = [i.value for i in at.info if "it is a dense network" in i.value]
        assert at.session_state["active_model"] == str(run)
    assert all(len(v) == 1 for v in offered.values()), offered
    at.switch_page("pages/activations.py").run()
    assert any("no conv layers, so no maps" in c.value for c in at.caption), [c.value for c in at.caption]
    at.switch_page("pages/experiments.py").run()
    for tab in ("Knock maps out", "Fool the network", "Invariances", "Your handwriting"):
        at.session_state["exp_tab"] = tab
        at.run()
        assert not at.exception, (tab, [e.value for e in at.exception])
    at.switch_page("pages/deep_dream.py").run()
    at.button(key="use_bundled_cnn").click().run()
    assert not at.exception
    assert at.session_state["active_model"].endswith("default_model")
    assert not any("it is a dense network" in i.value for i in at.info)


def test_an_h5_file_imports_from_the_train_page_with_its_report(tmp_path, runs_dir, app_test):
    """Issue 26: the Train page takes a legacy .h5, imports it as a job and shows the report: each layer of the
    file and what it became, the rebuilt architecture, the pixel scaling with its reason."""
    from tests.conftest import finish_job

    data = model_bytes(ACCEPTED["dense-only, 28×28 input, softmax as a layer"][0](), tmp_path, "h5")
    at = app_test("pages/train.py")
    at.file_uploader(key="train_import_file").set_value(("mlp.h5", data, "application/octet-stream")).run()
    at.text_input(key="train_import_name").set_value("my-mlp").run()
    at.button(key="train_import_start").click().run()
    finish_job(at, "import_job", timeout=120)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Imported as **my-mlp**" in s.value for s in at.success), [s.value for s in at.success]
    assert at.session_state["active_model"] == str(runs_dir / "my-mlp")
    mapping = next(df.value for df in at.dataframe if "layer in the file" in df.value.columns)
    became = dict(zip(mapping["layer in the file"], mapping["here"]))
    assert "out" in became.values() and "dense1" in became.values(), became
    rebuilt = next(df.value for df in at.dataframe if "receptive_field" in df.value.columns or "params" in df.value)
    assert list(rebuilt["name"])[-1] == "out"
    assert any("legacy HDF5" in (m.help or "") for m in at.metric if m.label == "imported from")


def test_two_dense_networks_are_compared_unit_by_unit(tmp_path, runs_dir, app_test):
    """Issue 26: Compare aligns the dense layers of two dense networks (a unit is a map of one position)."""
    from core.runs import write_run
    from tests.conftest import finish_job

    make = ACCEPTED["dense-only, 28×28 input, softmax as a layer"][0]
    runs = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        runs.append(write_run(import_model(keras_bytes(make(), tmp_path), "d.keras").payload, runs_dir, f"d{seed}"))
    at = app_test("pages/compare.py")
    at.multiselect(key="cmp_runs").set_value([str(r) for r in runs]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="cmp_layers").options == ["dense1", "dense2"]
    at.multiselect(key="cmp_layers").set_value(["dense1", "dense2"]).run()
    at.select_slider(key="cmp_digits").set_value(1000).run()
    at.button(key="cmp_start").click().run()
    handle = finish_job(at, "compare_job")
    assert handle.state == "finished", handle.snapshot().message
    assert not at.exception, [e.value for e in at.exception]
    sentences = [m.value for m in at.markdown if m.value.startswith("**dense")]
    assert [s.split(":")[0] for s in sentences] == ["**dense1", "**dense2"], sentences
