"""Filters / OIP page: optimal input patterns for every map of a layer, batched, with a click-through gallery.

Thin: widgets here, the maths in core.oip.search, core.oip.variants and core.oip.similarity, figures in
core.figures.oip. Results live in the session's OipStore
(pages.ui.state.oip_store), keyed by model + layer + settings, which the Precursor page also reads.
"""

from __future__ import annotations

from core.device import quiet_tensorflow_logs

# First of all: a deep link to a fresh server runs this file before app.py (Streamlit's pages/ folder mode).
quiet_tensorflow_logs()

import numpy as np
import plotly.express as px
import streamlit as st

from core.ascent import engine as ascent
from core.ascent import starts as start_images
from core.figures import common as plots
from core.figures import oip as oip_figures
from core.jobs.system import JobSpec
from core.oip import analysis as oip_analysis
from core.oip import search as oip
from core.oip import variants
from core.oip.similarity import DEFAULT_MAX_SHIFT as oip_similarity_shift
from core.runs import model_key as run_model_key
from core.spec import layer_table
from pages.ui import jobs, menu, resources, state, widgets

P = "oip_"  # widget key prefix
JOB_KEY = "oip_job"  # also used by the Precursor page's plain OIP run: one OIP job per session
VARIANTS_JOB_KEY = "oip_variants_job"

menu.page_frame()
st.title("Filters / OIP")
st.write(
    "An **optimal input pattern** (OIP) is an input image that makes one map respond strongly. It is found "
    "by gradient ascent on the pixels with the trained weights fixed, starting from random fluctuations on "
    "4 length scales. All selected maps (× starts) are optimised together in one batch by one compiled "
    "TensorFlow function. A map *has an OIP* when its loss (mean activation) ends above 0."
)


# --------------------------------------------------------------------------- settings
bundle = menu.active_bundle()
if bundle is None:
    st.stop()
model_key = run_model_key(bundle.path)
if not widgets.has_conv_maps(bundle):
    widgets.offer_the_cnn("Showing what a conv map looks for", stop=False)
    st.caption("The OIPs of this network's dense units and of its classes work below.")
store = state.oip_store()
layers = oip.oip_layers(bundle.model)
default_layer = "conv3" if "conv3" in layers else layers[0]
if st.session_state.get(P + "layer") not in layers:
    st.session_state[P + "layer"] = default_layer

c = st.columns([1.2, 1.6, 1, 1, 1, 1])
layer = c[0].selectbox(
    "Layer",
    layers,
    persist_state="session",
    key=P + "layer",
    help="'out' visualises a class: its score before the softmax is maximised.",
)
engine = resources.engine(bundle, layer)
maps_text = c[1].text_input(
    "Maps",
    "all",
    persist_state="session",
    key=P + "maps",
    help=f"all, or indices/ranges like 0,3,10-15 (this layer has maps 0..{engine.channels - 1})",
)
epochs = widgets.number(c[2], "Epochs", 1, ascent.MAX_EPOCHS, oip.OipConfig.epochs, key=P + "epochs")
step = widgets.number(
    c[3],
    "Step size",
    0.001,
    None,
    oip.OipConfig.step,
    format="%.3f",
    key=P + "step",
    help="Each epoch moves the image by this much along the gradient divided by its RMS.",
)
starts = widgets.number(
    c[4],
    "Starts per map",
    1,
    oip.MAX_STARTS,
    1,
    key=P + "starts",
    help="Several random starts per map, all in the same batch: are OIPs unique per map?",
)
seed = widgets.number(c[5], "Seed", 0, 2**31 - 1, 0, key=P + "seed")

with st.expander("Objective, start scales and optional improvements"):
    c = st.columns(4)
    objectives = ["map"] + (["neuron"] if engine.spatial else []) + ["negative"]
    objective = c[0].radio(
        "Loss",
        objectives,
        persist_state="session",
        key=P + "objective",
        horizontal=True,
        format_func={"map": "whole map (mean)", "neuron": "one neuron", "negative": "minimise (what it hates)"}.get,
        help="minimise: the map's mean is pushed down (its pre-activation for a relu conv layer, "
        "which says how strongly it is held below 0).",
    )
    neuron = None
    if objective == "neuron":
        h, w = engine.output_shape[:2]
        neuron = (
            int(widgets.number(c[1], "Neuron row", 0, h - 1, h // 2, key=P + "neuron_row")),
            int(widgets.number(c[2], "Neuron column", 0, w - 1, w // 2, key=P + "neuron_col")),
        )
    st.caption("Weights of the random start's 4 length scales (uniform noise per cell, upscaled bicubically):")
    c = st.columns(4)
    weights = tuple(
        float(
            c[i].slider(
                f"{cells}×{cells} cells",
                0.0,
                1.0,
                float(start_images.DEFAULT_SCALE_WEIGHTS[i]),
                0.05,
                persist_state="session",
                key=f"{P}w{cells}",
            )
        )
        for i, cells in enumerate(start_images.SCALE_CELLS)
    )
    st.caption("Improvements beyond the blog (off by default to stay faithful):")
    c = st.columns(4)
    jitter = int(c[0].slider("Jitter (px)", 0, 4, 0, persist_state="session", key=P + "jitter"))
    blur = float(c[1].slider("Blur per epoch", 0.0, 1.0, 0.0, 0.05, persist_state="session", key=P + "blur"))
    l2_decay = float(widgets.number(c[2], "L2 decay per epoch", 0.0, 0.5, 0.0, format="%.4f", key=P + "l2"))
    tv_weight = float(widgets.number(c[3], "Total-variation weight", 0.0, 100.0, 0.0, format="%.3f", key=P + "tv"))
    c = st.columns(4)
    scale = float(
        c[1].slider(
            "Zoom ± (relative)",
            0.0,
            0.45,
            0.0,
            0.05,
            persist_state="session",
            key=P + "scale",
            help="Each epoch the batch is zoomed by a random factor in 1 ± this (tuned for digits: "
            "0.1). With jitter and rotation: OIPs that work wherever the pattern sits.",
        )
    )
    rotate = float(
        c[2].slider(
            "Rotation ± (degrees)",
            0,
            45,
            0,
            5,
            persist_state="session",
            key=P + "rotate",
            help="Each epoch the batch is rotated by a random angle within ± this (tuned: 10°).",
        )
    )
    param = c[3].radio(
        "Ascend",
        ascent.PARAMETERISATIONS,
        persist_state="session",
        key=P + "param",
        horizontal=True,
        format_func={"pixel": "pixels", "fourier": "Fourier"}.get,
        help="pixels: the blog. Fourier: a decorrelated parameterisation (the spectrum scaled by "
        "1/frequency, as Lucid): coarse structure grows first, less pixel noise.",
    )
    diversity = float(
        widgets.number(
            c[0],
            "Diversity weight",
            0.0,
            ascent.MAX_DIVERSITY,
            0.0,
            0.5,
            key=P + "diversity",
            help="With 2 or more starts: each start is pushed away from the map's other starts by a penalty on "
            f"their similarity up to a shift, in tenths of its objective ({variants.DEFAULT_DIVERSITY:g} makes "
            "them visibly different). 0: independent starts (the blog).",
        )
    )

error = None
config = None
try:
    config = oip.OipConfig(
        layer=layer,
        maps=oip.parse_maps(maps_text, engine.channels),
        epochs=int(epochs),
        step=float(step),
        starts=int(starts),
        scale_weights=weights,
        seed=int(seed),
        objective=objective,
        neuron=neuron,
        jitter=jitter,
        blur=blur,
        l2_decay=l2_decay,
        tv_weight=tv_weight,
        diversity=diversity,
        scale=scale,
        rotate=rotate,
        param=param,
    )
    config.validate()
    store.current_config[(model_key, layer)] = config
except ValueError as exc:
    error = str(exc)
if error:
    st.error(error)

result = store.get(model_key, config) if config is not None else None
n_images = (engine.channels if config is None or config.maps is None else len(config.maps)) * int(starts)
busy = jobs.job_active(JOB_KEY)
jobs.start_button(
    JOB_KEY,
    "Compute OIPs" if result is None else "Compute again",
    lambda: JobSpec("oip", config, model=str(bundle.path), title="OIP run"),
    key=P + "run",
    busy_label="Computing…",
    disabled=error is not None,
    help="These settings were computed already; their result is shown below. The same seed gives the same OIPs."
    if result is not None
    else "Runs as a job; it waits its turn when the server is busy.",
)
jobs.job_panel(
    JOB_KEY,
    on_end=state.store_oip_result,
    describe=jobs.describe_oip_job,
    stop_help="Ends the ascent after the current chunk of epochs; the images reached so far are shown.",
)

if result is None:
    if error is None and not busy:
        st.info(
            f"Press **Compute OIPs** to optimise {n_images} images of layer {layer} for {int(epochs)} epochs "
            "(results are kept for this model, layer and settings)."
        )
    st.stop()

# --------------------------------------------------------------------------- gallery
rescued = store.rescued_for(model_key, layer)
maps = result.maps
images = result.best_images.copy()
losses = result.best_loss.copy()
has = result.has_oip
marked = np.zeros(len(maps), bool)
for i, m in enumerate(maps):
    if int(m) in rescued and not has[i]:
        images[i], losses[i], marked[i] = rescued[int(m)].image, rescued[int(m)].loss, True

negative = result.config.objective == "negative"
c = st.columns(4)
c[0].metric("maps held below 0" if negative else "maps with an OIP", f"{int(has.sum())} of {len(maps)}")
c[1].metric("rescued by the precursor", int(marked.sum()))
c[2].metric(
    "ascent time",
    f"{result.seconds:.2f} s",
    help=f"The gradient ascent alone, in the job's worker on {result.device}. From the click to the result also "
    "counts the wait in line, the worker loading the model and the figures.",
)
c[3].metric("epochs × starts", f"{result.history.shape[0]} × {result.config.starts}")
if layer == "conv3" and not negative and result.config.maps is None:
    widgets.blog_beside(
        [
            (
                "oip_conv3",
                f"{int(has.sum())} of {len(maps)} conv3 maps with an OIP "
                f"({int((~has).sum())} without), {state.model_title(bundle.path)}"
                + ("" if len(maps) == 128 else "; the bundled OIP-series model has the blog's 128 maps"),
            )
        ]
    )
if result.stopped:
    st.warning("The run was stopped early; the images are those reached so far.")
if negative:
    st.caption(
        "These patterns **minimise** each map: what the map hates. Loss = minus the map's mean "
        "(pre-activation for a relu conv layer); above 0 means the map is held below zero."
    )
if result.config.starts > 1:
    layer_similarity = result.similarity
    left, right = st.columns([2, 3])
    with left:
        st.markdown("**Are the OIPs unique per map?**")
        st.write(
            f"Each map's {result.config.starts} starts, compared pairwise up to a shift of "
            f"{oip_similarity_shift} px (1 = the same pattern, 0 = unrelated): "
            f"{variants.similarity_summary(layer_similarity)} over the layer"
            + (f", with diversity weight {result.config.diversity:g}." if result.config.diversity else ".")
        )
        plain = store.results.get((model_key, layer), {}).get(result.config.with_(diversity=0.0).key())
        if result.config.diversity and plain is not None:
            given_up = result.given_up_vs(plain)
            costly = [(int(m), g) for m, g in zip(result.maps, given_up) if np.isfinite(g) and g > oip.GIVEN_UP_NOTICE]
            shown = np.nanmean(given_up) if np.isfinite(given_up).any() else float("nan")
            st.caption(
                "Against the same settings without diversity: the best objective is "
                f"{abs(shown):.1f} % {'lower' if shown >= 0 else 'higher'} on average"
                + (
                    "; more than "
                    f"{oip.GIVEN_UP_NOTICE:g} % lower for maps "
                    + ", ".join(f"{m} ({g:.0f} %)" for m, g in costly[:12])
                    + ("…" if len(costly) > 12 else "")
                    if costly
                    else f"; no map gave up more than {oip.GIVEN_UP_NOTICE:g} %"
                )
                + "."
            )
        elif result.config.diversity:
            st.caption("Run the same settings with diversity 0 to see how much objective the diversity cost.")
    with right:
        widgets.chart(
            plots.similarity_histogram(layer_similarity), key=P + "similarity_hist", config={"displayModeBar": False}
        )

if st.session_state.get(P + "map") not in [int(m) for m in maps]:
    st.session_state[P + "map"] = int(maps[0])


def _on_gallery_select() -> None:
    event = st.session_state.get(P + "gallery")
    points = (
        (event or {}).get("selection", {}).get("points", [])
        if isinstance(event, dict)
        else getattr(getattr(event, "selection", None), "points", []) or []
    )
    if points:
        data = points[0].get("customdata")
        value = data[0] if isinstance(data, (list, tuple)) else data
        if value is not None:
            st.session_state[P + "map"] = int(value)


st.subheader(f"Gallery · {layer}")
st.caption(
    "Click a thumbnail to open its map. Number = map index; red cross = no OIP (loss ≤ 0); "
    "orange frame and 'P' = OIP found by the precursor search; blue frame = the open map."
)
widgets.chart(
    oip_figures.gallery_figure(
        images, maps, losses, has, marked, cols=min(16, max(4, len(maps))), selected=st.session_state[P + "map"]
    ),
    key=P + "gallery",
    on_select=_on_gallery_select,
    selection_mode="points",
    config={"displayModeBar": False},
)

c = st.columns([1, 1, 1, 3])
c[0].download_button(
    "OIPs (.npz)", result.to_npz_bytes(), file_name=f"oips_{layer}.npz", key=P + "dl_npz", on_click="ignore"
)
c[1].download_button(
    "Sheet (.png)",
    oip_figures.sheet_png(images, [f"{int(m)}{' P' if marked[i] else ''}" for i, m in enumerate(maps)]),
    file_name=f"oips_{layer}.png",
    mime="image/png",
    key=P + "dl_png",
)

# --------------------------------------------------------------------------- one map
map_index = c[2].selectbox("Map", [int(m) for m in maps], persist_state="session", key=P + "map")
row = result.row(map_index)
st.subheader(f"Map {map_index} of {layer}")
image = images[row]
status = (
    "OIP found by the precursor search" + (f" ({rescued[map_index].note})" if rescued[map_index].note else "")
    if marked[row]
    else "has an OIP"
    if has[row]
    else "no OIP: its activations stayed at 0 from every start"
)
st.caption(f"final loss {losses[row]:.4g} · {status}")
shown = oip_analysis.contrast_enhance(image)
left, mid, right = st.columns(3)
with left:
    st.markdown("**OIP (viridis, contrast enhanced)**")
    fig = px.imshow(shown, color_continuous_scale="viridis", zmin=0, zmax=1)
    fig.update_layout(height=280, margin=dict(l=0, r=0, t=0, b=0), coloraxis_showscale=False)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    widgets.chart(fig, key=P + "detail_viridis")
with mid:
    st.markdown("**OIP (grey, contrast enhanced)**")
    fig = px.imshow(shown, color_continuous_scale="gray", zmin=0, zmax=1)
    fig.update_layout(height=280, margin=dict(l=0, r=0, t=0, b=0), coloraxis_showscale=False)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    widgets.chart(fig, key=P + "detail_grey")
with right:
    st.markdown("**The map's response to the OIP**" if engine.spatial else "**Unit values for the OIP**")
    act = engine.activations(image[None])[0]
    if engine.spatial:
        fig = px.imshow(
            act[..., map_index], color_continuous_scale="viridis", text_auto=".2f" if act.shape[0] <= 6 else False
        )
        fig.update_layout(height=280, margin=dict(l=0, r=0, t=0, b=0))
        widgets.chart(fig, key=P + "detail_response")
    else:
        widgets.chart(
            plots.bar_chart(act.tolist(), [str(i) for i in range(len(act))], highlight=map_index),
            key=P + "detail_response",
        )

left, right = st.columns(2)
with left:
    st.markdown("**Loss per epoch** (every start)")
    widgets.chart(
        oip_figures.loss_curves_figure(result.history[:, row, :], [f"start {s}" for s in range(result.config.starts)]),
        key=P + "detail_loss",
    )
with right:
    n = result.config.starts
    st.markdown("**The OIP from its start**" if n == 1 else f"**OIPs from the {n} starts** (final loss in the title)")
    widgets.chart(
        plots.image_grid(
            oip_analysis.contrast_enhance(result.images[row]),
            [f"start {s}: {result.final_loss[row, s]:.3g}" for s in range(result.config.starts)],
            cols=min(6, result.config.starts),
            colorscale="viridis",
            height_per_row=150,
        ),
        key=P + "detail_starts",
    )
    if n > 1:
        st.caption(f"Mean similarity of these {n} OIPs up to a shift: **{result.similarity[row]:.2f}**.")

maxima = raw = None
if engine.spatial:
    info = next(r for r in layer_table(bundle.spec) if r.name == layer)
    raw, source = resources.test_digits()
    maxima = resources.maxima_for(model_key, layer, source)
if engine.spatial and (maxima is None or len(maxima.values) != len(raw)):
    st.caption(
        f"The test digits that excite map {map_index} most appear with the next OIP run of {layer}: the job "
        f"scans the {source} where it runs."
    )
elif engine.spatial:
    crops, idx, vals = oip_analysis.top_patches(
        maxima, raw, map_index, info.receptive_field, info.jump, info.start, k=9
    )
    pct, ratio = oip_analysis.activation_percentile(maxima, map_index, float(act[..., map_index].max()))
    left, right = st.columns([3, 2])
    with left:
        st.markdown(
            f"**The 9 test patches that excite map {map_index} most** "
            f"({info.receptive_field}×{info.receptive_field} px receptive field, {source})"
        )
        widgets.chart(
            plots.image_grid(crops, [f"{v:.3g}" for v in vals], cols=9, height_per_row=120), key=P + "detail_patches"
        )
        st.caption(
            "Title: the map's largest activation for that digit. Test digits: "
            + ", ".join(f"#{int(i)}" for i in idx)
            + "."
        )
    with right:
        st.metric(
            "OIP's largest activation vs. test digits",
            f"{pct:.1f} percentile",
            help="Share of test digits whose largest activation of this map is below the OIP's.",
        )
        st.caption(
            f"OIP max {float(act[..., map_index].max()):.3g}; largest over the test digits "
            f"{float(maxima.values[:, map_index].max()):.3g} (ratio {ratio:.2f}). The OIP is unconstrained, "
            "so it can exceed every real digit."
        )
if engine.spatial and layer == "conv1":
    kernel, patch, corr = oip_analysis.kernel_comparison(bundle.model, "conv1", map_index, image, engine)
    st.markdown(
        f"**conv1 kernel vs. OIP**: correlation of the 3×3 kernel with the OIP's mean patch where the "
        f"map responds most: **{corr:.2f}**"
    )
    widgets.chart(
        plots.image_grid(
            np.stack([kernel, patch]),
            ["kernel", "OIP's most active patches"],
            cols=2,
            colorscale="viridis",
            height_per_row=180,
        ),
        key=P + "detail_kernel",
    )

# --------------------------------------------------------------------------- variants of the open map
st.subheader(f"Is map {map_index}'s OIP unique? What does it hate?")
st.caption(
    "The blog's OIP of this map (one start, the settings above) beside a **negative** OIP (the map "
    "minimised) and **diverse** OIPs: several starts that push each other apart. If the diverse OIPs still "
    "look alike up to a shift, the map has one pattern; if they differ, it responds to several."
)
c = st.columns([1, 1, 2])
n_diverse = int(widgets.number(c[0], "Diverse OIPs", 2, oip.MAX_STARTS, variants.DEFAULT_DIVERSE, key=P + "n_diverse"))
weight = float(
    widgets.number(
        c[1],
        "Their diversity weight",
        0.5,
        ascent.MAX_DIVERSITY,
        variants.DEFAULT_DIVERSITY,
        0.5,
        key=P + "variants_weight",
        help="How hard the starts push each other apart: a penalty on their similarity up to a shift, in "
        "tenths of the objective.",
    )
)
variants_config = variants.VariantsConfig(
    result.config.with_(maps=None, starts=1, diversity=0.0), map_index, n_diverse, weight
)
variants_key = (model_key, layer, map_index, repr(variants_config))
kept = store.variants


def _keep_variants(handle) -> None:
    if handle.result is not None:
        cfg = handle.spec.config
        slot = (run_model_key(bundle.path), cfg.base.layer, cfg.map_index, repr(cfg))
        state.oip_store().variants[slot] = handle.result


shown_variants = kept.get(variants_key)
jobs.start_button(
    VARIANTS_JOB_KEY,
    "Compare variants" if shown_variants is None else "Variants shown below",
    lambda: JobSpec("oip-variants", variants_config, model=str(bundle.path), title=f"OIP variants of map {map_index}"),
    key=P + "variants_run",
    busy_label="Comparing…",
    disabled=shown_variants is not None,
    help=f"{2 + 2 * n_diverse} ascents of {result.history.shape[0]} epochs in one job "
    "(the blog's, the negative, the diverse ones and as many plain starts to compare with).",
)
jobs.job_panel(
    VARIANTS_JOB_KEY,
    on_end=_keep_variants,
    describe=jobs.describe_oip_job,
    stop_help="Ends after the current chunk of epochs; the variants reached so far are shown.",
)
if shown_variants is not None:
    v = shown_variants
    if v.stopped:
        st.warning("Stopped early: the variants not reached are left blank.")
    pictures = np.concatenate([v.blog[None], v.negative[None], v.diverse])
    losses_v = [v.blog_loss, v.negative_loss, *v.diverse_loss.tolist()]
    names = ["blog's OIP", "negative"] + [f"diverse {i + 1}" for i in range(len(v.diverse))]
    titles = [f"{n}: {loss:.3g}" for n, loss in zip(names, losses_v)]
    if engine.spatial:
        peaks = engine.activations(np.nan_to_num(pictures))[..., map_index].reshape(len(pictures), -1).max(axis=1)
        titles = [
            f"{t} · {oip_analysis.activation_percentile(maxima, map_index, float(pk))[0]:.0f} %ile"
            for t, pk in zip(titles, peaks)
        ]
    widgets.chart(
        plots.image_grid(
            oip_analysis.contrast_enhance(np.nan_to_num(pictures)),
            titles,
            cols=min(6, len(pictures)),
            colorscale="viridis",
            height_per_row=170,
        ),
        key=P + "variants_images",
    )
    st.caption(
        "Title: loss (the negative's is minus the map's mean: above 0 = held below zero)"
        + (
            " · percentile of the image's largest activation of this map among the test digits"
            if engine.spatial
            else ""
        )
        + "."
    )
    left, right = st.columns([2, 3])
    with left:
        st.metric(
            "diverse OIPs, mean similarity up to a shift",
            f"{v.mean_similarity:.2f}",
            delta=f"{v.mean_similarity - v.plain_mean_similarity:+.2f} vs {len(v.diverse)} plain starts "
            f"({v.plain_mean_similarity:.2f})",
            delta_color="off",
        )
        given_up = v.given_up
        if np.isfinite(given_up):
            text = (
                f"Their best objective is {abs(given_up):.1f} % {'lower' if given_up >= 0 else 'higher'} than the "
                "plain starts' best"
            )
            if given_up > oip.GIVEN_UP_NOTICE:
                st.warning(
                    text + ": the diversity cost that much of what the map likes; lower the weight to keep more."
                )
            else:
                st.caption(text + ".")
    with right:
        widgets.chart(
            plots.similarity_matrix(v.similarity, [f"d{i + 1}" for i in range(len(v.diverse))]),
            key=P + "variants_similarity",
            config={"displayModeBar": False},
        )
