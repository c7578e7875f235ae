"""Map alignment between two runs (core/alignment.py) on tiny models made in the test."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from core.compare import alignment as al
from core.data import PixelScaler
from core.model import build_model
from core.spec import ArchitectureSpec, ConvSpec

SCALER = PixelScaler(np.full((28, 28), 30.0), np.full((28, 28), 80.0))


def bundle(model):
    return SimpleNamespace(model=model, scaler=SCALER)


def tiny(seed=0, filters=(5, 6, 7), kernels=(3, 3, 3)):
    return build_model(ArchitectureSpec(tuple(ConvSpec(f, k) for f, k in zip(filters, kernels)), dense=(8,)), seed=seed)


def digits(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i in range(n):  # a bright stroke somewhere, so maps respond in different ways
        r, c = rng.integers(3, 20, 2)
        x[i, r : r + 6, c : c + 2] = 250
    return x


def conv1_permuted(model, perm):
    """A copy of ``model`` whose conv1 maps are reordered by ``perm`` (conv2 reads them in the new order, so
    every later layer computes exactly what it did)."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    k1, b1 = model.get_layer("conv1").get_weights()
    copy.get_layer("conv1").set_weights([k1[..., perm], b1[perm]])
    k2, b2 = model.get_layer("conv2").get_weights()
    copy.get_layer("conv2").set_weights([k2[:, :, perm, :], b2])
    return copy


def test_a_run_with_reordered_maps_is_matched_map_for_map():
    model = tiny(seed=3)
    perm = np.array([3, 0, 4, 1, 2])
    result = al.align(bundle(model), bundle(conv1_permuted(model, perm)), digits(), threshold=0.9, batch=16)
    conv1 = result.layers["conv1"]
    pairs = {int(a): int(b) for a, b in conv1.pairs}
    # map m of A is map perm.index(m) of B
    assert pairs == {int(perm[j]): j for j in range(5)}, pairs
    assert conv1.matched.min() > 0.999 and conv1.share == 1.0
    for name in ("conv2", "conv3"):
        layer = result.layers[name]
        live = [m for m in range(layer.maps[0]) if m not in set(layer.dead_a)]
        assert all(int(a) == int(b) for a, b in layer.pairs if int(a) in live)
        assert layer.matched[: len(live)].min() > 0.999
    assert result.n_digits == 60
    assert "5 of 5 maps (100%)" in conv1.sentence()
    crops, titles = conv1.pair_patches(digits(), pairs=5)
    assert crops.shape == (10, 28, 28) and titles[0].startswith("A ") and titles[1].startswith("B ")
    for i in range(5):  # a map and its reordered copy peak on the same digit at the same place
        np.testing.assert_array_equal(crops[2 * i], crops[2 * i + 1])


def test_two_different_initialisations_share_fewer_maps_than_a_copy():
    a, b = tiny(seed=1), tiny(seed=2)
    same = al.align(bundle(a), bundle(a), digits(), batch=25).layers["conv1"]
    other = al.align(bundle(a), bundle(b), digits(), batch=25).layers["conv1"]
    assert same.mean_matched > 0.999
    assert other.mean_matched < same.mean_matched - 0.05
    assert set(other.unmatched_a) == set(range(5)) - {int(x) for x, _ in other.pairs[other.matched >= other.threshold]}


def test_streamed_moments_equal_one_shot_correlation_even_far_from_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(900, 3)) + 1e4 * np.array([1.0, -2.0, 3.0])  # large offsets: a naive Σx² loses them
    b = np.column_stack([a[:, 0] * 2 + rng.normal(size=900), rng.normal(size=900), -a[:, 2]])
    m = al._Moments()
    for s in range(0, 900, 250):
        ca, cb = a[s : s + 250], b[s : s + 250]
        ma, mb = ca.mean(0), cb.mean(0)
        m.merge(len(ca), ma, mb, ((ca - ma) ** 2).sum(0), ((cb - mb) ** 2).sum(0), (ca - ma).T @ (cb - mb))
    want = np.corrcoef(a.T, b.T)[:3, 3:]
    np.testing.assert_allclose(m.correlation(), want, atol=1e-9)


def test_matching_is_optimal_not_greedy():
    # greedy would take (0, 0) = 0.9 and leave (1, 1) = 0.1; the optimum pairs crosswise: 0.8 + 0.8
    corr = np.array([[0.9, 0.8], [0.8, 0.1]])
    result = al.match(corr, threshold=0.5, layer="conv1")
    assert sorted(map(tuple, result.pairs.tolist())) == [(0, 1), (1, 0)]
    assert result.n_matched == 2 and result.unmatched_a == [] and result.unmatched_b == []


def test_layers_of_different_width_match_the_smaller_one():
    corr = np.array([[0.1, 0.95, 0.2], [0.7, 0.0, 0.3]])
    result = al.match(corr, threshold=0.75)
    assert result.maps == (2, 3) and len(result.pairs) == 2
    assert result.n_matched == 1 and result.share == 0.5
    assert result.unmatched_a == [1] and result.unmatched_b == [0, 2]
    json.dumps(result.summary())  # plain types only


def test_a_dead_map_correlates_with_nothing():
    model = tiny(seed=4)
    import keras

    dead = keras.models.clone_model(model)
    dead.set_weights(model.get_weights())
    k1, b1 = model.get_layer("conv1").get_weights()
    k1[..., 2], b1[2] = 0.0, -1.0  # relu(−1) = 0 everywhere
    dead.get_layer("conv1").set_weights([k1, b1])
    layer = al.align(bundle(model), bundle(dead), digits(), layers=("conv1",)).layers["conv1"]
    assert list(layer.dead_b) == [2]
    assert np.all(layer.correlation[:, 2] == 0.0)
    assert 2 in layer.unmatched_b and "never respond" in layer.sentence()


def test_stop_returns_the_digits_seen_so_far():
    class StopAfterOne(al.ProgressCallback):
        def __init__(self):
            self.steps = 0

        def on_step(self, done, info=None):
            self.steps = done

        def should_stop(self):
            return self.steps >= 1

    model = tiny()
    result = al.align(bundle(model), bundle(model), digits(50), layers=("conv1",), batch=20, progress=StopAfterOne())
    assert result.n_digits == 20


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 1.5}, "threshold=1.5 must be a correlation between -1 and 1"),
        ({"threshold": "high"}, "threshold='high'"),
        ({"layers": ("conv9",)}, "run A has no layer 'conv9'"),
        ({"layers": ("flatten",)}, "layer 'flatten' of run A has neither maps nor units"),
        ({"layers": ()}, "no layers to compare"),
        ({"batch": 0}, "batch=0 must be ≥ 1"),
        ({"raw_images": np.zeros((5, 32, 32))}, "digits must be (N ≥ 2, 28, 28), got shape (5, 32, 32)"),
        ({"raw_images": np.zeros((1, 28, 28))}, "digits must be (N ≥ 2, 28, 28)"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    model = tiny()
    args = {"raw_images": digits(10), **kwargs}
    with pytest.raises(ValueError) as err:
        al.align(bundle(model), bundle(model), **args)
    assert message in str(err.value)


def test_architectures_with_maps_of_another_size_are_refused():
    with pytest.raises(ValueError, match=r"layer 'conv1' has maps of 26×26 in run A and 24×24 in run B"):
        al.align(bundle(tiny()), bundle(tiny(kernels=(5, 3, 3))), digits(10), layers=("conv1",))


def test_layers_with_another_number_of_maps_are_compared():
    result = al.align(bundle(tiny(filters=(5, 6, 7))), bundle(tiny(filters=(8, 6, 7))), digits(), layers=("conv1",))
    assert result.layers["conv1"].maps == (5, 8) and len(result.layers["conv1"].pairs) == 5


def test_cli_compare_prints_shares_per_layer_as_json(tmp_path, tiny_mnist, capsys):
    from core.cli import main
    from tests.conftest import write_tiny_run

    a = write_tiny_run(tmp_path / "a", seed=1)
    b = write_tiny_run(tmp_path / "b", seed=2)
    assert (
        main(["compare", str(a), str(b), "--layers", "conv1,conv2", "--mnist", str(tiny_mnist), "--threshold", "0.3"])
        == 0
    )
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert set(out["layers"]) == {"conv1", "conv2"} and out["digits"] == 100
    assert out["layers"]["conv1"]["maps"] == [3, 3] and 0.0 <= out["layers"]["conv1"]["share"] <= 1.0
    assert "conv1:" in captured.err and "of a have a partner in b" in captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--layers", "flatten"], "has neither maps nor units"),
        (["--threshold", "7"], "threshold=7.0 must be a correlation"),
        (["--digits", "1"], "--digits 1 must be at least 2"),
    ],
)
def test_cli_compare_refuses_bad_arguments(tmp_path, tiny_mnist, capsys, argv, message):
    from core.cli import main
    from tests.conftest import write_tiny_run

    a = write_tiny_run(tmp_path / "a", seed=1)
    assert main(["compare", str(a), str(a), "--mnist", str(tiny_mnist), *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_compare_names_a_missing_run(tmp_path, tiny_mnist, capsys):
    from core.cli import main

    assert main(["compare", str(tmp_path / "nope"), "bundled", "--mnist", str(tiny_mnist)]) == 2
    assert "is not a complete run folder" in capsys.readouterr().err
