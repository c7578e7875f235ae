"""Targeted adversarial changes (core/attack.py) on tiny models made in the test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.data import PixelScaler
from core.experiments import attack as A
from core.model import build_model
from core.spec import ArchitectureSpec, ConvSpec


def scaler():
    std = np.full((28, 28), 60.0)
    std[:3], std[:, :3] = 0.05, 0.05  # a nearly blank border, as MNIST's
    return PixelScaler(np.full((28, 28), 30.0), std)


def attacker(seed=0):
    model = build_model(ArchitectureSpec((ConvSpec(4), ConvSpec(5), ConvSpec(6)), dense=(8,)), seed=seed)
    return A.Attacker(model, scaler())


def digit(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 30, (28, 28)).astype(np.float32)
    x[6:22, 12:16] = 240
    return x


def other_class(att, raw):
    return (int(np.argmax(att.probabilities(raw[None])[0])) + 1) % 10


@pytest.mark.parametrize("method", A.METHODS)
def test_the_change_stays_within_the_budget_the_grey_range_and_the_ink(method):
    att, raw = attacker(), digit()
    out = att.changed(raw, other_class(att, raw), [4, 16], method)
    assert out.shape == (2, 28, 28) and np.all(out == np.rint(out)) and out.min() >= 0 and out.max() <= 255
    for changed, budget in zip(out, (4, 16)):
        assert np.abs(changed - raw).max() <= budget
        assert np.all(changed[:3] == raw[:3]) and np.all(changed[:, :3] == raw[:, :3])  # blank border untouched
    everywhere = att.changed(raw, other_class(att, raw), [16], method, pixels="all")[0]
    assert np.any(everywhere[:3] != raw[:3])  # with pixels="all" the border moves too


def test_fgsm_is_one_step_of_the_whole_budget():
    att, raw = attacker(1), digit(1)
    out = att.changed(raw, other_class(att, raw), [10], "fgsm")[0]
    moved = np.abs(out - raw)[3:, 3:]
    assert set(np.unique(moved)) <= set(range(11)) and np.sum(moved == 10) > 0.5 * moved.size


def test_the_smallest_budget_flips_and_is_consistent_with_the_result():
    att, raw = attacker(2), digit(2)
    target = other_class(att, raw)
    result = att.attack(raw, target, budget=255, pixels="all")
    assert result.flipped == (result.predicted_after == target)
    if result.smallest_budget is not None:
        assert result.smallest_budget <= 255
        at_smallest = att.changed(raw, target, [result.smallest_budget], pixels="all")
        assert int(np.argmax(att.probabilities(at_smallest)[0])) == target
    assert set(result.divergence) == {"conv1", "pool1", "conv2", "pool2", "conv3", "flatten", "dense1", "out"}
    assert np.abs(result.change).max() <= 255 and result.changed.dtype == np.uint8
    json.dumps(result.summary())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"budget": 0}, "budget=0 must be a whole number of grey levels from 1 to 255"),
        ({"budget": 256}, "budget=256 must be"),
        ({"budget": 3.5}, "budget=3.5 must be"),
        ({"target": 10}, "target=10 must be a digit class from 0 to 9"),
        ({"method": "cw"}, "method='cw' is not one of fgsm, pgd"),
        ({"pixels": "edges"}, "pixels='edges' is not one of ink, all"),
        ({"steps": 0}, "steps=0 must be from 1 to 1000"),
    ],
)
def test_bad_attacks_are_named(kwargs, message):
    att, raw = attacker(), digit()
    args = {"target": other_class(att, raw), **kwargs}
    with pytest.raises(ValueError) as err:
        att.attack(raw, **args)
    assert message in str(err.value)


def test_the_class_it_already_reads_is_refused():
    att, raw = attacker(), digit()
    current = int(np.argmax(att.probabilities(raw[None])[0]))
    with pytest.raises(ValueError, match=f"already reads this digit as {current}"):
        att.attack(raw, current)
    with pytest.raises(ValueError, match=r"must be 28×28"):
        att.attack(np.zeros((32, 32)), (current + 1) % 10)


def test_cli_attack_prints_json_and_saves_the_changed_digit(tmp_path, tiny_run, capsys):
    from PIL import Image

    from core.cli import main
    from core.data import load_sample_digits
    from core.runs import load_run

    bundle = load_run(tiny_run)
    raw, _ = load_sample_digits().by_test_index(227)
    target = (int(np.argmax(A.Attacker(bundle.model, bundle.scaler).probabilities(raw[None])[0])) + 1) % 10
    out_png = tmp_path / "changed.png"
    assert (
        main(
            [
                "attack",
                "--model",
                str(tiny_run),
                "--target",
                str(target),
                "--method",
                "fgsm",
                "--budget",
                "64",
                "--out",
                str(out_png),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["target"] == target and out["budget_used"] == 64 and isinstance(out["flipped"], bool)
    assert out["budget"] is None or 1 <= out["budget"] <= 255
    assert np.asarray(Image.open(out_png)).shape == (28, 28)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--target", "3", "--budget", "0"], "budget=0 must be"),
        (["--target", "3", "--method", "deepfool"], "method='deepfool'"),
        (["--target", "3", "--out", "x.jpg"], "--out 'x.jpg' must end in .png"),
    ],
)
def test_cli_attack_refuses_bad_arguments(tiny_run, capsys, argv, message):
    from core.cli import main

    assert main(["attack", "--model", str(tiny_run), *argv]) == 2
    assert message in capsys.readouterr().err
