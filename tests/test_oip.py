"""Filters/OIP engine (core.oip.search), its CLI command and the page (AppTest).

Epochs stay small (tens); the bundled article-II model is used where trained weights matter.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from core.ascent import engine as ascent
from core.ascent import starts as start_images
from core.figures import oip as oip_figures
from core.oip import analysis as oip_analysis
from core.oip import search as oip
from tests.conftest import finish_job
from tests.helpers.spectra import radial_spectrum
from tests.reference import eager_ascent_step_loop


@pytest.fixture(scope="module")
def conv3(default_bundle):
    return ascent.AscentEngine(default_bundle.model, "conv3")


@pytest.fixture(scope="module")
def conv1(default_bundle):
    return ascent.AscentEngine(default_bundle.model, "conv1")


@pytest.fixture(scope="module")
def alive_conv3(conv3):
    """Three conv3 maps whose seed-0 start already responds (loss > 0), and their starts."""
    starts = start_images.random_starts(range(conv3.channels), 1, seed=0)[:, 0]
    loss0 = conv3.loss(starts, range(conv3.channels))
    maps = np.flatnonzero(loss0 > 0)[:3]
    assert len(maps) == 3
    return maps, starts[maps]


# --------------------------------------------------------------------------- start images
def test_standardize_pattern_gives_zero_mean_unit_std_and_zeros_for_constant_images():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 1, (3, 28, 28)) * 5 + 2, np.full((1, 28, 28), 0.7)])
    out = start_images.standardize_pattern(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out[:3].mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(out[:3].std(axis=(1, 2)), 1, atol=1e-4)
    assert np.all(out[3] == 0)
    assert start_images.standardize_pattern(x[..., None]).shape == (4, 28, 28, 1)


def test_random_start_is_reproducible_and_independent_of_the_other_maps():
    a = start_images.random_starts([3, 7], 2, seed=5)
    b = start_images.random_starts([7], 2, seed=5)
    np.testing.assert_array_equal(a[1], b[0])
    assert not np.allclose(a[0, 0], a[0, 1])  # starts differ
    assert not np.allclose(start_images.random_starts([3], 1, seed=6)[0, 0], a[0, 0])  # seeds differ
    np.testing.assert_allclose(a.mean(axis=(2, 3)), 0, atol=1e-5)


def test_the_four_scale_start_has_the_intended_spectrum():
    """Coarse cells put the power at low spatial frequencies, fine noise spreads it over all."""

    def low_share(weights):
        imgs = np.stack([start_images.random_start(0, i, 0, weights) for i in range(40)])
        spec = radial_spectrum(imgs)
        return spec[1:4].sum() / spec[1:].sum()

    fine, cells14, cells7, cells4 = (low_share(w) for w in [(1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)])
    assert fine < 0.3  # white noise: the 3 lowest of 14 bins hold little of the power
    assert cells4 > 0.85  # 4×4 cells: nearly all power below 4 cycles per image
    assert fine < cells14 < cells7 < cells4  # the coarser the cells, the lower the frequencies
    mixed = low_share(start_images.DEFAULT_SCALE_WEIGHTS)
    assert fine < mixed < cells4


def test_upscale_bicubic_keeps_constant_grids_and_passes_28_through():
    grid = np.full((2, 3, 3), 0.5, np.float32)
    np.testing.assert_allclose(start_images.upscale_bicubic(grid), 0.5, atol=1e-6)
    same = np.random.default_rng(1).random((1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(start_images.upscale_bicubic(same), same)


# --------------------------------------------------------------------------- the ascent
def test_batched_ascent_equals_the_one_map_at_a_time_eager_loop(default_bundle, conv3, alive_conv3):
    maps, starts = alive_conv3
    batched = conv3.ascend(starts, maps, epochs=15, step=0.05)
    for i, m in enumerate(maps):
        image, losses = eager_ascent_step_loop(default_bundle.model, "conv3", starts[i], int(m), 15, 0.05)
        np.testing.assert_allclose(batched.images[i, ..., 0], image, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(batched.history[:, i], losses, rtol=1e-4, atol=1e-5)


def test_loss_rises_and_sub_batches_and_chunks_change_nothing(conv3, alive_conv3):
    maps, starts = alive_conv3
    res = conv3.ascend(starts, maps, epochs=20, step=0.05)
    assert res.history.shape == (20, 3) and res.final_loss.shape == (3,)
    assert np.all(res.final_loss > res.history[0] + 1.0)
    assert np.all(np.diff(res.history, axis=0) > -1e-3)  # essentially monotone
    split = conv3.ascend(starts, maps, epochs=20, step=0.05, batch_size=2, chunks=6)
    np.testing.assert_allclose(split.images, res.images, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(split.history, res.history, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(conv3.loss(res.images, maps), res.final_loss, rtol=1e-5)


def test_a_dead_map_stays_at_zero_and_has_no_oip(conv3):
    starts = start_images.random_starts(range(conv3.channels), 1, seed=0)[:, 0]
    loss0 = conv3.loss(starts, range(conv3.channels))
    dead = np.flatnonzero(loss0 == 0)[:2]
    assert len(dead) > 0
    res = conv3.ascend(starts[dead], dead, epochs=10, step=0.05)
    assert np.all(res.final_loss == 0)
    np.testing.assert_array_equal(res.images[..., 0], starts[dead])


def test_options_objectives_and_class_scores(default_bundle, conv3, alive_conv3):
    maps, starts = alive_conv3
    plain = conv3.ascend(starts, maps, 10, 0.05)
    for kwargs in (dict(jitter=2), dict(blur=0.5), dict(l2_decay=0.05), dict(tv_weight=1.0)):
        res = conv3.ascend(starts, maps, 10, 0.05, **kwargs)
        assert np.all(np.isfinite(res.images))
        assert not np.allclose(res.images, plain.images), kwargs
    res = conv3.ascend(starts, maps, 10, 0.05, l2_decay=0.2)
    assert np.abs(res.images).max() < np.abs(plain.images).max()
    neuron = conv3.ascend(starts, maps, 10, 0.05, neuron=(1, 1))
    assert neuron.final_loss.shape == (3,)
    acts = conv3.activations(neuron.images)
    np.testing.assert_allclose(neuron.final_loss, acts[np.arange(3), 1, 1, maps], rtol=1e-5, atol=1e-6)
    out = ascent.AscentEngine(default_bundle.model, "out")
    start = start_images.random_starts([0], 1, seed=0)[:, 0]
    res = out.ascend(np.repeat(start, 2, axis=0), [3, 7], 20, 0.05)
    assert np.all(res.final_loss > res.history[0])  # class scores (logits) rise
    probs = default_bundle.model.predict(res.images, verbose=0)
    assert probs[0].argmax() == 3 and probs[1].argmax() == 7


def test_stop_request_ends_early_and_keeps_what_was_reached(conv3, alive_conv3):
    from core.progress import ProgressCallback

    class StopAfterFirst(ProgressCallback):
        def __init__(self):
            self.steps, self.begun, self.ended = 0, None, False

        def on_begin(self, total, label=""):
            self.begun = total

        def on_step(self, done, info=None):
            self.steps += 1

        def on_end(self):
            self.ended = True

        def should_stop(self):
            return self.steps >= 1

    maps, starts = alive_conv3
    prog = StopAfterFirst()
    res = conv3.ascend(starts, maps, epochs=40, step=0.05, chunks=4, progress=prog)
    assert res.stopped and prog.ended and prog.begun == 3 * 40
    assert res.history.shape == (10, 3)
    np.testing.assert_allclose(conv3.loss(res.images, maps), res.final_loss, rtol=1e-5)


def test_run_oip_result_and_has_oip(conv3, monkeypatch):
    cfg = oip.OipConfig(maps=(0, 1, 2, 5, 7), epochs=12, starts=2, seed=0)
    res = oip.run_oip(conv3, cfg)
    assert res.images.shape == (5, 2, 28, 28) and res.history.shape == (12, 5, 2)
    assert res.best_images.shape == (5, 28, 28)
    np.testing.assert_array_equal(res.has_oip, res.best_loss > 0)
    assert res.best_loss.tolist() == res.final_loss.max(axis=1).tolist()
    summary = res.summary()
    assert summary["n_maps"] == 5 and summary["with_oip"] == int(res.has_oip.sum())
    assert set(summary["final_loss"]) == {"0", "1", "2", "5", "7"}
    with np.load(io.BytesIO(res.to_npz_bytes())) as npz:
        np.testing.assert_array_equal(npz["maps"], [0, 1, 2, 5, 7])
        assert json.loads(str(npz["config"]))["epochs"] == 12
    monkeypatch.setenv(ascent.EPOCHS_ENV_VAR, "3")
    assert oip.run_oip(conv3, cfg).history.shape[0] == 3


def test_conv1_oips_correlate_with_their_kernels(default_bundle, conv1):
    res = oip.run_oip(conv1, oip.OipConfig(layer="conv1", epochs=40))
    assert res.has_oip.all()
    corr = [
        oip_analysis.kernel_comparison(default_bundle.model, "conv1", int(m), res.best_images[i], conv1)[2]
        for i, m in enumerate(res.maps)
    ]
    assert np.nanmedian(corr) > 0.8
    assert np.mean(np.asarray(corr) > 0.5) > 0.9


def test_engine_does_not_touch_the_model(default_bundle):
    before = [w.copy() for w in default_bundle.model.get_weights()]
    n_layers = len(default_bundle.model.layers)
    eng = ascent.AscentEngine(default_bundle.model, "pool2")
    eng.ascend(start_images.random_starts([0], 1, 0)[:, 0], [0], 3, 0.05)
    assert len(default_bundle.model.layers) == n_layers
    for a, b in zip(before, default_bundle.model.get_weights()):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- analysis helpers
def test_top_patches_and_percentile_by_hand():
    values = np.array([[1.0, 0.0], [5.0, 2.0], [3.0, 9.0], [0.5, 1.0]], np.float32)
    positions = np.array([[0, 0], [4, 0], [8, 2], [0, 0]], np.int32)  # 3×3 map: 4 = (1, 1), 8 = (2, 2)
    maxima = oip_analysis.DigitMaxima(values, positions, map_side=3)
    raw = np.arange(4 * 28 * 28, dtype=np.float32).reshape(4, 28, 28)
    crops, idx, vals = oip_analysis.top_patches(maxima, raw, 0, receptive_field=18, jump=4, start=0, k=2)
    assert idx.tolist() == [1, 2] and vals.tolist() == [5.0, 3.0]
    np.testing.assert_array_equal(crops[0], raw[1, 4:22, 4:22])  # neuron (1, 1): rows 4..21
    np.testing.assert_array_equal(crops[1], raw[2, 8:26, 8:26])  # neuron (2, 2): rows 8..25
    crops, idx, _ = oip_analysis.top_patches(maxima, raw, 1, receptive_field=5, jump=1, start=-1, k=1)  # 'same' padding
    assert idx.tolist() == [2]  # position 2 = (0, 2): the field starts at row −1, column 1
    np.testing.assert_array_equal(crops[0, 1:], raw[2, 0:4, 1:6])
    assert np.all(crops[0, 0] == 0)  # the row outside the image is padding
    pct, ratio = oip_analysis.activation_percentile(maxima, 1, 2.0)
    assert pct == 50.0 and ratio == pytest.approx(2.0 / 9.0)


def test_contrast_enhance_sheet_and_gallery():
    rng = np.random.default_rng(0)
    imgs = rng.normal(size=(5, 28, 28)).astype(np.float32)
    imgs[0, 0, 0] = 100.0  # an outlier does not flatten the rest
    shown = oip_analysis.contrast_enhance(imgs)
    assert shown.min() >= 0 and shown.max() <= 1 and shown[0].std() > 0.15
    assert np.all(oip_analysis.contrast_enhance(np.ones((1, 28, 28))) == 0.5)
    png = oip_figures.sheet_png(imgs, [str(i) for i in range(5)])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    fig = oip_figures.gallery_figure(
        imgs,
        [2, 4, 6, 8, 9],
        [1, 0, 2, 0, 3],
        [True, False, True, False, True],
        rescued=[False, False, False, True, False],
        cols=3,
        selected=6,
    )
    points = fig.data[1]
    assert list(points.customdata) == [2, 4, 6, 8, 9]
    assert "rescued" in points.text[3] and "no OIP" in points.text[1]
    assert any(a.text == "P 8" for a in fig.layout.annotations)


def test_store_keeps_results_per_model_layer_and_settings():
    from pages.ui.state import OipStore, RescuedOip

    store = OipStore()
    cfg = oip.OipConfig(epochs=5)
    res = oip.OipResult(
        cfg,
        np.array([0, 1]),
        np.zeros((2, 1, 28, 28)),
        np.zeros((2, 1, 28, 28)),
        np.zeros((5, 2, 1)),
        np.array([[0.0], [1.0]]),
        0.1,
        "CPU",
    )
    store.put("m", res)
    assert store.get("m", cfg) is res and store.get("m", cfg.with_(epochs=6)) is None
    assert store.get("other", cfg) is None and store.latest_result("m", "conv3") is res
    assert res.failed_maps == [0]
    store.add_rescued("m", "conv3", RescuedOip(0, np.ones((28, 28)), 2.5, "precursor"))
    assert set(store.rescued_for("m", "conv3")) == {0} and store.rescued_for("m", "conv1") == {}


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: e.ascend(np.zeros((2, 28, 28)), [0], 1), "2 images but 1 target"),
        (lambda e: e.ascend(np.zeros((1, 27, 28)), [0], 1), "shape"),
        (lambda e: e.ascend(np.zeros((1, 28, 28)), [64], 1), "map 64 does not exist"),
        (lambda e: e.ascend(np.zeros((1, 28, 28)), [-1], 1), "map -1 does not exist"),
        (lambda e: e.ascend(np.zeros((1, 28, 28)), [0], -1), "epochs=-1"),
        (lambda e: e.ascend(np.zeros((1, 28, 28)), [0], 1, step=0), "step=0"),
        (lambda e: e.ascend(np.zeros((1, 28, 28)), [0], 1, jitter=9), "jitter=9"),
        (lambda e: e.ascend(np.zeros((1, 28, 28)), [0], 1, blur=2), "blur=2"),
        (lambda e: e.ascend(np.zeros((1, 28, 28)), [0], 1, neuron=(3, 0)), "neuron (3, 0)"),
    ],
)
def test_engine_rejects_bad_input(conv3, call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(conv3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(epochs=0), "epochs=0"),
        (dict(step=-1.0), "step=-1.0"),
        (dict(starts=0), "starts=0"),
        (dict(starts=99), "starts=99"),
        (dict(scale_weights=(1, 1, 1)), "needs 4 values"),
        (dict(scale_weights=(0, 0, 0, 0)), "not all 0"),
        (dict(scale_weights=(1, -1, 0, 0)), "≥ 0"),
        (dict(objective="class"), "objective 'class'"),
        (dict(objective="neuron"), "needs neuron"),
        (dict(maps=()), "maps is empty"),
        (dict(maps=(1, 1)), "duplicates"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        oip.OipConfig(**kwargs).validate()


@pytest.mark.parametrize(
    "text, expected",
    [("all", None), ("", None), (None, None), ("0,3", (0, 3)), ("2-4,9", (2, 3, 4, 9)), (" 5 , 5 ", (5,))],
)
def test_parse_maps(text, expected):
    assert oip.parse_maps(text, 10) == expected


@pytest.mark.parametrize(
    "text, message",
    [("10", r"maps \[10\] do not exist"), ("a", "'a' is not a map"), ("5-2", "'5-2'"), (",", "names no map")],
)
def test_parse_maps_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        oip.parse_maps(text, 10)


def test_unknown_layer_and_kernel_comparison_outside_conv1(default_bundle):
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        ascent.AscentEngine(default_bundle.model, "conv9")
    with pytest.raises(ValueError, match="only for conv1"):
        oip_analysis.kernel_comparison(default_bundle.model, "conv2", 0, np.zeros((28, 28)))


# --------------------------------------------------------------------------- CLI
def test_cli_oip_prints_json_and_writes_npz(tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "oips.npz"
    assert main(["oip", "--layer", "conv1", "--maps", "0-3", "--epochs", "5", "--starts", "2", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n_maps"] == 4 and set(result["final_loss"]) == {"0", "1", "2", "3"}
    assert result["with_oip"] == sum(v > 0 for v in result["final_loss"].values())
    assert result["seconds"] > 0 and result["epochs"] == 5
    with np.load(out) as npz:
        assert npz["images"].shape == (4, 2, 28, 28)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layer", "conv1", "--maps", "40"], "do not exist"),
        (["--layer", "nope"], "unknown layer"),
        (["--epochs", "0"], "epochs=0"),
        (["--scale-weights", "1,2"], "needs 4 values"),
    ],
)
def test_cli_oip_bad_arguments_exit_2(capsys, args, message):
    from core.cli import main

    assert main(["oip", *args]) == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- page
@pytest.mark.integration
def test_page_computes_conv1_oips_and_opens_a_map(runs_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(ascent.EPOCHS_ENV_VAR, "10")
    at = AppTest.from_file(os.path.join(os.path.dirname(__file__), "..", "app.py"), default_timeout=120).run()
    at.switch_page("pages/oip.py").run()
    assert not at.exception
    assert any("Compute OIPs" in i.value for i in at.info)
    at.selectbox(key="oip_layer").set_value("conv1").run()
    at.text_input(key="oip_maps").set_value("0-7").run()
    at.number_input(key="oip_starts").set_value(2).run()
    at.button(key="oip_run").click().run()
    assert at.button(key="oip_run").label == "Computing…"
    finish_job(at, "oip_job")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.button(key="oip_run").label == "Compute again"  # says what a click does after computing
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["maps with an OIP"].endswith("of 8")
    at.selectbox(key="oip_map").set_value(5).run()
    assert not at.exception
    assert any(h.value == "Map 5 of conv1" for h in at.subheader)
    assert any("conv1 kernel vs. OIP" in m.value for m in at.markdown)
    assert any("Are the OIPs unique per map?" in m.value for m in at.markdown)  # 2 starts: the layer's similarity
    assert any("Mean similarity of these 2 OIPs" in c.value for c in at.caption)
    # the open map's variants: the blog's OIP, a negative one and diverse ones, side by side
    at.button(key="oip_variants_run").click().run()
    finish_job(at, "oip_variants_job")
    assert not at.exception and not at.error
    assert at.button(key="oip_variants_run").label == "Variants shown below"
    similarity = {m.label: m.value for m in at.metric}["diverse OIPs, mean similarity up to a shift"]
    assert -1 <= float(similarity) <= 1
    said = [c.value for c in at.caption] + [w.value for w in at.warning]
    assert any("than the plain starts' best" in t for t in said), said  # what the diversity cost (issue 25)
    # the same settings with diversity: the page says how much objective it gave up against the plain run
    at.number_input(key="oip_diversity").set_value(2.5).run()
    at.button(key="oip_run").click().run()
    finish_job(at, "oip_job")
    assert not at.exception and not at.error
    assert any("Against the same settings without diversity" in c.value for c in at.caption), [
        c.value for c in at.caption
    ]
    at.number_input(key="oip_diversity").set_value(0.0).run()
    # returning to the same settings is instant: the result is reused from the session store
    at.text_input(key="oip_maps").set_value("0-6").run()
    assert any("Compute OIPs" in i.value for i in at.info)
    at.text_input(key="oip_maps").set_value("0-7").run()
    assert not at.info and any(h.value == "Map 5 of conv1" for h in at.subheader)
    at.text_input(key="oip_maps").set_value("0,99").run()
    assert any("do not exist" in e.value for e in at.error)
    at.text_input(key="oip_maps").set_value("all").run()
    at.selectbox(key="oip_layer").set_value("out").run()  # class visualisation: no spatial maps
    at.button(key="oip_run").click().run()
    finish_job(at, "oip_job")
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["maps with an OIP"].endswith("of 10")


def test_page_refuses_a_huge_step_size_with_a_message(app_test):
    at = app_test("pages/oip.py")
    at.number_input(key="oip_step").set_value(1e9).run()
    assert not at.exception
    assert any("step=" in e.value and "100" in e.value for e in at.error), [e.value for e in at.error]
