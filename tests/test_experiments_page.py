"""AppTest: the Experiments page runs its three experiments on a digit, the knock-out on the test set as a job."""
from __future__ import annotations

from tests.conftest import finish_job


def _texts(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_the_three_experiments_answer_on_the_blogs_4(runs_dir, app_test):
    at = app_test("pages/experiments.py")
    assert not at.exception, [e.value for e in at.exception]
    text = _texts(at)
    assert "The network reads **4**" in text
    assert "With conv3 maps" in text and "the network reads" in text  # knock-out of the 5 most active maps
    assert "Fooled" in text or "Not fooled" in text  # the attack, towards 9 by default
    assert "It stays a **4** for shift from" in text
    at.selectbox(key="inv_kind").set_value("rotate").run()
    assert "It stays a **4** for rotate from" in _texts(at)
    at.radio(key="fool_pixels").set_value("all").run()
    assert "**Fooled**: it now reads **9**" in _texts(at)  # 2 grey levels on the border suffice for this model


def test_knocking_out_on_the_test_set_runs_as_a_job_and_shows_per_class_bars(runs_dir, app_test):
    at = app_test("pages/experiments.py")
    at.checkbox(key="ko_rank").check().run()
    at.button(key="ko_start").click().run()
    handle = finish_job(at, "knockout_job")
    assert handle.state == "finished", handle.snapshot().message
    assert not at.exception, [e.value for e in at.exception]
    text = _texts(at)
    assert "Test accuracy with {'conv3': [" in text and "(intact 99.03%)" in text
    assert any("The most important map of conv3" in c.value for c in at.caption)


def test_all_maps_off_is_refused_and_the_activations_digit_comes_along(runs_dir, app_test):
    at = app_test("pages/experiments.py")
    at.selectbox(key="ko_layer").set_value("conv1").run()
    at.radio(key="ko_how").set_value("chosen by number").run()
    at.multiselect(key="ko_maps").set_value(list(range(32))).run()
    assert any("Switching off all 32 maps of conv1" in e.value for e in at.error)
    at.switch_page("pages/activations.py").run()
    at.number_input(key="act_index").set_value(5).run()
    at.switch_page("pages/experiments.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="exp_source").value == "The digit from the Activations page"
    assert "The network reads **1**" in _texts(at)  # test digit 5 is a 1, not the 4 of the page's own default
