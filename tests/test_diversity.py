"""Diverse OIPs are more diverse by the product's own measure (issue 25, defect 10).

The diversity penalty of the ascent engine is the similarity up to a shift of ``core.oip.similarity`` (the measure
the JSON and the page report), weighted in tenths of each start's objective; a bare ``--diversity`` is the one
default weight the page uses too. The fast tests use tiny models made here; the last one the bundled model.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from core.ascent import engine as ascent
from core.oip import search as oip
from core.oip import variants
from core.oip.similarity import mean_pairwise, shift_similarity
from tests.test_objectives import tiny_conv_model


@pytest.fixture(scope="module")
def engine() -> ascent.AscentEngine:
    return ascent.AscentEngine(tiny_conv_model(), "conv2")


def test_the_penalty_is_the_similarity_up_to_a_shift_within_a_map_and_sign():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 28, 28)).astype(np.float32)
    x[1] = np.roll(x[0], (2, -3), axis=(0, 1))  # image 0 moved by (2, −3) px: alike up to a shift only
    x[1, :2], x[1, :, -3:] = 0.0, 0.0
    targets = np.array([0, 0, 0, 1, 1, 2, 0], np.int32)
    signs = np.array([1, 1, 1, 1, 1, 1, -1], np.float32)
    penalty = ascent.AscentEngine._similarity_penalty(
        tf.constant(x[..., None]), tf.constant(targets), tf.constant(signs)
    )
    measure = shift_similarity(x)
    expected = [
        np.mean([measure[i, j] for j in range(7) if j != i and (targets[j], signs[j]) == (targets[i], signs[i])] or [0])
        for i in range(7)
    ]
    np.testing.assert_allclose(penalty.numpy(), expected, atol=1e-5)
    assert penalty.numpy()[0] > 0.4 and penalty.numpy()[5] == penalty.numpy()[6] == 0  # alone in their group
    pixel_cosine = np.corrcoef(x[0].ravel(), x[1].ravel())[0, 1]
    assert abs(pixel_cosine) < 0.1  # the old zero-shift penalty did not see the pair at all


def test_the_default_penalty_lowers_the_similarity_measure_and_says_what_it_cost(engine):
    cfg = oip.OipConfig(layer="conv2", maps=(0, 1, 2, 3, 4, 5), epochs=60, starts=4, seed=3)
    plain = oip.run_oip(engine, cfg)
    diverse = oip.run_oip(engine, cfg.with_(diversity=ascent.DEFAULT_DIVERSITY))
    alive = plain.has_oip
    assert alive.sum() >= 3
    assert diverse.similarity[alive].mean() < 0.8 * plain.similarity[alive].mean()
    given_up = diverse.given_up_vs(plain)
    np.testing.assert_allclose(
        given_up[alive], 100 * (1 - diverse.best_loss[alive] / plain.best_loss[alive]), rtol=1e-4
    )
    assert np.isnan(given_up[~alive]).all()  # no OIP to give up from
    assert np.isnan(diverse.given_up_vs(dataclasses.replace(plain, maps=plain.maps + 100))).all()  # other maps
    given = oip.objective_given_up([2.0, 0.0, np.nan, 4.0], [1.5, 1.0, 1.0, 5.0])
    np.testing.assert_array_equal(given, [25.0, np.nan, np.nan, -25.0])  # a better diverse run gave up < 0


def test_variants_report_the_objective_their_diverse_oips_gave_up(engine):
    base = oip.OipConfig(layer="conv2", epochs=30, seed=4)
    v = variants.run_variants(engine, variants.VariantsConfig(base, map_index=2, diverse=3))
    assert v.config.diversity == ascent.DEFAULT_DIVERSITY and v.plain_loss.shape == (3,)
    assert v.given_up == pytest.approx(100 * (1 - v.diverse_loss.max() / v.plain_loss.max()))
    assert v.mean_similarity < v.plain_mean_similarity


def test_a_bare_diversity_flag_is_the_one_default_weight(tiny_run, capsys):
    from core.cli import build_parser, main

    assert variants.DEFAULT_DIVERSITY == ascent.DEFAULT_DIVERSITY > 0  # the page reads the variants' name
    assert variants.VariantsConfig(oip.OipConfig(), 0).diversity == ascent.DEFAULT_DIVERSITY
    parse = build_parser().parse_args
    assert parse(["oip"]).diversity == 0.0  # off by default, as the blog
    assert parse(["oip", "--diversity"]).diversity == ascent.DEFAULT_DIVERSITY
    assert parse(["oip", "--diversity", "4"]).diversity == 4.0
    assert parse(["oip", "--diversity", "--starts", "3"]).diversity == ascent.DEFAULT_DIVERSITY
    args = ["oip", "--model", str(tiny_run), "--layer", "conv2", "--maps", "0-1", "--epochs", "3", "--starts", "2"]
    assert main([*args, "--backend", "local", "--diversity"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["diversity"] == ascent.DEFAULT_DIVERSITY and set(result["similarity"]) == {"0", "1"}


def test_diverse_oips_of_the_bundled_conv3_are_a_third_less_alike_at_the_default_weight(default_bundle):
    """The issue's case: conv3 maps 0–15, 4 starts, 100 epochs, the default weight against none."""
    engine = ascent.AscentEngine(default_bundle.model, "conv3")
    cfg = oip.OipConfig(layer="conv3", maps=tuple(range(16)), epochs=100, starts=4)
    plain = oip.run_oip(engine, cfg)
    diverse = oip.run_oip(engine, cfg.with_(diversity=ascent.DEFAULT_DIVERSITY))
    assert plain.history.shape[0] == 100 and plain.has_oip.all()
    before, after = plain.similarity.mean(), diverse.similarity.mean()
    assert after <= 0.7 * before, (before, after)
    given_up = diverse.given_up_vs(plain)
    assert (given_up <= oip.GIVEN_UP_NOTICE).all(), given_up  # each map's best objective within 10 % of plain
    assert mean_pairwise(shift_similarity(diverse.images[0])) == pytest.approx(diverse.similarity[0])
