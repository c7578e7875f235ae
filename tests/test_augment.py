"""Augmentation (core.augmentation): the settings and their text, the random changes within their ranges, the same
seed giving the same batch, the same labels through the training pipeline, and what a run keeps of it. Tiny data,
made in the test (fast tier)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from core.augmentation import OFF, AugmentConfig, augment_batch, parse_augment
from core.augmentation.augment import apply_changes, augment_from_dict, augment_label, augment_of, draw_changes
from core.data import Mnist, PixelScaler
from core.experiments.invariance import transform
from core.spec import ArchitectureSpec, ConvSpec
from core.training import TrainConfig, augmented_batches, config_to_dict, shuffled_batches, train

ALL = "shift=2,rotate=10,zoom=0.1,thickness=1,elastic=2"


def digits(n: int = 32, seed: int = 0) -> np.ndarray:
    """``(n, 28, 28)`` uint8 'digits': a bright bar somewhere in the middle."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        r, c = rng.integers(8, 16, 2)
        x[i, r : r + 6, c : c + 3] = 255
        x[i, r + 5, c : c + 8] = 200
    return x


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", OFF),
        ("none", OFF),
        ("shift=2", AugmentConfig(shift=2)),
        (" rotate = 10 , zoom=0.1", AugmentConfig(rotate=10, zoom=0.1)),
        (ALL, AugmentConfig(2, 10, 0.1, 1, 2)),
        ("elastic=1.5,sigma=7", AugmentConfig(elastic=1.5, sigma=7)),
    ],
)
def test_parse_reads_the_text_and_the_text_reads_back(text, expected):
    config = parse_augment(text)
    assert config == expected
    assert parse_augment(config.text()) == config


@pytest.mark.parametrize(
    "text, words",
    [
        ("shift=9", "shift=9.0 is outside 0..8"),
        ("rotate=-5", "rotate=-5.0 is outside 0..90"),
        ("thickness=1.5", "thickness=1.5 must be a whole number"),
        ("zoom=abc", "zoom='abc' is not a number"),
        ("flip=1", "'flip=1' is not key=value with a key among: shift (0..8)"),
        ("shift", "'shift' is not key=value"),
        ("shift=1,shift=2", "'shift' is given twice"),
        ("elastic=2,sigma=1", "sigma=1.0 is outside 2..14"),
    ],
)
def test_parse_names_the_bad_part_and_what_is_allowed(text, words):
    with pytest.raises(ValueError, match=None) as caught:
        parse_augment(text)
    assert words in str(caught.value)


def test_off_is_the_default_and_leaves_digits_alone():
    assert TrainConfig().augment == OFF and not OFF.enabled and OFF.text() == "none"
    x = digits(8)
    np.testing.assert_array_equal(augment_batch(x, OFF, 3).numpy(), x.astype(np.float32))


def test_the_same_seed_gives_the_same_batch_and_another_seed_another():
    x, config = digits(16), parse_augment(ALL)
    first = augment_batch(x, config, 7).numpy()
    np.testing.assert_array_equal(first, augment_batch(x, config, 7).numpy())
    assert np.abs(first - augment_batch(x, config, 8).numpy()).max() > 50
    assert first.shape == (16, 28, 28) and first.min() >= 0 and first.max() <= 255


def test_every_change_is_drawn_within_its_range():
    config = AugmentConfig(shift=2, rotate=10, zoom=0.1, thickness=1, elastic=1.5)
    drawn = {k: v.numpy() for k, v in draw_changes(config, 5, 512).items() if hasattr(v, "numpy")}
    assert np.abs(drawn["dx"]).max() <= 2 and np.abs(drawn["dy"]).max() <= 2 and np.abs(drawn["dx"]).max() > 1.5
    assert np.abs(drawn["angle"]).max() <= 10 and np.abs(drawn["angle"]).max() > 8
    assert 0.9 <= drawn["scale"].min() and drawn["scale"].max() <= 1.1
    assert set(np.unique(drawn["thickness"])) == {-1, 0, 1}
    assert np.abs(drawn["field"]).max() <= 1.5 and np.abs(drawn["field"]).max() > 1
    only_shift = draw_changes(AugmentConfig(shift=3), 5, 64)
    assert not np.any(only_shift["angle"].numpy()) and np.all(only_shift["scale"].numpy() == 1)


def test_a_shifted_digit_moves_by_at_most_the_range():
    x = digits(64)
    out = augment_batch(x, AugmentConfig(shift=2), 11).numpy()
    rows = np.arange(28)

    def centre(images):
        mass = images.sum(axis=(1, 2))
        return (images.sum(axis=2) @ rows) / mass, (images.sum(axis=1) @ rows) / mass

    moved = np.stack(centre(out.astype(np.float64))) - np.stack(centre(x.astype(np.float64)))
    assert np.abs(moved).max() <= 2.01 and np.abs(moved).max() > 1


@pytest.mark.parametrize(
    "change, kind, value",
    [
        ({"dx": 2.0}, "shift", 2),
        ({"dx": -3.0}, "shift", -3),
        ({"angle": 20.0}, "rotate", 20),
        ({"scale": 1.2}, "scale", 1.2),
        ({"thickness": 1}, "thickness", 1),
        ({"thickness": -1}, "thickness", -1),
    ],
)
def test_each_change_is_the_experiments_pages_transform(change, kind, value):
    """Augmentation and the invariance sweeps mean the same by a shift, a rotation, a zoom and a thickness."""
    x = digits(4).astype(np.float32)
    changes = {
        "dx": tf.zeros(4),
        "dy": tf.zeros(4),
        "angle": tf.zeros(4),
        "scale": tf.ones(4),
        "thickness": tf.zeros(4, tf.int32),
        "field": None,
        "most_thickness": 1,
    }
    for key, v in change.items():
        changes[key] = tf.fill([4], v)
    expected = np.stack([transform(d, kind, value) for d in x])
    np.testing.assert_allclose(apply_changes(tf.constant(x), changes).numpy(), expected, atol=0.01)


def test_augmented_batches_keep_the_labels_and_the_order():
    x, y = digits(40), np.arange(40) % 10
    scaler = PixelScaler.fit(x)
    plain = list(shuffled_batches(scaler.transform(x), y, 16, 2, seed=3))
    changed = list(augmented_batches(x, y, scaler, parse_augment(ALL), 16, 2, seed=3))
    again = list(augmented_batches(x, y, scaler, parse_augment(ALL), 16, 2, seed=3))
    assert [len(b[1]) for b in changed] == [16, 16, 8, 16, 16, 8]
    for (xp, yp), (xa, ya), (xb, _) in zip(plain, changed, again):
        np.testing.assert_array_equal(yp.numpy(), ya.numpy())
        assert xa.shape == xp.shape and np.abs(xa.numpy() - xp.numpy()).max() > 1
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
    assert np.abs(changed[0][0].numpy() - changed[3][0].numpy()).max() > 0  # every batch draws anew


def test_a_run_keeps_its_augmentation_and_old_runs_read_as_off():
    x, y = digits(64), np.arange(64) % 10
    mnist = Mnist(x, y, x[:16], y[:16], "test")
    spec = ArchitectureSpec((ConvSpec(2), ConvSpec(3)), dense=(6,))
    config = TrainConfig(epochs=1, batch_size=32, augment=AugmentConfig(shift=2, thickness=1))
    result = train(spec, config, mnist)
    assert result.status == "completed" and len(result.epoch_seconds) == 1
    saved = config_to_dict(result.config)
    assert saved["augment"] == "shift=2,thickness=1"
    assert augment_of({"config": saved}) == config.augment
    assert augment_of({"config": {"epochs": 5}}) == OFF and augment_of({}) == OFF
    assert augment_from_dict({"shift": 1.0, "unknown": 3}) == AugmentConfig(shift=1)
    assert augment_label({"config": {"augment": "tilt=3"}}).startswith("unreadable (augmentation 'tilt=3'")


def test_training_refuses_an_augmentation_out_of_range():
    with pytest.raises(ValueError, match="rotate=120 is outside 0..90"):
        TrainConfig(augment=AugmentConfig(rotate=120)).validate()


def test_the_train_command_takes_augment_and_ends_with_json(tmp_path, tiny_mnist, capsys):
    from core.cli import main

    args = ["train", "--preset", "tiny filters", "--epochs", "1", "--mnist", str(tiny_mnist), "--out", str(tmp_path)]
    assert main([*args, "--augment", "shift=2,rotate=10"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["augment"] == "shift=2,rotate=10" and result["epochs_done"] == 1
    saved = json.loads((Path(result["run"]) / "run.json").read_text())
    assert saved["config"]["augment"] == "shift=2,rotate=10"
    assert main([*args, "--augment", "tilt=3"]) == 2
    assert "augmentation 'tilt=3' is not key=value with a key among: shift (0..8)" in capsys.readouterr().err


def test_the_moved_test_sets_move_every_digit_as_far_as_they_say():
    from core.experiments.robustness import rotated, shifted

    x = digits(50)
    moved = shifted(x, 3, np.random.default_rng(0))
    rows = np.arange(28)
    for before, after in zip(x.astype(float), moved.astype(float)):
        shift = [(after.sum(axis=a) @ rows) / after.sum() - (before.sum(axis=a) @ rows) / before.sum() for a in (1, 0)]
        assert sorted(np.round(np.abs(shift), 6)) == [0, 3]
    turned = rotated(x, 25, np.random.default_rng(0))
    assert turned.shape == x.shape and all(
        np.allclose(t, transform(d, "rotate", 25), atol=0.01) or np.allclose(t, transform(d, "rotate", -25), atol=0.01)
        for d, t in zip(x, turned)
    )


@pytest.mark.slow  # two trainings and three models measured: 10–30 s on 2 busy cores
def test_the_lesson_measures_three_models_on_the_same_digits(tmp_path, tiny_mnist):
    from core.augmentation.lesson import BLOG, WITH, WITHOUT, LessonConfig, run_lesson
    from core.data import read_mnist_npz
    from core.experiments.robustness import RobustnessConfig
    from core.jobs.system import ProgressRecord
    from core.runs import load_run
    from tests.conftest import write_tiny_run

    mnist = read_mnist_npz(tiny_mnist).subset(128, 40)
    baseline = load_run(write_tiny_run(tmp_path / "baseline"))
    config = LessonConfig(robustness=RobustnessConfig(test_digits=40, invariance_digits=5), preset="tiny filters")
    record = ProgressRecord()
    hand = (mnist.x_test[:6], mnist.y_test[:6])
    result = run_lesson(mnist, baseline, config, hand, record)
    assert [r.name for r in result.reports] == [BLOG, WITHOUT, WITH] and not result.stopped
    assert record.done == record.total == 2 * 2 + 3 * config.robustness.units
    assert (
        result.trainings[WITH]["augment"] == "shift=2,rotate=10,zoom=0.1"
        and result.trainings[WITHOUT]["augment"] == "none"
    )
    for report in result.reports:
        assert set(report.moved) == {"shifted ±2 px", "shifted ±3 px", "rotated ±15°", "rotated ±25°"}
        assert report.ranges["shift"].shape == (5, 2) and report.curves["rotate"].shape == (25,)
        assert report.handwriting_digits == 6 and 0 <= report.handwriting <= 1
    with pytest.raises(ValueError, match="turn at least one range on"):
        LessonConfig(augment=OFF).validate()


def test_the_lesson_is_a_job_kind_checked_before_it_is_queued():
    from core.augmentation.lesson import LessonConfig
    from core.jobs.kinds import check_spec, kind
    from core.jobs.system import JobSpec

    check_spec(JobSpec("augment-lesson", LessonConfig()))
    assert kind("augment-lesson").models(JobSpec("augment-lesson", LessonConfig())) == [None]  # the blog model
    with pytest.raises(ValueError, match="epochs=0 is outside 1..20"):
        check_spec(JobSpec("augment-lesson", LessonConfig(epochs=0)))
    with pytest.raises(ValueError, match="turn at least one range on"):
        check_spec(JobSpec("augment-lesson", LessonConfig(augment=OFF)))


def test_the_lesson_figures_show_three_models_side_by_side():
    from core.experiments.robustness import Robustness
    from core.figures.augmentation import lesson_accuracies, lesson_invariance, lesson_ranges

    values = {"shift": np.arange(-2.0, 3.0), "rotate": np.arange(-10.0, 11.0, 5.0)}
    reports = [
        Robustness(
            name,
            0.9,
            {"shifted ±2 px": 0.8, "rotated ±15°": 0.7},
            values,
            {k: np.linspace(0, 1, len(v)) for k, v in values.items()},
            {k: np.array([[-1.0, 1.0], [np.nan, np.nan], [-2.0, 0.0]]) for k in values},
            handwriting=0.5 if name != "c" else None,
            handwriting_digits=4,
        )
        for name in "abc"
    ]
    bars = lesson_accuracies(reports)
    assert [t.name for t in bars.data] == ["a", "b", "c"] and list(bars.data[0].x)[-1] == "your handwriting (4)"
    assert len(lesson_invariance(reports).data) == len(lesson_ranges(reports).data) == 3 * 2
    assert reports[0].median_range("shift") == (-1.5, 0.5)  # the digit wrong untouched does not count
