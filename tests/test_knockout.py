"""Knock-out of maps (core/knockout.py) on tiny models made in the test."""

from __future__ import annotations

import numpy as np
import pytest

from core.experiments import knockout as ko
from core.model import build_model
from core.spec import ArchitectureSpec, ConvSpec


def tiny(seed=0):
    return build_model(ArchitectureSpec((ConvSpec(4), ConvSpec(5), ConvSpec(6)), dense=(8,)), seed=seed)


def inputs(n=40, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 28, 28, 1)).astype(np.float32)


def test_nothing_knocked_out_is_the_model_itself():
    model = tiny()
    x = inputs()
    k = ko.Knockout(model)
    assert k.mask_layers == ("conv1", "conv2", "conv3") and k.size == 15
    np.testing.assert_allclose(k.probabilities(x), model(x, training=False).numpy(), atol=1e-6)


def test_a_knocked_out_map_is_zero_for_the_layers_after_it():
    import keras

    model = tiny(seed=1)
    x = inputs()
    # the same network with conv2's map 3 zeroed by its weights: kernel and bias 0 → relu(0) = 0
    zeroed = keras.models.clone_model(model)
    zeroed.set_weights(model.get_weights())
    kernel, bias = model.get_layer("conv2").get_weights()
    kernel[..., 3], bias[3] = 0.0, 0.0
    zeroed.get_layer("conv2").set_weights([kernel, bias])
    k = ko.Knockout(model)
    got = k.probabilities(x, k.keep_vector({"conv2": [3]}))
    np.testing.assert_allclose(got, zeroed(x, training=False).numpy(), atol=1e-6)
    assert not np.allclose(got, k.probabilities(x))  # and it changed something


def test_importance_equals_knocking_each_map_out_alone():
    model = tiny(seed=2)
    x = inputs(60)
    labels = np.arange(60) % 10
    k = ko.Knockout(model)
    imp = k.importance(x, labels, "conv3")
    assert imp.overall.shape == (6,) and imp.per_class.shape == (6, 10)
    for m in range(6):
        want = ko.score(k.probabilities(x, k.keep_vector({"conv3": [m]})), labels)
        assert imp.overall[m] == pytest.approx(want.overall)
        np.testing.assert_allclose(imp.per_class[m], want.per_class)
    assert imp.base.overall == pytest.approx(ko.score(k.probabilities(x), labels).overall)
    drop = imp.drop()
    assert list(imp.ranking()) == list(np.argsort(-drop, kind="stable"))
    assert imp.drop(3).shape == (6,)


def test_stopping_the_ranking_keeps_the_maps_done():
    class StopAfterTwo(ko.ProgressCallback):
        done = 0

        def on_step(self, done, info=None):
            self.done = done

        def should_stop(self):
            return self.done >= 2

    k = ko.Knockout(tiny())
    imp = k.importance(inputs(20), np.arange(20) % 10, "conv2", progress=StopAfterTwo())
    assert imp.overall.shape == (2,)


def test_score_counts_per_class_and_leaves_absent_classes_out():
    probs = np.eye(10)[[0, 1, 1, 2]]
    s = ko.score(probs, np.array([0, 1, 2, 2]))
    assert s.overall == pytest.approx(0.75) and s.n == 4
    assert s.per_class[0] == 1.0 and s.per_class[2] == 0.5 and np.isnan(s.per_class[5])


def test_most_active_maps_of_a_digit():
    act = np.zeros((3, 3, 5))
    act[..., 4], act[..., 1] = 2.0, 1.0
    assert ko.most_active(act, 2) == [4, 1]


@pytest.mark.parametrize(
    "text, want",
    [
        ("conv3:3,17", {"conv3": [3, 17]}),
        ("conv2:5; conv3:0-2", {"conv2": [5], "conv3": [0, 1, 2]}),
        ("conv3:3,3", {"conv3": [3]}),
    ],
)
def test_parse_knockout(text, want):
    assert ko.parse_knockout(text) == want


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda k: k.keep_vector({"dense1": [0]}),
            "layer 'dense1' has no maps to knock out; allowed: conv1, conv2, conv3",
        ),
        (lambda k: k.keep_vector({"conv1": [4]}), "map(s) [4] do not exist in conv1, which has maps 0..3"),
        (lambda k: k.keep_vector({"conv1": [0, 1, 2, 3]}), "knocking out all 4 maps of conv1 leaves nothing"),
        (lambda k: k.probabilities(inputs(2), np.ones(3)), "keep has shape (3,)"),
        (lambda k: k.importance(inputs(2), np.zeros(2), "out"), "layer 'out' has no maps to rank"),
        (lambda k: k.importance(inputs(2)[:0], np.zeros(0), "conv2"), "no digits to rank the maps on"),
        (lambda k: ko.parse_knockout("conv3"), "'conv3' is not LAYER:MAPS"),
        (lambda k: ko.parse_knockout("conv3:a"), "map 'a' in 'conv3:a' is not a number"),
        (lambda k: ko.parse_knockout(""), "no maps to knock out"),
        (lambda k: ko.most_active(np.zeros((3, 3, 4)), 4), "k=4 must be between 1 and 3"),
    ],
)
def test_bad_knockouts_are_named(call, message):
    with pytest.raises(ValueError) as err:
        call(ko.Knockout(tiny()))
    assert message in str(err.value)


def test_cli_knockout_prints_digit_and_test_accuracy_before_and_after(tmp_path, tiny_run, tiny_mnist, capsys):
    import json

    from core.cli import main

    assert (
        main(
            [
                "knockout",
                "--model",
                str(tiny_run),
                "--mnist",
                str(tiny_mnist),
                "--maps",
                "conv1:0;conv3:1-2",
                "--rank",
                "--layer",
                "conv2",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["maps"] == {"conv1": [0], "conv3": [1, 2]} and out["label"] == 4  # test digit 227 is the blog's 4
    assert len(out["digit"]["before"]) == 10 and abs(sum(out["digit"]["after"]) - 1) < 1e-3
    assert out["test"]["digits"] == 100 and len(out["test"]["per_class_after"]) == 10
    assert out["ranking"]["layer"] == "conv2" and sorted(out["ranking"]["maps"]) == [0, 1, 2, 3]


def test_cli_knockout_most_active_maps(tiny_run, tiny_mnist, capsys):
    import json

    from core.cli import main

    assert (
        main(
            ["knockout", "--model", str(tiny_run), "--mnist", str(tiny_mnist), "--most-active", "2", "--layer", "conv3"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(out["maps"]) == ["conv3"] and len(out["maps"]["conv3"]) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "name the maps to switch off with either --maps"),
        (["--maps", "conv1:0", "--most-active", "2"], "either --maps"),
        (["--maps", "conv1:0,1,2"], "knocking out all 3 maps of conv1"),
        (["--maps", "dense1:0"], "layer 'dense1' has no maps to knock out"),
        (["--most-active", "1", "--layer", "flatten"], "--layer 'flatten' has no maps to knock out"),
        (["--maps", "conv1:0", "--index", "-1"], "--index -1 must be ≥ 0"),
    ],
)
def test_cli_knockout_refuses_bad_arguments(tiny_run, tiny_mnist, capsys, argv, message):
    from core.cli import main

    assert main(["knockout", "--model", str(tiny_run), "--mnist", str(tiny_mnist), *argv]) == 2
    assert message in capsys.readouterr().err


def test_importance_beside_the_oips_joins_by_map_and_correlates_ranks():
    imp = ko.Importance(
        "conv3",
        ko.TestScore(0.9, np.full(10, 0.9), 100),
        np.array([0.9, 0.8, 0.7, 0.6, 0.5]),
        np.full((5, 10), 0.9),
        0.1,
    )
    # OIP run of maps 4, 1, 3, 0 (map 2 missing): loss grows with the drop → rank correlation +1
    rel = ko.relate_to_oips(imp, [4, 1, 3, 0], [4.0, 1.0, 3.0, -0.5], [True, True, True, False])
    assert rel.maps.tolist() == [4, 1, 3, 0]
    np.testing.assert_allclose(rel.drop, [0.4, 0.1, 0.3, 0.0])
    assert rel.spearman == pytest.approx(1.0)
    assert rel.mean_drop(True) == pytest.approx(0.8 / 3) and rel.mean_drop(False) == pytest.approx(0.0)
    text = rel.sentence()
    assert "3 of the 4 maps of conv3 have an OIP" in text and "clearly more important" in text
    flipped = ko.relate_to_oips(imp, [4, 1, 3], [1.0, 4.0, 2.0], [True] * 3)
    assert flipped.spearman == pytest.approx(-1.0) and "less important" in flipped.sentence()
    flat = ko.relate_to_oips(imp, [0, 1], [1.0, 1.0], [True, True])
    assert np.isnan(flat.spearman) and "rank correlation" not in flat.sentence()
    with pytest.raises(ValueError, match="class 12"):
        ko.relate_to_oips(imp, [0], [1.0], [True], digit_class=12)
