"""AppTest: the router, every page renders, and the Train page trains and keeps a run."""

from __future__ import annotations

import json
import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import APP_PATH, finish_job, job_of

PAGES = [
    "pages/home.py",
    "pages/train.py",
    "pages/activations.py",
    "pages/oip.py",
    "pages/precursor.py",
    "pages/clustering.py",
    "pages/deep_dream.py",
    "pages/compare.py",
    "pages/experiments.py",
    "pages/transfer.py",
]


@pytest.fixture()
def _app(app_test):
    def make() -> AppTest:
        at = app_test("pages/train.py")
        assert not at.exception, at.exception
        return at

    return make


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_error(runs_dir, _app, page):
    at = _app()
    if page != PAGES[0]:  # AppTest loses app.py's sidebar when switching *to* the default page
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} shows no title"
    # (AppTest drops the sidebar when switching back to the default page, so read the state)
    assert at.session_state["active_model"].endswith("default_model")
    if page != PAGES[0]:  # the sidebar names the device this server computes on (issue 26)
        assert any(c.value == "This server computes on: CPU" for c in at.sidebar.caption), at.sidebar.caption


def test_train_page_shows_the_layer_table_with_receptive_fields(runs_dir, _app):
    at = _app()
    table = at.dataframe[0].value
    assert list(table["layer"]) == ["conv1", "pool1", "conv2", "pool2", "conv3", "flatten", "dense1", "out"]
    assert table["parameters"].sum() == 96_844
    assert list(table["receptive field"][:5]) == ["3×3", "4×4", "8×8", "10×10", "18×18"]


def test_editor_rejects_an_architecture_that_shrinks_maps_below_1x1(runs_dir, _app):
    at = _app()
    at.toggle(key="train_edit").set_value(True).run()
    at.number_input(key="train_ed_n_conv").set_value(5).run()
    assert any("conv4" in e.value and "1×1" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="train_start").disabled
    at.text_input(key="train_ed_dense").set_value("70, x").run()
    assert any("whole numbers" in e.value for e in at.error)


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("train_epochs", 100000, "Epochs: 100,000 is outside 1..200"),
        ("train_batch", 1_000_000_000, "Batch size: 1,000,000,000 is outside 1..8,192"),
        ("train_limit", 50, "Training digits: 50 is outside 100..60,000"),
    ],
)
def test_out_of_range_training_numbers_are_said_in_words_and_block_training(runs_dir, _app, key, value, words):
    """Issue 25, defect 6."""
    at = _app()
    at.number_input(key=key).set_value(value).run()
    assert not at.exception
    assert at.number_input(key=key).value == value
    assert any(words in e.value and "Nothing runs" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="train_start").disabled


def test_preset_change_resets_the_editor(runs_dir, _app):
    at = _app()
    at.toggle(key="train_edit").set_value(True).run()
    at.selectbox(key="train_preset").set_value("tiny filters").run()
    assert at.number_input(key="train_ed_f1").value == 3
    assert at.dataframe[0].value["parameters"].sum() == 9_198


def test_training_from_the_page_saves_a_run_and_activates_it(runs_dir, _app):
    at = _app()
    at.selectbox(key="train_preset").set_value("tiny filters").run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.number_input(key="train_limit").set_value(500).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert at.button(key="train_start").disabled and at.button(key="train_start").label == "Training…"
    job = finish_job(at, "train_job")
    assert job.state == "finished", job.message
    assert not at.button(key="train_start").disabled  # the page shows the end without a click
    assert any("Run saved" in s.value and "active model" in s.value for s in at.success), [s.value for s in at.success]
    saved = list(runs_dir.iterdir())
    assert len(saved) == 1 and (saved[0] / "model.keras").is_file()
    # one pattern for every run's default name: <preset>-<date>-<time>-seed<seed> (issue 25, defect 8)
    assert re.fullmatch(r"tiny-filters-\d{8}-\d{6}-seed\d+", saved[0].name), saved[0].name
    assert at.session_state["active_model"] == str(saved[0])
    assert at.sidebar.selectbox(key="active_model").value == str(saved[0])
    assert any(m.label == "test accuracy" for m in at.metric)


def test_several_seeds_train_as_separate_jobs_and_go_to_the_compare_page(runs_dir, _app):
    at = _app()
    at.selectbox(key="train_preset").set_value("tiny filters").run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.number_input(key="train_limit").set_value(500).run()
    at.number_input(key="train_seed").set_value(7).run()
    at.number_input(key="train_n_runs").set_value(2).run()
    at.button(key="train_start_group").click().run()
    assert not at.exception, [e.value for e in at.exception]
    handles = job_of(at, "train_group_job")
    assert [h.spec.config.config.seed for h in handles] == [7, 8]
    assert all(h.wait(180) for h in handles)
    at.run()
    assert [h.state for h in handles] == ["finished", "finished"], [h.message for h in handles]
    assert any("2 runs saved" in s.value for s in at.success), [s.value for s in at.success]
    names = sorted(p.name for p in runs_dir.iterdir())
    assert len(names) == 2 and names[0].endswith("-seed7") and names[1].endswith("-seed8")
    assert re.fullmatch(r"tiny-filters-\d{8}-\d{6}-seed7", names[0]), names
    # a training after the seeds: only its own message, not the seeds' one beside it (issue 25, defect 8)
    at.number_input(key="train_n_runs").set_value(1).run()
    at.button(key="train_start").click().run()
    assert finish_job(at, "train_job").state == "finished"
    assert [s.value for s in at.success if "saved" in s.value][0].startswith("Run saved"), [s.value for s in at.success]
    assert len([s for s in at.success if "saved" in s.value]) == 1, [s.value for s in at.success]
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert sorted(at.multiselect(key="cmp_runs").value) == sorted(str(runs_dir / n) for n in names)


def test_stop_button_ends_training_early_and_keeps_a_complete_run(runs_dir, _app):
    at = _app()
    at.selectbox(key="train_preset").set_value("tiny filters").run()
    at.number_input(key="train_epochs").set_value(50).run()
    at.number_input(key="train_limit").set_value(20000).run()
    at.button(key="train_start").click().run()
    job = job_of(at, "train_job")
    deadline = time.monotonic() + 60
    while job.snapshot().done < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    at.button(key="train_stop").click().run()
    assert job.wait(120)
    assert job.state == "stopped", job.message
    run_dir = job.result.run_dir
    assert job.result.status == "stopped" and run_dir is not None
    assert (run_dir / "model.keras").is_file() and not any(p.name.startswith(".tmp") for p in runs_dir.iterdir())


def test_the_start_page_says_what_this_is_and_shows_the_network(runs_dir, app_test):
    """Issue 25, defect 11: a first visit lands on a page that says what the app is, draws the network with its
    layers and shapes, and links every step of the blog's path."""
    at = app_test()
    assert not at.exception
    assert at.title[0].value == "MNIST CNN Explorer"
    assert any("Look inside a small convolutional network" in m.value for m in at.markdown)
    assert any("the bundled article II model" in h.value for h in at.subheader)
    assert any("99.03% of MNIST's 10,000 test digits" in c.value for c in at.caption)
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "96,844 parameters" in figure["layout"]["title"]["text"]
    assert {"26×26×32", "13×13×32", "3×3×64", "70", "10"} <= set(figure["data"][0]["text"])


def test_model_query_parameter_selects_a_run_or_warns(runs_dir, tiny_bundle, _app):
    import shutil

    runs_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tiny_bundle.path, runs_dir / "tiny")
    at = AppTest.from_file(APP_PATH, default_timeout=180)
    at.query_params["model"] = "tiny"
    at.run()
    assert at.session_state["active_model"] == str(runs_dir / "tiny")
    at = AppTest.from_file(APP_PATH, default_timeout=180)
    at.query_params["model"] = "../../etc"
    at.run()
    assert not at.exception
    assert at.session_state["active_model"].endswith("default_model")
    assert any("No model named" in w.value for w in at.warning)
