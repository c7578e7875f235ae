"""Activations page: draw, upload or pick a digit and see what every layer of the active CNN makes of it.

Thin: widgets here, maths in core.activations, figures in core.figures.activations.
"""

from __future__ import annotations

from core.device import quiet_tensorflow_logs

# First of all: a deep link to a fresh server runs this file before app.py (Streamlit's pages/ folder mode).
quiet_tensorflow_logs()

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.activations import (
    ActivationModel,
    ActivationResult,
    class_patterns,
    pattern_similarity,
    spatial_layer_info,
)
from core.attribution import registry as attribution
from core.attribution.base import Attribution, Option
from core.browser_model import NotInBrowser
from core.figures import activations as activation_figures
from core.figures.common import enlarge
from core.images import (
    ALLOWED_EXTENSIONS,
    DigitReading,
    ImageInputError,
    canvas_to_gray,
    drawing_doubts,
    read_digit_file,
    to_mnist_digit,
)
from core.runs import model_key as run_model_key
from pages.ui import draw, menu, resources, widgets
from pages.ui.state import Digit, session

SOURCES = ("Draw", "Upload", "Pick")
SORTS = {
    "map index": "index",
    "mean activation ↓": "mean desc",
    "mean activation ↑": "mean asc",
    "max activation ↓": "max desc",
}


# --------------------------------------------------------------------------- cached computations
@st.cache_data(max_entries=256, show_spinner=False)
def _activations(model_key: str, digit: bytes, _am: ActivationModel) -> ActivationResult:
    raw = np.frombuffer(digit, np.uint8).reshape(28, 28)
    return _am.activations(_am.scaler.transform(raw))


@st.cache_data(max_entries=256, show_spinner=False)
def _attribution(
    model_key: str, digit: bytes, method: str, k: int, settings: tuple, _am: ActivationModel
) -> Attribution:
    """One registered method's map for one digit and class (``settings``: sorted (name, value) pairs)."""
    raw = np.frombuffer(digit, np.uint8).reshape(28, 28)
    with resources.server_events().span("compute", what=method):
        return attribution.method(method).run(_am, raw, k, **dict(settings))


@st.cache_data(max_entries=8, show_spinner="Computing the class-mean conv3 patterns…")
def _patterns(model_key: str, source: str, layer: str, _am: ActivationModel, _images, _labels):
    with resources.server_events().span("compute", what="class patterns", layer=layer):
        return class_patterns(_am, _images, _labels, layer=layer, source=source)


@st.cache_data(max_entries=64, show_spinner=False)
def _upload_digit(data: bytes) -> DigitReading:
    return read_digit_file(data)


def _key(digit: np.ndarray) -> bytes:
    return np.ascontiguousarray(digit, dtype=np.uint8).tobytes()


# --------------------------------------------------------------------------- input
def _prediction_panel(
    digit: np.ndarray, result: ActivationResult, label: int | None, key: str, light: bool = False
) -> None:
    """The 28×28 image the network sees, the predicted class and the 10 probabilities."""
    left, right = st.columns([1, 1.4])
    with left:
        if light:  # after every stroke: a picture is enough, and cheap for a server a whole class draws on
            st.image(enlarge(digit), caption="what the network sees (28×28)", width=196)
        else:
            widgets.chart(
                activation_figures.digit_figure(digit, "what the network sees (28×28)", height=230),
                key=f"act_seen_{key}",
                config={"displayModeBar": False},
            )
    with right:
        p = result.probabilities
        text = f"### Prediction: **{result.predicted}**  \n{p[result.predicted] * 100:.1f} % confident"
        if label is not None:
            text += f" · true label {label} " + ("(correct)" if label == result.predicted else "(**wrong**)")
        st.markdown(text)
        kept = session().activations
        if kept.probability_chart is None:
            kept.probability_chart = activation_figures.ProbabilityChart()
        chart = kept.probability_chart
        widgets.chart(chart.update(p, result.predicted), key=f"act_probs_{key}", config={"displayModeBar": False})


def _commit_drawing() -> None:
    kept = session().activations
    kept.committed = kept.drawn


@st.cache_resource(max_entries=16, show_spinner=False)
def _browser_model(model_key: str, _bundle) -> tuple[str | None, str]:
    """The model written once for the drawing pad (its URL), or None and why the server answers instead."""
    check = resources.get_sample_digits().images[:16]
    try:
        with resources.server_events().span("compile", what="browser model", model=Path(_bundle.path).name):
            return draw.model_file(_bundle.model, _bundle.scaler, check), ""
    except NotInBrowser as exc:
        return None, f"This model is answered by the server after each stroke: {exc}."


def _read_pad(value: dict) -> None:
    """A new pad value (pen up, Undo or Clear): the server's own reading of the drawing, the reference for the
    sections below, and what it says about it."""
    kept = session().activations
    kept.pad_seq = value.get("seq")
    kept.pen_strokes = value.get("strokes") or []
    digit, notes = None, []
    if value.get("png") and kept.pen_strokes:
        try:
            gray = canvas_to_gray(draw.pad_pixels(value["png"]))
            notes += [
                "The network answers anyway, but this may be a guess: " + "; ".join(doubts) + ". "
                "Draw one digit large, in the middle of the pad."
                for doubts in [drawing_doubts(gray)]
                if doubts
            ]
            digit = to_mnist_digit(gray, invert=False)
        except ImageInputError as exc:
            notes.append(f"This drawing cannot be used: {exc}")
    mine = draw.browser_digit(value)
    if digit is not None and mine is not None and not np.array_equal(mine, digit):
        notes.append(
            f"The browser's 28×28 differs from the server's in {int((mine != digit).sum())} pixels; "
            "the sections below use the server's."
        )
    kept.drawn, kept.pad_notes = digit, notes
    kept.pad_answered = value.get("probabilities") is not None


def _draw_area(am: ActivationModel, model_key: str, bundle) -> None:
    """The pad answers by itself while the pen moves (prediction, probabilities, the maps); each finished stroke
    comes here, where the server reads it again for the sections below."""
    started = time.perf_counter()
    kept = session().activations
    url, note = _browser_model(model_key, bundle)
    value = draw.draw_pad(
        key=f"act_pad_{kept.canvas_mounts}",
        model_url=url,
        model_note=note,
        strokes=kept.pen_strokes,
        pen=st.session_state.get("act_stroke", 22),
        layer=st.session_state.get("act_layer"),
        scale=st.session_state.get("act_scale", "shared"),
    )
    c1, c2 = st.columns([2, 1])
    c1.slider(
        "Pen width (pad pixels)",
        8,
        40,
        22,
        persist_state="session",
        key="act_stroke",
        help="The pad has 280×280 pixels whatever size it is shown at, so a stroke keeps its share of the digit "
        "(MNIST strokes are ~2 px of 28, about 22 of 280). A new width applies to the next stroke.",
    )
    if isinstance(value, dict) and value.get("seq") != kept.pad_seq:
        _read_pad(value)
        # the server's record spans what the caption below reports, so every slow stroke can be explained by it
        resources.server_events().record(
            "draw",
            time.time() - (time.perf_counter() - started),
            time.perf_counter() - started,
            strokes=len(kept.pen_strokes or []),
        )
    read = time.perf_counter()
    digit = kept.drawn
    for text in kept.pad_notes or []:
        if text.startswith("This drawing cannot"):
            st.error(text)
        else:
            st.warning(text, icon=":material/help:")
    if digit is not None:
        result = _activations(model_key, _key(digit), am)
        if url is None or not kept.pad_answered:  # the server's answer, as before the pad ran the model itself
            _prediction_panel(digit, result, None, "draw", light=True)
        strokes = len(kept.pen_strokes or [])
        c2.caption(
            f"{strokes} stroke{'s' if strokes != 1 else ''} → the server's reading for the sections below: "
            f"{(read - started) * 1000:.0f} ms of server time ({(time.perf_counter() - started) * 1000:.0f} ms with "
            "the reference computed)"
        )
    committed = kept.committed
    changed = (digit is None) != (committed is None) or (digit is not None and not np.array_equal(digit, committed))
    if changed:
        if st.session_state.get("act_live", True):
            kept.committed = digit
        else:
            st.button("Update the sections below", key="act_commit", on_click=_commit_drawing)


def _pick_random() -> None:
    sample = resources.get_sample_digits()
    wanted = int(st.session_state.get("act_random_class", 4))
    choices = sample.indices[sample.labels == wanted]
    st.session_state["act_index"] = int(np.random.default_rng().choice(choices))


def _mnist_if_available():
    path = os.environ.get("MNIST_NPZ", "")
    if path and Path(path).is_file():
        return resources.get_mnist()
    return None


def _picked_digit() -> tuple[np.ndarray | None, int | None]:
    sample = resources.get_sample_digits()
    c1, c2, c3 = st.columns([1.2, 1, 1.3])
    st.session_state.setdefault("act_index", 227)
    index = widgets.whole_number(
        c1,
        "MNIST test digit (index)",
        0,
        9999,
        227,
        key="act_index",
        help="227 is the blog's example, a 4. The first 2,000 test digits ship with the app.",
    )
    c2.selectbox(
        "Class of a random digit",
        list(range(10)),
        index=4,
        persist_state="session",
        key="act_random_class",
        help="The button beside picks a random test digit of this class (4: the class of digit 227).",
    )
    c3.button("A random digit of this class", key="act_random", on_click=_pick_random)
    if index is None:
        return None, None
    if index in set(sample.indices.tolist()):
        return sample.by_test_index(index)
    mnist = _mnist_if_available()
    if mnist is None:
        st.error(
            f"Test digit {index} is not in the shipped sample (0..{int(sample.indices.max())}) and the "
            "full MNIST file is not available (set MNIST_NPZ=/path/to/mnist.npz)."
        )
        return None, None
    return mnist.x_test[index], int(mnist.y_test[index])


def _uploaded_digit() -> tuple[np.ndarray | None, str | None]:
    """The uploaded image read as an MNIST digit (None when there is none or it cannot be used), and its name."""
    up = widgets.kept_upload(
        session().activations,
        "upload",
        "An image of one digit (PNG, JPEG, GIF, BMP, WebP; a photo of a digit on paper works)",
        key="act_upload",
        types=list(ALLOWED_EXTENSIONS),
        forget="Forget it",
    )
    if up is None:
        st.info(
            "Upload an image: it is turned grey, inverted if the digit is dark on light, cropped, scaled "
            "into 20×20 and centred by its centre of mass in 28×28, as MNIST was made."
        )
        return None, None
    name, data = up
    try:
        reading = _upload_digit(data)
    except ImageInputError as exc:
        st.error(f"**{name}** cannot be used: {exc}")
        return None, name
    except Exception as exc:  # a decoder bug must not take the page down
        st.error(f"**{name}** could not be read ({type(exc).__name__}: {exc}).")
        return None, name
    if reading.unsure:  # say so, and show which marks were taken
        st.warning(
            f"**{name}**: not sure this is the digit you meant. "
            + widgets.sentence("; ".join(reading.notes))
            + ". Crop the photo to one digit if the red box is wrong.",
            icon=":material/help:",
        )
        st.image(
            activation_figures.picked_marks(reading.picture, reading.box),
            caption="the marks taken (red box)",
            width="stretch",
        )
    elif reading.notes:
        st.caption(f"{name}: " + "; ".join(reading.notes) + ".")
    return reading.digit, name


# --------------------------------------------------------------------------- sections
def _select_map_from_chart(chart_key: str) -> None:
    event = st.session_state.get(chart_key)
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, (int, float)):
            st.session_state["act_map"] = int(data)
            return


def _dense_strips(result: ActivationResult) -> None:
    for name in result.dense_names:
        vals = result.layers[name]
        widgets.chart(
            activation_figures.dense_strip(vals, f"{name}: {vals.size} units · {int((vals <= 1e-6).sum())} at zero"),
            key=f"act_dense_{name}",
            config={"displayModeBar": False},
        )


def _maps_section(am: ActivationModel, result: ActivationResult) -> None:
    names = result.spatial_names
    if not names:  # a dense network: no maps, only units
        st.caption("This network has no conv layers, so no maps: each dense layer's units for this digit.")
        _dense_strips(result)
        return
    c = st.columns([2.2, 1.2, 1.6, 1.2])
    layer = c[0].radio("Layer", names, index=0, horizontal=True, persist_state="session", key="act_layer")
    scale = c[1].radio(
        "Colour scale",
        ["shared", "per map"],
        horizontal=True,
        persist_state="session",
        key="act_scale",
        help="shared: one scale for the whole layer; per map: each map scaled to its own maximum "
        "(hover always shows the true values)",
    )
    sort = c[2].selectbox("Order", list(SORTS), persist_state="session", key="act_sort")
    hide_dead = c[3].checkbox(
        "Hide dead maps", persist_state="session", key="act_hide_dead", help="maps that stay at zero for this digit"
    )
    values = result.layer(layer)
    stats = result.stats(layer)
    order = [int(i) for i in stats.order(SORTS[sort])]
    share = st.slider(
        "Only maps whose mean activation reaches this share of the strongest map's",
        0.0,
        1.0,
        0.0,
        0.05,
        persist_state="session",
        key="act_min_mean",
        format="%.2f",
    )
    threshold = share * float(stats.mean.max())
    shown = [m for m in order if stats.mean[m] >= threshold and not (hide_dead and stats.dead[m])]
    n_dead = int(stats.dead.sum())
    st.caption(
        f"**{layer}** of the digit predicted as {result.predicted}: {values.shape[2]} maps of "
        f"{values.shape[0]}×{values.shape[1]} · {n_dead} dead for this digit (label ✕) · showing {len(shown)} · "
        "click a map's number to enlarge it"
    )
    n_maps = values.shape[2]
    if st.session_state.get("act_map", 0) >= n_maps:
        st.session_state["act_map"] = 0
    selected = int(st.session_state.get("act_map", 0))
    if shown:
        cols = 8 if values.shape[0] >= 10 else 16
        fig = activation_figures.map_mosaic(
            values, shown, cols=cols, per_map=scale == "per map", dead=stats.dead, selected=selected
        )
        chart_key = f"act_mosaic_{layer}"
        widgets.chart(
            fig,
            key=chart_key,
            on_select=lambda: _select_map_from_chart(chart_key),
            selection_mode="points",
            config={"displayModeBar": False},
        )
    else:
        st.warning("No map passes the filter; lower the threshold or show dead maps.")
    left, right = st.columns([1.3, 1])
    with left:
        m = st.selectbox(
            "Map",
            list(range(n_maps)),
            persist_state="session",
            key="act_map",
            format_func=lambda i: f"map {i}",
            help="or click a map's number in the grid above",
        )
        zmax = None if scale == "per map" else float(values.max())
        widgets.chart(
            activation_figures.map_figure(
                values[..., m], f"{layer} · map {m}", zmin=0 if zmax else None, zmax=zmax, height=380
            ),
            key="act_map_large",
            config={"displayModeBar": False},
        )
    with right:
        info = am.layer_info[layer]
        st.metric("mean activation", f"{stats.mean[m]:.4f}")
        st.metric("max activation", f"{stats.max[m]:.4f}")
        rank = 1 + int((stats.mean > stats.mean[m]).sum())
        side = info.receptive_field
        st.caption(
            f"Rank {rank} of {n_maps} by mean activation. Each neuron of {layer} sees a {side}×{side} "
            f"square of the input, neighbours {info.jump} px apart (Receptive field tab)."
        )
        if stats.dead[m]:
            st.warning("This map stays at zero for this digit: its pattern is not found in the input.")
    _dense_strips(result)


def _filters_section(am: ActivationModel) -> None:
    convs = am.conv_names
    if not convs:
        widgets.offer_the_cnn("Showing filters", stop=False)
        return
    c = st.columns([1, 2])
    layer = c[0].selectbox("Conv layer", convs, persist_state="session", key="act_filter_layer")
    kernel = am.model.get_layer(layer).kernel.numpy()
    k, c_in, c_out = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    if c_in == 1:
        st.caption(
            f"All {c_out} kernels ({k}×{k}) of {layer}: what each map looks for in the input pixels "
            "(red: positive weights, blue: negative)."
        )
        hl = st.session_state.get("act_map") if st.session_state.get("act_layer") == layer else None
        widgets.chart(
            activation_figures.kernel_grid(am.kernel_slices(layer), "kernel", cols=8, highlight=hl),
            key="act_kernels",
            config={"displayModeBar": False},
        )
    else:
        m = c[1].selectbox(
            "Map", list(range(c_out)), persist_state="session", key="act_filter_map", format_func=lambda i: f"map {i}"
        )
        slices = am.kernel_slices(layer, int(m))
        norms = np.sqrt((slices**2).sum(axis=(1, 2)))
        strongest = ", ".join(str(i) for i in np.argsort(-norms)[:5])
        bias = float(am.model.get_layer(layer).bias.numpy()[int(m)])
        st.caption(
            f"The kernel of {layer} map {m} has {c_in} slices of {k}×{k}: slice i weighs map i of the "
            f"previous layer. Strongest slices: {strongest}. Bias {bias:+.3f}."
        )
        widgets.chart(
            activation_figures.kernel_grid(slices, "slice", cols=16, width_px=860),
            key="act_slices",
            config={"displayModeBar": False},
        )


def _option_widget(option: Option, key: str):
    """One method option as a widget: a toggle, a selectbox or a whole-number slider."""
    if option.kind == "switch":
        return st.toggle(option.label, option.default, persist_state="session", key=key, help=option.help or None)
    if option.kind == "choice":
        return st.selectbox(
            option.label,
            option.choices,
            index=option.choices.index(option.default),
            persist_state="session",
            key=key,
            format_func=option.describe,
            help=option.help or None,
        )
    return st.slider(
        option.label,
        option.low,
        option.high,
        option.default,
        step=option.step,
        persist_state="session",
        key=key,
        help=option.help or None,
    )


def _pixels_section(am: ActivationModel, model_key: str, digit: np.ndarray, result: ActivationResult) -> None:
    c = st.columns([1, 4])
    options = ["predicted"] + list(range(am.spec.num_classes))
    choice = c[0].selectbox(
        "Class",
        options,
        persist_state="session",
        key="act_class",
        format_func=lambda o: f"predicted ({result.predicted})" if o == "predicted" else str(o),
    )
    k = result.predicted if choice == "predicted" else int(choice)
    methods = attribution.METHODS
    chosen = c[1].multiselect(
        "Methods",
        list(methods),
        default=list(methods),
        persist_state="session",
        key="act_methods",
        format_func=lambda name: methods[name].label,
        help="; ".join(f"{m.label} ({m.reference}): {m.summary}" for m in methods.values()),
    )
    if not chosen:
        st.info("Choose at least one method above to see which pixels matter.")
        return
    key = _key(digit)
    per_row = 3
    for first in range(0, len(chosen), per_row):
        cols = st.columns(per_row)
        for col, name in zip(cols, chosen[first : first + per_row]):
            method = methods[name]
            with col:
                settings = {}
                if method.options:
                    with st.expander(f"{method.label} settings", expanded=False):
                        settings = {o.name: _option_widget(o, f"act_{name}_{o.name}") for o in method.options}
                else:
                    st.caption(f"{method.label} has no settings.")
                try:
                    with st.spinner(f"{method.label}…"):
                        found = _attribution(model_key, key, name, k, tuple(sorted(settings.items())), am)
                except ValueError as exc:  # e.g. Grad-CAM on a network without conv layers
                    st.info(f"{method.label}: {exc}.")
                    continue
                bound = float(np.abs(found.pixels).max()) or 1.0
                widgets.chart(
                    activation_figures.overlay_figure(
                        digit,
                        found.pixels,
                        found.title,
                        colorscale=activation_figures.DIVERGING if found.signed else activation_figures.HEAT_SCALE,
                        zmin=-bound if found.signed else 0,
                        zmax=bound,
                        label=method.label,
                    ),
                    key=f"act_map_{name}",
                    config={"displayModeBar": False},
                )
                st.caption(f"{found.caption} (computed in {found.seconds * 1000:.0f} ms)")
                for note in found.notes:
                    st.info(note)


def _clamp(key: str, hi: int) -> None:
    if st.session_state.get(key, 0) > hi:
        st.session_state[key] = hi


def _strongest_neuron(result: ActivationResult) -> None:
    layer = st.session_state["act_rf_layer"]
    values = result.layer(layer)[..., int(st.session_state.get("act_rf_map", 0))]
    r, c = np.unravel_index(int(np.argmax(values)), values.shape)
    st.session_state["act_rf_row"], st.session_state["act_rf_col"] = int(r), int(c)


def _receptive_section(am: ActivationModel, digit: np.ndarray, result: ActivationResult) -> None:
    infos = spatial_layer_info(am.spec)
    names = [n for n in result.spatial_names if n in infos]
    if not names:
        st.info("A dense unit sees every pixel of the input: receptive fields belong to conv layers.")
        return
    c = st.columns(4)
    layer = c[0].selectbox("Layer", names, index=len(names) - 1, persist_state="session", key="act_rf_layer")
    values = result.layer(layer)
    side, n_maps = values.shape[0], values.shape[2]
    _clamp("act_rf_map", n_maps - 1)
    _clamp("act_rf_row", side - 1)
    _clamp("act_rf_col", side - 1)
    m = c[1].selectbox("Map", list(range(n_maps)), persist_state="session", key="act_rf_map")
    st.session_state.setdefault("act_rf_row", side // 2)
    st.session_state.setdefault("act_rf_col", side // 2)
    row = c[2].slider("Row", 0, side - 1, persist_state="session", key="act_rf_row") if side > 1 else 0
    col = c[3].slider("Column", 0, side - 1, persist_state="session", key="act_rf_col") if side > 1 else 0
    st.button("Jump to this map's strongest neuron", key="act_rf_strongest", on_click=_strongest_neuron, args=(result,))
    rf = am.receptive_field(layer, row, col)
    top, left, bottom, right = rf.box
    left_col, right_col = st.columns(2)
    with left_col:
        title = f"input region seen by {layer} ({row}, {col})"
        widgets.chart(
            activation_figures.receptive_field_figure(digit, rf.box, rf.size, title),
            key="act_rf_input",
            config={"displayModeBar": False},
        )
    with right_col:
        fig = activation_figures.map_figure(values[..., m], f"{layer} · map {m}", height=320)
        fig.add_shape(
            type="rect", x0=col - 0.5, x1=col + 0.5, y0=row - 0.5, y1=row + 0.5, line=dict(color="#ff7f0e", width=3)
        )
        widgets.chart(fig, key="act_rf_map_fig", config={"displayModeBar": False})
    clipped = (
        f" The full field reaches past the border; {rf.visible[0]}×{rf.visible[1]} pixels of it lie inside the image."
        if rf.clipped
        else ""
    )
    st.markdown(
        f"Neuron ({row}, {col}) of {layer} map {m} = **{values[row, col, m]:.4f}** sees input rows "
        f"{top}–{bottom} and columns {left}–{right}: a **{rf.size}×{rf.size}** field, neighbours "
        f"{rf.jump} px apart.{clipped}"
    )
    table = pd.DataFrame(
        {
            "layer": list(infos),
            "map size": [f"{i.output_shape[0]}×{i.output_shape[1]}" for i in infos.values()],
            "receptive field": [f"{i.receptive_field}×{i.receptive_field}" for i in infos.values()],
            "jump (px)": [i.jump for i in infos.values()],
        }
    )
    st.dataframe(table, hide_index=True)
    widgets.blog_beside(
        [("receptive_fields", ", ".join(f"{n} {i.receptive_field}" for n, i in infos.items()) + " px")],
        "The blog's receptive fields beside this model's",
    )


def _patterns_section(am: ActivationModel, model_key: str, result: ActivationResult) -> None:
    layer = am.cam_layer
    if layer is None:
        st.info("Blog article VI compares the patterns of the last conv layer; this dense network has none.")
        return
    mnist = _mnist_if_available()
    if mnist is not None:
        images, labels, source = mnist.x_test, mnist.y_test, f"the MNIST test set ({len(mnist.y_test):,} digits)"
    else:
        sample = resources.get_sample_digits()
        images, labels = sample.images, sample.labels
        source = f"the shipped sample of {len(labels):,} MNIST test digits"
    patterns = _patterns(model_key, source, layer, am, images, labels)
    match = pattern_similarity(patterns, result.layer(layer))
    st.caption(
        f"Blog article VI: every class leaves its own average pattern in {layer} "
        f"({patterns.means.shape[1]}×{patterns.means.shape[2]}×{patterns.means.shape[3]} = "
        f"{int(np.prod(patterns.means.shape[1:]))} values), computed over {source}. Choosing the class whose "
        f"mean pattern is most similar (cosine) classifies {patterns.accuracy * 100:.2f} % of those digits "
        "correctly without the dense layers."
    )
    c = st.columns([1, 2])
    with c[0]:
        verdict = "agrees with" if match.nearest == result.predicted else "disagrees with"
        st.markdown(
            f"Nearest class pattern: **{match.nearest}** (cosine {match.cosine[match.nearest]:.3f}); "
            f"this {verdict} the network's prediction {result.predicted}."
        )
        widgets.chart(
            activation_figures.similarity_chart(match.cosine), key="act_similarity", config={"displayModeBar": False}
        )
    with c[1]:
        widgets.chart(
            activation_figures.pattern_figure(patterns.means, result.layer(layer)),
            key="act_patterns",
            config={"displayModeBar": False},
        )


# --------------------------------------------------------------------------- page
menu.page_frame()
st.title("Activations")
st.write("Draw, upload or pick a digit and see what every layer of the active CNN makes of it.")
bundle = menu.active_bundle()
if bundle is None:
    st.stop()
model_key = run_model_key(bundle.path)
am = resources.activation_model(bundle)

sources = list(SOURCES)
source = st.segmented_control("Input", sources, default="Pick", persist_state="session", key="act_source") or "Pick"
digit, label = None, None
kept = session().activations
if source == "Draw" and (kept.previous_input != "Draw" or menu.just_entered()):
    # the pad is remounted (another input, or back from another page): it is given back the strokes it had
    kept.canvas_mounts += 1
kept.previous_input = source
inputs = st.container()
view = st.empty()  # Pick's prediction; emptied explicitly in the other modes so nothing stale stays
if source == "Draw":
    view.empty()
    with inputs:
        st.toggle(
            "Update all sections after each stroke",
            value=True,
            persist_state="session",
            key="act_live",
            help="Off: only the pad's answer follows the drawing; the sections below update on request.",
        )
        _draw_area(am, model_key, bundle)
    digit = kept.committed
elif source == "Upload":
    view.empty()
    with inputs:
        left, right = st.columns([1, 1.6])
        with left:
            digit, upload_name = _uploaded_digit()
        if digit is not None:
            with right:
                _prediction_panel(digit, _activations(model_key, _key(digit), am), None, "upload")
else:
    with inputs:
        digit, label = _picked_digit()
    if digit is not None:
        with view.container():
            _prediction_panel(digit, _activations(model_key, _key(digit), am), label, "pick")
    else:
        view.empty()

if digit is None:
    st.stop()
if source == "Draw":
    session().digit = Digit(digit, "drawn", "your drawing")
elif source == "Upload":
    session().digit = Digit(digit, "uploaded", f"your upload {upload_name}")
else:
    session().digit = Digit(digit, "test set", f"MNIST test digit {st.session_state.get('act_index')}", label)
result = _activations(model_key, _key(digit), am)
tabs = st.tabs(["Layer maps", "Filters", "Which pixels matter", "Receptive field", "Activation patterns"])
with tabs[0]:
    _maps_section(am, result)
with tabs[1]:
    _filters_section(am)
with tabs[2]:
    _pixels_section(am, model_key, digit, result)
with tabs[3]:
    _receptive_section(am, digit, result)
with tabs[4]:
    _patterns_section(am, model_key, result)
