"""Experiments page: on one digit, switch maps off, fool the network, test what it is invariant to; and the
learner's own handwriting as a personal set, with a fine-tuned copy of the model.

Thin: the digit (from the Activations page, or a test digit picked here) and the widgets → core.experiments.knockout,
core.experiments.attack, core.experiments.invariance, core.experiments.personal_set → figures
(core.figures.experiments). The test-set knock-out,
the OIPs beside the ranking and the fine-tuning are jobs.
"""

from __future__ import annotations

from core.device import quiet_tensorflow_logs

# First of all: a deep link to a fresh server runs this file before app.py (Streamlit's pages/ folder mode).
quiet_tensorflow_logs()

import numpy as np
import streamlit as st

from core.experiments.attack import METHODS, PIXELS, Attacker
from core.experiments.fine_tune import FineTuneConfig
from core.experiments.invariance import TRANSFORMS, UNITS, sweep
from core.experiments.knockout import Knockout, most_active, relate_to_oips
from core.experiments.personal_set import MAX_DIGITS, PersonalSet, PersonalSetError, score_probabilities
from core.figures import experiments as experiment_figures
from core.figures.activations import map_mosaic
from core.figures.common import enlarge
from core.images import ImageInputError, read_digit_file
from core.jobs.kinds import FineTuneJobConfig, KnockoutConfig
from core.jobs.system import JobHandle, JobSpec
from core.oip.search import OipConfig
from core.runs import model_key as run_model_key
from core.runs import run_title, sanitize_name
from pages.ui import jobs, menu, resources, state, widgets
from pages.ui.state import Computed, model_title, session

JOB_KEY = "knockout_job"
TUNE_JOB_KEY = "fine_tune_job"
OIP_JOB_KEY = "ko_oip_job"
TAB_KEY = "exp_tab"  # the tabs' widget key: the label of the open tab
MOST_ACTIVE, CHOSEN = "the k most active for this digit", "chosen in the grid or by number"


def _toggle_clicked_map(chart_key: str, picked: list[int]) -> None:
    """A click on a map's number in the grid switches that map off (or on again): the choice becomes 'chosen'."""
    event = st.session_state.get(chart_key) or {}
    clicked = [
        int(p["customdata"])
        for p in event.get("selection", {}).get("points", [])
        if isinstance(p.get("customdata"), (int, float))
    ]
    if not clicked:
        return
    chosen = {int(m) for m in picked}
    st.session_state["ko_maps"] = sorted(chosen ^ set(clicked))
    st.session_state["ko_how"] = CHOSEN
    session().experiments.grid_mounts += 1


@st.cache_resource(show_spinner="Compiling the experiments…", max_entries=16)
def _tools(model_key: str, _bundle) -> tuple[Knockout | None, Attacker]:
    """Compiled views of one model, shared by all sessions (they only read it); no Knockout for a model without
    conv maps."""
    knockout = Knockout(_bundle.model) if _bundle.spec.convs else None
    return knockout, Attacker(_bundle.model, _bundle.scaler)


def _probabilities(x: np.ndarray) -> np.ndarray:
    """Model input ``(N, 28, 28, 1)`` → probabilities ``(N, 10)`` of the intact model."""
    return knockout.probabilities(x) if knockout is not None else am.predict(x)


@st.cache_data(max_entries=128, show_spinner="Attacking…")
def _attack(model_key: str, digit: bytes, target: int, budget: int, method: str, pixels: str, _attacker: Attacker):
    raw = np.frombuffer(digit, np.uint8).reshape(28, 28)
    return _attacker.attack(raw, target, budget, method, pixels=pixels)


def _importance_section(imp) -> None:
    """The ranking of a layer's maps (for all digits or one class), beside the maps' OIPs when this session has
    them (Filters / OIP page, or computed from here)."""
    which = st.selectbox(
        "Importance for",
        ["all digits"] + list(range(10)),
        persist_state="session",
        key="ko_rank_class",
        format_func=lambda c: c if isinstance(c, str) else f"the {c}s",
        help="the accuracy lost on every test digit, or on one class's digits only",
    )
    digit_class = None if isinstance(which, str) else int(which)
    drop = imp.drop(digit_class)
    widgets.chart(experiment_figures.importance_bars(drop, imp.ranking(digit_class), imp.layer), key="ko_importance")
    top = int(imp.ranking(digit_class)[0])
    st.caption(
        f"The most important map of {imp.layer} for {which if digit_class is None else f'the {which}s'}, "
        f"map {top}, costs {drop[top] * 100:.2f} points of accuracy when it alone is off "
        f"(ranked in {imp.seconds:.1f} s)."
    )
    oips = state.oip_store().latest_result(model_key, imp.layer)
    if oips is None:
        st.info(
            f"Does a map that looks meaningful matter? Compute the OIPs of {imp.layer} (the pattern each map "
            "responds to most, as on the Filters / OIP page) to see them beside the ranking."
        )
        jobs.start_button(
            OIP_JOB_KEY,
            f"Compute the OIPs of {imp.layer}",
            lambda: JobSpec("oip", OipConfig(layer=imp.layer), model=str(bundle.path), title=f"OIPs of {imp.layer}"),
            key="ko_oip_start",
            busy_label="Computing OIPs…",
            type="secondary",
        )
        jobs.job_panel(OIP_JOB_KEY, on_end=state.store_oip_result, describe=jobs.describe_oip_job)
        return
    relation = relate_to_oips(imp, oips.maps, oips.best_loss, oips.has_oip, digit_class)
    st.markdown(relation.sentence())
    index = {int(m): i for i, m in enumerate(oips.maps)}
    rows = [index[int(m)] for m in relation.maps]
    left, right = st.columns([3, 2])
    with left:
        widgets.chart(
            experiment_figures.importance_oip_gallery(
                oips.best_images[rows], relation.maps, relation.drop, relation.has_oip, imp.layer
            ),
            key="ko_oip_gallery",
            config={"displayModeBar": False},
        )
    with right:
        widgets.chart(experiment_figures.importance_vs_oip(relation), key="ko_oip_scatter")
    st.caption(
        f"OIPs from the latest OIP run of {imp.layer} in this session ({oips.config.epochs} epochs, "
        f"{oips.device}); dimmed: no OIP found (the map stays at or below zero)."
    )


menu.page_frame()
st.title("Experiments on your digit")
st.write(
    "Which maps matter, how easily the network is fooled, and what it is robust to: three experiments on "
    "one digit with the active model; and how it reads your own handwriting."
)
bundle = menu.active_bundle()
if bundle is None:
    st.stop()
model_key = run_model_key(bundle.path)
knockout, attacker = _tools(model_key, bundle)
am = resources.activation_model(bundle)

# --- the digit ---------------------------------------------------------------------------------------------
memory = session().experiments
handed = session().digit
choices = (["The digit from the Activations page"] if handed else []) + ["An MNIST test digit"]
if st.session_state.get("exp_source") not in choices or (handed and handed.key != memory.handed):
    st.session_state.pop("exp_source", None)  # a new digit from the Activations page comes first; none: MNIST
memory.handed = handed.key if handed else None
source = st.radio(
    "Digit",
    choices,
    horizontal=True,
    persist_state="session",
    key="exp_source",
    help="Draw or upload a digit on the Activations page and it comes here too.",
)
if source == choices[0] and handed:
    raw, label, where = handed.pixels, handed.label, handed.name
else:
    index = widgets.number(
        st,
        "Test digit (index)",
        0,
        1999,
        227,
        key="exp_index",
        help="One of the 2,000 shipped test digits; 227 is the blog's 4.",
    )
    raw, label = resources.get_sample_digits().by_test_index(int(index))
    where = f"MNIST test digit {int(index)}"
x = bundle.scaler.transform(raw)
probs = _probabilities(x)[0]
predicted = int(np.argmax(probs))
left, right = st.columns([1, 3])
left.image(enlarge(raw, 140), caption=where + (f" (label {label})" if label is not None else ""))
right.markdown(f"The network reads **{predicted}** ({probs[predicted]:.1%}).")
digit_key = np.ascontiguousarray(raw, np.uint8).tobytes()

# Only the open tab runs (on_change="rerun"): a class shares this server, and the closed tabs' experiments
# (an attack, a sweep, the canvas component's mount, which reruns the page) would run on every click.
tab_ko, tab_fool, tab_inv, tab_hw = st.tabs(
    ["Knock maps out", "Fool the network", "Invariances", "Your handwriting"], key=TAB_KEY, on_change="rerun"
)


# --- knock-out -------------------------------------------------------------------------------------------
def _knockout_tab() -> None:
    if knockout is None:
        widgets.offer_the_cnn("Knocking maps out", stop=False)
        return
    c1, c2, c3 = st.columns([1, 1, 2])
    if st.session_state.get("ko_layer") not in knockout.mask_layers:  # kept from a model without that layer
        st.session_state.pop("ko_layer", None)
    layer = c1.selectbox(
        "Layer", knockout.mask_layers, index=len(knockout.mask_layers) - 1, persist_state="session", key="ko_layer"
    )
    width = knockout.widths[layer]
    # k kept from a wider layer is lowered; set here, the widget then gets no default (both would warn)
    st.session_state["ko_k"] = min(int(st.session_state.get("ko_k", min(5, width - 1))), width - 1)
    how = c2.radio(
        "Maps",
        [MOST_ACTIVE, CHOSEN],
        persist_state="session",
        key="ko_how",
        help="or click maps in the grid below to switch them off and on",
    )
    activations = knockout.layer_output(x, layer)[0]
    if how == MOST_ACTIVE:
        k = c3.slider("k", 1, width - 1, persist_state="session", key="ko_k")
        picked = most_active(activations, k)
    else:
        st.session_state["ko_maps"] = [m for m in st.session_state.get("ko_maps", [0]) if m < width]  # layer changed
        picked = c3.multiselect("Maps to switch off", list(range(width)), persist_state="session", key="ko_maps")
    grid_key = f"ko_grid_{layer}_{memory.grid_mounts}"  # a new chart per change: no stale selection
    widgets.chart(
        map_mosaic(
            activations,
            cols=8 if activations.shape[0] >= 10 else 16,
            marked=picked,
            hint="click to switch it off or on",
        ),
        key=grid_key,
        on_select=lambda: _toggle_clicked_map(grid_key, picked),
        selection_mode="points",
        config={"displayModeBar": False},
    )
    st.caption(
        f"{layer}'s maps for this digit; the maps switched off are crossed out. Click a map's number to "
        "switch it off or on."
    )
    if not picked:
        st.info("Choose at least one map to switch off.")
    elif len(set(picked)) >= width:
        st.error(f"Switching off all {width} maps of {layer} leaves nothing for the layers after it; keep one.")
    else:
        maps = {layer: sorted(int(m) for m in picked)}
        after = knockout.probabilities(x, knockout.keep_vector(maps))[0]
        st.markdown(
            f"With {layer} maps {maps[layer]} off the network reads **{int(np.argmax(after))}** "
            f"({after.max():.1%}); it read {predicted} ({probs[predicted]:.1%})."
        )
        widgets.chart(
            experiment_figures.before_after_bars(probs, after, "this digit's probabilities", "probability"),
            key="ko_digit",
        )
        rank = st.checkbox(
            f"Also rank every map of {layer} by the accuracy it alone costs", persist_state="session", key="ko_rank"
        )

        def _make_spec() -> JobSpec | None:
            if resources.get_mnist() is None:
                return None
            spec_maps = tuple((name, tuple(ms)) for name, ms in maps.items())
            return JobSpec(
                "knockout",
                KnockoutConfig(spec_maps, layer if rank else None),
                model=str(bundle.path),
                title="knock-out on the test digits",
            )

        def _keep(handle: JobHandle) -> None:
            memory.knockout = Computed.of(handle.result, handle.spec.model)

        jobs.start_button(JOB_KEY, "Test on all 10,000 test digits", _make_spec, key="ko_start", busy_label="Testing…")
        jobs.job_panel(JOB_KEY, on_end=_keep)
        if memory.knockout is not None and memory.knockout.is_for(model_key):
            outcome = memory.knockout.value
            off = "; ".join(f"{name} maps {', '.join(str(m) for m in ms)}" for name, ms in outcome.maps.items())
            st.markdown(
                f"Test accuracy with {off} off: **{outcome.after.overall:.2%}** (intact {outcome.before.overall:.2%})."
            )
            widgets.chart(
                experiment_figures.before_after_bars(
                    100 * outcome.before.per_class,
                    100 * outcome.after.per_class,
                    "accuracy per class, intact and with the maps off",
                    "accuracy %",
                ),
                key="ko_classes",
            )
            if outcome.importance is not None:
                _importance_section(outcome.importance)


# --- fool the network ------------------------------------------------------------------------------------
def _fool_tab() -> None:
    c1, c2, c3, c4 = st.columns(4)
    others = [d for d in range(10) if d != predicted]
    target = c1.selectbox("Make it read", others, index=others.index((predicted + 5) % 10), key="fool_target")
    method = c2.radio(
        "Method",
        METHODS,
        index=1,
        persist_state="session",
        key="fool_method",
        help="fgsm: one step of the whole budget; pgd: 20 smaller steps, projected back each time.",
    )
    budget = c3.slider("Budget (grey levels per pixel)", 1, 255, 32, persist_state="session", key="fool_budget")
    pixels = c4.radio(
        "Pixels",
        PIXELS,
        persist_state="session",
        key="fool_pixels",
        help="ink: only where training digits have ink; all: the nearly blank border too, which the "
        "per-pixel scaler magnifies (2 grey levels there are 60 standard deviations).",
    )
    result = _attack(model_key, digit_key, int(target), int(budget), method, pixels, attacker)
    verdict = "fooled" if result.flipped else "not fooled"
    smallest = (
        f"the smallest budget that makes it a {target}: **{result.smallest_budget} grey levels**"
        if result.smallest_budget is not None
        else f"no budget up to 255 makes it a {target} this way"
    )
    st.markdown(
        f"**{verdict.capitalize()}**: it now reads **{result.predicted_after}** "
        f"({result.probabilities_after.max():.1%}); {smallest}."
    )
    cols = st.columns(3)
    cols[0].image(enlarge(result.original, 168), caption="the digit")
    cols[1].image(enlarge(result.changed, 168), caption=f"changed (at most {budget} grey levels)")
    cols[2].image(
        np.repeat(np.repeat(experiment_figures.change_picture(result.change), 6, axis=0), 6, axis=1),
        caption=f"the change, amplified (largest {int(np.abs(result.change).max())} levels; red brighter)",
    )
    left, right = st.columns(2)
    with left:
        widgets.chart(
            experiment_figures.before_after_bars(
                result.probabilities_before, result.probabilities_after, "probabilities before and after", "probability"
            ),
            key="fool_probs",
        )
    with right:
        widgets.chart(experiment_figures.divergence_chart(result.divergence), key="fool_layers")


# --- invariances -----------------------------------------------------------------------------------------
def _invariances_tab() -> None:
    c1, c2 = st.columns(2)
    kind = c1.selectbox(
        "Transform",
        TRANSFORMS,
        persist_state="session",
        key="inv_kind",
        help="shift right (px), rotate anticlockwise (degrees), scale about the centre, "
        "thicken (+) or thin (−) the strokes (px)",
    )
    followable = [n for n in am.layer_names if n != "out"]
    if st.session_state.get("inv_layer") not in followable:  # kept from a model without that layer
        st.session_state["inv_layer"] = am.cam_layer or followable[-1]
    follow = c2.selectbox("Follow the maps of", followable, persist_state="session", key="inv_layer")
    result = sweep(am, raw, kind, layer=follow)
    held = result.holds(predicted)
    span = "no value" if held is None else f"{held[0]:g} to {held[1]:g} {UNITS[kind]}"
    st.markdown(f"It stays a **{predicted}** for {kind} from **{span}**.")
    values = [float(v) for v in result.values]
    neutral = 1.0 if kind == "scale" else 0.0
    at = st.select_slider(
        f"{kind.capitalize()} ({UNITS[kind]})",
        values,
        value=min(values, key=lambda v: abs(v - neutral)),
        key=f"inv_at_{kind}",
        format_func=lambda v: f"{v:g}",
        help="the digit at one value of the range; the curves below span the whole range",
    )
    i = values.index(at)
    left, right = st.columns([1, 3])
    with left:
        st.image(
            enlarge(np.rint(result.images[i]).astype(np.uint8), 168),
            caption=f"{kind} {at:g} {UNITS[kind]}: reads {int(result.predicted[i])} "
            f"({result.probabilities[i].max():.1%})",
        )
    with right:
        widgets.chart(
            experiment_figures.invariance_curves(
                result.values, result.probabilities, predicted, kind, UNITS[kind], at=at
            ),
            key="inv_curve",
        )
    width = result.responses.shape[1]
    strongest = int(np.argmax(result.responses[values.index(min(values, key=lambda v: abs(v - neutral)))]))
    c1, c2 = st.columns([1, 3])
    chosen = c1.selectbox(
        f"A map of {follow} as a curve",
        list(range(width)),
        index=strongest,
        key=f"inv_map_{follow}",
        format_func=lambda m: f"map {m}",
        help="default: the map that answers the untouched digit most",
    )
    with c2:
        widgets.chart(
            experiment_figures.map_response_curve(
                result.values, result.responses[:, chosen], follow, int(chosen), kind, UNITS[kind], at=at
            ),
            key="inv_map_curve",
        )
    widgets.chart(
        experiment_figures.response_heatmap(result.values, result.responses, follow, kind, UNITS[kind]), key="inv_maps"
    )


# --- your handwriting ------------------------------------------------------------------------------------


def _personal() -> PersonalSet:
    return session().experiments.personal_set or PersonalSet()


def _say(kind: str, text: str) -> None:
    """A message for the handwriting tab's next run (shown once)."""
    session().experiments.message = (kind, text)


def _replace_set(new: PersonalSet, message: str) -> None:
    session().experiments.personal_set = new
    _say("success", message)


def _add_drawing() -> None:
    digit = session().experiments.hand_drawn
    if digit is None:
        _say("warning", "Draw a digit first: the canvas is empty.")
        return
    try:
        _replace_set(
            _personal().add(digit, st.session_state["hw_label"]),
            f"Added your drawing as a {st.session_state['hw_label']}.",
        )
    except PersonalSetError as exc:
        _say("error", str(exc))
        return
    session().experiments.canvas_mounts += 1  # a fresh canvas


def _add_current(raw: np.ndarray, where: str, known: int | None) -> None:
    """The digit at the top, with its own label when it has one (a test digit), else the label chosen here."""
    label = known if known is not None else st.session_state["hw_label"]
    try:
        _replace_set(_personal().add(raw, label), f"Added {where} as a {label}.")
    except PersonalSetError as exc:
        _say("error", str(exc))


def _uploader_key() -> str:
    return f"hw_images_{session().experiments.uploader_mounts}"


def _add_uploads() -> None:
    files = st.session_state.get(_uploader_key()) or []
    digits, refused = [], []
    for f in files:
        try:
            digits.append(read_digit_file(f.getvalue()).digit)
        except ImageInputError as exc:
            refused.append(f"{f.name}: {exc}")
    label = st.session_state["hw_label"]
    try:
        new = _personal().add_many(np.stack(digits), label) if digits else _personal()
    except PersonalSetError as exc:
        _say("error", str(exc))
        return
    session().experiments.personal_set = new
    session().experiments.uploader_mounts += 1  # empty the uploader
    text = f"Added {len(digits)} image{'s' if len(digits) != 1 else ''} as {label}." if digits else "Nothing added."
    _say(*(("warning", text + " Not added: " + "; ".join(refused)) if refused else ("success", text)))


def _set_file_key() -> str:
    return f"hw_file_{session().experiments.set_file_mounts}"


def _load_set_file(mode: str) -> None:
    up = st.session_state.get(_set_file_key())
    if up is None:
        return
    try:
        loaded = PersonalSet.from_npz(up.getvalue(), repr(up.name))
        new = (
            loaded
            if mode == "replace" or len(_personal()) == 0
            else PersonalSet(
                np.concatenate([_personal().images, loaded.images]), np.concatenate([_personal().labels, loaded.labels])
            )
        )
    except PersonalSetError as exc:
        _say("error", f"Your set was kept as it was: {exc}")
        return
    verb = "Loaded" if mode == "replace" else "Added"
    _replace_set(new, f"{verb} {widgets.count(len(loaded), 'digit')} from {up.name}.")
    session().experiments.set_file_mounts += 1


def _remove(indices: list[int]) -> None:
    _replace_set(_personal().without(indices), f"Removed {len(indices)} digit{'s' if len(indices) != 1 else ''}.")
    st.session_state["hw_remove"] = []


def _keep_fine_tune(handle: JobHandle) -> None:
    session().experiments.fine_tune = Computed.of(handle.result, handle.spec.model)


def _handwriting_tab() -> None:
    st.write(
        "The blog: a network trained on US MNIST reads European digits badly. Build a set of your own "
        "digits with their true labels, see how the active model reads them next to MNIST, and fine-tune "
        "a copy on MNIST plus your set. The set lives in this browser tab; download it to keep it."
    )
    personal = _personal()
    c_draw, c_add = st.columns([1, 2])
    with c_draw:
        drawn = widgets.small_canvas(f"hw_canvas_{session().experiments.canvas_mounts}")
        session().experiments.hand_drawn = drawn
        if drawn is not None:
            seen = int(np.argmax(_probabilities(bundle.scaler.transform(drawn))[0]))
            st.image(enlarge(drawn, 56), caption=f"as the network sees it: reads {seen}")
    with c_add:
        st.session_state.setdefault("hw_label", int(label) if label is not None else 0)
        st.selectbox("True label of the digits you add", list(range(10)), persist_state="session", key="hw_label")
        b1, b2 = st.columns(2)
        b1.button(
            "Add the drawing",
            key="hw_add_drawing",
            on_click=_add_drawing,
            disabled=not widgets.canvas_installed(),
            help="Draw on the black canvas (white ink), then add it with the label above.",
        )
        b2.button(
            "Add the digit at the top" + (f" (a {label})" if label is not None else ""),
            key="hw_add_current",
            on_click=_add_current,
            args=(raw, where, label),
            help=f"{where}, " + ("with its own label" if label is not None else "with the label above"),
        )
        photos = st.file_uploader(
            "Or photos / scans of digits with the label above (one digit per image)",
            type=["png", "jpg", "jpeg", "gif", "bmp", "webp"],
            accept_multiple_files=True,
            key=_uploader_key(),
        )
        if photos:
            st.button(
                f"Add {len(photos)} image{'s' if len(photos) != 1 else ''} as {st.session_state['hw_label']}",
                key="hw_add_images",
                on_click=_add_uploads,
            )
    note, session().experiments.message = session().experiments.message, None
    with st.container():  # always there, so the elements below keep their places (and the expander its state)
        if note:
            getattr(st, note[0])(note[1])
    personal = _personal()

    widgets.set_file_panel(
        "Download your set, or load one (.npz)",
        key="hw_file_panel",
        download_label="Download my set (.npz)",
        data=personal.to_npz(),
        file_name="my_digits.npz",
        empty=len(personal) == 0,
        uploader_key=_set_file_key(),
        actions=[
            ("Replace my set", "hw_replace", _load_set_file, ("replace",)),
            ("Add to my set", "hw_merge", _load_set_file, ("add",)),
        ],
        caption=f"Your set holds {widgets.count(len(personal), 'digit')} (at most {MAX_DIGITS}): images (N, 28, 28) "
        "0..255 and labels 0..9. "
        "`python -m core handwriting my_digits.npz` scores it from the command line.",
    )

    if len(personal) == 0:
        st.info(
            "Your set is empty: draw a digit and add it, add the digit at the top, upload photos, or load a set "
            "you downloaded before."
        )
    else:
        probs = _probabilities(bundle.scaler.transform(personal.images))
        yours = score_probabilities(probs, personal.labels)
        mnist_acc = bundle.meta.get("test_accuracy")
        st.markdown(
            f"**{widgets.sentence(model_title(bundle.path))}** reads **{yours.accuracy.overall:.0%}** of your "
            f"{widgets.count(len(personal), 'digit')} right"
            + (f", and {mnist_acc:.2%} of MNIST's test digits." if mnist_acc is not None else ".")
        )
        left, right = st.columns([3, 2])
        with left:
            shown = min(len(personal), 60)
            st.image(
                [enlarge(im, 56) for im in personal.images[-shown:]],
                width=56,
                caption=[
                    f"{i}: {t}{'' if p == t else ' → ' + str(p)}"
                    for i, t, p in zip(
                        range(len(personal) - shown, len(personal)), personal.labels[-shown:], yours.predicted[-shown:]
                    )
                ],
            )
            st.caption(
                "Each digit: its number, its true label and, after an arrow, what the model read instead."
                + (f" The last {shown} of {len(personal)}." if shown < len(personal) else "")
            )
            st.multiselect("Remove digits", list(range(len(personal))), key="hw_remove")
            if st.session_state.get("hw_remove"):
                st.button(
                    "Remove them", key="hw_remove_go", on_click=_remove, args=(list(st.session_state["hw_remove"]),)
                )
        with right:
            widgets.chart(
                experiment_figures.personal_misses(yours.counts, yours.misses, model_title(bundle.path)),
                key="hw_misses",
            )

        st.subheader("Fine-tune a copy on MNIST plus your set")
        t = st.columns(5)
        epochs = widgets.number(t[0], "Epochs", 1, 20, 2, key="hw_epochs")
        lr = t[1].select_slider(
            "Learning rate",
            [5e-5, 1e-4, 2e-4, 5e-4, 1e-3],
            2e-4,
            persist_state="session",
            key="hw_lr",
            help="RMSprop as the blog trains; small, to adapt rather than retrain",
        )
        repeat = widgets.number(t[2], "Each of your digits shown (times per epoch)", 1, 200, 20, key="hw_repeat")
        n_mnist = t[3].select_slider(
            "MNIST training digits",
            [0, 2000, 5000, 10000, 20000, 60000],
            10000,
            persist_state="session",
            key="hw_mnist",
            help="mixed in so the copy does not forget MNIST",
        )
        hold = t[4].slider(
            "Held out of your digits",
            0.0,
            0.5,
            0.25,
            0.05,
            persist_state="session",
            key="hw_hold",
            help="judged on, never trained on: they say whether it learned your handwriting",
        )

        def _make_tune() -> JobSpec | None:
            if resources.get_mnist() is None:
                return None
            config = FineTuneConfig(
                epochs=int(epochs),
                learning_rate=float(lr),
                mnist_digits=int(n_mnist),
                repeat=int(repeat),
                hold_out=float(hold),
            )
            return JobSpec(
                "fine-tune",
                FineTuneJobConfig(config, name=sanitize_name(f"{run_title(bundle.path)}-yours")),
                model=str(bundle.path),
                inputs={"images": personal.images, "labels": personal.labels},
                title=f"fine-tuning {run_title(bundle.path)} on your {widgets.count(len(personal), 'digit')}",
            )

        jobs.start_button(
            TUNE_JOB_KEY,
            "Fine-tune a copy",
            _make_tune,
            key="hw_start",
            busy_label="Fine-tuning…",
            help="A new run; the active model stays as it is.",
        )
        jobs.job_panel(TUNE_JOB_KEY, on_end=_keep_fine_tune)
        kept_tune = session().experiments.fine_tune
        tuned = kept_tune.value if kept_tune is not None else None
        if tuned is not None and tuned.before:
            stale = kept_tune.stale_note(model_key, bundle.path)
            if stale:
                st.caption(f"The fine-tuning below was {stale}.")
            if tuned.run_dir is not None:
                st.success(
                    f"Fine-tuned {tuned.base_name} on your {tuned.personal_digits} digits "
                    f"({len(tuned.held_out)} held out) in {jobs.duration(tuned.seconds)}: "
                    f"new run **{tuned.run_dir.name}**, in the model list."
                )
            for text in tuned.notes:
                st.info(text)
            widgets.chart(experiment_figures.sets_before_after(tuned.before, tuned.after), key="hw_before_after")
            if tuned.run_dir is not None and session().active_model != str(tuned.run_dir):
                st.button(
                    f"Use {tuned.run_dir.name} on every page",
                    key="hw_use",
                    on_click=session().use_model,
                    args=(str(tuned.run_dir),),
                )


for tab, render in (
    (tab_ko, _knockout_tab),
    (tab_fool, _fool_tab),
    (tab_inv, _invariances_tab),
    (tab_hw, _handwriting_tab),
):
    if tab.open:
        with tab:
            render()
