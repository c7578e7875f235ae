"""Precursor page: a systematic coarse-pattern search that finds OIPs where random starts fail (blog article X).

Thin: widgets here, the maths in core.oip.precursor (which runs on core.ascent.engine's engine). The search runs
as a background job with a progress bar and a Stop button; rescued maps go into the session's OipStore, so
the Filters/OIP gallery shows them (marked "P").
"""

from __future__ import annotations

from core.device import quiet_tensorflow_logs

# First of all: a deep link to a fresh server runs this file before app.py (Streamlit's pages/ folder mode).
quiet_tensorflow_logs()

import pandas as pd
import streamlit as st

from core.ascent import engine as ascent
from core.blog import published
from core.device import describe_device
from core.figures import common as plots
from core.jobs.system import JobHandle, JobSnapshot, JobSpec
from core.oip import analysis as oip_analysis
from core.oip import precursor
from core.oip import search as oip
from core.runs import model_key as run_model_key
from core.runs import resolve_model_path
from pages.ui import jobs, menu, resources, state, widgets

P = "precursor_"  # widget key prefix
JOB_KEY = P + "job"
OIP_JOB_KEY = "oip_job"  # the plain OIP run is the Filters/OIP page's job kind: one per session

menu.page_frame()
st.title("Precursor")
st.write(
    "Many conv3 maps never respond to fine-grained random starts, so the plain OIP ascent finds nothing "
    "for them. The **precursor run** (blog article X) covers the image with a coarse grid of squares, gives "
    "each square one of a few grey values, builds *every* combination (3×3 squares × 3 values = 19,683 "
    "patterns), upscales each bicubically and standardizes it, runs a few ascent epochs on all of them, "
    "keeps the best few and optimises those fully. The blog found OIPs for 33 of its 67 failing maps (49 %)."
)


@st.cache_resource(show_spinner="Measuring this machine's throughput…", max_entries=16)
def _throughput(model_key: str, layer: str, _engine: ascent.AscentEngine) -> tuple[float, float]:
    with resources.server_events().span("compute", what="precursor throughput", layer=layer):
        return precursor.measure_throughput(_engine)


def _keep_results(handle: JobHandle) -> None:
    """``on_end`` of a precursor job: keep its result and put the rescued maps into the OIP gallery."""
    result: precursor.PrecursorResult = handle.result
    mk, lay = run_model_key(resolve_model_path(handle.spec.model)), result.config.layer
    state.session().precursor.results[(mk, lay)] = result
    for o in result.outcomes:
        if o.rescued:
            state.oip_store().add_rescued(
                mk,
                lay,
                state.RescuedOip(
                    o.map_index, o.best_oip, o.best_loss, f"{result.config.mode}, pattern #{int(o.candidates[o.best])}"
                ),
            )


def _describe(snap: JobSnapshot) -> str:
    info = snap.info
    phase = info.get("phase")
    if not phase:
        return ""
    text = {
        "screen": "Faithful screen",
        "forward screen": "Forward screen of every pattern",
        "test epochs": "Test epochs on the best candidates",
        "full optimisation": "Full optimisation of the best patterns",
    }.get(phase, str(phase).capitalize())
    if "map" in info:
        text += f" · map {info['map']}"
    if "pattern" in info:
        text += f" · pattern {info['pattern']:,}"
    if "epoch" in info and phase == "full optimisation":
        text += f" · epoch {info['epoch']:,} of {info.get('epochs', '?'):,}"
    return f"{text} · {snap.done:,} of {snap.total:,} image-epochs"


bundle = menu.active_bundle()
if bundle is None:
    st.stop()
model_key = run_model_key(bundle.path)
store = state.oip_store()
layers = [name for name in oip.oip_layers(bundle.model) if name.startswith(("conv", "pool"))]
if not widgets.has_conv_maps(bundle):
    widgets.offer_the_cnn("The precursor search")
if st.session_state.get(P + "layer") not in layers:
    convs = [name for name in layers if name.startswith("conv")]  # the deepest conv layer, as the blog's conv3
    st.session_state[P + "layer"] = "conv3" if "conv3" in layers else (convs or layers)[-1]
busy = jobs.job_active(JOB_KEY)

# --------------------------------------------------------------------------- target maps
c = st.columns([1, 2, 2])
layer = c[0].selectbox("Layer", layers, persist_state="session", key=P + "layer", disabled=busy)
engine = resources.engine(bundle, layer)
maps_text = c[1].text_input(
    "Target maps",
    "failed",
    persist_state="session",
    key=P + "maps",
    disabled=busy,
    help="failed: the maps without an OIP in your plain OIP run; all; or indices like 5,7,16-20",
)
oip_result = store.latest_result(model_key, layer)
failed: list[int] | None = oip_result.failed_maps if oip_result is not None else None
with c[2]:
    if oip_result is not None:
        st.caption(
            f"Your latest plain OIP run of {layer} ({oip_result.config.epochs} epochs, "
            f"{oip_result.config.starts} start(s) per map): **{len(failed)} of {len(oip_result.maps)} maps "
            f"without an OIP**."
        )
    else:
        st.caption(
            f"No plain OIP run of {layer} in this session yet: run one here with the Filters/OIP page's "
            "settings to find the failing maps."
        )
    plain_config = (store.current_config.get((model_key, layer)) or oip.OipConfig(layer=layer)).with_(
        layer=layer, maps=None
    )
    jobs.start_button(
        OIP_JOB_KEY,
        "Run the plain OIP run" if oip_result is None else "Run the plain OIP run again",
        lambda: JobSpec("oip", plain_config, model=str(bundle.path), title="plain OIP run"),
        key=P + "plain",
        busy_label="Plain OIP run…",
        disabled=busy,
        type="secondary",
        help="All maps of the layer with the Filters/OIP page's settings (its defaults when unset).",
    )
jobs.job_panel(OIP_JOB_KEY, on_end=state.store_oip_result, describe=jobs.describe_oip_job)

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
grid = int(
    c[0].selectbox(
        "Grid (squares per side)",
        precursor.GRIDS,
        index=precursor.GRIDS.index(3),
        persist_state="session",
        key=P + "grid",
        disabled=busy,
    )
)
values_text = c[1].text_input("Grey values", "0.2,0.5,0.8", persist_state="session", key=P + "values", disabled=busy)
test_epochs = int(widgets.number(c[2], "Test epochs", 0, 200, 10, key=P + "test_epochs", disabled=busy))
keep = int(widgets.number(c[3], "Keep (K best)", 1, 64, 8, key=P + "keep", disabled=busy))
epochs = int(widgets.number(c[4], "Full epochs", 0, 20_000, 1200, 100, key=P + "epochs", disabled=busy))
mode = c[5].radio(
    "Mode",
    precursor.MODES,
    index=precursor.MODES.index(precursor.DEFAULT_MODE),
    persist_state="session",
    key=P + "mode",
    disabled=busy,
    help="faithful: the blog's test epochs on every pattern, map by map. fast: one forward pass "
    "ranks all patterns for all maps at once, the best few hundred get the test epochs.",
)
refine, compare = precursor.PrecursorConfig.refine, 0
if mode == "fast":
    c = st.columns(3)
    refine = int(
        widgets.number(
            c[0],
            "Candidates per map for the test epochs",
            0,
            4096,
            precursor.PrecursorConfig.refine,
            key=P + "refine",
            disabled=busy,
            help="0: rank by the forward pass only",
        )
    )
    compare = int(
        widgets.number(
            c[1],
            "Sample maps compared with a faithful screen",
            0,
            64,
            0,
            key=P + "compare",
            disabled=busy,
            help="Each costs one faithful screen; reports how many of the faithful top K the fast screen also picks.",
        )
    )

config = None
if error is None and maps:
    try:
        config = precursor.PrecursorConfig(
            layer=layer,
            maps=maps,
            grid=grid,
            values=precursor.parse_values(values_text),
            test_epochs=test_epochs,
            keep=keep,
            epochs=epochs,
            mode=mode,
            refine=refine,
            compare_maps=compare,
        )
        config.validate()
        backend = resources.job_system().backend  # on a Ray cluster the limit scales with its workers
        precursor.check_feasible(config, backend.device, backend.workers)
    except ValueError as exc:
        error = str(exc)

if config is not None and error is None:
    asc, fwd = _throughput(model_key, layer, engine)
    workers = resources.job_system().backend.workers  # a Ray cluster's workers split the screens
    seconds = precursor.estimate_seconds(config, len(maps), asc, fwd, workers=workers)
    st.info(
        f"**{config.n_patterns:,} patterns** ({len(config.values)} values on {grid}×{grid} squares) × "
        f"{len(maps)} target map{'s' if len(maps) != 1 else ''} · estimated **{jobs.duration(seconds)}** "
        f"(from {asc:,.0f} image-epochs/s measured on this {describe_device()}"
        + (f", the screens split over {workers} workers" if workers > 1 else "")
        + (
            "; the faithful screen skips patterns whose map stays at 0, so it often ends sooner"
            if mode == "faithful"
            else ""
        )
        + ")."
    )
elif error:
    st.error(error)
elif waiting_for_oip:
    st.info(
        "Target maps 'failed' needs a plain OIP run to know which maps fail: run one first "
        "(button above), or name the target maps, e.g. 3,17,51 or all."
    )


jobs.start_button(
    JOB_KEY,
    "Run the precursor search",
    lambda: JobSpec("precursor", config, model=str(bundle.path), title="precursor search"),
    key=P + "run",
    busy_label="Searching…",
    disabled=config is None or error is not None or waiting_for_oip,
)
jobs.job_panel(
    JOB_KEY,
    on_end=_keep_results,
    describe=_describe,
    stop_help="Ends after the current chunk; the maps finished so far are kept.",
)

# --------------------------------------------------------------------------- results
result: precursor.PrecursorResult | None = state.session().precursor.results.get((model_key, layer))
if result is None:
    st.stop()
st.subheader(f"Results · {layer} · {result.config.mode}")
if result.stopped:
    st.warning("The search was stopped; the maps finished before the stop are shown.")
n, r = len(result.outcomes), len(result.rescued_maps)
c = st.columns(4)
c[0].metric("maps rescued", f"{r} of {n}" + (f" ({result.rescue_rate * 100:.0f} %)" if n else ""))
c[1].metric(
    "the blog (article X)",
    published("precursor").value.split(" failing")[0] + " (49 %)",
    help=f"{published('precursor').source}: the blog's precursor run on its OIP-series model (conv3 with 128 "
    "maps, bundled here as 'OIP series'): 67 maps had no OIP from random starts, 33 of them were rescued.",
)
c[2].metric("screen time", f"{result.screen_seconds:.1f} s")
c[3].metric("full optimisation", f"{result.full_seconds:.1f} s", help=f"on {result.device}")
if result.overlap:
    st.caption(
        "Fast vs. faithful screen (top K per map that both pick): "
        + ", ".join(f"map {m}: {common} of {k}" for m, (common, k) in result.overlap.items())
    )
if not n:
    st.stop()
table = pd.DataFrame(
    {
        "map": [o.map_index for o in result.outcomes],
        "OIP found": ["yes" if o.rescued else "no" for o in result.outcomes],
        "best final loss": [round(o.best_loss, 4) for o in result.outcomes],
        "best test loss": [
            round(float(o.test_losses.max()), 4) if len(o.test_losses) else 0.0 for o in result.outcomes
        ],
        "patterns ascended": [o.ascended for o in result.outcomes],
    }
)
st.dataframe(table, hide_index=True)
c = st.columns([1, 1, 3])
c[0].download_button(
    "Results (.npz)", result.to_npz_bytes(), file_name=f"precursor_{layer}.npz", key=P + "dl_npz", on_click="ignore"
)
map_index = c[1].selectbox("Map", result.maps, persist_state="session", key=P + "map")
o = result.outcome(int(map_index))
grid_side = result.config.grid
st.markdown(
    f"**Map {o.map_index}: the {len(o.candidates)} best starting patterns** (title: pattern number and the "
    f"loss after {result.config.test_epochs} test epochs; shown as the standardized 28×28 start image)"
)
starts = precursor.patterns_to_images(
    precursor.codes_of(o.candidates, grid_side, len(result.config.values)), result.config.values, grid_side
)
widgets.chart(
    plots.image_grid(
        starts,
        [f"#{int(p)}: {v:.3g}" for p, v in zip(o.candidates, o.test_losses)],
        cols=8,
        colorscale="gray",
        height_per_row=130,
    ),
    key=P + "starts",
)
st.markdown(
    f"**Their OIPs after {ascent.capped_epochs(result.config.epochs)} epochs** (contrast enhanced; title: final "
    "loss; the best is used in the Filters/OIP gallery)"
)
widgets.chart(
    plots.image_grid(
        oip_analysis.contrast_enhance(o.oips),
        [f"{v:.3g}{' ★' if i == o.best else ''}" for i, v in enumerate(o.final_losses)],
        cols=8,
        colorscale="viridis",
        height_per_row=130,
    ),
    key=P + "oips",
)
