"""Clustering-MLP page: k-means sweep over K, centroids, and an MLP on cluster-distance features
against the same MLP on raw pixels (the blog's MLP series XIV).

Thin: widgets here, the maths and figures in core.clustering. Both long computations run as
core.jobs.BackgroundJob and are watched by a fragment that reruns every second; finished sweeps
are kept per settings in st.session_state (a second click with the same settings shows them at once).
"""
from __future__ import annotations


import numpy as np
import pandas as pd
import streamlit as st

from core import clustering as cl
from core import plots
from core.jobs import BackgroundJob
from core.progress import ProgressCallback
from pages import shared

P = "clu_"  # widget and state key prefix
# One OpenMP/BLAS thread for the k-means (core's default, explicit here): with the libraries' default a 4-K
# sweep of 1,000 digits took 23-90 s in the server instead of 1-5 s (see core.clustering.limit_threads).
KMEANS_THREADS = 1
SWEEPS = P + "sweeps"  # {settings: SweepResult}
SWEEP_JOB = P + "sweep_job"
MLP_JOB = P + "mlp_job"
MLP_RESULTS = P + "mlp_results"  # {settings: PairResult}

shared.render_sidebar()
st.title("Clustering-MLP")
st.write("MiniBatchKMeans finds K clusters of MNIST digits in pixel space. Each digit is then described by its K "
         "distances to the cluster centres, and these K numbers (instead of 784 pixels) feed a small MLP "
         "(hidden layers 70 and 30). Fewer inputs mean much less work per epoch. Below, the same MLP trained "
         "on the 784 standardised pixels is the reference.")

mnist = shared.get_mnist()
if mnist is None:
    st.stop()


class _Collect(ProgressCallback):
    """Forwards to the job's recorder and keeps every step's info (the sweep's per-K figures)."""

    def __init__(self, inner: ProgressCallback, sink: list) -> None:
        self.inner, self.sink = inner, sink

    def on_begin(self, total, label=""):
        self.inner.on_begin(total, label)

    def on_step(self, done, info=None):
        if info:
            self.sink.append(dict(info))
        self.inner.on_step(done, info)

    def on_epoch(self, epoch, metrics):
        self.inner.on_epoch(epoch, metrics)

    def on_end(self):
        self.inner.on_end()

    def should_stop(self):
        return self.inner.should_stop()


# --------------------------------------------------------------------------- common settings
st.subheader("Clustering settings")
c = st.columns(4)
normalization = c[0].selectbox(
    "Clustered space", cl.NORMALIZATIONS, key=P + "norm",
    format_func={"unit": "unit length (each digit scaled to length 1)", "raw": "raw pixels / 255",
                 "standard": "standardised pixels"}.get,
    help="Digits scaled to unit length are clustered by shape, not by how much ink they have; "
         "in our runs the MLP with K = 70 gained about +0.2 to +0.3 % test accuracy over raw pixels.")
n_train = int(c[1].number_input("Training digits", 1000, len(mnist.x_train), len(mnist.x_train), step=1000,
                                key=P + "n_train", help="The first N training digits; all 10,000 test digits "
                                                        "are always used for the MLPs' test accuracy."))
include_test = c[2].checkbox("Cluster train + test digits", False, key=P + "include_test",
                             help="The blog clustered all 70,000 digits. Off: the test digits stay unseen.")
seed = int(c[3].number_input("Seed", 0, 2**31 - 1, 0, key=P + "seed"))
data = mnist.subset(n_train, None)

# --------------------------------------------------------------------------- 1 · sweep
st.subheader("1 · How many clusters? Sweep over K")
c = st.columns(4)
k_from = int(c[0].number_input("K from", 2, 500, 10, key=P + "k_from"))
k_to = int(c[1].number_input("K to", 2, 500, 170, key=P + "k_to"))
k_step = int(c[2].number_input("K step", 1, 200, 10, key=P + "k_step"))
sil_sample = int(c[3].number_input("Silhouette sample", 100, cl.MAX_SILHOUETTE_SAMPLE,
                                   cl.DEFAULT_SILHOUETTE_SAMPLE, step=1000, key=P + "sil_sample"))
st.caption("The silhouette coefficient compares each digit's mean distance to its own cluster with that to the "
           "nearest other cluster, so the exact value needs the distances between *all pairs* of digits: "
           f"{len(data.x_train) + (len(mnist.x_test) if include_test else 0):,}² / 2 pairs here. It is therefore "
           "computed on a seeded random sample of digits (one distance matrix shared by all K), which estimates "
           "the mean to about ±0.01. Inertia (sum of squared distances to the nearest centre) uses all digits.")


def _sweep_config() -> cl.SweepConfig:
    if k_to < k_from:
        raise ValueError(f"'K to' ({k_to}) must not be smaller than 'K from' ({k_from})")
    return cl.SweepConfig(ks=tuple(range(k_from, k_to + 1, k_step)), silhouette_sample=sil_sample,
                          include_test=include_test, normalization=normalization, n_train=n_train, seed=seed,
                          threads=KMEANS_THREADS)


def _start_sweep(config: cl.SweepConfig) -> None:
    live: list = []

    def work(progress):
        return cl.sweep(mnist, config, _Collect(progress, live))

    st.session_state[SWEEP_JOB] = (config, live, BackgroundJob(work, name="cluster-sweep").start())


sweeps: dict = st.session_state.setdefault(SWEEPS, {})
sweep_job = st.session_state.get(SWEEP_JOB)
sweep_busy = sweep_job is not None and sweep_job[2].running
config_error = None
try:
    sweep_config = _sweep_config()
    sweep_config.validate(n_train + (len(mnist.x_test) if include_test else 0))
except ValueError as exc:
    sweep_config, config_error = None, str(exc)
if config_error:
    st.error(config_error)
cached = sweep_config in sweeps if sweep_config else False


def _on_sweep_click(config: cl.SweepConfig, cached: bool) -> None:
    # a callback, so that the job starts even when the run that follows the click is restarted
    if cached:
        st.session_state[P + "sweep_shown"] = config
    else:
        _start_sweep(config)


st.button("Show sweep" if cached else "Run sweep", type="primary", key=P + "sweep_run",
          disabled=sweep_busy or sweep_config is None, on_click=_on_sweep_click, args=(sweep_config, cached),
          help="Results are kept per settings for this session." if not cached else
          "These settings were swept already in this session: the stored result is shown.")


def _sweep_panel() -> None:
    job_entry = st.session_state.get(SWEEP_JOB)
    if job_entry is None:
        return
    config, live, job = job_entry
    snap = job.snapshot()
    if snap.state == "running":
        last = live[-1] if live else {}
        text = (f"K = {last['k']} done ({snap.done}/{snap.total}) · {snap.elapsed:.0f} s" if last
                else f"Sampling {config.silhouette_sample:,} digits for the silhouette… {snap.elapsed:.0f} s")
        st.progress(snap.fraction, text=text)
        st.button("Stop", key=P + "sweep_stop", on_click=job.request_stop,
                  help="Ends the sweep after the current K; the Ks done so far are kept.")
        if live:
            st.plotly_chart(cl.sweep_figure(live), key=P + "sweep_live")
    elif snap.state == "failed":
        st.error(f"The sweep failed: {snap.error}")
    elif snap.state == "finished" and config not in st.session_state[SWEEPS]:
        st.session_state[SWEEPS][config] = job.result
        st.session_state[P + "sweep_shown"] = config
        st.rerun()


def _running(key: str, index: int) -> bool:
    entry = st.session_state.get(key)
    return entry is not None and entry[index].running


# (looked up again: a click above may just have started a job)
st.fragment(run_every=1.0 if _running(SWEEP_JOB, 2) else None)(_sweep_panel)()

shown = st.session_state.get(P + "sweep_shown")
result: cl.SweepResult | None = sweeps.get(shown) if shown is not None else None
if result is not None:
    if shown != sweep_config:
        st.caption("Showing the last sweep; its settings differ from the ones above.")
    if result.status == "stopped":
        st.warning(f"The sweep was stopped after {len(result.points)} of {len(result.config.ks)} values of K.")
    st.plotly_chart(cl.sweep_figure(result.points), key=P + "sweep_chart")
    frame = pd.DataFrame([p.summary() for p in result.points])
    st.caption(f"{result.n_points:,} digits clustered · silhouette on {result.n_sample:,} of them (their distance "
               f"matrix: {result.distance_seconds:.1f} s, once) · whole sweep {result.seconds:.1f} s. The blog saw "
               "no clear elbow either; it picked K = 70 from bumps of the silhouette.")
    with st.expander("Figures per K"):
        st.dataframe(frame.rename(columns={"overall_purity": "purity (all clusters)"}), hide_index=True)

    st.markdown("**Cluster centres** as 28×28 images. Title: cluster number: its majority digit · the share of "
                "its digits that are that digit (purity).")
    ks = [p.k for p in result.points]
    default_k = 70 if 70 in ks else ks[len(ks) // 2]
    if st.session_state.get(P + "centroid_k") not in ks:
        st.session_state[P + "centroid_k"] = default_k
    k_shown = st.select_slider("Centres for K", ks, key=P + "centroid_k")
    point = result.point(k_shown)
    order = np.argsort(point.majority * 10 - np.nan_to_num(point.purity), kind="stable")
    sort_by_digit = st.toggle("Sort by majority digit", True, key=P + "centroid_sort")
    idx = order if sort_by_digit else np.arange(k_shown)
    titles = cl.centroid_titles(point.majority, point.purity)
    st.plotly_chart(plots.image_grid(point.centroids[idx], [titles[i] for i in idx], cols=12, height_per_row=110),
                    key=P + "centroids")
    digits_covered = sorted(set(int(d) for d in point.majority[point.sizes > 0]))
    missing = sorted(set(range(10)) - set(digits_covered))
    st.caption(f"K = {k_shown}: mean purity {point.overall_purity * 100:.1f} % (weighted by cluster size)"
               + (f"; no cluster has a majority of digit(s) {missing}." if missing else
                  "; every digit is the majority of at least one cluster."))

# --------------------------------------------------------------------------- 2 · MLPs
st.subheader("2 · MLP on K cluster distances vs MLP on 784 pixels")
d = cl.MLPConfig()
c = st.columns(4)
k_mlp = int(c[0].number_input("K (inputs of the cluster MLP)", 2, 500, 70, key=P + "k"))
epochs = int(c[1].number_input("Epochs", 1, 500, d.epochs, key=P + "epochs"))
activation = c[2].selectbox("Activation (hidden layers)", cl.MLP_ACTIVATIONS, key=P + "activation")
with_reference = c[3].checkbox("Also train the reference MLP (784 pixels)", True, key=P + "reference")
c = st.columns(4)
lr = c[0].number_input("Learning rate", 0.001, 10.0, d.learning_rate, format="%.3f", key=P + "lr",
                       help="Of SGD on the mean cost of a mini-batch of 500.")
decay = c[1].number_input("Decay per epoch", 0.0, 10.0, d.decay, format="%.3f", key=P + "decay",
                          help="Learning rate of epoch e = lr / (1 + decay·(e−1)).")
momentum = c[2].number_input("Momentum", 0.0, 0.99, d.momentum, key=P + "momentum")
l2 = c[3].number_input("λ (L2, for 784 inputs)", 0.0, 1.0, d.l2, format="%.5f", key=P + "l2",
                       help="Cost = mean cross-entropy + λ_eff · Σ w² over the kernels.")
centre_rows = st.checkbox("Centre each digit's distances before standardising", True, key=P + "centre",
                          help="Subtracts each digit's mean distance to all centres (the part all K distances "
                               "share) before every feature is standardised. Measured with K = 70: +0.0 to +0.4 % "
                               "final test accuracy (6 runs, mean +0.13 %) and 97.4 % reached a few epochs sooner.")
st.caption(f"The blog's rule for fewer inputs keeps the L2 penalty comparable: λ_cluster = λ · K / 784 = "
           f"{l2:g} · {k_mlp} / 784 = {cl.lambda_for_inputs(l2, k_mlp):.3g}. Both MLPs use every other setting "
           "alike: hidden layers 70 and 30, SGD with momentum, mini-batch 500.")

mlp_config = cl.MLPConfig(activation=activation, learning_rate=float(lr), decay=float(decay),
                          momentum=float(momentum), l2=float(l2), epochs=epochs, seed=seed + 1)
mlp_key = (k_mlp, mlp_config, with_reference, normalization, include_test, n_train, seed, centre_rows)
mlp_job = st.session_state.get(MLP_JOB)
mlp_busy = mlp_job is not None and mlp_job[1].running


def _start_mlp(key: tuple, config: cl.MLPConfig, data, k: int) -> None:
    """Button callback (runs before the next script run): validate, then start the job."""
    st.session_state.pop(P + "mlp_error", None)
    try:
        config.validate()
        if not 2 <= k <= len(data.x_train) - 1:
            raise ValueError(f"K={k} is outside 2..{len(data.x_train) - 1} for {len(data.x_train)} training digits")
    except ValueError as exc:
        st.session_state[P + "mlp_error"] = str(exc)
        return
    _, _, reference, normalization, include_test, _, seed, centre_rows = key

    def work(progress):
        return cl.train_pair(data, k, config, reference=reference, normalization=normalization,
                             include_test=include_test, seed=seed, centre_rows=centre_rows,
                             threads=KMEANS_THREADS, progress=progress)

    st.session_state[MLP_JOB] = (key, BackgroundJob(work, name="cluster-mlp").start())


st.button("Train", type="primary", key=P + "mlp_run", disabled=mlp_busy, on_click=_start_mlp,
          args=(mlp_key, mlp_config, data, k_mlp))
if P + "mlp_error" in st.session_state:
    st.error(st.session_state[P + "mlp_error"])


def _mlp_panel() -> None:
    entry = st.session_state.get(MLP_JOB)
    if entry is None:
        return
    key, job = entry
    snap = job.snapshot()
    if snap.state == "running":
        info = snap.info
        if info.get("model"):
            text = (f"Epoch {int(info['epoch'])}/{key[1].epochs} · {info['model']} MLP: test accuracy "
                    f"{info['test_accuracy'] * 100:.2f} % · {snap.elapsed:.0f} s")
        else:
            text = f"Clustering the digits into K = {key[0]} clusters… {snap.elapsed:.0f} s"
        st.progress(snap.fraction, text=text)
        st.button("Stop", key=P + "mlp_stop", on_click=job.request_stop,
                  help="Ends training after the current epoch; the epochs done so far are shown.")
        if snap.epochs:
            st.plotly_chart(cl.curves_figure(snap.epochs), key=P + "mlp_live")
    elif snap.state == "failed":
        st.error(f"Training failed: {snap.error}")
    elif snap.state == "finished" and key not in st.session_state.setdefault(MLP_RESULTS, {}):
        st.session_state[MLP_RESULTS][key] = job.result
        st.session_state[P + "mlp_shown"] = key
        st.rerun()


mlp_busy = _running(MLP_JOB, 1)
st.fragment(run_every=1.0 if mlp_busy else None)(_mlp_panel)()


def _result_table(pair: cl.PairResult) -> pd.DataFrame:
    runs = [pair.cluster] + ([pair.reference] if pair.reference is not None else [])
    comp = pair.comparisons().get("train")
    rows = []
    for r in runs:
        hit = r.time_to_accuracy(comp.target) if comp else None
        rows.append({
            "MLP": f"{r.name} ({r.n_inputs} inputs)", "parameters": r.params, "λ": f"{r.l2:.3g}",
            "test acc. (last)": f"{r.test_accuracy * 100:.2f} %",
            f"final (last {cl.FINAL_WINDOW})": f"{cl.final_accuracy(r) * 100:.2f} %",
            "best": f"{max(e.test_accuracy for e in r.records) * 100:.2f} %",
            "epochs": len(r.records), "s / epoch": f"{r.mean_epoch_seconds:.3f}",
            "training": f"{r.records[-1].train_time:.2f} s",
            "reached ref. final": (f"epoch {hit[0]} · {hit[1]:.2f} s" if hit else ("—" if comp else "")),
        })
    return pd.DataFrame(rows)


shown_key = st.session_state.get(P + "mlp_shown")
pair: cl.PairResult | None = st.session_state.get(MLP_RESULTS, {}).get(shown_key) if shown_key else None
if pair is not None and not mlp_busy:
    if pair.cluster.status != "completed":
        st.warning(pair.cluster.message)
    records = [{"model": r.name, **vars(e)} for r in (pair.cluster, pair.reference) if r is not None
               for e in r.records]
    st.plotly_chart(cl.curves_figure(records), key=P + "mlp_curves")
    st.dataframe(_result_table(pair), hide_index=True)
    comp = pair.comparisons()
    kmeans_s = pair.cluster.preprocess_seconds
    if comp:
        tr, wall = comp["train"], comp["wall"]
        c = st.columns(4)
        c[0].metric("reference's final accuracy", f"{tr.target * 100:.2f} %",
                    help=f"Mean test accuracy of its last {tr.window} epochs.")
        c[1].metric("speed-up to reach it", f"{tr.speedup:.1f}×" if tr.speedup else "not reached",
                    help="Reference's training time to first reach its final accuracy ÷ the cluster MLP's "
                         "(weight updates only; the per-epoch measuring is not counted).")
        c[2].metric("time per epoch, reference ÷ cluster", f"{tr.epoch_time_ratio:.1f}×")
        c[3].metric("speed-up incl. k-means", f"{tr.speedup_with_clustering:.2f}×" if tr.speedup_with_clustering
                    else "—", help=f"With the cluster MLP's {kmeans_s:.1f} s of clustering and feature computation "
                                   "added to its time.")
        st.caption(f"Counting the per-epoch measuring of cost and accuracy on all digits too, the speed-up is "
                   f"{wall.speedup:.1f}×." if wall.speedup else
                   "The cluster MLP did not reach the reference's final accuracy in these epochs.")
    st.caption(f"Clustering into K = {pair.k} and computing the features took {kmeans_s:.1f} s "
               "(the blog counted the gradient descent only). Both MLPs were trained epoch by epoch in turn, "
               "so both saw the same machine load; the first, tracing call of each is not counted.")
    with st.expander(f"The {pair.k} cluster centres used as features"):
        f = pair.features
        titles = cl.centroid_titles(f.majority, f.purity)
        order = np.argsort(f.majority * 10 - np.nan_to_num(f.purity), kind="stable")
        st.plotly_chart(plots.image_grid(f.centroids[order], [titles[i] for i in order], cols=12,
                                         height_per_row=110), key=P + "mlp_centroids")
