"""AppTest of augmentation on the Train page: the fields, the samples before training, a run that keeps its
augmentation (and Compare showing it), and the lesson as a job."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.augmentation import AugmentConfig
from tests.conftest import finish_job, job_of, session_of


def _train(app_test) -> AppTest:
    at = app_test("pages/train.py")
    assert not at.exception, at.exception
    return at


@pytest.mark.slow  # trains a run (25–45 s on 2 busy cores)
def test_an_augmented_run_shows_samples_first_and_keeps_its_augmentation(runs_dir, app_test):
    at = _train(app_test)
    assert any("Off: the digits are trained on as they are" in c.value for c in at.caption)
    at.number_input(key="train_aug_shift").set_value(2.0).run()
    at.number_input(key="train_aug_rotate").set_value(10.0).run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [c.value for c in at.caption]
    assert any("**shift=2,rotate=10**: shipped test digits" in c for c in captions), captions
    at.selectbox(key="train_preset").set_value("tiny filters").run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.number_input(key="train_limit").set_value(300).run()
    at.button(key="train_start").click().run()
    assert job_of(at, "train_job").spec.config.config.augment == AugmentConfig(shift=2, rotate=10)
    job = finish_job(at, "train_job")
    assert job.state == "finished", job.message
    meta = json.loads((job.result.run_dir / "run.json").read_text())
    assert meta["config"]["augment"] == "shift=2,rotate=10"
    assert any("augmentation shift=2,rotate=10" in c.value for c in at.caption), [c.value for c in at.caption]
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert sorted(table["augmentation"]) == ["none", "shift=2,rotate=10"], table
    assert any("differ between these runs" in c.value and "augmentation" in c.value for c in at.caption)


def test_an_augmentation_out_of_range_is_said_and_blocks_training(runs_dir, app_test):
    at = _train(app_test)
    at.number_input(key="train_aug_rotate").set_value(120.0).run()
    assert not at.exception
    assert any("Rotation (°): 120.0 is outside 0.0..90.0" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="train_start").disabled


def test_the_lesson_measures_three_models_side_by_side(runs_dir, app_test):
    at = _train(app_test)
    at.number_input(key="train_lesson_limit").set_value(1000).run()
    at.number_input(key="train_lesson_test").set_value(500).run()
    at.number_input(key="train_lesson_sweep").set_value(20).run()
    at.button(key="train_lesson_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    spec = job_of(at, "augment_lesson_job").spec
    assert spec.config.augment.text() == "shift=2,rotate=10,zoom=0.1" and spec.config.train_limit == 1000
    job = finish_job(at, "augment_lesson_job", timeout=300)
    assert job.state == "finished", job.message
    kept = session_of(at).train.lesson.value
    assert [r.name for r in kept.reports] == [
        "blog model (bundled)",
        "trained without augmentation",
        "trained with augmentation",
    ]
    assert kept.reports[0].test_accuracy > 0.97 and len(kept.reports[0].ranges["shift"]) == 20
    assert any("test accuracy trained without augmentation" in m.value for m in at.markdown), [
        m.value for m in at.markdown
    ]
    assert not list(runs_dir.glob("*")) or not any(runs_dir.iterdir())  # the lesson keeps no run
