"""LIME (core/lime_attribution.py): superpixels, a model with a known answer, lime's own result, the CLI."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from core.attribution import lime as la
from core.data import PixelScaler

REGION = (slice(8, 16), slice(12, 20))  # four 4×4 grid cells: rows 2..3 × cols 3..4 of the 7×7 grid
REGION_CELLS = {2 * 7 + 3, 2 * 7 + 4, 3 * 7 + 3, 3 * 7 + 4}


class RegionModel:
    """A stand-in network whose p(3) is linear in the mean brightness of REGION and ignores every other
    pixel, so LIME's answer is known; counts the images of each call."""

    def __init__(self):
        self.scaler = PixelScaler(np.zeros((28, 28)), np.full((28, 28), 255.0))  # model input = raw / 255
        self.spec = SimpleNamespace(num_classes=10)
        self.calls: list[int] = []

    def predict(self, x, batch_size=1024):
        x = np.asarray(x)
        self.calls.append(len(x))
        p3 = 0.05 + 0.9 * x[:, REGION[0], REGION[1], 0].mean(axis=(1, 2))
        out = np.repeat(((1 - p3) / 9)[:, None], 10, axis=1)
        out[:, 3] = p3
        return out


def square():
    raw = np.zeros((28, 28), np.uint8)
    raw[4:24, 4:24] = 255  # ink over the region and far around it
    return raw


# --------------------------------------------------------------------------- superpixels
def test_grid_superpixels_are_square_cells_numbered_row_by_row():
    seg = la.superpixels(square(), "grid", 4)
    assert seg.shape == (28, 28) and seg.max() == 48 and len(np.unique(seg)) == 49
    assert seg[0, 0] == 0 and seg[0, 4] == 1 and seg[4, 0] == 7 and seg[27, 27] == 48
    assert len(np.unique(la.superpixels(square(), "grid", 3))) == 100  # 10×10 cells, the last 1 px wide


def test_ink_superpixels_split_strokes_from_paper_and_from_each_other():
    raw = np.zeros((28, 28), np.uint8)
    raw[1:3, 0] = 255  # two separate strokes in the first 4×4 cell ...
    raw[1:3, 3] = 255
    raw[10, 9] = 200  # ... and one in another cell
    raw[20, 20] = 40  # faint: below the ink threshold, stays paper
    seg = la.superpixels(raw, "ink", 4)
    assert sorted(np.unique(seg)) == list(range(seg.max() + 1))  # every label 0..n-1 used
    assert seg.max() + 1 == 49 + 3  # 49 cells of paper plus three stroke pieces
    assert len({seg[1, 0], seg[1, 3], seg[0, 0]}) == 3  # left stroke, right stroke, paper: three segments
    assert seg[1, 0] == seg[2, 0] and seg[10, 9] != seg[10, 10] and seg[20, 20] == seg[21, 21]
    boxes = la.segment_boxes(seg)
    assert boxes[seg[1, 3]] == (1, 3, 2, 3) and boxes[seg[10, 9]] == (10, 9, 10, 9)


# --------------------------------------------------------------------------- the explanation
def test_the_region_the_model_looks_at_gets_the_weight():
    model = RegionModel()
    result = la.explain(model, square(), 3, samples=600, segmentation="grid", hide="black", seed=1)
    top = {int(i) for i in np.argsort(-result.weights)[:4]}
    assert top == REGION_CELLS
    others = np.delete(result.weights, sorted(REGION_CELLS))
    assert np.all(result.weights[sorted(REGION_CELLS)] > 0.15) and np.abs(others).max() < 0.02
    assert result.score > 0.95  # the model is linear in the superpixels: the fit is (nearly) exact
    assert result.probability == pytest.approx(0.95) and result.intercept == pytest.approx(0.05, abs=0.05)
    assert [e["segment"] for e in result.top(4)] == sorted(REGION_CELLS, key=lambda i: -result.weights[i])
    assert result.top(1)[0]["ink"] and result.top(1)[0]["pixels"] == 16
    # the class that falls as the region is hidden... rises: its weights have the other sign
    other = la.explain(model, square(), 0, samples=600, segmentation="grid", hide="black", seed=1)
    assert np.all(other.weights[sorted(REGION_CELLS)] < 0)


def test_shapes_one_batched_call_and_the_same_seed_gives_the_same_result():
    model = RegionModel()
    a = la.explain(model, square(), 3, samples=300, segmentation="ink", hide="mean", seed=7)
    assert model.calls == [300]  # every perturbed copy in ONE call of the network
    n = a.segments.max() + 1
    assert a.segments.shape == (28, 28) and a.weights.shape == (n,) and a.ink.shape == (n,)
    assert a.pixel_map.shape == (28, 28) and a.pixel_map.dtype == np.float32
    np.testing.assert_allclose(a.pixel_map, a.weights[a.segments].astype(np.float32))
    b = la.explain(model, square(), 3, samples=300, segmentation="ink", hide="mean", seed=7)
    np.testing.assert_array_equal(a.weights, b.weights)
    c = la.explain(model, square(), 3, samples=300, segmentation="ink", hide="mean", seed=8)
    assert not np.array_equal(a.weights, c.weights)
    model.calls.clear()
    d = la.explain(model, square(), 3, samples=300, segmentation="ink", hide="mean", seed=7, batch_size=10)
    assert model.calls == [10] * 30
    np.testing.assert_allclose(d.weights, a.weights)


def test_the_weights_equal_stock_lime_with_its_per_sample_loop():
    from lime import lime_image

    model = RegionModel()
    raw = square()
    raw[12, :] = 0  # something for the ink segmentation to split
    mine = la.explain(model, raw, 3, samples=200, segmentation="ink", hide="mean", seed=3)
    segments = la.superpixels(raw, "ink", 4)
    fill = np.repeat(la.fill_image(model, "mean")[..., None], 3, axis=-1)
    stock = lime_image.LimeImageExplainer(feature_selection="none", random_state=3).explain_instance(
        raw.astype(np.float32),
        la.classifier(model),
        labels=(3,),
        top_labels=None,
        hide_color=fill,
        num_features=1000,
        num_samples=200,
        segmentation_fn=lambda _: segments,
        random_seed=3,
    )
    weights = np.zeros(len(mine.weights))
    for feature, coef in stock.local_exp[3]:
        weights[feature] = coef
    np.testing.assert_allclose(mine.weights, weights, rtol=1e-9, atol=1e-12)
    assert mine.score == pytest.approx(stock.score)


def test_a_real_tiny_network(tiny_run):
    from core.activations import ActivationModel
    from core.runs import load_run

    am = ActivationModel.from_bundle(load_run(tiny_run))
    result = la.explain(am, square(), 5, samples=100, segmentation="grid")
    assert result.weights.shape == (49,) and np.all(np.isfinite(result.weights)) and result.class_index == 5
    assert 0 <= result.probability <= 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(class_index=10), "class_index=10 is outside 0..9"),
        (dict(class_index=-1), "class_index=-1 is outside 0..9"),
        (dict(samples=5), "samples=5 is outside 10..20000"),
        (dict(samples=20001), "samples=20001 is outside 10..20000"),
        (dict(raw=np.zeros((28, 27))), "LIME needs a raw (28, 28) image, got shape (28, 27)"),
        (dict(raw=np.full((28, 28), 300.0)), "raw pixel values must lie in 0..255, got 300..300"),
        (dict(segmentation="slic"), "segmentation 'slic' is not one of ('ink', 'grid')"),
        (dict(hide="white"), "hide 'white' is not one of ('mean', 'black')"),
        (dict(size=1), "size=1 is outside 2..14"),
        (dict(seed=-1), "seed=-1 is outside 0..4294967295"),
        (dict(batch_size=0), "batch_size=0 is outside 1..samples (100)"),
    ],
)
def test_bad_arguments_name_the_value_and_the_range(kwargs, message):
    args = dict(raw=square(), class_index=3, samples=100) | kwargs
    with pytest.raises(ValueError) as err:
        la.explain(RegionModel(), args.pop("raw"), args.pop("class_index"), **args)
    assert message in str(err.value)


# --------------------------------------------------------------------------- CLI
def test_cli_lime_prints_the_strongest_superpixels(tiny_run, capsys):
    from core.cli import main

    assert (
        main(
            [
                "lime",
                "--model",
                str(tiny_run),
                "--index",
                "227",
                "--samples",
                "200",
                "--segments",
                "grid",
                "--class",
                "2",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert out["class"] == 2 and out["label"] == 4 and out["segments"] == 49 and out["samples"] == 200
    assert 0 <= out["predicted"] <= 9 and "score" in out and "seconds" in out
    assert len(out["top_positive"]) <= 3 and all(e["weight"] > 0 for e in out["top_positive"])
    assert all(e["weight"] < 0 for e in out["top_negative"])
    assert all(len(e["box"]) == 4 and len(e["centre"]) == 2 for e in out["top_positive"] + out["top_negative"])
    assert "LIME for class 2" in captured.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--samples", "5"], "samples=5 is outside 10..20000"),
        (["--segments", "slic"], "segmentation 'slic'"),
        (["--class", "12"], "class_index=12 is outside 0..9"),
        (["--hide", "red"], "hide 'red'"),
    ],
)
def test_cli_lime_bad_arguments(tiny_run, capsys, args, message):
    from core.cli import main

    assert main(["lime", "--model", str(tiny_run), *args]) == 2
    assert message in capsys.readouterr().err
