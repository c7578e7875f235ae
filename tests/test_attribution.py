"""Attribution methods (core.attribution): every registered method on a tiny model, the options' checks,
Integrated Gradients' completeness on the bundled model, and the ``attribute`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.activations import ActivationModel
from core.attribution import integrated_gradients as ig
from core.attribution.registry import METHODS, method
from core.runs import load_run


@pytest.fixture(scope="module")
def tiny_am(tiny_run):
    return ActivationModel.from_bundle(load_run(tiny_run))


@pytest.fixture(scope="module")
def stroke():
    raw = np.zeros((28, 28), np.float32)
    raw[6:22, 12:16] = 255.0
    return raw


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_gives_a_finite_map_on_the_input_grid(tiny_am, stroke, name):
    result = METHODS[name].run(tiny_am, stroke, 3)
    assert result.method == name and result.class_index == 3
    assert result.pixels.shape == (28, 28) and result.pixels.dtype == np.float32
    assert np.all(np.isfinite(result.pixels))
    if not result.signed:
        assert result.pixels.min() >= 0
    assert result.title and result.caption and result.seconds > 0


@pytest.mark.parametrize(
    "name, values, message",
    [
        ("integrated-gradients", {"steps": 0}, "steps=0 is outside 4..512"),
        ("integrated-gradients", {"steps": 2.5}, "whole number"),
        ("integrated-gradients", {"baseline": "white"}, "baseline 'white' is not one of ('black', 'mean')"),
        ("integrated-gradients", {"score": "softmax"}, "score 'softmax' is not one of"),
        ("integrated-gradients", {"alpha": 1}, "has no option(s) ['alpha']"),
        ("occlusion", {"patch": 9}, "patch=9 is outside 2..8"),
        ("saliency", {"smooth": "yes"}, "smooth='yes' must be true or false"),
        ("lime", {"samples": 100}, "samples=100 is outside 250..5000"),
    ],
)
def test_bad_options_are_refused_with_the_value_and_what_is_allowed(tiny_am, stroke, name, values, message):
    with pytest.raises(ValueError) as info:
        METHODS[name].run(tiny_am, stroke, 0, **values)
    assert message in str(info.value)


def test_bad_class_digit_and_method_name_are_refused(tiny_am, stroke):
    with pytest.raises(ValueError, match="class_index=10 is outside 0..9"):
        method("saliency").run(tiny_am, stroke, 10)
    with pytest.raises(ValueError, match=r"needs a raw \(28, 28\) digit, got shape \(28, 27\)"):
        method("grad-cam").run(tiny_am, stroke[:, :27], 0)
    with pytest.raises(ValueError, match="'shap' is not one of"):
        method("shap")


def test_option_parse_reads_command_line_text():
    steps = next(o for o in ig.METHOD.options if o.name == "steps")
    assert steps.parse("128") == 128
    with pytest.raises(ValueError, match="--steps 'many' must be a whole number from 4 to 512"):
        steps.parse("many")
    smooth = next(o for o in METHODS["saliency"].options if o.name == "smooth")
    assert smooth.parse("on") is True and smooth.parse("false") is False


def test_the_completeness_gap_shrinks_as_the_steps_grow(tiny_am, stroke):
    gaps = [ig.METHOD.run(tiny_am, stroke, 2, steps=s).figures["completeness_gap"] for s in (4, 64, 512)]
    assert gaps[2] <= gaps[0] + 1e-6
    assert gaps[2] < 0.01


def test_the_black_baseline_gives_no_attribution_to_paper_pixels(tiny_am, stroke):
    result = ig.METHOD.run(tiny_am, stroke, 1, baseline="black")
    paper = stroke == 0
    assert np.allclose(result.pixels[paper], 0.0, atol=1e-6)
    assert np.abs(result.pixels[~paper]).sum() > 0


@pytest.mark.parametrize("baseline", ig.BASELINES)
@pytest.mark.parametrize("score", ig.SCORES)
def test_integrated_gradients_on_the_bundled_model_are_complete_within_one_percent(default_bundle, baseline, score):
    from core.data import load_sample_digits

    am = ActivationModel.from_bundle(default_bundle)
    raw, label = load_sample_digits().by_test_index(227)
    result = ig.METHOD.run(am, raw, label, baseline=baseline, steps=64, score=score)
    assert result.figures["completeness_gap"] <= 0.01
    total = float(result.pixels.sum(dtype=np.float64))
    assert total == pytest.approx(result.figures["score_change"], rel=0.01)
    assert not result.notes


@pytest.mark.integration
def test_cli_attribute_prints_the_completeness_gap(capsys):
    from core.cli import main

    assert main(["attribute", "--method", "integrated-gradients", "--index", "227"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["method"] == "integrated-gradients" and out["class"] == out["predicted"] == 4
    assert out["settings"] == {"baseline": "black", "steps": 64, "score": "logit"}
    assert out["completeness_gap"] <= 0.01
    assert len(out["top_pixels"]) == 5


@pytest.mark.integration
@pytest.mark.parametrize("name", [n for n in METHODS if n != "integrated-gradients"])
def test_cli_attribute_runs_every_method(capsys, name):
    from core.cli import main

    assert main(["attribute", "--method", name, "--index", "227", "--class", "9"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["method"] == name and out["class"] == 9 and out["predicted"] == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--method", "integrated-gradients", "--steps", "3"], "steps=3 is outside 4..512"),
        (["--method", "integrated-gradients", "--steps", "many"], "--steps 'many' must be a whole number"),
        (["--method", "saliency", "--steps", "64"], "saliency has no option(s) ['steps']"),
        (["--method", "occlusion", "--class", "12"], "class_index=12 is outside 0..9"),
    ],
)
def test_cli_attribute_refuses_bad_arguments(capsys, tiny_run, argv, message):
    from core.cli import main

    assert main(["attribute", "--model", str(tiny_run), "--index", "3", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_attribute_lists_the_methods(capsys):
    from core.cli import main

    with pytest.raises(SystemExit):
        main(["attribute", "--method", "shap"])
    assert "invalid choice: 'shap'" in capsys.readouterr().err
