"""Invariances (core/invariance.py): transforms of a digit and the sweep through a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.experiments import invariance as inv


def bar():
    x = np.zeros((28, 28), np.float32)
    x[8:20, 13:15] = 255.0  # a vertical stroke
    return x


def test_the_identity_values_leave_the_digit_as_it_is():
    for kind, identity in (("shift", 0), ("rotate", 0), ("scale", 1), ("thickness", 0)):
        np.testing.assert_allclose(inv.transform(bar(), kind, identity), bar(), atol=1e-3)


def test_each_transform_does_what_it_says():
    assert np.argmax(inv.transform(bar(), "shift", 3).sum(axis=0)) == np.argmax(bar().sum(axis=0)) + 3
    turned = inv.transform(bar(), "rotate", 90)
    assert turned.sum(axis=1).max() > turned.sum(axis=0).max()  # the stroke now lies across
    assert (inv.transform(bar(), "scale", 1.5) > 128).sum() > (bar() > 128).sum()
    assert (inv.transform(bar(), "scale", 0.5) > 128).sum() < (bar() > 128).sum()
    assert (inv.transform(bar(), "thickness", 1) > 0).sum() > (bar() > 0).sum()
    assert (inv.transform(bar(), "thickness", -1) > 0).sum() < (bar() > 0).sum()
    out = inv.transform(bar(), "rotate", 33)
    assert out.min() >= 0 and out.max() <= 255 and out.dtype == np.float32


def test_a_sweep_gives_predictions_and_map_responses_in_one_batch(tiny_run):
    from core.activations import ActivationModel
    from core.runs import load_run

    am = ActivationModel.from_bundle(load_run(tiny_run))
    result = inv.sweep(am, bar(), "shift", [-4, -2, 0, 2, 4], layer="conv2")
    assert result.probabilities.shape == (5, 10) and result.responses.shape == (5, 4)
    assert result.images.shape == (5, 28, 28)
    # the untouched digit's responses are what the model gives it directly
    want = am.layer_batch(am.scaler.transform(bar()), ("conv2",))["conv2"][0].mean(axis=(0, 1))
    np.testing.assert_allclose(result.responses[2], want, rtol=1e-5, atol=1e-6)
    json.dumps(result.summary(int(result.predicted[2])))


def test_holds_is_the_unbroken_range_around_the_untouched_digit():
    sweep = inv.InvarianceSweep(
        "rotate",
        np.array([-20.0, -10.0, 0.0, 10.0, 20.0]),
        np.zeros((5, 28, 28)),
        np.eye(10)[[7, 4, 4, 4, 2]],
        "conv3",
        np.zeros((5, 1)),
    )
    assert sweep.holds(4) == (-10.0, 10.0)
    assert sweep.holds(2) is None
    scaled = inv.InvarianceSweep(
        "scale", np.array([0.8, 1.0, 1.2]), np.zeros((3, 28, 28)), np.eye(10)[[4, 4, 1]], "conv3", np.zeros((3, 1))
    )
    assert scaled.holds(4) == (0.8, 1.0)


@pytest.mark.parametrize(
    "kind, values, message",
    [
        ("blur", [1], "transform 'blur' is not one of shift, rotate, scale, thickness"),
        ("scale", [0.0], "scale value(s) [0.0] are outside 0.1..4"),
        ("shift", [40], "shift value(s) [40.0] are outside -27..27"),
        ("thickness", [1.5], "thickness values must be whole pixels"),
        ("rotate", [], "no rotate values given"),
        ("rotate", [float("nan")], "are outside"),
    ],
)
def test_bad_transforms_are_named(kind, values, message):
    with pytest.raises(ValueError) as err:
        inv.check_transform(kind, values)
    assert message in str(err.value)


def test_cli_invariance_prints_the_sweep(tiny_run, capsys):
    from core.cli import main

    assert (
        main(
            [
                "invariance",
                "--model",
                str(tiny_run),
                "--transform",
                "scale",
                "--values",
                "0.8,1,1.2",
                "--layer",
                "conv1",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["values"] == [0.8, 1.0, 1.2] and len(out["predicted"]) == 3 and len(out["responses"][0]) == 3
    assert out["label"] == 4 and out["holds"] is not None and out["holds"][0] <= 1.0 <= out["holds"][1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--transform", "shear"], "transform 'shear' is not one of"),
        (["--transform", "shift", "--values", "1,a"], "--values '1,a' must be numbers"),
        (["--transform", "shift", "--layer", "out"], "layer 'out' cannot be followed"),
    ],
)
def test_cli_invariance_refuses_bad_arguments(tiny_run, capsys, argv, message):
    from core.cli import main

    assert main(["invariance", "--model", str(tiny_run), *argv]) == 2
    assert message in capsys.readouterr().err
