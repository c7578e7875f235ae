"""Precursor search (core.oip.precursor), its CLI command and the page (AppTest).

Grids stay tiny here (2×2 squares, 2–3 values: 16–81 patterns) and epochs few; the bundled
article-II model's conv3 gives the maps (map 5 has no OIP from the default random start).
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from core.ascent import engine as ascent
from core.ascent import starts as start_images
from core.oip import precursor as pc
from tests.conftest import finish_job, session_of

FAILING_MAP = 5  # no OIP for the bundled model with the default OIP settings (seed 0)


@pytest.fixture(scope="module")
def conv3(default_bundle):
    return ascent.AscentEngine(default_bundle.model, "conv3")


def small(**kw) -> pc.PrecursorConfig:
    base = dict(maps=(FAILING_MAP,), grid=2, values=(0.2, 0.5, 0.8), test_epochs=3, keep=4, epochs=6, mode="faithful")
    return pc.PrecursorConfig(**{**base, **kw})


# --------------------------------------------------------------------------- patterns
@pytest.mark.parametrize("grid, n", [(2, 2), (2, 3), (3, 2), (2, 5)])
def test_pattern_count_uniqueness_and_order(grid, n):
    count = pc.pattern_count(grid, n)
    assert count == n ** (grid * grid)
    codes = pc.pattern_codes(0, count, grid, n)
    assert codes.shape == (count, grid * grid) and codes.min() == 0 and codes.max() == n - 1
    assert len({row.tobytes() for row in codes}) == count  # every combination exactly once
    assert not codes[0].any() and np.all(codes[-1] == n - 1)
    weights = n ** np.arange(grid * grid - 1, -1, -1)
    np.testing.assert_array_equal(codes @ weights, np.arange(count))  # index = base-n number of the codes
    np.testing.assert_array_equal(pc.pattern_codes(5, 9, grid, n), codes[5:9])
    np.testing.assert_array_equal(pc.codes_of([7, 3], grid, n), codes[[7, 3]])


def test_the_blogs_grid_has_19683_patterns_and_chunks_cover_them_once():
    assert pc.PrecursorConfig(maps=(0,)).n_patterns == 19_683
    firsts, total = [], 0
    for first, images in pc.iter_pattern_chunks(2, (0.2, 0.5, 0.8), chunk=10):
        assert images.shape[1:] == (28, 28)
        firsts.append(first)
        total += len(images)
    assert total == 81 and firsts == list(range(0, 81, 10))


def test_bicubic_upscale_and_standardization_of_patterns():
    values = (0.2, 0.8)
    codes = pc.pattern_codes(0, 16, 2, 2)
    images = pc.patterns_to_images(codes, values, 2)
    grids = np.asarray(values, np.float32)[codes].reshape(-1, 2, 2)
    direct = start_images.standardize_pattern(start_images.upscale_bicubic(grids))
    np.testing.assert_allclose(images, direct, atol=1e-5)  # the basis decomposition is exact
    assert np.all(images[0] == 0) and np.all(images[15] == 0)  # constant patterns: nothing to standardize
    mixed = images[1:15]
    np.testing.assert_allclose(mixed.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(mixed.std(axis=(1, 2)), 1, atol=1e-4)
    # pattern 6 = codes (0, 1, 1, 0): dark top-left and bottom-right, bright elsewhere; smooth in between
    img = images[6]
    assert img[3, 3] < 0 < img[3, 24] and img[24, 3] > 0 > img[24, 24]
    assert np.abs(np.diff(img, axis=1)).max() < 0.6  # bicubic: no hard edges between the squares
    np.testing.assert_allclose(pc.pattern_grids([6], 2, values)[0], [[0.2, 0.8], [0.8, 0.2]])


# --------------------------------------------------------------------------- ranking
def test_topk_streaming_equals_one_global_sort_with_ties_to_the_lower_index():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(3, 50)).astype(float)  # many ties
    expected = [np.lexsort((np.arange(50), -row))[:7] for row in scores]
    for chunk in (1, 7, 50):
        top = pc.TopK(3, 7)
        for a in range(0, 50, chunk):
            top.update(np.arange(a, min(50, a + chunk)), scores[:, a : a + chunk])
        for r in range(3):
            np.testing.assert_array_equal(top.indices[r], expected[r])
            np.testing.assert_array_equal(top.scores[r], scores[r, expected[r]])


def test_ranking_finds_a_planted_best_pattern(conv3):
    """Weak random images plus, at index 37, an image already optimised for the map: it must come first."""
    rng = np.random.default_rng(1)
    weak = start_images.standardize_pattern(rng.normal(size=(60, 28, 28)) * 0.1)
    planted_start = start_images.random_starts([0], 1, seed=0)[0, 0]
    planted = conv3.ascend(planted_start[None], [0], 30, 0.05).images[0, ..., 0]
    images = weak.copy()
    images[37] = planted
    chunks = [(a, images[a : a + 16]) for a in range(0, 60, 16)]
    screen = pc.screen_faithful(conv3, 0, small(maps=(0,), keep=3), patterns=iter(chunks), batch=16)
    assert screen.indices[0] == 37
    assert screen.scores[0] > screen.scores[1] + 1


def test_chunking_and_skipping_dead_patterns_do_not_change_the_faithful_ranking(conv3):
    cfg = small(keep=6)
    one = pc.screen_faithful(conv3, FAILING_MAP, cfg, batch=81)
    chunked = pc.screen_faithful(conv3, FAILING_MAP, cfg, batch=7)
    every = pc.screen_faithful(conv3, FAILING_MAP, cfg.with_(skip_dead=False), batch=81)
    np.testing.assert_array_equal(chunked.indices, one.indices)
    np.testing.assert_allclose(chunked.scores, one.scores, rtol=1e-5)
    np.testing.assert_array_equal(every.indices, one.indices)
    np.testing.assert_allclose(every.scores, one.scores, rtol=1e-5)
    assert every.ascended == 81 and one.ascended <= 81
    # the faithful screen's scores are the losses after the test epochs, from the ascent itself
    images = pc.patterns_to_images(pc.codes_of(one.indices, 2, 3), cfg.values, 2)
    direct = conv3.ascend(images, [FAILING_MAP] * len(images), cfg.test_epochs, cfg.step).final_loss
    np.testing.assert_allclose(one.scores, direct, rtol=1e-5, atol=1e-6)


def test_fast_screen_ranks_all_maps_from_one_forward_pass(conv3):
    maps = (FAILING_MAP, 7, 16)
    forward_only = pc.screen_fast(conv3, maps, small(maps=maps, mode="fast", refine=0, keep=5))
    images = np.concatenate([im for _, im in pc.iter_pattern_chunks(2, (0.2, 0.5, 0.8), 81)])
    scores = conv3.screen_scores(images)
    for s in forward_only:
        expected = np.lexsort((np.arange(81), -scores[:, s.map_index]))[:5]
        np.testing.assert_array_equal(s.indices, expected)
    refined = pc.screen_fast(conv3, maps, small(maps=maps, mode="fast", refine=20, keep=5))
    for s, f in zip(refined, forward_only):
        assert s.map_index == f.map_index and len(s.indices) == 5
        assert np.all(np.diff(s.scores) <= 1e-6)  # sorted by the loss after the test epochs


def test_topk_overlap_by_hand():
    assert pc.topk_overlap([1, 2, 3], [3, 4, 1]) == 2
    assert pc.topk_overlap([], [1]) == 0
    assert pc.topk_overlap(np.array([5, 6]), np.array([5, 6])) == 2


def test_fast_run_reports_the_overlap_with_faithful_screens_correctly(conv3):
    cfg = small(maps=(FAILING_MAP, 7), mode="fast", refine=10, compare_maps=2)
    result = pc.run_precursor(conv3, cfg)
    assert set(result.overlap) == {FAILING_MAP, 7}
    for m, (common, k) in result.overlap.items():
        faithful = pc.screen_faithful(conv3, m, cfg)
        assert k == cfg.keep
        assert common == pc.topk_overlap(faithful.indices, result.outcome(m).candidates)


# --------------------------------------------------------------------------- whole runs
def test_faithful_run_rescues_a_failing_map_and_reports_everything(conv3):
    cfg = small(epochs=20)
    result = pc.run_precursor(conv3, cfg)
    (o,) = result.outcomes
    assert o.map_index == FAILING_MAP and o.oips.shape == (4, 28, 28) and o.grids.shape == (4, 2, 2)
    assert o.rescued and result.rescued_maps == [FAILING_MAP]  # coarse patterns wake the map up
    assert o.best_loss == o.final_losses.max() > o.test_losses.max()  # the full optimisation goes further
    np.testing.assert_allclose(conv3.loss(o.oips, [FAILING_MAP] * 4), o.final_losses, rtol=1e-5)
    summary = result.summary()
    assert summary["rescued"] == 1 and summary["patterns"] == 81
    assert summary["maps"][str(FAILING_MAP)]["candidates"] == [int(c) for c in o.candidates]
    with np.load(io.BytesIO(result.to_npz_bytes())) as npz:
        assert npz["oips"].shape == (1, 4, 28, 28) and bool(npz["rescued"][0])


def test_stop_request_keeps_the_maps_finished_so_far(conv3):
    from core.progress import ProgressCallback

    class StopAfterFirstMap(ProgressCallback):
        full_done = False

        def on_step(self, done, info=None):
            if info and info.get("phase") == "full optimisation":
                self.full_done = True

        def should_stop(self):
            return self.full_done

    result = pc.run_precursor(conv3, small(maps=(FAILING_MAP, 7, 16), epochs=4), progress=StopAfterFirstMap())
    assert result.stopped and result.maps == [FAILING_MAP]


def test_estimates_work_and_refusals():
    assert pc.PrecursorConfig().mode == pc.DEFAULT_MODE == "fast"  # a first run is minutes, not a quarter hour
    cfg = pc.PrecursorConfig(maps=(1, 2), mode="faithful")
    assert pc.work_units(cfg, 2) == 2 * 19_683 * 10 + 2 * 8 * ascent.capped_epochs(1200)
    faithful = pc.estimate_seconds(cfg, 2, throughput=5000, forward_throughput=20000)
    fast = pc.estimate_seconds(cfg.with_(mode="fast"), 2, throughput=5000, forward_throughput=20000)
    assert fast < faithful
    assert pc.estimate_seconds(cfg, 4, 5000, 20000) > faithful
    # on a cluster the screens split over the workers; the full optimisation stays in the job
    full = 2 * 8 * ascent.capped_epochs(1200) / 5000
    assert pc.estimate_seconds(cfg, 2, 5000, 20000, workers=4) == pytest.approx((faithful - full) / 4 + full)
    assert pc.estimate_seconds(cfg.with_(mode="fast"), 2, 5000, 20000, workers=4) < fast
    big = pc.PrecursorConfig(maps=(1,), values=(0.1, 0.3, 0.5, 0.7, 0.9))
    assert big.n_patterns == 1_953_125
    with pytest.raises(ValueError, match="1,953,125 patterns; this CPU allows at most 300,000"):
        pc.check_feasible(big, "CPU")
    pc.check_feasible(big, "GPU (/device:GPU:0)")
    pc.check_feasible(big, "CPU", workers=8)  # on a cluster the limit scales with its workers
    with pytest.raises(ValueError, match="across 4 workers allows at most 1,200,000"):
        pc.check_feasible(big, "CPU", workers=4)
    pc.check_feasible(cfg, "CPU")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mode="slow"), "mode 'slow'"),
        (dict(grid=6), "grid=6"),
        (dict(grid=1), "grid=1"),
        (dict(values=(0.5,)), "1 grey values"),
        (dict(values=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6)), "6 grey values"),
        (dict(values=(0.2, 1.5)), r"must lie in \[0, 1\]"),
        (dict(values=(0.2, 0.2)), "duplicates"),
        (dict(test_epochs=-1), "test_epochs=-1"),
        (dict(keep=0), "keep=0"),
        (dict(epochs=-5), "epochs=-5"),
        (dict(mode="fast", refine=3, keep=8), "refine=3 must be ≥ keep=8"),
        (dict(maps=()), "no target maps"),
        (dict(maps=(3, 3)), "duplicates"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pc.PrecursorConfig(**{"maps": (1,), **kwargs}).validate()


def test_run_rejects_maps_layers_and_patterns_out_of_range(default_bundle, conv3):
    with pytest.raises(ValueError, match=r"maps \[64\] do not exist"):
        pc.run_precursor(conv3, small(maps=(64,)))
    with pytest.raises(ValueError, match="no spatial maps"):
        pc.run_precursor(ascent.AscentEngine(default_bundle.model, "dense1"), small(layer="dense1", maps=(0,)))
    with pytest.raises(ValueError, match="outside 0..81"):
        pc.pattern_codes(80, 82, 2, 3)
    with pytest.raises(ValueError, match="must be numbers"):
        pc.parse_values("0.2,x")


# --------------------------------------------------------------------------- CLI
def test_cli_precursor_prints_json_and_writes_npz(tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "pre.npz"
    assert (
        main(
            [
                "precursor",
                "--layer",
                "conv3",
                "--maps",
                f"{FAILING_MAP},7",
                "--grid",
                "2",
                "--values",
                "0.2,0.8",
                "--test-epochs",
                "2",
                "--keep",
                "2",
                "--epochs",
                "5",
                "--mode",
                "fast",
                "--refine",
                "4",
                "--compare",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n_maps"] == 2 and result["patterns"] == 16 and result["mode"] == "fast"
    assert set(result["maps"]) == {str(FAILING_MAP), "7"}
    assert result["rescued"] == sum(m["rescued"] for m in result["maps"].values())
    assert len(result["overlap"]) == 1 and result["seconds"] > 0
    with np.load(out) as npz:
        assert npz["oips"].shape == (2, 2, 28, 28)


def test_cli_precursor_failed_maps_come_from_a_plain_oip_run(capsys, monkeypatch):
    from core.cli import main

    monkeypatch.setenv(ascent.EPOCHS_ENV_VAR, "3")
    assert (
        main(
            [
                "precursor",
                "--maps",
                "failed",
                "--grid",
                "2",
                "--values",
                "0.2,0.8",
                "--test-epochs",
                "1",
                "--keep",
                "1",
                "--epochs",
                "2",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert FAILING_MAP in [int(m) for m in result["maps"]]
    assert result["n_maps"] >= 10  # many conv3 maps fail from the fine-noise start


@pytest.mark.parametrize(
    "args, message",
    [
        (["--grid", "7"], "grid=7"),
        (["--values", "0.1,0.3,0.5,0.7,0.9", "--maps", "1"], "allows at most"),
        (["--maps", "99"], "do not exist"),
        (["--values", "a,b"], "must be numbers"),
    ],
)
def test_cli_precursor_bad_arguments_exit_2(capsys, args, message):
    from core.cli import main

    assert main(["precursor", *args]) == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- page
@pytest.mark.integration
def test_page_runs_a_tiny_search_and_feeds_the_oip_gallery(runs_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(ascent.EPOCHS_ENV_VAR, "10")
    at = AppTest.from_file(os.path.join(os.path.dirname(__file__), "..", "app.py"), default_timeout=120).run()
    at.switch_page("pages/precursor.py").run()
    assert not at.exception
    assert any("run one first" in i.value for i in at.info) and not at.error
    at.button(key="precursor_plain").click().run()
    finish_job(at, "oip_job")
    assert not at.exception and not at.error
    assert any("maps without an OIP" in c.value for c in at.caption)
    at.selectbox(key="precursor_grid").set_value(2).run()
    at.text_input(key="precursor_values").set_value("0.2,0.8").run()
    at.number_input(key="precursor_epochs").set_value(20).run()
    assert any("16 patterns" in i.value for i in at.info)
    assert at.radio(key="precursor_mode").value == "fast"
    at.button(key="precursor_run").click().run()
    finish_job(at, "precursor_job")
    assert not at.exception and not at.error
    rescued = {m.label: m.value for m in at.metric}["maps rescued"]
    n_rescued = int(rescued.split(" of ")[0])
    assert n_rescued >= 1
    from pages.ui.resources import job_system as shared_jobs

    store = session_of(at).oip
    assert sum(len(v) for v in store.rescued.values()) == n_rescued
    at.switch_page("pages/oip.py").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["rescued by the precursor"] == str(n_rescued)
    # too many patterns: refused with the reason, before anything runs
    at.switch_page("pages/precursor.py").run()
    at.text_input(key="precursor_values").set_value("0.1,0.3,0.5,0.7,0.9").run()
    at.selectbox(key="precursor_grid").set_value(3).run()
    assert any("1,953,125 patterns" in e.value for e in at.error)
    assert at.button(key="precursor_run").disabled
    # served from a Ray cluster with 8 CPU workers, the same run is allowed (the limit scales with the workers)
    backend = type(shared_jobs().backend)
    monkeypatch.setattr(backend, "workers", property(lambda self: 8))
    at.run()
    assert not at.error and any("1,953,125 patterns" in i.value for i in at.info)
    assert not at.button(key="precursor_run").disabled
