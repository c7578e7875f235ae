"""Experiments page: on one digit, switch maps off, fool the network, and test what it is invariant to.

Thin: the digit (from the Activations page, or a test digit picked here) and the widgets → core.knockout,
core.attack, core.invariance → figures (core.experiment_figures). The test-set knock-out is a job.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import experiment_figures as F
from core.activation_plots import enlarged
from core.activations import ActivationModel
from core.attack import METHODS, PIXELS, Attacker
from core.invariance import TRANSFORMS, UNITS, sweep
from core.jobs import JobHandle, JobSpec
from core.knockout import Knockout, most_active
from core.runs import model_key as run_model_key
from core.tasks import KnockoutJob
from pages import shared

JOB_KEY = "knockout_job"
RESULT_KEY = "knockout_result"  # session: (model key, maps, core.knockout.KnockoutOutcome)


@st.cache_resource(show_spinner="Compiling the experiments…", max_entries=16)
def _tools(model_key: str, _bundle) -> tuple[Knockout, Attacker, ActivationModel]:
    """Compiled views of one model, shared by all sessions (they only read it)."""
    return Knockout(_bundle.model), Attacker(_bundle.model, _bundle.scaler), ActivationModel.from_bundle(_bundle)


@st.cache_data(max_entries=128, show_spinner="Attacking…")
def _attack(model_key: str, digit: bytes, target: int, budget: int, method: str, pixels: str, _attacker: Attacker):
    raw = np.frombuffer(digit, np.uint8).reshape(28, 28)
    return _attacker.attack(raw, target, budget, method, pixels=pixels)


shared.render_sidebar()
st.title("Experiments on your digit")
st.write("Which maps matter, how easily the network is fooled, and what it is robust to: three experiments on "
         "one digit with the active model.")
bundle = shared.active_bundle()
if bundle is None:
    st.stop()
model_key = run_model_key(bundle.path)
knockout, attacker, am = _tools(model_key, bundle)

# --- the digit ---------------------------------------------------------------------------------------------
handed = st.session_state.get(shared.CURRENT_DIGIT_KEY)
choices = (["The digit from the Activations page"] if handed else []) + ["An MNIST test digit"]
source = st.radio("Digit", choices, horizontal=True, key="exp_source",
                  help="Draw or upload a digit on the Activations page and it comes here too.")
if source == choices[0] and handed:
    raw, label, where = np.frombuffer(handed[0], np.uint8).reshape(28, 28), handed[1], handed[2]
else:
    index = st.number_input("Test digit (index)", 0, 1999, 227, key="exp_index",
                            help="One of the 2,000 shipped test digits; 227 is the blog's 4.")
    raw, label = shared.get_sample_digits().by_test_index(int(index))
    where = f"MNIST test digit {int(index)}"
x = bundle.scaler.transform(raw)
probs = knockout.probabilities(x)[0]
predicted = int(np.argmax(probs))
left, right = st.columns([1, 3])
left.image(enlarged(raw, 140), caption=where + (f" (label {label})" if label is not None else ""))
right.markdown(f"The network reads **{predicted}** ({probs[predicted]:.1%}).")
digit_key = np.ascontiguousarray(raw, np.uint8).tobytes()

tab_ko, tab_fool, tab_inv = st.tabs(["Knock maps out", "Fool the network", "Invariances"])

# --- knock-out -------------------------------------------------------------------------------------------
with tab_ko:
    c1, c2, c3 = st.columns([1, 1, 2])
    layer = c1.selectbox("Layer", knockout.mask_layers, index=len(knockout.mask_layers) - 1, key="ko_layer")
    width = knockout.widths[layer]
    how = c2.radio("Maps", ["the k most active for this digit", "chosen by number"], key="ko_how")
    if how.startswith("the k"):
        k = c3.slider("k", 1, width - 1, min(5, width - 1), key="ko_k")
        picked = most_active(knockout.layer_output(x, layer)[0], k)
    else:
        picked = c3.multiselect("Maps to switch off", list(range(width)), default=[0], key="ko_maps")
    if not picked:
        st.info("Choose at least one map to switch off.")
    elif len(set(picked)) >= width:
        st.error(f"Switching off all {width} maps of {layer} leaves nothing for the layers after it; keep one.")
    else:
        maps = {layer: sorted(int(m) for m in picked)}
        after = knockout.probabilities(x, knockout.keep_vector(maps))[0]
        st.markdown(f"With {layer} maps {maps[layer]} off the network reads **{int(np.argmax(after))}** "
                    f"({after.max():.1%}); it read {predicted} ({probs[predicted]:.1%}).")
        shared.chart(F.before_after_bars(probs, after, "this digit's probabilities", "probability"), key="ko_digit")
        rank = st.checkbox(f"Also rank every map of {layer} by the accuracy it alone costs", key="ko_rank")

        def _make_spec() -> JobSpec | None:
            if shared.get_mnist() is None:
                return None
            spec_maps = tuple((name, tuple(ms)) for name, ms in maps.items())
            return JobSpec("knockout", KnockoutJob(spec_maps, layer if rank else None),
                           model=str(bundle.path),
                           title="knock-out on the test digits")

        def _keep(handle: JobHandle) -> None:
            st.session_state[RESULT_KEY] = (model_key, handle.result)

        shared.start_button(JOB_KEY, "Test on all 10,000 test digits", _make_spec, key="ko_start",
                            busy_label="Testing…")
        shared.job_panel(JOB_KEY, on_end=_keep)
        kept = st.session_state.get(RESULT_KEY)
        if kept and kept[0] == model_key:
            outcome = kept[1]
            st.markdown(f"Test accuracy with {outcome.maps} off: **{outcome.after.overall:.2%}** "
                        f"(intact {outcome.before.overall:.2%}).")
            shared.chart(F.before_after_bars(100 * outcome.before.per_class, 100 * outcome.after.per_class,
                                             "accuracy per class, intact and with the maps off", "accuracy %"),
                         key="ko_classes")
            if outcome.importance is not None:
                imp = outcome.importance
                shared.chart(F.importance_bars(imp.drop(), imp.ranking(), imp.layer), key="ko_importance")
                st.caption(f"The most important map of {imp.layer} costs {imp.drop().max():.2%} of the accuracy "
                           "when it alone is off; the Filters / OIP page shows what each of them looks for.")

# --- fool the network ------------------------------------------------------------------------------------
with tab_fool:
    c1, c2, c3, c4 = st.columns(4)
    others = [d for d in range(10) if d != predicted]
    target = c1.selectbox("Make it read", others, index=others.index((predicted + 5) % 10), key="fool_target")
    method = c2.radio("Method", METHODS, index=1, key="fool_method",
                      help="fgsm: one step of the whole budget; pgd: 20 smaller steps, projected back each time.")
    budget = c3.slider("Budget (grey levels per pixel)", 1, 255, 32, key="fool_budget")
    pixels = c4.radio("Pixels", PIXELS, key="fool_pixels",
                      help="ink: only where training digits have ink; all: the nearly blank border too, which the "
                           "per-pixel scaler magnifies (2 grey levels there are 60 standard deviations).")
    result = _attack(model_key, digit_key, int(target), int(budget), method, pixels, attacker)
    verdict = "fooled" if result.flipped else "not fooled"
    smallest = (f"the smallest budget that makes it a {target}: **{result.smallest_budget} grey levels**"
                if result.smallest_budget is not None else f"no budget up to 255 makes it a {target} this way")
    st.markdown(f"**{verdict.capitalize()}**: it now reads **{result.predicted_after}** "
                f"({result.probabilities_after.max():.1%}); {smallest}.")
    cols = st.columns(3)
    cols[0].image(enlarged(result.original, 168), caption="the digit")
    cols[1].image(enlarged(result.changed, 168), caption=f"changed (at most {budget} grey levels)")
    cols[2].image(np.repeat(np.repeat(F.change_picture(result.change), 6, axis=0), 6, axis=1),
                  caption=f"the change, amplified (largest {int(np.abs(result.change).max())} levels; red brighter)")
    left, right = st.columns(2)
    with left:
        shared.chart(F.before_after_bars(result.probabilities_before, result.probabilities_after,
                                         "probabilities before and after", "probability"), key="fool_probs")
    with right:
        shared.chart(F.divergence_chart(result.divergence), key="fool_layers")

# --- invariances -----------------------------------------------------------------------------------------
with tab_inv:
    c1, c2 = st.columns(2)
    kind = c1.selectbox("Transform", TRANSFORMS, key="inv_kind",
                        help="shift right (px), rotate anticlockwise (degrees), scale about the centre, "
                             "thicken (+) or thin (−) the strokes (px)")
    follow = c2.selectbox("Follow the maps of", [n for n in am.layer_names if n != "out"],
                          index=[n for n in am.layer_names if n != "out"].index(am.cam_layer), key="inv_layer")
    result = sweep(am, raw, kind, layer=follow)
    held = result.holds(predicted)
    span = "no value" if held is None else f"{held[0]:g} to {held[1]:g} {UNITS[kind]}"
    st.markdown(f"It stays a **{predicted}** for {kind} from **{span}**.")
    shared.chart(F.invariance_curves(result.values, result.probabilities, predicted, kind, UNITS[kind]), key="inv_curve")
    step = max(1, len(result.values) // 9)
    st.image([enlarged(np.rint(img).astype(np.uint8), 84) for img in result.images[::step]],
             caption=[f"{v:g} → {int(p)}" for v, p in zip(result.values[::step], result.predicted[::step])])
    shared.chart(F.response_heatmap(result.values, result.responses, follow, kind, UNITS[kind]), key="inv_maps")
