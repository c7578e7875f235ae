"""Foundation: data, scaler, specs and layer table, training, runs, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.data import MnistUnavailableError, PixelScaler, load_mnist, load_sample_digits, read_mnist_npz
from core.spec import PRESETS, ArchitectureSpec, ConvSpec, count_params, layer_table, preset, receptive_box, validate

ROOT = Path(__file__).resolve().parent.parent


# --- specs and the layer table ---------------------------------------------------------------


def test_article_ii_has_96844_parameters_and_blog_shapes():
    spec = preset("article II")
    rows = {r.name: r for r in layer_table(spec)}
    assert count_params(spec) == 96_844
    assert [r.name for r in layer_table(spec)] == [
        "conv1",
        "pool1",
        "conv2",
        "pool2",
        "conv3",
        "flatten",
        "dense1",
        "out",
    ]
    assert rows["conv1"].output_shape == (26, 26, 32)
    assert rows["pool1"].output_shape == (13, 13, 32)
    assert rows["conv2"].output_shape == (11, 11, 64)
    assert rows["pool2"].output_shape == (5, 5, 64)
    assert rows["conv3"].output_shape == (3, 3, 64)
    assert rows["flatten"].output_shape == (576,)


def test_receptive_fields_match_the_blog():
    rows = {r.name: r for r in layer_table(preset("article II"))}
    assert {n: rows[n].receptive_field for n in ("conv1", "pool1", "conv2", "pool2", "conv3")} == {
        "conv1": 3,
        "pool1": 4,
        "conv2": 8,
        "pool2": 10,
        "conv3": 18,
    }
    assert receptive_box(rows["conv3"], 0, 0) == (0, 0, 17, 17)
    assert receptive_box(rows["conv3"], 2, 2) == (8, 8, 25, 25)  # stride 4 between conv3 neurons


@pytest.mark.parametrize("name", list(PRESETS))
def test_layer_table_params_equal_keras_count(name):
    from core.model import build_model

    spec = PRESETS[name]
    model = build_model(spec)
    assert count_params(spec) == model.count_params()
    for row in layer_table(spec):
        assert tuple(model.get_layer(row.name).output.shape[1:]) == row.output_shape


def test_optional_dropout_and_batchnorm_layers_are_named_and_counted():
    from core.model import build_model

    spec = ArchitectureSpec(PRESETS["article II"].convs, (70, 30), dropout=0.2, batch_norm=True)
    model = build_model(spec)
    names = [layer.name for layer in model.layers[1:]]
    assert names[:3] == ["conv1", "bn1", "pool1"] and "drop2" in names and names[-1] == "out"
    assert count_params(spec) == model.count_params()


def test_same_padding_keeps_sizes():
    rows = {r.name: r for r in layer_table(preset("same padding"))}
    assert rows["conv3"].output_shape == (7, 7, 64)
    assert rows["conv3"].start < 0  # fields reach into the padding


@pytest.mark.parametrize(
    "convs, message",
    [
        ((ConvSpec(32, 9), ConvSpec(64, 9), ConvSpec(64, 3)), "conv3"),  # 20 → pool 10 → 2 → conv3 fails
        ((ConvSpec(8), ConvSpec(8), ConvSpec(8), ConvSpec(8), ConvSpec(8)), "conv4"),
        ((ConvSpec(8, 29),), "conv1"),
        ((ConvSpec(8, 3, "relu", "same"),) * 6, "pool5"),
    ],
)
def test_maps_below_1x1_are_rejected_naming_the_layer(convs, message):
    with pytest.raises(ValueError, match=message):
        validate(ArchitectureSpec(tuple(convs)))


@pytest.mark.parametrize(
    "spec, message",
    [
        (ArchitectureSpec((ConvSpec(0),)), "filters"),
        (ArchitectureSpec((ConvSpec(8, activation="swish"),)), "activation"),
        (ArchitectureSpec((ConvSpec(8, padding="full"),)), "padding"),
        (ArchitectureSpec((ConvSpec(8),), dense=(0,)), "dense1"),
        (ArchitectureSpec((ConvSpec(8),), dropout=1.0), "dropout"),
        (ArchitectureSpec(()), "at least one conv"),
    ],
)
def test_bad_specs_are_rejected(spec, message):
    with pytest.raises(ValueError, match=message):
        validate(spec)


def test_spec_json_round_trip_and_unknown_fields():
    for spec in PRESETS.values():
        assert ArchitectureSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="unknown architecture fields"):
        ArchitectureSpec.from_dict({"convs": [], "colour": 1})
    with pytest.raises(ValueError, match="unknown preset"):
        preset("nope")


# --- data and scaler ----------------------------------------------------------------------------


def test_scaler_matches_sklearn_and_round_trips(mnist_small):
    from sklearn.preprocessing import StandardScaler

    images = mnist_small.x_train[:1000]
    ours = PixelScaler.fit(images)
    ref = StandardScaler().fit(images.reshape(len(images), -1).astype(np.float64))
    np.testing.assert_allclose(ours.mean.ravel(), ref.mean_, rtol=1e-6)
    np.testing.assert_allclose(ours.std.ravel(), ref.scale_, rtol=1e-6)
    x = ours.transform(images[:5])
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(ours.inverse(x), images[:5], atol=1e-3)
    assert np.array_equal(ours.to_display(x), images[:5])
    again = PixelScaler.from_json(ours.to_json())
    np.testing.assert_array_equal(again.std, ours.std)


def test_sample_digits_ship_index_227():
    sample = load_sample_digits()
    assert sample.images.shape == (2000, 28, 28) and sample.images.dtype == np.uint8
    image, label = sample.by_test_index(227)
    assert label == 4 and image.max() > 200
    with pytest.raises(ValueError, match="not in the shipped sample"):
        sample.by_test_index(5000)


def test_mnist_loader_prefers_explicit_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    x = np.zeros((4, 28, 28), np.uint8)
    y = np.arange(4, dtype=np.uint8)
    np.savez(path, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    monkeypatch.setenv("MNIST_NPZ", "/nonexistent.npz")
    assert load_mnist(path).x_train.shape == (4, 28, 28)  # the argument beats the env var
    monkeypatch.setenv("MNIST_NPZ", str(path))
    assert load_mnist().source == str(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"not a zip", "not a readable .npz"),
        ({"x_train": np.zeros((2, 28, 28))}, "lacks the arrays"),
        (
            {
                "x_train": np.zeros((2, 27, 28)),
                "y_train": np.zeros(2),
                "x_test": np.zeros((1, 28, 28)),
                "y_test": np.zeros(1),
            },
            "has shape",
        ),
        (
            {
                "x_train": np.zeros((2, 28, 28)),
                "y_train": np.zeros(3),
                "x_test": np.zeros((1, 28, 28)),
                "y_test": np.zeros(1),
            },
            "counts differ",
        ),
    ],
)
def test_bad_mnist_files_get_clear_messages(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    with pytest.raises(ValueError, match=message):
        read_mnist_npz(path)


def test_keras_download_failure_says_how_to_provide_the_file(monkeypatch):
    import keras

    monkeypatch.delenv("MNIST_NPZ", raising=False)

    def offline():
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(MnistUnavailableError, match="MNIST_NPZ"):
        load_mnist()


# --- training and runs ----------------------------------------------------------------------------


class _Recorder:
    def __init__(self, stop_after=None):
        self.events, self.stop_after, self.steps = [], stop_after, 0

    def on_begin(self, total, label=""):
        self.events.append(("begin", total))

    def on_step(self, done, info=None):
        self.steps = done

    def on_epoch(self, epoch, metrics):
        self.events.append(("epoch", epoch, metrics["val_accuracy"]))

    def on_end(self):
        self.events.append(("end",))

    def should_stop(self):
        return self.stop_after is not None and self.steps >= self.stop_after


def test_one_epoch_on_a_few_thousand_digits_beats_90_percent(mnist):
    from core.training import TrainConfig, train

    rec = _Recorder()
    result = train(
        preset("article II"),
        TrainConfig(epochs=1, optimizer="adam", batch_size=32),
        mnist.subset(6000, 1000),
        progress=rec,
    )
    assert result.test_accuracy > 0.90, result.summary()
    assert result.status == "completed" and result.params == 96_844
    assert rec.events[0] == ("begin", 188) and rec.events[-1] == ("end",) and rec.events[1][0] == "epoch"
    assert result.confusion.sum() == 1000 and len(result.history["val_accuracy"]) == 1


def test_stop_request_ends_after_the_current_batch(mnist_small):
    from core.training import TrainConfig, train

    rec = _Recorder(stop_after=5)
    result = train(preset("tiny filters"), TrainConfig(epochs=3), mnist_small, progress=rec)
    assert result.status == "stopped" and rec.steps == 5
    assert result.epoch_seconds == [] and rec.events[-1] == ("end",)


def test_nan_training_stops_with_a_message_and_finite_weights(mnist_small):
    from core.training import TrainConfig, train

    result = train(
        preset("article II"),
        TrainConfig(epochs=2, learning_rate=5.0, optimizer="sgd", seed=1),
        mnist_small.subset(1000, 200),
    )
    assert result.status == "diverged" and "NaN" in result.message and "learning rate" in result.message
    assert all(np.all(np.isfinite(w)) for w in result.model.get_weights())


def test_nan_in_a_later_epoch_restores_the_last_finished_epoch():
    from core.progress import ProgressCallback
    from core.training import _KerasProgress

    class FakeModel:
        stop_training = False
        weights = [np.array([1.0])]

        def get_weights(self):
            return [w.copy() for w in self.weights]

    adapter = _KerasProgress(ProgressCallback(), steps_per_epoch=2)
    adapter.set_model(FakeModel())
    adapter.on_train_begin()
    adapter.on_epoch_begin(0)
    adapter.on_train_batch_end(0, {"loss": 1.0, "accuracy": 0.5})
    adapter.model.weights = [np.array([2.0])]
    adapter.on_epoch_end(0, {"loss": 1.0})
    adapter.on_epoch_begin(1)
    adapter.model.weights = [np.array([np.nan])]
    adapter.on_train_batch_end(0, {"loss": float("nan"), "accuracy": 0.1})
    assert adapter.diverged and adapter.model.stop_training
    assert adapter.good_weights[0][0] == 2.0 and len(adapter.epoch_seconds) == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"schedule": "cosine"}, "schedule"),
        ({"l2": -1.0}, "l2"),
    ],
)
def test_bad_training_settings_are_rejected(kwargs, message):
    from core.training import TrainConfig

    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs).validate()


def test_run_is_saved_atomically_and_loads_with_safe_mode(tiny_bundle, tmp_path, monkeypatch):
    from core import runs
    from core.training import TrainResult

    assert tiny_bundle.model.get_layer("conv3").output.shape[-1] == 12
    assert (tiny_bundle.path / "run.json").is_file()
    # a failure while writing leaves nothing behind, not even the temporary folder
    target = tmp_path / "runs"
    fake = TrainResult(
        model=tiny_bundle.model,
        spec=tiny_bundle.spec,
        scaler=tiny_bundle.scaler,
        config=__import__("core.training", fromlist=["TrainConfig"]).TrainConfig(),
        history={},
        batch_history=[],
        test_accuracy=0.5,
        test_loss=1.0,
        confusion=np.zeros((10, 10), int),
        misclassified=np.array([], int),
        predictions=np.array([], int),
        seconds=1.0,
        epoch_seconds=[],
        device="CPU",
        status="completed",
    )

    def boom(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    real_rename = os.rename

    def rename_or_die(src, dst):  # the last step of writing a run: its temporary folder gets the real name
        if Path(src).name.startswith(".tmp-"):
            boom()
        real_rename(src, dst)

    monkeypatch.setattr(runs.os, "rename", rename_or_die)
    with pytest.raises(KeyboardInterrupt):
        runs.save_run(fake, target, name="half")
    assert list(target.iterdir()) == []
    monkeypatch.undo()
    saved = runs.save_run(fake, target, name="../../evil name")
    assert saved.parent == target and saved.name == "evil-name"
    assert runs.list_runs(target) == [saved]
    (target / ".tmp-leftover").mkdir()
    (target / "incomplete").mkdir()
    assert runs.list_runs(target) == [saved]


def test_bundled_model_is_article_ii_and_accurate(default_bundle, mnist):
    assert default_bundle.model.count_params() == 96_844
    assert default_bundle.meta["test_accuracy"] >= 0.99
    x = default_bundle.scaler.transform(mnist.x_test[:2000])
    acc = (default_bundle.model.predict(x, verbose=0).argmax(1) == mnist.y_test[:2000]).mean()
    assert acc >= 0.98


def test_model_file_that_is_not_a_model_is_refused(tiny_bundle, tmp_path):
    import shutil

    from core.runs import load_run

    bad = tmp_path / "bad"
    shutil.copytree(tiny_bundle.path, bad)
    (bad / "model.keras").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="could not be loaded"):
        load_run(bad)
    with pytest.raises(ValueError, match="not a complete run folder"):
        load_run(tmp_path)


# --- CLI --------------------------------------------------------------------------------------------


def _cli(*args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.integration
def test_cli_evaluate_bundled_model_prints_json():
    proc = _cli("evaluate")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["test_accuracy"] >= 0.99 and result["params"] == 96_844 and result["seconds"] > 0


@pytest.mark.integration
def test_cli_train_saves_a_run_and_prints_json(tmp_path):
    proc = _cli(
        "train",
        "--preset",
        "tiny filters",
        "--epochs",
        "1",
        "--train-limit",
        "500",
        "--out",
        str(tmp_path),
        "--name",
        "cli",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"test_accuracy", "params", "seconds"} <= set(result) and result["params"] == 9198
    assert (tmp_path / "cli" / "model.keras").is_file()
    assert "epoch 1:" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("evaluate", "--model", "/nonexistent"), "not a complete run folder"),
        (("evaluate", "--mnist", "/nonexistent.npz"), "does not exist"),
        (("train", "--epochs", "0", "--train-limit", "100"), "epochs"),
    ],
)
def test_cli_bad_arguments_exit_nonzero_with_one_line(args, message, capsys):
    from core.cli import main

    assert main(list(args)) == 2  # in this process: the train test above runs the real `python -m core`
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
