"""Compare page: two or more trainings side by side, and whether two of them learnt the same maps.

Thin: the runs' saved histories and confusion matrices → figures (core.figures.compare); the map alignment
(core.compare.alignment) is a job, its result kept in the session's ``CompareState``.
"""

from __future__ import annotations

from core.device import quiet_tensorflow_logs

# First of all: a deep link to a fresh server runs this file before app.py (Streamlit's pages/ folder mode).
quiet_tensorflow_logs()

from pathlib import Path

import numpy as np
import streamlit as st

from core.augmentation.augment import augment_label
from core.figures import compare as compare_figures
from core.jobs.kinds import CompareConfig
from core.jobs.system import JobHandle, JobSpec
from core.oip.search import OipConfig
from core.runs import BUNDLED_MODELS, DEFAULT_MODEL_DIR, confusion_of
from core.runs import model_key as run_model_key
from pages.ui import jobs, menu, resources, state, widgets
from pages.ui.state import session

JOB_KEY = "compare_job"
OIP_JOB_KEY = "compare_oip_job"  # the two OIP jobs of a layer (one per run)

menu.page_frame()
st.title("Compare runs")
st.write(
    "Train the same network twice (another seed, another optimiser) and compare: the curves, the "
    "mistakes, and the question the blog asks: **do two trainings learn the same filters?** For each conv "
    "layer every map of one run is correlated with every map of the other over the test digits, and the "
    "best one-to-one pairing is found."
)

choices = resources.model_choices()
labels = {p: menu.describe_model(p) for p in choices}
trained = [p for p in choices if Path(p) not in BUNDLED_MODELS]
if not trained:
    st.info(
        "There are only the two bundled models so far: article II and the OIP-series model (conv3 with 128 "
        "maps) are compared below. Train a second run on the **Train** page (another seed is enough, or "
        "several seeds at once) to compare two trainings of the same network.",
        icon=":material/compare_arrows:",
    )
if len(choices) < 2:
    st.stop()

pending, session().compare.pending = session().compare.pending, None  # the seeds the Train page just trained
if pending:
    st.session_state["cmp_runs"] = [p for p in pending if p in choices]
elif not isinstance(st.session_state.get("cmp_runs"), list):
    st.session_state["cmp_runs"] = [choices[0], choices[-1]]
st.session_state["cmp_runs"] = [p for p in st.session_state["cmp_runs"] if p in choices]  # a run deleted meanwhile
selected = st.multiselect(
    "Runs to compare",
    choices,
    format_func=labels.get,
    key="cmp_runs",
    persist_state="session",
    help="Two or more runs; the first two are also compared map by map below.",
)
if len(selected) < 2:
    st.warning("Pick at least two runs.")
    st.stop()


def _name(path: str) -> str:
    return f"bundled {BUNDLED_MODELS[Path(path)]}" if Path(path) in BUNDLED_MODELS else Path(path).name


metas = [resources.run_meta(p) for p in selected]
names = [_name(p) for p in selected]

# --- the runs side by side ---------------------------------------------------------------------------
# runs saved before augmentation existed were trained without it: say so, rather than "differs: None vs none"
settings = [{**(meta.get("config") or {}), "augment": augment_label(meta)} for meta in metas]
differ = [k for k in compare_figures.settings_that_differ([{"config": c} for c in settings]) if k != "augment"]
rows = []
for name, meta in zip(names, metas):
    epochs = meta.get("epoch_seconds") or []
    row = {
        "run": name,
        "test accuracy %": round(100 * float(meta.get("test_accuracy", float("nan"))), 2),
        "s per epoch": round(float(np.mean(epochs)), 1) if epochs else None,
        "device": meta.get("device", "?"),
        "epochs": len(epochs),
        "augmentation": augment_label(meta),
    }
    row.update({k: str((meta.get("config") or {}).get(k)) for k in differ})
    rows.append(row)
st.dataframe(rows, hide_index=True)
augment_differs = len({c["augment"] for c in settings}) > 1
shown_differ = differ + (["augmentation"] if augment_differs else [])
st.caption(
    "Settings that differ between these runs: " + (", ".join(shown_differ) if shown_differ else "none (same settings)")
)

col_acc, col_loss = st.columns(2)
with col_acc:
    widgets.chart(compare_figures.overlaid_curves(metas, names, "val_accuracy"), key="cmp_acc")
with col_loss:
    widgets.chart(compare_figures.overlaid_curves(metas, names, "val_loss"), key="cmp_loss")

try:
    conf_a, conf_b = confusion_of(metas[0]), confusion_of(metas[1])
    widgets.chart(compare_figures.confusion_difference(conf_a, conf_b, names[0], names[1]), key="cmp_conf")
    st.caption(f"Red: {names[1]} makes that mistake more often than {names[0]}; blue: less often.")
except (KeyError, ValueError, TypeError):
    st.caption("A confusion matrix is missing from one of the first two runs.")

# --- map alignment of the first two -------------------------------------------------------------------
st.subheader(f"Do {names[0]} and {names[1]} have the same maps?")
c1, c2, c3 = st.columns(3)


def _comparable_layers(paths: list[str]) -> list[str]:
    """The conv and hidden dense layers both runs have, in the order of the first."""
    models = [resources.bundle_at(p).model for p in paths]
    shared = set.intersection(*({lyr.name for lyr in m.layers} for m in models))
    return [lyr.name for lyr in models[0].layers if lyr.name in shared and lyr.name.startswith(("conv", "dense"))]


try:
    comparable = _comparable_layers(selected[:2])
except (OSError, ValueError) as exc:
    st.warning(f"A run could not be loaded: {exc}")
    st.stop()
convs = [n for n in comparable if n.startswith("conv")]
default_layers = convs or comparable  # a CNN: its conv layers (the blog); a dense network: its units
if not isinstance(st.session_state.get("cmp_layers"), list):
    st.session_state["cmp_layers"] = default_layers
kept_layers = [n for n in st.session_state["cmp_layers"] if n in comparable]
# the layers of other runs: this pair's defaults (a selection the learner emptied stays empty)
st.session_state["cmp_layers"] = kept_layers if kept_layers or not st.session_state["cmp_layers"] else default_layers
layers = c1.multiselect(
    "Layers",
    comparable,
    persist_state="session",
    key="cmp_layers",
    help="Conv layers compare maps position by position; dense layers compare units over the digits.",
)
threshold = c2.slider(
    "Same map from a correlation of",
    0.1,
    0.95,
    0.5,
    0.05,
    persist_state="session",
    key="cmp_threshold",
    help="A matched pair with at least this correlation counts as one map learnt by both runs.",
)
digits = c3.select_slider(
    "Test digits", [1000, 2000, 5000, 10000], value=10000, persist_state="session", key="cmp_digits"
)


def _keep_oips(handles) -> None:
    for handle in handles:
        if handle.result is not None:
            state.store_oip_result(handle)


def _matched_oips(name: str, layer, bundles) -> None:
    """The matched pairs' OIPs (this session's latest OIP runs of the layer for both models, or computed here)."""
    store = state.oip_store()
    oips = [store.latest_result(run_model_key(b.path), name) for b in bundles]
    if oips[0] is not None and oips[1] is not None:
        widgets.chart(
            compare_figures.matched_oips(layer, oips[0].best_images, oips[0].maps, oips[1].best_images, oips[1].maps),
            key=f"cmp_oips_{name}",
        )
        st.caption(
            f"{name}: the best-matched pairs' OIPs (what each map responds to most; A: {names[0]}, B: "
            f"{names[1]}). Do maps that respond alike also look alike?"
        )
        return
    computing = session().compare.oip_layer
    if computing == name:  # the panel once, under the layer whose OIPs are being computed
        jobs.group_panel(OIP_JOB_KEY, on_end=_keep_oips, describe=jobs.describe_oip_job)
    if jobs.group_active(OIP_JOB_KEY):
        if computing != name:
            st.caption(f"The OIPs of {computing} are being computed; {name}'s can follow.")
        return
    if st.button(
        f"Show the OIPs of the matched {name} maps",
        key=f"cmp_oip_{name}",
        help="Computes the OIPs of this layer for both runs (two jobs, the Filters / OIP page's defaults); "
        "the Filters / OIP page shows them too.",
    ):
        specs = [
            JobSpec("oip", OipConfig(layer=name), model=str(b.path), title=f"OIPs of {name}, {n}")
            for b, n in zip(bundles, names[:2])
        ]
        if jobs.submit_group(OIP_JOB_KEY, specs) is not None:
            session().compare.oip_layer = name
            st.rerun()


def _make_spec() -> JobSpec | None:
    if not layers:
        st.warning("Pick at least one layer.")
        return None
    run_a, run_b = (None if Path(p) == DEFAULT_MODEL_DIR else p for p in selected[:2])
    config = CompareConfig(run_a, run_b, tuple(layers), float(threshold), int(digits))
    return JobSpec("compare", config, title=f"map alignment {names[0]} vs {names[1]}")


def _pair(run_a, run_b) -> tuple[Path, Path]:
    """Two runs' folders as paths (None: the bundled model), for telling whether a result is for these two."""
    return tuple(Path(p) if p is not None else DEFAULT_MODEL_DIR for p in (run_a, run_b))


def _keep(handle: JobHandle) -> None:
    """The alignment, kept with the two runs its job compared (the page may show another pair by then)."""
    config = handle.spec.config
    session().compare.result = (*_pair(config.run_a, config.run_b), handle.result)


jobs.start_button(JOB_KEY, "Align the maps", _make_spec, key="cmp_start", busy_label="Aligning…")
jobs.job_panel(JOB_KEY, on_end=_keep)

kept = session().compare.result
if kept is None:
    st.caption(f"Aligning {widgets.count(len(layers), 'layer')} over {digits:,} test digits takes a few seconds.")
elif _pair(*kept[:2]) != _pair(*selected[:2]):
    st.caption("The alignment below the button belongs to other runs; align again for these two.")
else:
    result = kept[2]
    mnist = resources.get_mnist()
    try:
        bundles = [resources.bundle_at(p) for p in selected[:2]]
    except (OSError, ValueError) as exc:
        st.warning(f"A run could not be loaded to show its kernels: {exc}")
        bundles = []
    st.caption(f"Over {result.n_digits:,} test digits.")
    for name, layer in result.layers.items():
        st.markdown("**" + layer.sentence(names[0], names[1]) + "**")
        left, right = st.columns(2)
        with left:
            widgets.chart(compare_figures.matched_histogram(layer), key=f"cmp_hist_{name}")
        with right:
            widgets.chart(compare_figures.matched_heatmap(layer, names[0], names[1]), key=f"cmp_heat_{name}")
        kernels = [compare_figures.first_layer_kernels(b.model, name) for b in bundles] if bundles else [None, None]
        if kernels[0] is not None and kernels[1] is not None:
            widgets.chart(compare_figures.matched_kernels(layer, *kernels), key=f"cmp_kernels_{name}")
            st.caption(
                f"{name}: the best-matched pairs' kernels side by side (A: a map of {names[0]}, B: its "
                f"partner in {names[1]}; r: their correlation)."
            )
        elif mnist is not None and layer.maxima_a is not None:
            widgets.chart(
                compare_figures.matched_patches(layer, mnist.x_test[: result.n_digits]), key=f"cmp_patch_{name}"
            )
            st.caption(
                f"{name}: the {min(8, len(layer.pairs))} best-matched pairs, each map's most exciting test "
                f"patch (A: a map of {names[0]}, B: its partner in {names[1]}; r: their correlation)."
            )
        if name != "conv1" and bundles:
            _matched_oips(name, layer, bundles)
        if layer.unmatched_a or layer.unmatched_b:
            st.caption(
                f"Without a partner ≥ {layer.threshold:g}: maps {layer.unmatched_a} of {names[0]}, maps "
                f"{layer.unmatched_b} of {names[1]}."
            )
