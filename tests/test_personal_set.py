"""The personal handwriting set (core/personal_set.py) and fine-tuning a copy on it (core/fine_tune.py),
on tiny models and synthetic digits made in the test (fast tier: no MNIST file)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from core.experiments.personal_set import MAX_DIGITS, PersonalSet, PersonalSetError, check_label, score_probabilities


def bars(labels, vertical=False, seed=0):
    """Synthetic digits: a bright bar whose position is the label (horizontal: 'MNIST', vertical: 'yours')."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, (len(labels), 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        if vertical:
            x[i, 4:24, 4 + 2 * label : 6 + 2 * label] = 250
        else:
            x[i, 4 + 2 * label : 6 + 2 * label, 4:24] = 250
    return x


def test_a_set_grows_and_shrinks_as_new_values():
    empty = PersonalSet()
    one = empty.add(np.full((28, 28), 7.4), 3)
    two = one.add(np.zeros((28, 28), np.uint8), "5")
    assert len(empty) == 0 and len(one) == 1 and len(two) == 2  # the old sets are untouched
    assert two.labels.tolist() == [3, 5] and two.images.dtype == np.uint8 and two.images[0, 0, 0] == 7
    assert two.without([0]).labels.tolist() == [5]
    assert two.counts()[3] == 1 and two.counts().sum() == 2
    many = two.add_many(np.zeros((4, 28, 28)), 9)
    assert many.labels.tolist() == [3, 5, 9, 9, 9, 9]
    with pytest.raises(ValueError):
        two.images[0, 0, 0] = 1  # read-only: a session's set is never edited in place


def test_npz_round_trip_and_keras_shaped_images():
    s = PersonalSet(bars([1, 2, 3]), np.array([1, 2, 3]))
    back = PersonalSet.from_npz(s.to_npz())
    np.testing.assert_array_equal(back.images, s.images)
    assert back.labels.tolist() == [1, 2, 3]
    buf = io.BytesIO()
    np.savez(buf, images=bars([4])[..., None].astype(np.float32), labels=np.array([4.0]))
    assert PersonalSet.from_npz(buf.getvalue()).labels.tolist() == [4]


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _pickled() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, images=np.array([object()], dtype=object), labels=np.array([1]))
    return buf.getvalue()


BAD_FILES = [
    (b"hello, not a set", "not a personal set"),
    (b"PK\x03\x04 broken zip" + b"\0" * 40, "not a personal set"),
    (_npz(x=np.zeros((1, 28, 28)), labels=np.array([1])), "no 'images'"),
    (_npz(images=np.zeros((1, 28, 28))), "no 'labels'"),
    (_npz(images=np.zeros((2, 28, 28)), labels=np.array([1, 12])), "label 12 (digit 1) is outside 0..9"),
    (_npz(images=np.zeros((2, 28, 28)), labels=np.array([1, -1])), "outside 0..9"),
    (_npz(images=np.zeros((1, 28, 28)), labels=np.array([1.5])), "whole numbers"),
    (_npz(images=np.zeros((2, 28, 28)), labels=np.array([1])), "2 images need 2 labels"),
    (_npz(images=np.zeros((1, 32, 32)), labels=np.array([1])), "shape (N, 28, 28)"),
    (_npz(images=np.full((1, 28, 28), 300.0), labels=np.array([1])), "0..255"),
    (_npz(images=np.full((1, 28, 28), np.nan), labels=np.array([1])), "0..255"),
    (
        _npz(images=np.zeros((MAX_DIGITS + 1, 28, 28), np.uint8), labels=np.zeros(MAX_DIGITS + 1, np.uint8)),
        "more than a personal set holds",
    ),
    (_pickled(), "could not be read"),
    (b"PK" + b"\0" * (5 * 1024 * 1024), "a personal set is at most"),
]


@pytest.mark.parametrize("data,message", BAD_FILES, ids=[m for _, m in BAD_FILES])
def test_bad_files_are_refused_with_the_reason(data, message):
    with pytest.raises(PersonalSetError, match=None) as err:
        PersonalSet.from_npz(data, "mine.npz")
    assert message in str(err.value)


@pytest.mark.parametrize(
    "label,ok", [(0, 0), (9, 9), ("7", 7), (3.0, 3), (10, None), (-1, None), (2.5, None), ("seven", None), (None, None)]
)
def test_labels(label, ok):
    if ok is None:
        with pytest.raises(PersonalSetError, match="label"):
            check_label(label)
    else:
        assert check_label(label) == ok


def test_a_bad_digit_leaves_the_set_as_it_was():
    s = PersonalSet().add(np.zeros((28, 28)), 1)
    for image, label in ((np.zeros((28, 27)), 1), (np.zeros((28, 28)), 11), (np.full((28, 28), -3), 2)):
        with pytest.raises(PersonalSetError):
            s.add(image, label)
    assert len(s) == 1


def test_score_counts_misses_per_class():
    probs = np.eye(10)[[1, 1, 2, 7]]
    result = score_probabilities(probs, np.array([1, 2, 2, 1]))
    assert result.accuracy.overall == pytest.approx(0.5)
    assert result.missed.tolist() == [1, 3]
    assert result.misses[1] == 1 and result.misses[2] == 1 and result.counts[1] == 2
    assert np.isnan(result.accuracy.per_class[5])


def test_hold_out_takes_a_share_of_each_class_and_depends_on_the_seed():
    from core.experiments.fine_tune import split_hold_out

    labels = np.repeat(np.arange(10), 4)
    train, held = split_hold_out(labels, 0.25, seed=0)
    assert len(held) == 10 and sorted(labels[held].tolist()) == list(range(10))
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == 40
    assert not np.array_equal(held, split_hold_out(labels, 0.25, seed=1)[1])
    assert len(split_hold_out(labels[:5], 0.25, 0)[1]) == 0  # too few to hold any out


@pytest.fixture()
def synthetic(tmp_path):
    from core.data import read_mnist_npz
    from core.runs import load_run
    from tests.conftest import write_tiny_mnist, write_tiny_run

    bundle = load_run(write_tiny_run(tmp_path / "base", seed=3))
    return bundle, read_mnist_npz(write_tiny_mnist(tmp_path / "mnist.npz", n_train=600, n_test=200))


def test_fine_tuning_learns_the_new_handwriting_and_leaves_the_original_alone(synthetic):
    from core.experiments.fine_tune import SETS, FineTuneConfig, fine_tune

    bundle, mnist = synthetic
    original = [w.copy() for w in bundle.model.get_weights()]
    labels = np.repeat(np.arange(10), 4)
    personal = PersonalSet(bars(labels, vertical=True, seed=5), labels)
    config = FineTuneConfig(epochs=6, learning_rate=3e-3, mnist_digits=600, repeat=15, seed=0)
    result = fine_tune(bundle, mnist, personal, config)
    for w, o in zip(bundle.model.get_weights(), original):
        np.testing.assert_array_equal(w, o)
    assert set(result.before) == set(result.after) == set(SETS)
    assert len(result.held_out) == 10 and result.after[SETS[2]].accuracy.n == 10
    # an untrained network reads neither; the copy learns the bars of both directions, new vertical ones too
    assert result.before[SETS[1]].accuracy.overall < 0.4
    assert result.after[SETS[1]].accuracy.overall > 0.8
    assert result.after[SETS[2]].accuracy.overall > result.before[SETS[2]].accuracy.overall + 0.3
    assert result.after[SETS[0]].accuracy.overall > 0.8
    assert result.summary()[SETS[2]]["after"] == round(result.after[SETS[2]].accuracy.overall, 4)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"epochs": 0}, "epochs=0 is outside 1..20"),
        ({"learning_rate": 0.0}, "learning_rate=0.0"),
        ({"learning_rate": float("nan")}, "learning_rate=nan"),
        ({"repeat": 0}, "repeat=0"),
        ({"hold_out": 0.9}, "hold_out=0.9"),
        ({"mnist_digits": -1}, "mnist_digits=-1"),
    ],
)
def test_bad_fine_tune_settings(change, message):
    from core.experiments.fine_tune import FineTuneConfig

    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        FineTuneConfig(**change).validate()


def test_the_fine_tune_job_writes_a_new_run_and_can_be_stopped(synthetic, tmp_path):
    from core.experiments.fine_tune import FineTuneConfig
    from core.jobs.context import JobContext
    from core.jobs.kinds import FineTuneJobConfig, check_spec, execute, finish
    from core.jobs.system import JobSpec
    from core.progress import ProgressRecord
    from core.runs import list_runs, load_run

    bundle, mnist = synthetic
    labels = np.arange(10)
    job = FineTuneJobConfig(
        FineTuneConfig(epochs=1, mnist_digits=100, repeat=2),
        name="mine",
        runs_dir=str(tmp_path / "runs"),
        mnist=mnist.source,
    )
    spec = JobSpec(
        "fine-tune", job, model=str(bundle.path), inputs={"images": bars(labels, vertical=True), "labels": labels}
    )
    check_spec(spec)
    outcome = finish(spec, execute(spec, JobContext(), ProgressRecord()))
    assert outcome.status == "completed" and outcome.run_dir.name == "mine"
    run = load_run(outcome.run_dir)
    assert run.meta["fine_tuned_from"] == bundle.name and run.meta["personal_digits"] == 10
    assert run.meta["config"]["train_limit"] == 100
    np.testing.assert_allclose(run.scaler.mean, bundle.scaler.mean)  # the base model's scaler, not a new one
    stop = ProgressRecord()
    stop.request_stop()
    stopped = execute(spec, JobContext(), stop)
    assert stopped.status == "stopped"
    assert [p.name for p in list_runs(tmp_path / "runs")] == ["mine"]  # nothing half-written
    with pytest.raises(ValueError, match="empty"):
        check_spec(JobSpec("fine-tune", job, inputs={"images": np.zeros((0, 28, 28)), "labels": np.zeros(0)}))
    with pytest.raises(ValueError, match="inputs"):
        check_spec(JobSpec("fine-tune", job))


def test_a_broken_zip_is_named(tmp_path):
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        z.writestr("images.npy", b"not an array")
        z.writestr("labels.npy", b"not an array")
    with pytest.raises(PersonalSetError, match="could not be read"):
        PersonalSet.from_npz(data.getvalue())


def test_cli_adds_images_scores_and_fine_tunes(tmp_path, tiny_run, tiny_mnist, capsys):
    import json

    from core.cli import main
    from tests.test_activations import png_bytes

    photos = []
    for i, index in enumerate((227, 5, 0)):
        path = tmp_path / f"digit{i}.png"
        path.write_bytes(png_bytes(index))
        photos.append(str(path))
    mine = tmp_path / "mine.npz"
    common = ["--model", str(tiny_run), "--mnist", str(tiny_mnist)]
    assert main(["handwriting", str(mine), "--add", *photos[:2], "--label", "4", *common]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["digits"] == 2 and out["added"] == 2 and out["per_class_count"][4] == 2
    assert 0 <= out["accuracy_yours"] <= 1 and len(out["per_class_missed"]) == 10
    assert PersonalSet.from_npz(mine.read_bytes()).labels.tolist() == [4, 4]
    # a bad image among good ones: nothing is added, the file stays as it was
    broken = tmp_path / "broken.png"
    broken.write_bytes(png_bytes(227)[:300])
    before = mine.read_bytes()
    assert main(["handwriting", str(mine), "--add", photos[2], str(broken), "--label", "7", *common]) == 2
    assert "broken.png" in capsys.readouterr().err and mine.read_bytes() == before
    assert (
        main(
            [
                "handwriting",
                str(mine),
                "--fine-tune",
                "--epochs",
                "1",
                "--mnist-digits",
                "50",
                "--repeat",
                "2",
                "--out",
                str(tmp_path / "runs"),
                *common,
            ]
        )
        == 0
    )
    tuned = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["fine_tune"]
    assert tuned["status"] == "completed" and tuned["run"].endswith("tiny-untrained-yours")
    assert set(tuned) >= {"MNIST test", "your digits (trained on)"} and tuned["held_out"] == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing.npz"], "is not a file; make a set with --add"),
        (["new.npz", "--add", "x.png"], "--add needs --label"),
        (["new.npz", "--add", "nowhere.png", "--label", "3"], "'nowhere.png' could not be read"),
        (["new.npz", "--add", "nowhere.png", "--label", "12"], "label '12' is outside 0..9"),
        (["bad.npz"], "is not a personal set"),
    ],
)
def test_cli_handwriting_refuses_bad_arguments(tmp_path, monkeypatch, tiny_run, capsys, argv, message):
    from core.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.npz").write_text("not a set")
    assert main(["handwriting", *argv, "--model", str(tiny_run)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "new.npz").exists()  # nothing half-written
