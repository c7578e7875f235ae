"""Clustering-MLP page: k-means sweep over K, centroids, and an MLP on cluster-distance features
against the same MLP on raw pixels (the blog's MLP series XIV).

Thin: widgets here, the maths and figures in core.clustering.cluster_mlp. Both long computations are jobs
(core.jobs.system)
shown by the shared job panel; finished sweeps and MLP pairs are kept per settings in the session's ``ClusteringState``.
"""

from __future__ import annotations

from core.device import quiet_tensorflow_logs

# First of all: a deep link to a fresh server runs this file before app.py (Streamlit's pages/ folder mode).
quiet_tensorflow_logs()

import json

import numpy as np
import pandas as pd
import streamlit as st

from core.clustering import cluster_mlp
from core.figures import common as plots
from core.jobs.kinds import ClusterMlpConfig, SweepJobConfig
from core.jobs.system import JobHandle, JobSnapshot, JobSpec
from pages.ui import jobs, menu, resources, widgets
from pages.ui.state import session

P = "clu_"  # widget key prefix
SWEEP_JOB = P + "sweep_job"
MLP_JOB = P + "mlp_job"

menu.page_frame()
st.title("Clustering-MLP")
st.write(
    "MiniBatchKMeans finds K clusters of MNIST digits in pixel space. Each digit is then described by its K "
    "distances to the cluster centres, and these K numbers (instead of 784 pixels) feed a small MLP "
    "(hidden layers 70 and 30). Fewer inputs mean much less work per epoch. Below, the same MLP trained "
    "on the 784 standardized pixels is the reference."
)

mnist = resources.get_mnist()
if mnist is None:
    st.stop()


# --------------------------------------------------------------------------- common settings
st.subheader("Clustering settings")
c = st.columns(4)
normalization = c[0].selectbox(
    "Clustered space",
    cluster_mlp.NORMALIZATIONS,
    persist_state="session",
    key=P + "norm",
    format_func={"unit": "unit-length digits", "raw": "raw pixels / 255", "standard": "standardized pixels"}.get,
    help="Digits scaled to unit length are clustered by shape, not by how much ink they have; "
    "in our runs the MLP with K = 70 gained about +0.2 to +0.3 % test accuracy over raw pixels.",
)
n_train = int(
    widgets.number(
        c[1],
        "Training digits",
        1000,
        len(mnist.x_train),
        len(mnist.x_train),
        1000,
        key=P + "n_train",
        help="The first N training digits; all 10,000 test digits are always used for the MLPs' test accuracy.",
    )
)
include_test = c[2].checkbox(
    "Cluster train + test digits",
    False,
    persist_state="session",
    key=P + "include_test",
    help="The blog clustered all 70,000 digits. Off: the test digits stay unseen.",
)
seed = int(widgets.number(c[3], "Seed", 0, 2**31 - 1, 0, key=P + "seed"))
data = mnist.subset(n_train, None)

# --------------------------------------------------------------------------- 1 · sweep
st.subheader("1 · How many clusters? Sweep over K")
c = st.columns(4)
k_from = int(widgets.number(c[0], "K from", 2, 500, 10, key=P + "k_from"))
k_to = int(widgets.number(c[1], "K to", 2, 500, 170, key=P + "k_to"))
k_step = int(widgets.number(c[2], "K step", 1, 200, 10, key=P + "k_step"))
sil_sample = int(
    widgets.number(
        c[3],
        "Silhouette sample",
        100,
        cluster_mlp.MAX_SILHOUETTE_SAMPLE,
        cluster_mlp.DEFAULT_SILHOUETTE_SAMPLE,
        1000,
        key=P + "sil_sample",
    )
)
st.caption(
    "The silhouette coefficient compares each digit's mean distance to its own cluster with that to the "
    "nearest other cluster, so the exact value needs the distances between *all pairs* of digits: "
    f"{len(data.x_train) + (len(mnist.x_test) if include_test else 0):,}² / 2 pairs here. It is therefore "
    "computed on a seeded random sample of digits (one distance matrix shared by all K), which estimates "
    "the mean to about ±0.01. Inertia (sum of squared distances to the nearest centre) uses all digits."
)


def _sweep_config() -> cluster_mlp.SweepConfig:
    if k_to < k_from:
        raise ValueError(f"'K to' ({k_to}) must not be smaller than 'K from' ({k_from})")
    return cluster_mlp.SweepConfig(
        ks=tuple(range(k_from, k_to + 1, k_step)),
        silhouette_sample=sil_sample,
        include_test=include_test,
        normalization=normalization,
        n_train=n_train,
        seed=seed,
    )


def _keep_sweep(handle: JobHandle) -> None:
    result: cluster_mlp.SweepResult = handle.result
    memory = session().clustering
    memory.sweeps[result.config] = result
    memory.sweep_shown = result.config


def _describe_sweep(snap: JobSnapshot) -> str:
    if "k" in snap.info:
        return f"K = {snap.info['k']} done ({snap.done} of {snap.total} values of K)"
    return ""


def _live_sweep(snap: JobSnapshot) -> None:
    if snap.records:
        widgets.chart(cluster_mlp.sweep_figure(sorted(snap.records, key=lambda r: r["k"])), key=P + "sweep_live")


def _show_sweep(config: cluster_mlp.SweepConfig) -> None:
    session().clustering.sweep_shown = config


sweeps: dict = session().clustering.sweeps
sweep_busy = jobs.job_active(SWEEP_JOB)
config_error = None
try:
    sweep_config = _sweep_config()
    sweep_config.validate(n_train + (len(mnist.x_test) if include_test else 0))
except ValueError as exc:
    sweep_config, config_error = None, str(exc)
if config_error:
    st.error(config_error)
stored = sweep_config is not None and sweep_config in sweeps
on_show = stored and session().clustering.sweep_shown == sweep_config
if stored and not sweep_busy:  # what a click does must be what the button says
    if st.button(
        "Sweep shown below" if on_show else "Show the stored sweep",
        type="primary",
        key=P + "sweep_run",
        disabled=on_show,
        help="These settings were swept in this session and their result is shown below; "
        "change a setting to sweep again."
        if on_show
        else "These settings were swept earlier in this session: a click shows that result at once.",
    ):
        _show_sweep(sweep_config)
        st.rerun()
else:
    jobs.start_button(
        SWEEP_JOB,
        "Run sweep",
        lambda: JobSpec("sweep", SweepJobConfig(sweep_config), title="k-means sweep"),
        key=P + "sweep_run",
        busy_label="Sweeping…",
        disabled=sweep_config is None,
        help="Runs as a job; results are kept per settings for this session.",
    )
jobs.job_panel(
    SWEEP_JOB,
    on_end=_keep_sweep,
    describe=_describe_sweep,
    live=_live_sweep,
    stop_help="Ends the sweep after the current K; the values of K done so far are kept.",
)

shown = session().clustering.sweep_shown
result: cluster_mlp.SweepResult | None = sweeps.get(shown) if shown is not None else None
if result is not None:
    if shown != sweep_config:
        st.caption("Showing the last sweep; its settings differ from the ones above.")
    if result.status == "stopped":
        st.warning(f"The sweep was stopped after {len(result.points)} of {len(result.config.ks)} values of K.")
    widgets.chart(cluster_mlp.sweep_figure(result.points), key=P + "sweep_chart")
    frame = pd.DataFrame([p.summary() for p in result.points])
    st.caption(
        f"{result.n_points:,} digits clustered · silhouette on {result.n_sample:,} of them (their distance "
        f"matrix: {result.distance_seconds:.1f} s, once) · whole sweep {result.seconds:.1f} s. The blog saw "
        "no clear elbow either; it picked K = 70 from bumps of the silhouette."
    )
    with st.expander("Figures per K"):
        st.dataframe(frame.rename(columns={"overall_purity": "purity (all clusters)"}), hide_index=True)
    st.download_button(
        "Figures per K (.json)",
        json.dumps(result.to_dict(), indent=1),
        file_name="kmeans_sweep.json",
        mime="application/json",
        key=P + "dl_sweep",
        on_click="ignore",
        help="Settings, inertia, silhouette, purity and times of every K, as python -m core cluster --out writes them.",
    )

    st.markdown(
        "**Cluster centres** as 28×28 images. Title: cluster number: its majority digit · the share of "
        "its digits that are that digit (purity)."
    )
    ks = [p.k for p in result.points]
    default_k = 70 if 70 in ks else ks[len(ks) // 2]
    if st.session_state.get(P + "centroid_k") not in ks:
        st.session_state[P + "centroid_k"] = default_k
    k_shown = st.select_slider("Centres for K", ks, persist_state="session", key=P + "centroid_k")
    point = result.point(k_shown)
    order = np.argsort(point.majority * 10 - np.nan_to_num(point.purity), kind="stable")
    sort_by_digit = st.toggle("Sort by majority digit", True, persist_state="session", key=P + "centroid_sort")
    idx = order if sort_by_digit else np.arange(k_shown)
    titles = cluster_mlp.centroid_titles(point.majority, point.purity)
    widgets.chart(
        plots.image_grid(point.centroids[idx], [titles[i] for i in idx], cols=12, height_per_row=110),
        key=P + "centroids",
    )
    digits_covered = sorted(set(int(d) for d in point.majority[point.sizes > 0]))
    missing = sorted(set(range(10)) - set(digits_covered))
    st.caption(
        f"K = {k_shown}: mean purity {point.overall_purity * 100:.1f} % (weighted by cluster size)"
        + (
            f"; no cluster has a majority of digit(s) {missing}."
            if missing
            else "; every digit is the majority of at least one cluster."
        )
    )

# --------------------------------------------------------------------------- 2 · MLPs
st.subheader("2 · MLP on K cluster distances vs MLP on 784 pixels")
d = cluster_mlp.MLPConfig()
c = st.columns(4)
k_mlp = int(widgets.number(c[0], "K (inputs of the cluster MLP)", 2, 500, 70, key=P + "k"))
epochs = int(widgets.number(c[1], "Epochs", 1, 500, d.epochs, key=P + "epochs"))
activation = c[2].selectbox(
    "Activation (hidden layers)", cluster_mlp.MLP_ACTIVATIONS, persist_state="session", key=P + "activation"
)
with_reference = c[3].checkbox(
    "Also the pixel MLP",
    True,
    persist_state="session",
    key=P + "reference",
    help="Trains the reference MLP on the 784 standardized pixels with the same settings, "
    "epoch by epoch beside the cluster MLP, to compare the two.",
)
c = st.columns(4)
lr = widgets.number(
    c[0],
    "Learning rate",
    0.001,
    10.0,
    d.learning_rate,
    format="%.3f",
    key=P + "lr",
    help="Of SGD on the mean cost of a mini-batch of 500.",
)
decay = widgets.number(
    c[1],
    "Decay per epoch",
    0.0,
    10.0,
    d.decay,
    format="%.3f",
    key=P + "decay",
    help="Learning rate of epoch e = lr / (1 + decay·(e−1)).",
)
momentum = widgets.number(c[2], "Momentum", 0.0, 0.99, d.momentum, key=P + "momentum")
l2 = widgets.number(
    c[3],
    "λ (L2, for 784 inputs)",
    0.0,
    1.0,
    d.l2,
    format="%.5f",
    key=P + "l2",
    help="Cost = mean cross-entropy + λ_eff · Σ w² over the kernels.",
)
centre_rows = st.checkbox(
    "Centre each digit's distances before standardizing",
    True,
    persist_state="session",
    key=P + "centre",
    help="Subtracts each digit's mean distance to all centres (the part all K distances "
    "share) before every feature is standardized. Measured with K = 70: +0.0 to +0.4 % "
    "final test accuracy (6 runs, mean +0.13 %) and 97.4 % reached a few epochs sooner.",
)
st.caption(
    f"The blog's rule for fewer inputs keeps the L2 penalty comparable: λ_cluster = λ · K / 784 = "
    f"{l2:g} · {k_mlp} / 784 = {cluster_mlp.lambda_for_inputs(l2, k_mlp):.3g}. Both MLPs use every other setting "
    "alike: hidden layers 70 and 30, SGD with momentum, mini-batch 500."
)

mlp_config = cluster_mlp.MLPConfig(
    activation=activation,
    learning_rate=float(lr),
    decay=float(decay),
    momentum=float(momentum),
    l2=float(l2),
    epochs=epochs,
    seed=seed + 1,
)
mlp_job = ClusterMlpConfig(
    k=k_mlp,
    mlp=mlp_config,
    reference=with_reference,
    normalization=normalization,
    include_test=include_test,
    seed=seed,
    centre_rows=centre_rows,
    n_train=n_train,
)
mlp_busy = jobs.job_active(MLP_JOB)


def _mlp_spec(job: ClusterMlpConfig) -> JobSpec | None:
    """The cluster-MLP job, or None (with a message) when K does not fit the digits."""
    memory = session().clustering
    memory.mlp_error = None
    n = job.n_train or len(mnist.x_train)
    if not 2 <= job.k <= n - 1:
        memory.mlp_error = f"K={job.k} is outside 2..{n - 1} for {n} training digits"
        return None
    return JobSpec("cluster-mlp", job, title="cluster-MLP training")


def _keep_pair(handle: JobHandle) -> None:
    memory = session().clustering
    memory.pairs[handle.spec.config] = handle.result
    memory.pair_shown = handle.spec.config


def _describe_mlp(snap: JobSnapshot) -> str:
    info = snap.info
    if info.get("model"):
        return (
            f"Epoch {int(info['epoch'])} of {mlp_config.epochs} · {info['model']} MLP: test accuracy "
            f"{info['test_accuracy'] * 100:.2f} %"
        )
    return ""


def _live_mlp(snap: JobSnapshot) -> None:
    if snap.records:
        widgets.chart(cluster_mlp.curves_figure(snap.records), key=P + "mlp_live")


jobs.start_button(MLP_JOB, "Train", lambda: _mlp_spec(mlp_job), key=P + "mlp_run", busy_label="Training…")
if session().clustering.mlp_error:
    st.error(session().clustering.mlp_error)
jobs.job_panel(
    MLP_JOB,
    on_end=_keep_pair,
    describe=_describe_mlp,
    live=_live_mlp,
    stop_help="Ends training after the current epoch; the epochs done so far are shown.",
)


def _result_table(pair: cluster_mlp.PairResult) -> pd.DataFrame:
    runs = [pair.cluster] + ([pair.reference] if pair.reference is not None else [])
    comp = pair.comparisons().get("train")
    rows = []
    for r in runs:
        hit = r.time_to_accuracy(comp.target) if comp else None
        rows.append(
            {
                "MLP": f"{r.name} ({r.n_inputs} inputs)",
                "parameters": r.params,
                "λ": f"{r.l2:.3g}",
                "test acc. (last)": f"{r.test_accuracy * 100:.2f} %",
                f"final (last {cluster_mlp.FINAL_WINDOW})": f"{cluster_mlp.final_accuracy(r) * 100:.2f} %",
                "best": f"{max(e.test_accuracy for e in r.records) * 100:.2f} %",
                "epochs": len(r.records),
                "s / epoch": f"{r.mean_epoch_seconds:.3f}",
                "training": f"{r.records[-1].train_time:.2f} s",
                "reached ref. final": (f"epoch {hit[0]} · {hit[1]:.2f} s" if hit else ("—" if comp else "")),
            }
        )
    return pd.DataFrame(rows)


shown_key = session().clustering.pair_shown
pair: cluster_mlp.PairResult | None = session().clustering.pairs.get(shown_key) if shown_key else None
if pair is not None and not mlp_busy:
    if pair.cluster.status != "completed":
        st.warning(pair.cluster.message)
    records = [{"model": r.name, **vars(e)} for r in (pair.cluster, pair.reference) if r is not None for e in r.records]
    widgets.chart(cluster_mlp.curves_figure(records), key=P + "mlp_curves")
    st.dataframe(_result_table(pair), hide_index=True)
    comp = pair.comparisons()
    kmeans_s = pair.cluster.preprocess_seconds
    if comp:
        tr, wall = comp["train"], comp["wall"]
        c = st.columns(4)
        c[0].metric(
            "reference's final accuracy",
            f"{tr.target * 100:.2f} %",
            help=f"Mean test accuracy of its last {tr.window} epochs.",
        )
        c[1].metric(
            "speed-up to reach it",
            f"{tr.speedup:.1f}×" if tr.speedup else "not reached",
            help="Reference's training time to first reach its final accuracy ÷ the cluster MLP's "
            "(weight updates only; the per-epoch measuring is not counted).",
        )
        c[2].metric("time per epoch, reference ÷ cluster", f"{tr.epoch_time_ratio:.1f}×")
        c[3].metric(
            "speed-up incl. k-means",
            f"{tr.speedup_with_clustering:.2f}×" if tr.speedup_with_clustering else "—",
            help=f"With the cluster MLP's {kmeans_s:.1f} s of clustering and feature computation added to its time.",
        )
        widgets.blog_beside(
            [
                (
                    "cluster_mlp",
                    f"{cluster_mlp.final_accuracy(pair.cluster):.2%} with K = {pair.k} (final, mean of the last "
                    f"{cluster_mlp.FINAL_WINDOW} epochs)",
                ),
                (
                    "reference_mlp",
                    f"{cluster_mlp.final_accuracy(pair.reference):.2%} for the MLP on the pixels"
                    if pair.reference is not None
                    else "no reference MLP trained",
                ),
                (
                    "cluster_speedup",
                    f"{tr.speedup:.1f}× less training time to reach the reference's final {tr.target:.2%}"
                    if tr.speedup
                    else "the reference's final accuracy was not reached",
                ),
            ]
        )
        st.caption(
            f"Counting the per-epoch measuring of cost and accuracy on all digits too, the speed-up is "
            f"{wall.speedup:.1f}×."
            if wall.speedup
            else "The cluster MLP did not reach the reference's final accuracy in these epochs."
        )
    st.caption(
        f"Clustering into K = {pair.k} and computing the features took {kmeans_s:.1f} s "
        "(the blog counted the gradient descent only). Both MLPs were trained epoch by epoch in turn, "
        "so both saw the same machine load; the first, tracing call of each is not counted."
    )
    with st.expander(f"The {pair.k} cluster centres used as features"):
        f = pair.features
        titles = cluster_mlp.centroid_titles(f.majority, f.purity)
        order = np.argsort(f.majority * 10 - np.nan_to_num(f.purity), kind="stable")
        widgets.chart(
            plots.image_grid(f.centroids[order], [titles[i] for i in order], cols=12, height_per_row=110),
            key=P + "mlp_centroids",
        )
