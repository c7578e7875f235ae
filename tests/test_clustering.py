"""Clustering-MLP engine (core.clustering.cluster_mlp), its CLI commands and the page (AppTest).

Small on purpose: a few thousand digits, a few K, two epochs. The accuracy and speed targets are
checked by bench/bench_clustering.py on the full set.
"""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stdout

import numpy as np
import pytest

from core.clustering import cluster_mlp as cl
from core.data import PixelScaler
from core.progress import ProgressCallback
from tests.conftest import finish_job


class Recorder(ProgressCallback):
    def __init__(self, stop_after: int | None = None) -> None:
        self.begun, self.ended, self.steps, self.epochs = [], 0, [], []
        self.stop_after = stop_after

    def on_begin(self, total, label=""):
        self.begun.append((total, label))

    def on_step(self, done, info=None):
        self.steps.append((done, dict(info or {})))

    def on_epoch(self, epoch, metrics):
        self.epochs.append((epoch, dict(metrics)))

    def on_end(self):
        self.ended += 1

    def should_stop(self):
        return self.stop_after is not None and len(self.steps) >= self.stop_after


@pytest.fixture(scope="module")
def digits(mnist):
    """2,000 training and 1,000 test digits."""
    return mnist.subset(2000, 1000)


@pytest.fixture(scope="module")
def small_sweep(digits):
    rec = Recorder()
    result = cl.sweep(digits, cl.SweepConfig(ks=(5, 10, 20, 40), silhouette_sample=600, n_train=2000), rec)
    return result, rec


@pytest.fixture(scope="module")
def small_pair(digits):
    rec = Recorder()
    pair = cl.train_pair(digits, 12, cl.MLPConfig(epochs=3), reference=True, progress=rec)
    return pair, rec


# --------------------------------------------------------------------------- pixels, centroids, purity
def test_normalize_pixels_unit_raw_standard(digits):
    imgs = np.concatenate([digits.x_train[:5], np.zeros((1, 28, 28), np.uint8)])
    unit = cl.normalize_pixels(imgs, "unit")
    assert unit.shape == (6, 784) and unit.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(unit[:5], axis=1), 1, rtol=1e-5)
    assert np.all(unit[5] == 0)  # an empty image stays 0 instead of NaN
    raw = cl.normalize_pixels(imgs, "raw")
    assert raw.min() >= 0 and raw.max() <= 1 and raw.max() > 0.9
    scaler = PixelScaler.fit(digits.x_train)
    std = cl.normalize_pixels(digits.x_train, "standard", scaler)
    assert abs(float(std.mean())) < 0.05


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(images=np.zeros((3, 28, 27)), normalization="unit"), "(N, 28, 28)"),
        (dict(images=np.zeros((0, 28, 28)), normalization="unit"), "empty"),
        (dict(images=np.zeros((2, 28, 28)), normalization="l1"), "is not one of"),
        (dict(images=np.zeros((2, 28, 28)), normalization="standard"), "needs a PixelScaler"),
    ],
)
def test_normalize_pixels_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cl.normalize_pixels(**kwargs)


def test_centroid_images_map_back_to_pixels():
    half = np.full((1, 784), 0.5, np.float32)
    assert np.all(cl.centroid_images(half, "raw") == 128)
    direction = np.zeros((1, 784), np.float32)
    direction[0, :10] = [0.1] * 9 + [0.2]
    img = cl.centroid_images(direction, "unit")
    assert img.shape == (1, 28, 28) and img.dtype == np.uint8
    assert img.max() == 255 and img.ravel()[0] == 128
    scaler = PixelScaler(np.full((28, 28), 100.0), np.full((28, 28), 50.0))
    assert np.all(cl.centroid_images(np.ones((2, 784)), "standard", scaler) == 150)


def test_cluster_purity_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2])
    digits = np.array([3, 3, 5, 7, 7, 1])
    majority, purity, sizes = cl.cluster_purity(labels, digits, k=4)
    assert list(majority[:3]) == [3, 7, 1]
    np.testing.assert_allclose(purity[:3], [2 / 3, 1, 1])
    assert list(sizes) == [3, 2, 1, 0] and math.isnan(purity[3])
    with pytest.raises(ValueError, match="0..3"):
        cl.cluster_purity(np.array([4]), np.array([1]), k=4)


# --------------------------------------------------------------------------- silhouette
def test_silhouette_from_shared_distances_equals_scikit_learn():
    from scipy.spatial.distance import cdist
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(c, 1.0, (40, 5)) for c in (0, 3, 6)]).astype(np.float32)
    labels = np.repeat([4, 9, 2], 40)
    labels[0] = 7  # a cluster with a single member scores 0
    d = cl.pairwise_distances(pts)
    np.testing.assert_allclose(d, cdist(pts.astype(np.float64), pts.astype(np.float64)), atol=1e-4)
    assert np.all(np.diag(d) == 0)
    assert cl.silhouette_from_distances(d, labels) == pytest.approx(silhouette_score(pts, labels), abs=1e-5)
    assert math.isnan(cl.silhouette_from_distances(d, np.zeros(120, int)))  # one cluster: undefined


def test_sample_indices_are_seeded_and_distinct():
    a, b = cl.sample_indices(1000, 100, 3), cl.sample_indices(1000, 100, 3)
    assert np.array_equal(a, b) and len(np.unique(a)) == 100
    assert not np.array_equal(a, cl.sample_indices(1000, 100, 4))
    assert np.array_equal(cl.sample_indices(50, 100, 0), np.arange(50))


# --------------------------------------------------------------------------- sweep
@pytest.mark.parametrize(
    "text, expected",
    [
        ("10:170:10", tuple(range(10, 171, 10))),
        ("10:30", tuple(range(10, 31))),
        ("70,10, 40", (10, 40, 70)),
        ("5:5:3", (5,)),
    ],
)
def test_parse_ks(text, expected):
    assert cl.parse_ks(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("ten", "start:stop:step"),
        ("10:5:1", "start:stop:step"),
        ("10:20:0", "start:stop:step"),
        ("1:2:3:4", "start:stop:step"),
        ("", "empty"),
        ("1,5", r"\[1\] are outside 2..1000"),
        ("10:2000:500", "outside"),
    ],
)
def test_parse_ks_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        cl.parse_ks(text)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(silhouette_sample=50), "silhouette_sample=50"),
        (dict(normalization="pca"), "'pca' is not one of"),
        (dict(ks=(5, 3000)), r"\[3000\]"),
        (dict(n_init=0), "n_init=0"),
        (dict(n_train=3), "n_train=3"),
    ],
)
def test_sweep_config_rejects(change, message, digits):
    with pytest.raises(ValueError, match=message):
        cl.sweep(digits, cl.SweepConfig(**{**dict(ks=(5,), silhouette_sample=200, n_train=500), **change}))


def test_sweep_figures_on_a_small_sample(small_sweep):
    result, rec = small_sweep
    assert [p.k for p in result.points] == [5, 10, 20, 40] and result.status == "completed"
    inertia = [p.inertia for p in result.points]
    assert all(b < a * 1.02 for a, b in zip(inertia, inertia[1:])), inertia  # falls with K (monotone-ish)
    assert inertia[-1] < 0.9 * inertia[0]
    for p in result.points:
        assert -1 <= p.silhouette <= 1 and math.isfinite(p.silhouette)
        assert p.fit_seconds > 0 and p.silhouette_seconds >= 0
        assert p.centroids.shape == (p.k, 28, 28) and p.centroids.dtype == np.uint8
        assert p.sizes.sum() == 2000 and set(p.majority) <= set(range(10))
        assert 0.1 <= p.overall_purity <= 1
    assert result.point(40).overall_purity > result.point(5).overall_purity
    assert result.n_sample == 600 and result.n_points == 2000
    assert rec.begun == [(4, "k-means sweep")] and rec.ended == 1
    assert [s[0] for s in rec.steps] == [0, 1, 2, 3, 4] and rec.steps[-1][1]["k"] == 40
    assert "distances between the 600 sampled digits" in rec.steps[0][1]["phase"]  # the first seconds say why
    assert [m["k"] for _, m in rec.epochs] == [5, 10, 20, 40]  # one record per K: the page's live figure
    json.dumps(result.to_dict())
    with pytest.raises(ValueError, match="K=7 is not in this sweep"):
        result.point(7)


def test_sweep_stops_after_the_current_k_on_request(digits):
    rec = Recorder(stop_after=1)
    result = cl.sweep(digits, cl.SweepConfig(ks=(5, 10, 15), silhouette_sample=300, n_train=800), rec)
    assert result.status == "stopped" and [p.k for p in result.points] == [5] and rec.ended == 1


def test_sweep_split_over_parts_gives_the_figures_of_one_sweep(digits):
    """With a context that runs parts in parallel (as on Ray) the Ks are swept in groups; every K gets
    the same sample and seed, so its figures equal those of one sweep."""
    from core.jobs.context import JobContext

    class TwoWorkers(JobContext):
        parallelism = 2

        def mnist(self, source=None):
            return digits

    config = cl.SweepConfig(ks=(4, 6, 8), silhouette_sample=300, n_train=600)
    rec = Recorder()
    split = cl.sweep(digits, config, rec, context=TwoWorkers())
    whole = cl.sweep(digits, config)
    assert [p.k for p in split.points] == [4, 6, 8] and split.status == "completed"
    for a, b in zip(split.points, whole.points):
        assert a.inertia == pytest.approx(b.inertia, rel=1e-6) and a.silhouette == pytest.approx(b.silhouette)
    assert rec.begun == [(3, "k-means sweep")] and sorted(m["k"] for _, m in rec.epochs) == [4, 6, 8]
    assert rec.steps[-1][0] == 3


def test_sweep_can_cluster_train_and_test_digits(digits):
    result = cl.sweep(
        digits, cl.SweepConfig(ks=(6,), silhouette_sample=300, n_train=500, include_test=True, normalization="raw")
    )
    assert result.n_points == 1500 and result.points[0].sizes.sum() == 1500


# --------------------------------------------------------------------------- features and the lambda rule
@pytest.mark.parametrize("l2, k, expected", [(0.2, 100, 0.2 * 100 / 784), (0.2, 784, 0.2), (2e-3, 70, 2e-3 * 70 / 784)])
def test_lambda_rule(l2, k, expected):
    assert cl.lambda_for_inputs(l2, k) == pytest.approx(expected)
    assert cl.lambda_for_inputs(0.2, 100) == pytest.approx(0.0255, abs=1e-4)  # the blog's example: ~0.025


def test_lambda_rule_rejects_no_inputs():
    with pytest.raises(ValueError, match="n_inputs=0"):
        cl.lambda_for_inputs(0.1, 0)


@pytest.mark.parametrize("centre", [True, False])
def test_cluster_features_have_k_columns_zero_mean_unit_std(digits, centre):
    feats = cl.fit_cluster_features(digits.x_train, digits.y_train, 12, centre_rows=centre)
    f = feats.transform(digits.x_train)
    assert f.shape == (2000, 12) and f.dtype == np.float32
    np.testing.assert_allclose(f.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(f.std(axis=0), 1, atol=1e-3)
    assert feats.transform(digits.x_test).shape == (1000, 12)
    d = feats.distances(digits.x_test[:3])
    assert np.all(d >= 0) and d.shape == (3, 12)
    assert feats.centroids.shape == (12, 28, 28) and feats.sizes.sum() == 2000


def test_centring_removes_the_shared_part_of_the_distances(digits):
    feats = cl.fit_cluster_features(digits.x_train, digits.y_train, 12, normalization="raw")
    raw = feats.distances(digits.x_train)
    assert np.corrcoef(raw, rowvar=False).mean() > 0.3  # plain distances are strongly correlated
    centred = feats.transform(digits.x_train)
    assert abs(np.corrcoef(centred, rowvar=False).mean()) < 0.2


# --------------------------------------------------------------------------- MLP
@pytest.mark.parametrize(
    "change, message",
    [
        (dict(activation="tanh"), "'tanh' is not one of"),
        (dict(learning_rate=0), "learning_rate=0"),
        (dict(momentum=1.0), "momentum=1.0"),
        (dict(batch_size=0), "batch_size=0"),
        (dict(l2=-1), "l2=-1"),
        (dict(epochs=0), "epochs=0"),
        (dict(hidden=()), "hidden=()"),
        (dict(decay=-0.1), "decay=-0.1"),
    ],
)
def test_mlp_config_rejects(change, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cl.MLPConfig(**change).validate()


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.zeros((4,)), np.zeros(4), r"shape \(N, D\)"),
        (np.zeros((4, 3)), np.zeros(5), r"shape \(4,\)"),
        (np.zeros((4, 3)), np.full(4, 10), "digits 0..9"),
        (np.full((4, 3), np.nan), np.zeros(4), "NaN"),
    ],
)
def test_trainer_rejects_bad_arrays(x, y, message):
    with pytest.raises(ValueError, match=message):
        cl.MLPTrainer(x, y, np.zeros((2, 3)), np.zeros(2), cl.MLPConfig(epochs=1))


def test_learning_rate_decreases():
    c = cl.MLPConfig(learning_rate=0.3, decay=0.05)
    assert c.lr_at(1) == 0.3 and c.lr_at(21) == pytest.approx(0.15)


def test_pair_records_cost_with_and_without_l2_and_accuracies(small_pair):
    pair, _ = small_pair
    for r, n_in in ((pair.cluster, 12), (pair.reference, 784)):
        assert r.n_inputs == n_in and len(r.records) == 3 and r.status == "completed"
        assert r.l2 == pytest.approx(cl.lambda_for_inputs(2e-3, n_in))
        kernels = [layer.kernel.numpy() for layer in r.model.layers]
        last = r.records[-1]
        assert last.l2_term == pytest.approx(
            r.l2 * sum(float((k.astype(np.float64) ** 2).sum()) for k in kernels), rel=1e-4
        )
        for e in r.records:
            assert e.cost == pytest.approx(e.cost_no_l2 + e.l2_term)
            assert 0 <= e.test_accuracy <= 1 and e.seconds > 0 and e.wall_time >= e.train_time
        assert r.records[-1].cost_no_l2 < r.records[0].cost_no_l2  # it learns
        assert r.test_accuracy > 0.5  # far above the 10 % of guessing after 3 epochs on 2,000 digits
        assert [layer.name for layer in r.model.layers] == ["hidden1", "hidden2", "out"]
    assert pair.cluster.params == 12 * 70 + 70 + 70 * 30 + 30 + 30 * 10 + 10
    assert pair.reference.params == 57_390  # the blog's reference MLP


def test_pair_progress_and_json(small_pair):
    pair, rec = small_pair
    assert rec.begun == [(1 + 2 * 3, "cluster MLP")] and rec.ended == 1
    assert [s[0] for s in rec.steps] == [0] + list(range(1, 8))
    assert rec.steps[0][1]["phase"].startswith("clustering")
    assert [(e, m["model"]) for e, m in rec.epochs] == [
        (1, "reference"),
        (1, "cluster"),
        (2, "reference"),
        (2, "cluster"),
        (3, "reference"),
        (3, "cluster"),
    ]
    d = json.loads(json.dumps(pair.to_dict()))
    assert d["k"] == 12 and len(d["cluster"]["epochs"]) == 3 and set(d["comparison"]) == {"train", "wall"}


def test_warm_up_does_not_change_the_weights(digits):
    x = np.random.default_rng(0).normal(size=(600, 5)).astype(np.float32)
    t = cl.MLPTrainer(x, digits.y_train[:600], x[:100], digits.y_train[:100], cl.MLPConfig(epochs=1))
    before = [w.copy() for w in t.model.get_weights()]
    assert t.warm_up() > 0 and t.warm_up() == 0.0
    assert all(np.array_equal(a, b) for a, b in zip(before, t.model.get_weights()))
    t.run_epoch()
    assert not all(np.array_equal(a, b) for a, b in zip(before, t.model.get_weights()))
    assert t.predict(x[:4]).shape == (4, 10)


def test_training_stops_after_the_current_epoch(digits):
    x = np.random.default_rng(1).normal(size=(500, 4)).astype(np.float32)
    rec = Recorder(stop_after=2)
    trainer = cl.MLPTrainer(x, digits.y_train[:500], x[:50], digits.y_train[:50], cl.MLPConfig(epochs=5), "x")
    r = cl.train_together([trainer], 5, rec, 0, {})["x"]
    assert r.status == "stopped" and len(r.records) == 2 and "after epoch 2" in r.message


def _result(name, accs, epoch_s, preprocess=0.0):
    recs, t = [], 0.0
    for i, a in enumerate(accs, 1):
        t += epoch_s
        recs.append(cl.EpochRecord(i, 0.1, 1, 1, 0, 1, a, a, epoch_s, epoch_s, t, 2 * t))
    return cl.MLPResult(name, 1, 0, 0, cl.MLPConfig(), recs, "completed", preprocess_seconds=preprocess)


@pytest.mark.parametrize(
    "ref_accs, clu_accs, window, speedup, clu_epoch",
    [
        ([0.90, 0.95, 0.96, 0.96], [0.95, 0.97, 0.97, 0.97], 1, 3 * 4.0 / 2, 2),  # ref first ≥0.96 at epoch 3
        ([0.90, 0.96, 0.94, 0.98], [0.96, 0.96, 0.97, 0.97], 2, 2 * 4.0 / 1, 1),  # target = mean(0.94, 0.98) = 0.96
        ([0.90, 0.95, 0.97, 0.99], [0.95, 0.96, 0.97, 0.98], 1, None, None),  # never reached
    ],
)
def test_compare_by_hand(ref_accs, clu_accs, window, speedup, clu_epoch):
    ref, clu = _result("reference", ref_accs, 4.0), _result("cluster", clu_accs, 1.0, preprocess=6.0)
    c = cl.compare(ref, clu, "train", window)
    assert c.cluster_epoch == clu_epoch and c.epoch_time_ratio == pytest.approx(4.0)
    if speedup is None:
        assert c.speedup is None and c.speedup_with_clustering is None
    else:
        assert c.speedup == pytest.approx(speedup)
        assert c.speedup_with_clustering == pytest.approx(c.reference_seconds / (c.cluster_seconds + 6.0))
    assert cl.compare(ref, clu, "wall", window).reference_seconds == pytest.approx(2 * c.reference_seconds)
    with pytest.raises(ValueError, match="clock 'cpu'"):
        ref.time_to_accuracy(0.9, "cpu")


# --------------------------------------------------------------------------- figures
def test_figures(small_sweep, small_pair):
    fig = cl.sweep_figure(small_sweep[0].points)
    assert len(fig.data) == 4 and list(fig.data[0].x) == [5, 10, 20, 40]
    records = [
        {"model": r.name, **vars(e)} for r in (small_pair[0].cluster, small_pair[0].reference) for e in r.records
    ]
    fig = cl.curves_figure(records)
    names = {t.name for t in fig.data}
    assert {"cluster: cost incl. L2", "cluster: cost without L2", "reference: test accuracy"} <= names
    assert cl.centroid_titles(np.array([3, 0]), np.array([0.5, np.nan])) == ["0: 3 · 50 %", "1: empty"]


# --------------------------------------------------------------------------- CLI
def _cli(argv) -> tuple[int, dict | None]:
    from core import cli

    buf = io.StringIO()
    with redirect_stdout(buf):
        code = cli.main(argv)
    lines = buf.getvalue().strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 else None)


@pytest.mark.integration
def test_cli_cluster_writes_json(tmp_path):
    out = tmp_path / "sweep.json"
    code, last = _cli(
        ["cluster", "--k", "5:15:5", "--train-limit", "800", "--silhouette-sample", "300", "--out", str(out)]
    )
    assert code == 0 and last["ks"] == [5, 10, 15] and len(last["silhouette"]) == 3 and last["seconds"] > 0
    assert last["n_points"] == 800 and last["silhouette_sample"] == 300
    saved = json.loads(out.read_text())
    assert [p["k"] for p in saved["points"]] == [5, 10, 15] and not list(tmp_path.glob(".*tmp"))


@pytest.mark.integration
def test_cli_cluster_mlp_with_reference(tmp_path):
    out = tmp_path / "mlp.json"
    code, last = _cli(
        [
            "cluster-mlp",
            "--k",
            "8",
            "--epochs",
            "2",
            "--reference",
            "--train-limit",
            "800",
            "--test-limit",
            "300",
            "--out",
            str(out),
        ]
    )
    assert code == 0 and last["cluster"]["n_inputs"] == 8 and last["reference"]["n_inputs"] == 784
    assert set(last["comparison"]) == {"train", "wall"} and last["seconds"] > 0
    assert len(json.loads(out.read_text())["reference"]["epochs"]) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["cluster", "--k", "x"], "start:stop:step"),
        (["cluster", "--k", "5", "--silhouette-sample", "5"], "silhouette_sample=5"),
        (["cluster-mlp", "--epochs", "0"], "epochs=0"),
        (["cluster-mlp", "--learning-rate", "-1"], "learning_rate=-1"),
        (["cluster-mlp", "--train-limit", "5"], "--train-limit 5"),
        (["cluster", "--k", "5", "--train-limit", "100", "--out", "/nonexistent/dir/x.json"], "does not exist"),
    ],
)
def test_cli_rejects_bad_arguments(argv, message, capsys):
    from core import cli

    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- page
def _wait(at, slot, timeout=180):
    job = finish_job(at, slot, timeout)
    assert job.state == "finished", job.message
    assert not at.exception, [e.value for e in at.exception]


def test_page_sweep_centroids_and_mlps(app_test):
    at = app_test("pages/clustering.py")
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="clu_n_train").set_value(1000)
    at.number_input(key="clu_k_from").set_value(5)
    at.number_input(key="clu_k_to").set_value(15)
    at.number_input(key="clu_k_step").set_value(5)
    at.number_input(key="clu_sil_sample").set_value(300).run()
    assert any("sample" in c.value and "all pairs" in c.value for c in at.caption)  # why it is sampled
    at.button(key="clu_sweep_run").click().run()
    assert at.button(key="clu_sweep_run").label == "Sweeping…" and at.button(key="clu_sweep_run").disabled
    _wait(at, "clu_sweep_job")
    assert at.select_slider(key="clu_centroid_k").value == 10  # the middle K when 70 was not swept
    at.select_slider(key="clu_centroid_k").set_value(15).run()
    assert any("K = 15: mean purity" in c.value for c in at.caption)
    # kept per settings; the button says what a click does: nothing new for the sweep on show
    assert at.button(key="clu_sweep_run").label == "Sweep shown below" and at.button(key="clu_sweep_run").disabled
    at.number_input(key="clu_k_to").set_value(10).run()
    assert at.button(key="clu_sweep_run").label == "Run sweep"
    at.number_input(key="clu_k_to").set_value(15).run()
    assert at.button(key="clu_sweep_run").label == "Sweep shown below"

    at.number_input(key="clu_k").set_value(8)
    at.number_input(key="clu_epochs").set_value(2).run()
    at.button(key="clu_mlp_run").click().run()
    _wait(at, "clu_mlp_job")
    assert not at.button(key="clu_mlp_run").disabled  # the end shows by itself
    table = at.dataframe[-1].value
    assert list(table["MLP"]) == ["cluster (8 inputs)", "reference (784 inputs)"]
    assert {m.label for m in at.metric} >= {"reference's final accuracy", "speed-up to reach it"}


def test_page_rejects_an_empty_k_range(app_test):
    at = app_test("pages/clustering.py")
    at.number_input(key="clu_k_from").set_value(50)
    at.number_input(key="clu_k_to").set_value(20).run()
    assert any("must not be smaller" in e.value for e in at.error)
    assert at.button(key="clu_sweep_run").disabled
