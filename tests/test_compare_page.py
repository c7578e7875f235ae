"""AppTest: the Compare page lists runs side by side and aligns the maps of two of them as a job."""

from __future__ import annotations

from tests.conftest import finish_job, job_of, session_of, write_tiny_run


def test_with_only_the_bundled_model_the_page_says_how_to_get_a_second_run(runs_dir, app_test):
    at = app_test("pages/compare.py")
    assert not at.exception, [e.value for e in at.exception]
    assert any("Train a second run" in i.value for i in at.info)
    assert len(at.multiselect(key="cmp_runs").value) == 2  # the two bundled models, side by side


def test_two_runs_are_compared_and_their_maps_aligned(runs_dir, app_test):
    a = write_tiny_run(runs_dir / "tiny-a", seed=1)
    b = write_tiny_run(runs_dir / "tiny-b", seed=2)
    at = app_test("pages/compare.py")
    assert not at.exception, [e.value for e in at.exception]
    at.multiselect[0].set_value([str(a), str(b)]).run()
    assert not at.exception, [e.value for e in at.exception]
    # tiny runs keep no history or confusion matrix: the page says so instead of failing
    assert any("confusion matrix is missing" in c.value for c in at.caption)
    assert any("Settings that differ between these runs: none" in c.value for c in at.caption)
    at.select_slider(key="cmp_digits").set_value(1000).run()
    at.button(key="cmp_start").click().run()
    handle = finish_job(at, "compare_job")
    assert handle.state == "finished", handle.snapshot().message
    assert not at.exception, [e.value for e in at.exception]
    sentences = [m.value for m in at.markdown if m.value.startswith("**conv")]
    assert [s.split(":")[0] for s in sentences] == ["**conv1", "**conv2", "**conv3"], sentences
    assert "of tiny-a have a partner in tiny-b" in sentences[0]
    # the matched conv2 pairs' OIPs: both runs' OIPs as two jobs of one group, then side by side
    at.button(key="cmp_oip_conv2").click().run()
    assert not at.exception, [e.value for e in at.exception]  # one panel, under conv2 (conv3 says it waits)
    assert any("The OIPs of conv2 are being computed" in c.value for c in at.caption) or all(
        h.done for h in job_of(at, "compare_oip_job")
    )
    handles = job_of(at, "compare_oip_job")
    assert len(handles) == 2 and all(h.wait(120) for h in handles)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("conv2: the best-matched pairs' OIPs" in c.value for c in at.caption)
    kept = session_of(at).compare.result
    assert kept[2].n_digits == 1000 and kept[2].layers["conv1"].maps == (3, 3)


def test_one_run_or_no_layer_gets_a_message_and_no_job(runs_dir, app_test):
    from core.runs import DEFAULT_MODEL_DIR

    a = write_tiny_run(runs_dir / "tiny-a", seed=1)
    at = app_test("pages/compare.py")
    at.multiselect[0].set_value([str(a)]).run()
    assert any("Pick at least two runs" in w.value for w in at.warning)
    at.multiselect[0].set_value([str(DEFAULT_MODEL_DIR), str(a)]).run()
    at.multiselect(key="cmp_layers").set_value([]).run()
    at.button(key="cmp_start").click().run()
    assert any("Pick at least one layer" in w.value for w in at.warning)
    assert job_of(at, "compare_job") is None
    assert not at.exception, [e.value for e in at.exception]


def test_an_alignment_keeps_the_pair_it_was_computed_for_when_the_selection_changes_meanwhile(runs_dir, app_test):
    """Runs a and b are aligned; before the job's result is collected the page shows b and a (another alignment):
    the result is not shown as theirs."""
    a = write_tiny_run(runs_dir / "tiny-a", seed=1)
    b = write_tiny_run(runs_dir / "tiny-b", seed=2)
    at = app_test("pages/compare.py")
    at.multiselect[0].set_value([str(a), str(b)]).run()
    at.select_slider(key="cmp_digits").set_value(1000).run()
    at.button(key="cmp_start").click().run()
    handle = job_of(at, "compare_job")
    at.multiselect[0].set_value([str(b), str(a)])
    assert handle.wait(120) and handle.state == "finished", handle.snapshot().message
    at.run()  # the panel collects the result in this run, with b and a selected
    assert not at.exception, [e.value for e in at.exception]
    kept = session_of(at).compare.result
    assert kept is not None and [str(p) for p in kept[:2]] == [str(a), str(b)]
    assert any("belongs to other runs" in c.value for c in at.caption), [c.value for c in at.caption]
    assert not any(m.value.startswith("**conv1") for m in at.markdown)
