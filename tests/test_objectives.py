"""Objectives of the one ascent engine beyond the blog's: negative (what a map hates) and diversity (starts
that push each other apart), and the similarity up to a shift that measures them. Tiny models made here."""

from __future__ import annotations

import json
import re

import keras
import numpy as np
import pytest

from core.ascent import engine as ascent
from core.ascent import starts as start_images
from core.oip import search as oip
from core.oip.similarity import mean_pairwise, shift_similarity
from tests.helpers.spectra import radial_spectrum
from tests.reference import eager_ascent_step_loop


def tiny_conv_model(seed: int = 0) -> keras.Model:
    init = keras.initializers.GlorotUniform(seed=seed)
    inp = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1", kernel_initializer=init)(inp)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv2", kernel_initializer=init)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    out = keras.layers.Dense(10, name="out", kernel_initializer=init)(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def engine() -> ascent.AscentEngine:
    return ascent.AscentEngine(tiny_conv_model(), "conv2")


def _preactivation_mean(engine: ascent.AscentEngine, images: np.ndarray, maps) -> np.ndarray:
    model = tiny_conv_model()
    below = keras.Model(model.input, model.get_layer("pool1").output)
    conv = model.get_layer("conv2")
    z = (
        keras.ops.convert_to_numpy(keras.ops.conv(below(images[..., None]), conv.kernel, padding="valid"))
        + conv.bias.numpy()
    )
    return np.array([z[i, ..., m].mean() for i, m in enumerate(maps)])


def test_a_negative_objective_holds_the_map_down_and_reports_the_signed_loss(engine):
    starts = start_images.random_starts([0, 1, 2], 1, seed=3)[:, 0]
    maps = np.array([0, 1, 2])
    up = engine.ascend(starts, maps, 30, 0.05)
    down = engine.ascend(starts, maps, 30, 0.05, sign=-1)
    before = _preactivation_mean(engine, starts, maps)
    after = _preactivation_mean(engine, down.images[..., 0], maps)
    assert (after < before - 0.05).all()  # the pre-activation fell: what the map hates, not just zero
    np.testing.assert_allclose(down.final_loss, -after, rtol=1e-3, atol=1e-4)  # loss = −objective
    assert (up.final_loss > 0).all() and (engine.loss(up.images, maps) == up.final_loss).all()
    # mixed signs in one batch give what each gives alone (one compiled call, no retracing)
    both = engine.ascend(
        np.concatenate([starts, starts]), np.concatenate([maps, maps]), 30, 0.05, sign=[1, 1, 1, -1, -1, -1]
    )
    np.testing.assert_allclose(both.final_loss, np.concatenate([up.final_loss, down.final_loss]), rtol=1e-4, atol=1e-5)
    assert engine._ascend_fn.experimental_get_tracing_count() == 1


def test_the_blogs_ascent_is_unchanged_by_the_new_terms(engine):
    starts = start_images.random_starts([4, 5], 2, seed=1).reshape(4, 28, 28)
    maps = np.array([4, 4, 5, 5])
    plain = engine.ascend(starts, maps, 20, 0.05)
    explicit = engine.ascend(starts, maps, 20, 0.05, sign=np.ones(4), diversity=0.0)
    assert np.array_equal(plain.images, explicit.images) and np.array_equal(plain.history, explicit.history)
    model = tiny_conv_model()
    reference, losses = eager_ascent_step_loop(model, "conv2", starts[0], 4, 20, 0.05)
    np.testing.assert_allclose(plain.images[0, ..., 0], reference, atol=2e-4)


def _mean_cosine(images: np.ndarray) -> float:
    flat = images.reshape(len(images), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    sim = flat @ flat.T
    return float((sim.sum() - len(sim)) / (len(sim) * (len(sim) - 1)))


def test_diversity_pushes_the_starts_of_a_map_apart_and_leaves_other_maps_alone(engine):
    starts = np.repeat(start_images.random_starts([3], 1, seed=0), 4, axis=1)[0]  # 4 identical starts
    starts = starts + 0.05 * np.random.default_rng(0).normal(size=starts.shape).astype(np.float32)
    maps = np.full(4, 3)
    same = engine.ascend(starts, maps, 40, 0.05)
    apart = engine.ascend(starts, maps, 40, 0.05, diversity=10.0)  # a whole objective for identical starts
    assert _mean_cosine(apart.images[..., 0]) < _mean_cosine(same.images[..., 0]) - 0.1
    # alone in its group (one image per map), an image feels no penalty
    lone = engine.ascend(starts[:2], np.array([1, 2]), 10, 0.05)
    lone_div = engine.ascend(starts[:2], np.array([1, 2]), 10, 0.05, diversity=5.0)
    np.testing.assert_allclose(lone.images, lone_div.images, atol=1e-6)


def test_run_oip_with_starts_reports_similarity_and_diversity_lowers_it(engine):
    cfg = oip.OipConfig(layer="conv2", maps=(0, 1, 2), epochs=30, starts=4, seed=2)
    plain = oip.run_oip(engine, cfg)
    diverse = oip.run_oip(engine, cfg.with_(diversity=5.0), batch_size=6)  # sub-batches keep a map's starts
    assert plain.similarity.shape == (3,) and np.isfinite(plain.similarity).all()
    assert diverse.similarity.mean() < plain.similarity.mean()
    summary = plain.summary()
    assert set(summary["similarity"]) == {"0", "1", "2"} and summary["objective"] == "map"
    assert "similarity" not in oip.run_oip(engine, cfg.with_(starts=1)).summary()
    negative = oip.run_oip(engine, cfg.with_(objective="negative", starts=1))
    assert (negative.best_loss > 0).all()  # every map was held below zero


def test_similarity_forgives_a_shift_but_not_a_different_pattern():
    rng = np.random.default_rng(0)
    base = np.zeros((28, 28))
    base[8:20, 12:15] = 1.0  # a vertical stroke
    moved = np.roll(base, (2, -2), axis=(0, 1))
    other = np.zeros((28, 28))
    other[13:16, 6:22] = 1.0  # a horizontal one
    sim = shift_similarity(np.stack([base, moved, other, rng.normal(size=(28, 28)), np.ones((28, 28))]))
    assert sim[0, 1] > 0.99  # the same stroke, 2 px away (the zeros shifted in differ from the centred ground)
    assert float(np.corrcoef(base.ravel(), moved.ravel())[0, 1]) < 0.5  # a plain correlation misses it
    assert sim[0, 2] < 0.5 and abs(sim[0, 3]) < 0.5
    assert sim[4, 4] == 0 and sim[0, 4] == 0  # a constant image has no pattern
    assert np.allclose(sim, sim.T) and sim[0, 0] == 1
    assert shift_similarity(np.stack([base, moved]), max_shift=0)[0, 1] < 0.5
    assert np.isnan(mean_pairwise(np.ones((1, 1))))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: e.ascend(np.zeros((2, 28, 28)), [0, 1], 1, diversity=-1.0), "diversity=-1.0 is outside 0..100"),
        (lambda e: e.ascend(np.zeros((2, 28, 28)), [0, 1], 1, sign=[1, 0.5]), "sign must be +1"),
        (lambda e: oip.OipConfig(objective="hate").validate(), "objective 'hate' is not one of"),
        (lambda e: oip.OipConfig(diversity=float("nan")).validate(), "diversity=nan is outside"),
        (lambda e: shift_similarity(np.zeros((2, 28, 28)), max_shift=40), "max_shift=40 is outside 0..27"),
        (lambda e: shift_similarity(np.zeros((28, 28))), "shape (N, H, W)"),
        (
            lambda e: e.ascend(np.zeros((1, 28, 28)), [0], 1, scale=0.6),
            "scale=0.6 is outside 0..0.5 (exclusive): a zoom down to 0.40× would shrink a 20-px digit to 8 px",
        ),
        (lambda e: oip.OipConfig(rotate=90.0).validate(), "rotate=90.0 degrees is outside 0..45"),
        (lambda e: ascent.parse_transforms("jitter,warp"), "transform(s) ['warp'] unknown"),
    ],
)
def test_bad_objective_settings_are_refused_naming_the_value(engine, call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(engine)


def test_cli_oip_objectives_and_similarity(tiny_run, capsys):
    from core.cli import main

    args = ["oip", "--model", str(tiny_run), "--layer", "conv2", "--maps", "0-2", "--epochs", "10", "--starts", "3"]
    assert main([*args, "--diversity", "2", "--backend", "local"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["similarity"]) == {"0", "1", "2"} and result["diversity"] == 2.0
    assert main([*args, "--objective", "negative"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["objective"] == "negative"
    assert main([*args, "--objective", "class", "--maps", "7"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["layer"] == "out" and set(result["final_loss"]) == {"7"}
    assert main([*args, "--objective", "neuron"]) == 2
    assert "--neuron ROW,COL" in capsys.readouterr().err
    assert main([*args, "--transforms", "jitter,scale,rotate", "--param", "fourier"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_maps"] == 3
    assert main([*args, "--transforms", "shear"]) == 2
    assert "['shear'] unknown" in capsys.readouterr().err


def test_variants_of_one_map_blog_negative_and_diverse(engine):
    from core.oip.variants import VariantsConfig, run_variants
    from core.progress import ProgressCallback

    class Count(ProgressCallback):
        def __init__(self):
            self.total, self.done, self.labels = 0, 0, []

        def on_begin(self, total, label=""):
            self.total = total

        def on_step(self, done, info=None):
            self.done = done

    base = oip.OipConfig(layer="conv2", epochs=30, seed=4)
    count = Count()
    v = run_variants(engine, VariantsConfig(base, map_index=2, diverse=3, diversity=5.0), progress=count)
    assert count.done == count.total == (1 + 1 + 3 + 3) * 30
    blog = oip.run_oip(engine, base.with_(maps=(2,)))
    np.testing.assert_array_equal(v.blog, blog.images[0, 0])  # the blog's OIP, as the OIP page computed it
    assert v.negative_loss > 0 and v.diverse.shape == (3, 28, 28) and v.similarity.shape == (3, 3)
    assert v.mean_similarity < v.plain_mean_similarity  # the penalty pushed the starts apart
    assert engine._ascend_fn.experimental_get_tracing_count() == 1


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(diverse=1), "diverse=1 OIPs is outside 2..16"),
        (dict(diversity=0.0), "diversity=0 would give"),
        (dict(diversity=-2.0), "diversity=-2.0 is outside"),
        (dict(map_index=99), "map 99 does not exist in layer 'conv2'"),
    ],
)
def test_bad_variant_settings_name_the_value(engine, changes, message):
    from core.oip.variants import VariantsConfig, run_variants

    config = VariantsConfig(oip.OipConfig(layer="conv2", epochs=5), **{"map_index": 0, **changes})
    with pytest.raises(ValueError, match=message):
        run_variants(engine, config)


def test_a_variants_job_runs_in_a_worker_like_here(tiny_run):
    from core.jobs.kinds import job_system
    from core.jobs.local import InlineBackend
    from core.jobs.system import JobSpec
    from core.oip.variants import VariantsConfig

    system = job_system(InlineBackend(1))
    try:
        spec = JobSpec(
            "oip-variants",
            VariantsConfig(oip.OipConfig(layer="conv2", epochs=10), 1, 2, 2.0),
            model=str(tiny_run),
            owner="t",
        )
        handle = system.submit(spec)
        assert handle.wait(120) and handle.state == "finished", handle.message
        assert handle.result.diverse.shape == (2, 28, 28)
    finally:
        system.shutdown()


def test_zoom_and_rotation_transforms_are_seeded_and_off_by_default(engine):
    import tensorflow as tf

    starts = start_images.random_starts([0, 1], 1, seed=5)[:, 0]
    maps = np.array([0, 1])
    plain = engine.ascend(starts, maps, 20, 0.05)
    robust = engine.ascend(starts, maps, 20, 0.05, jitter=1, scale=0.1, rotate=10.0, seed=3)
    again = engine.ascend(starts, maps, 20, 0.05, jitter=1, scale=0.1, rotate=10.0, seed=3)
    assert np.array_equal(robust.images, again.images)  # the job's seed decides every draw
    assert not np.allclose(robust.images, plain.images)
    assert robust.history[-1].mean() > robust.history[0].mean()  # still an ascent
    assert engine._ascend_fn.experimental_get_tracing_count() == 1
    # no zoom and no angle: the identity; a centred disc survives any rotation
    x = tf.constant(starts[..., None])
    same = engine._zoom_rotate(x, tf.constant(0.0), tf.constant(0.0), tf.constant([1, 2]))
    np.testing.assert_allclose(same.numpy(), starts[..., None], atol=1e-5)
    yy, xx = np.mgrid[:28, :28]
    disc = ((yy - 13.5) ** 2 + (xx - 13.5) ** 2 < 36).astype(np.float32)[None, ..., None]
    turned = engine._zoom_rotate(tf.constant(disc), tf.constant(0.0), tf.constant(45.0), tf.constant([4, 0]))
    assert np.abs(turned.numpy() - disc).mean() < 0.02
    assert (
        ascent.parse_transforms("jitter, rotate") == {"jitter": 1, "rotate": 10.0} and ascent.parse_transforms("") == {}
    )


def test_the_fourier_parameterisation_grows_coarse_structure_first(engine):
    starts = start_images.random_starts([0, 1, 2, 3], 1, seed=8)[:, 0]
    maps = np.arange(4)
    pixel = engine.ascend(starts, maps, 30, 0.05)
    fourier = engine.ascend(starts, maps, 30, 0.05, param="fourier")
    assert (fourier.final_loss > 0).all()

    def coarse_share(images):  # share of the change's power below 4 cycles per image
        spectrum = radial_spectrum(images[..., 0] - starts)
        return spectrum[1:4].sum() / spectrum[1:].sum()

    assert coarse_share(fourier.images) > 2 * coarse_share(pixel.images)
    w = ascent.fourier_weights()
    assert w.shape == (28, 15) and w.mean() == pytest.approx(1.0) and w[0, 1] > w[0, 14]
    assert engine._ascend_fn.experimental_get_tracing_count() == 1
    with pytest.raises(ValueError, match="param='wavelet' is not one of"):
        engine.ascend(starts, maps, 1, param="wavelet")
