"""Checkpoints during training and the replay of a run (core/training.py, core/replay.py), on a tiny network and
synthetic digits made in the test (fast tier); the Train page's replay as AppTest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.training import TrainConfig
from tests.conftest import job_of, session_of


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """A tiny CNN trained 2 epochs with checkpoints every epoch and every tenth of the first, saved as a run."""
    from core.data import read_mnist_npz
    from core.runs import load_run, save_run
    from core.spec import preset
    from core.training import train
    from tests.conftest import write_tiny_mnist

    folder = tmp_path_factory.mktemp("replay")
    mnist = read_mnist_npz(write_tiny_mnist(folder / "mnist.npz", n_train=640, n_test=200))
    result = train(
        preset("tiny filters"), TrainConfig(epochs=2, batch_size=32, seed=3, checkpoints="epoch+early"), mnist
    )
    return result, load_run(save_run(result, folder / "runs", name="tiny")), mnist


def test_checkpoints_are_kept_at_the_start_in_the_first_epoch_and_after_each_epoch(replayed):
    from core.compare.replay import read_checkpoints

    result, bundle, _ = replayed
    positions = [p for p, _ in result.checkpoints]
    assert positions[0] == 0.0 and positions[-2:] == [1.0, 2.0]
    early = [p for p in positions if 0 < p < 1]
    assert len(early) == 9 and early == sorted(early)  # 20 batches per epoch: after batch 2, 4, ..., 18
    np.testing.assert_allclose(early, np.arange(1, 10) / 10, atol=0.03)  # at the tenths, labelled as such
    checkpoints = read_checkpoints(bundle.path)
    np.testing.assert_allclose(checkpoints.positions, positions)
    assert bundle.meta["checkpoints"] == positions
    assert all(w.dtype == np.float16 for w in checkpoints.weights[0])
    for w, final in zip(checkpoints.weights[-1], bundle.model.get_weights()):  # the last one is the saved model
        np.testing.assert_allclose(w.astype(np.float32), final, rtol=2e-3, atol=2e-3)
    assert not np.allclose(checkpoints.weights[0][0], checkpoints.weights[-1][0])  # and the first one is not


def test_accuracy_per_checkpoint_rises_from_chance_to_the_runs_own(replayed):
    from core.compare.replay import accuracy_curve, checkpoint_model, conv1_filters, read_checkpoints

    result, bundle, mnist = replayed
    checkpoints = read_checkpoints(bundle.path)
    accuracy = accuracy_curve(bundle, checkpoints, mnist.x_test, mnist.y_test)
    assert accuracy.shape == (len(checkpoints),)
    assert accuracy[0] < 0.4 and accuracy[-1] == pytest.approx(result.test_accuracy, abs=0.02)
    model = checkpoint_model(bundle, checkpoints, 0)
    predicted = np.asarray(model(bundle.scaler.transform(mnist.x_test))).argmax(1)
    assert (predicted == mnist.y_test).mean() == pytest.approx(accuracy[0])
    assert conv1_filters(checkpoints, 3).shape == (bundle.spec.convs[0].filters, 3, 3)
    with pytest.raises(ValueError, match="checkpoint 99 is outside 0..11"):
        checkpoint_model(bundle, checkpoints, 99)


def test_training_without_checkpoints_keeps_none_and_a_stop_keeps_only_finished_epochs(tmp_path):
    from core.compare.replay import read_checkpoints
    from core.data import read_mnist_npz
    from core.progress import ProgressRecord
    from core.runs import save_run
    from core.spec import preset
    from core.training import train
    from tests.conftest import write_tiny_mnist

    mnist = read_mnist_npz(write_tiny_mnist(tmp_path / "mnist.npz", n_train=320, n_test=50))
    plain = train(preset("tiny filters"), TrainConfig(epochs=1, batch_size=32), mnist)
    assert plain.checkpoints == [] and read_checkpoints(save_run(plain, tmp_path / "runs", "plain")) is None

    class StopInEpoch2(ProgressRecord):
        def on_epoch(self, epoch, metrics):
            if epoch == 1:
                self.request_stop()

    stopped = train(
        preset("tiny filters"),
        TrainConfig(epochs=3, batch_size=32, checkpoints="epoch"),
        mnist,
        progress=StopInEpoch2(),
    )
    assert stopped.status == "stopped" and [p for p, _ in stopped.checkpoints] == [0.0, 1.0]
    with pytest.raises(ValueError, match="checkpoints 'often' is not one of"):
        TrainConfig(checkpoints="often").validate()


def test_a_damaged_checkpoint_file_is_named(tmp_path):
    from core.compare.replay import read_checkpoints

    (tmp_path / "checkpoints.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="checkpoints.npz' is damaged"):
        read_checkpoints(tmp_path)


@pytest.mark.slow  # 12 checkpoints × accuracy and OIPs: about 20 s on 2 cores
def test_the_replay_job_and_cli(replayed, capsys):
    from core.cli import main
    from core.jobs.context import JobContext
    from core.jobs.kinds import ReplayConfig, execute
    from core.jobs.system import JobSpec
    from core.oip.search import OipConfig
    from core.progress import ProgressRecord

    _, bundle, mnist = replayed
    spec = JobSpec("replay", ReplayConfig(2, OipConfig(layer="conv1", epochs=20)), model=str(bundle.path))
    outcome = execute(spec, JobContext(), ProgressRecord())
    assert outcome.checkpoint == 2 and len(outcome.oip.maps) == bundle.spec.convs[0].filters
    assert main(["replay", str(bundle.path), "--mnist", mnist.source, "--layer", "conv2", "--epochs", "10"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out["accuracy"]) == len(out["positions"]) == len(out["maps_with_oip"]) == 12
    assert out["maps"] == bundle.spec.convs[1].filters
    with pytest.raises(ValueError, match="need the checkpoint"):
        ReplayConfig(None, OipConfig(layer="conv1")).validate()


def test_cli_replay_of_a_run_without_checkpoints(tiny_run, capsys):
    from core.cli import main

    assert main(["replay", str(tiny_run)]) == 2
    assert "kept no checkpoints; train it with --checkpoints" in capsys.readouterr().err


def test_the_train_page_replays_a_run(replayed, runs_dir, app_test, monkeypatch):
    import shutil

    _, bundle, mnist = replayed
    monkeypatch.setenv("MNIST_NPZ", mnist.source)
    run = runs_dir / "tiny"
    shutil.copytree(bundle.path, run)
    at = app_test("pages/train.py")
    at.selectbox(key="train_view_run").set_value(str(run)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.select_slider(key="replay_k").value == 11
    at.select_slider(key="replay_k").set_value(0).run()
    at.button(key="replay_acc").click().run()
    assert job_of(at, "replay_job").wait(120)
    at.run()
    at.button(key="replay_oip").click().run()
    assert job_of(at, "replay_oip_job").wait(120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("At start, **" in m.value and "maps of conv1 have no OIP" in m.value for m in at.markdown)
    store = session_of(at).train.replays
    assert len([k for k in store if k[1] == "accuracy"]) == 1 and len(store) == 2
