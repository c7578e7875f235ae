"""Reliability and security checks that span the pages: server settings, model files, GPU fall-back."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_server_settings_are_safe_for_a_classroom():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert 1 <= config["server"]["maxUploadSize"] <= 50  # MB: photos and digits, not datasets
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none"  # no tracebacks in the browser


def test_a_model_file_with_a_lambda_layer_is_refused_by_safe_mode(tiny_bundle, tmp_path):
    import keras

    from core.runs import load_run

    evil = tmp_path / "evil"
    shutil.copytree(tiny_bundle.path, evil)
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2.0, name="conv1")(inputs)
    keras.Model(inputs, outputs).save(evil / "model.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        load_run(evil)


def test_gpu_out_of_memory_falls_back_to_cpu(monkeypatch):
    import tensorflow as tf

    from core import device

    monkeypatch.setattr(device, "gpu_available", lambda: True)
    calls, messages = [], []

    def work():
        calls.append(1)
        if len(calls) == 1:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return 42

    assert device.run_with_cpu_fallback(work, notify=messages.append) == (42, "CPU (GPU out of memory)")
    assert len(calls) == 2 and "out of memory" in messages[0]


def test_other_gpu_errors_are_not_hidden(monkeypatch):
    from core import device

    monkeypatch.setattr(device, "gpu_available", lambda: True)

    def work():
        raise ValueError("map index 99 is outside 0..63")

    with pytest.raises(ValueError, match="map index"):
        device.run_with_cpu_fallback(work)


def test_without_gpu_work_runs_once_on_cpu():
    from core import device

    if device.gpu_available():
        pytest.skip("this machine has a GPU")
    assert device.run_with_cpu_fallback(lambda: "done") == ("done", "CPU")
