"""Precursor page: a systematic coarse-pattern search that finds OIPs where random starts fail (blog article X).

Thin: widgets here, the maths in core.precursor (which reuses core.oip's compiled ascent). The search runs
as a background job with a progress bar and a Stop button; rescued maps go into the session's OipStore, so
the Filters/OIP gallery shows them (marked "P").
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core import oip, plots
from core import precursor as pc
from core.jobs import BackgroundJob
from core.progress import ProgressCallback
from pages import shared

P = "precursor_"  # widget key prefix
JOB_KEY = P + "job"
RESULTS_KEY = P + "results"

shared.render_sidebar()
st.title("Precursor")
st.write("Many conv3 maps never respond to fine-grained random starts, so the plain OIP ascent finds nothing "
         "for them. The **precursor run** (blog article X) covers the image with a coarse grid of squares, gives "
         "each square one of a few grey values, builds *every* combination (3×3 squares × 3 values = 19,683 "
         "patterns), upscales each bicubically and standardises it, runs a few ascent epochs on all of them, "
         "keeps the best few and optimises those fully. The blog found OIPs for 33 of its 67 failing maps (49 %).")


@st.cache_resource(show_spinner="Compiling the gradient ascent…", max_entries=16)
def _engine(model_key: str, layer: str, _bundle) -> oip.AscentEngine:
    """One compiled engine per model + layer, shared by all sessions; it only reads the model."""
    return oip.AscentEngine(_bundle.model, layer)


@st.cache_resource(show_spinner="Measuring this machine's throughput…", max_entries=16)
def _throughput(model_key: str, layer: str, _engine: oip.AscentEngine) -> tuple[float, float]:
    return pc.measure_throughput(_engine)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


bundle = shared.active_bundle()
if bundle is None:
    st.stop()
model_key = oip.bundle_key(bundle)
store = oip.session_store(st.session_state)
layers = [name for name in oip.oip_layers(bundle.model) if name.startswith(("conv", "pool"))]
if st.session_state.get(P + "layer") not in layers:
    st.session_state[P + "layer"] = "conv3" if "conv3" in layers else layers[-1]
job: BackgroundJob | None = st.session_state.get(JOB_KEY)
busy = job is not None and job.running

# --------------------------------------------------------------------------- target maps
c = st.columns([1, 2, 2])
layer = c[0].selectbox("Layer", layers, key=P + "layer", disabled=busy)
engine = _engine(model_key, layer, bundle)
maps_text = c[1].text_input("Target maps", "failed", key=P + "maps", disabled=busy,
                            help="failed: the maps without an OIP in your plain OIP run; all; or indices like 5,7,16-20")
oip_result = store.latest_result(model_key, layer)
failed: list[int] | None = oip_result.failed_maps if oip_result is not None else None
with c[2]:
    if oip_result is not None:
        st.caption(f"Your latest plain OIP run of {layer} ({oip_result.config.epochs} epochs, "
                   f"{oip_result.config.starts} start(s) per map): **{len(failed)} of {len(oip_result.maps)} maps "
                   f"without an OIP**.")
    else:
        st.caption(f"No plain OIP run of {layer} in this session yet: run one here with the Filters/OIP page's "
                   "settings to find the failing maps.")
    if st.button("Run the plain OIP run" if oip_result is None else "Re-run the plain OIP run", key=P + "plain",
                 disabled=busy):
        cfg = store.current_config.get((model_key, layer)) or oip.OipConfig(layer=layer)
        cfg = cfg.with_(layer=layer, maps=None)
        result = oip.run_oip(engine, cfg, progress=shared.StreamlitProgress("Plain OIP run (image-epochs)"))
        store.put(model_key, result)
        st.rerun()

maps: tuple[int, ...] = ()
error = None
waiting_for_oip = False  # a normal first state, not an error: say what to do
try:
    if maps_text.strip().lower() == "failed":
        if failed is None:
            waiting_for_oip = True
        maps = tuple(failed or ())
        if failed == []:
            st.success(f"Every map of {layer} already has an OIP from the plain run; name maps to search anyway.")
    else:
        maps = oip.parse_maps(maps_text, engine.channels) or tuple(range(engine.channels))
except ValueError as exc:
    error = str(exc)

# --------------------------------------------------------------------------- settings
c = st.columns(6)
grid = int(c[0].selectbox("Grid (squares per side)", pc.GRIDS, index=pc.GRIDS.index(3), key=P + "grid", disabled=busy))
values_text = c[1].text_input("Grey values", "0.2,0.5,0.8", key=P + "values", disabled=busy)
test_epochs = int(c[2].number_input("Test epochs", 0, 200, 10, key=P + "test_epochs", disabled=busy))
keep = int(c[3].number_input("Keep (K best)", 1, 64, 8, key=P + "keep", disabled=busy))
epochs = int(c[4].number_input("Full epochs", 0, 20_000, 1200, step=100, key=P + "epochs", disabled=busy))
mode = c[5].radio("Mode", pc.MODES, key=P + "mode", disabled=busy,
                  help="faithful: the blog's test epochs on every pattern, map by map. fast: one forward pass "
                       "ranks all patterns for all maps at once, the best few hundred get the test epochs.")
refine, compare = pc.PrecursorConfig.refine, 0
if mode == "fast":
    c = st.columns(3)
    refine = int(c[0].number_input("Candidates per map for the test epochs", 0, 4096, pc.PrecursorConfig.refine,
                                   key=P + "refine", disabled=busy, help="0: rank by the forward pass only"))
    compare = int(c[1].number_input("Sample maps compared with a faithful screen", 0, 64, 0, key=P + "compare",
                                    disabled=busy, help="Each costs one faithful screen; reports how many of the "
                                                        "faithful top K the fast screen also picks."))

config = None
if error is None and maps:
    try:
        config = pc.PrecursorConfig(layer=layer, maps=maps, grid=grid, values=pc.parse_values(values_text),
                                    test_epochs=test_epochs, keep=keep, epochs=epochs, mode=mode, refine=refine,
                                    compare_maps=compare)
        config.validate()
        pc.check_feasible(config)
    except ValueError as exc:
        error = str(exc)

if config is not None and error is None:
    asc, fwd = _throughput(model_key, layer, engine)
    seconds = pc.estimate_seconds(config, len(maps), asc, fwd)
    st.info(f"**{config.n_patterns:,} patterns** ({len(config.values)} values on {grid}×{grid} squares) × "
            f"{len(maps)} target map(s) · estimated **{_duration(seconds)}** "
            f"(at {asc:,.0f} image-epochs/s measured on this {oip.device_name()}; an upper bound: patterns whose "
            "map stays at 0 are skipped).")
elif error:
    st.error(error)
elif waiting_for_oip:
    st.info("Target maps 'failed' needs a plain OIP run to know which maps fail: run one first "
            "(button above), or name the target maps, e.g. 3,17,51 or all.")


def _start() -> None:
    def work(progress: ProgressCallback):
        return pc.run_precursor(engine, config, progress=progress)

    st.session_state[JOB_KEY] = BackgroundJob(work, name="precursor").start()
    st.session_state[P + "job_key"] = (model_key, layer)


st.button("Run the precursor search", type="primary", key=P + "run", disabled=busy or config is None or error is not None or waiting_for_oip,
          on_click=_start)


# --------------------------------------------------------------------------- job
def _job_panel() -> None:
    job: BackgroundJob | None = st.session_state.get(JOB_KEY)
    if job is None:
        return
    snap = job.snapshot()
    if snap.state == "running":
        info = snap.info
        where = info.get("phase", "starting")
        if "map" in info:
            where += f" · map {info['map']}"
        if "pattern" in info:
            where += f" · pattern {info['pattern']:,}"
        st.progress(snap.fraction, text=f"{where} · {snap.elapsed:.0f} s")
        st.button("Stop", key=P + "stop", on_click=job.request_stop,
                  help="Ends after the current chunk; the maps finished so far are kept.")
    elif snap.state == "failed":
        st.error(f"The precursor search failed: {snap.error}")
    elif snap.state == "finished" and not st.session_state.get(P + "collected") is job:
        st.session_state[P + "collected"] = job
        result: pc.PrecursorResult = job.result
        mk, lay = st.session_state.get(P + "job_key", (model_key, layer))
        st.session_state.setdefault(RESULTS_KEY, {})[(mk, lay)] = result
        for o in result.outcomes:
            if o.rescued:
                store.add_rescued(mk, lay, oip.RescuedOip(o.map_index, o.best_oip, o.best_loss,
                                                          f"{result.config.mode}, pattern #{int(o.candidates[o.best])}"))
        st.rerun()


st.fragment(run_every=1.0 if busy else None)(_job_panel)()

# --------------------------------------------------------------------------- results
result: pc.PrecursorResult | None = st.session_state.get(RESULTS_KEY, {}).get((model_key, layer))
if result is None:
    st.stop()
st.subheader(f"Results · {layer} · {result.config.mode}")
if result.stopped:
    st.warning("The search was stopped; the maps finished before the stop are shown.")
n, r = len(result.outcomes), len(result.rescued_maps)
c = st.columns(4)
c[0].metric("maps rescued", f"{r} of {n}", f"{result.rescue_rate * 100:.0f} %" if n else None)
c[1].metric("the blog", "33 of 67", "49 %")
c[2].metric("screen time", f"{result.screen_seconds:.1f} s")
c[3].metric("full optimisation", f"{result.full_seconds:.1f} s", help=f"on {result.device}")
if result.overlap:
    st.caption("Fast vs. faithful screen (top K per map that both pick): " + ", ".join(
        f"map {m}: {common} of {k}" for m, (common, k) in result.overlap.items()))
if not n:
    st.stop()
table = pd.DataFrame({
    "map": [o.map_index for o in result.outcomes],
    "OIP found": ["yes" if o.rescued else "no" for o in result.outcomes],
    "best final loss": [round(o.best_loss, 4) for o in result.outcomes],
    "best test loss": [round(float(o.test_losses.max()), 4) if len(o.test_losses) else 0.0 for o in result.outcomes],
    "patterns ascended": [o.ascended for o in result.outcomes],
})
st.dataframe(table, hide_index=True)
c = st.columns([1, 1, 3])
c[0].download_button("Results (.npz)", result.to_npz_bytes(), file_name=f"precursor_{layer}.npz", key=P + "dl_npz")
map_index = c[1].selectbox("Map", result.maps, key=P + "map")
o = result.outcome(int(map_index))
grid_side = result.config.grid
st.markdown(f"**Map {o.map_index}: the {len(o.candidates)} best starting patterns** (title: pattern number and the "
            f"loss after {result.config.test_epochs} test epochs; shown as the standardised 28×28 start image)")
starts = pc.patterns_to_images(pc.codes_of(o.candidates, grid_side, len(result.config.values)),
                               result.config.values, grid_side)
st.plotly_chart(plots.image_grid(starts, [f"#{int(p)}: {v:.3g}" for p, v in zip(o.candidates, o.test_losses)],
                                 cols=8, colorscale="gray", height_per_row=130), key=P + "starts")
st.markdown(f"**Their OIPs after {oip.capped_epochs(result.config.epochs)} epochs** (contrast enhanced; title: final "
            "loss; the best is used in the Filters/OIP gallery)")
st.plotly_chart(plots.image_grid(oip.contrast_enhance(o.oips),
                                 [f"{v:.3g}{' ★' if i == o.best else ''}" for i, v in enumerate(o.final_losses)],
                                 cols=8, colorscale="viridis", height_per_row=130), key=P + "oips")
