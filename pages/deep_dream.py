"""Deep Dream page: let a map or whole layers of the MNIST CNN dream on a photo (blog series I–III).

Thin: widgets → a dream job (core.jobs.system; the compiled ascents live in the worker) → pictures. The
last dream and gallery stay in the session's ``DreamState``, tagged with the model and photo they came from.
"""

from __future__ import annotations

from core.device import quiet_tensorflow_logs

# First of all: a deep link to a fresh server runs this file before app.py (Streamlit's pages/ folder mode).
quiet_tensorflow_logs()

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.dream import deep_dream
from core.dream.gallery import MAX_GALLERY_MAPS, GalleryConfig
from core.figures import common as plots
from core.figures.common import enlarge
from core.images import ALLOWED_EXTENSIONS
from core.jobs.system import JobHandle, JobSnapshot, JobSpec
from core.oip.analysis import contrast_enhance
from core.oip.search import parse_maps
from core.runs import model_key as run_model_key
from pages.ui import jobs, menu, widgets
from pages.ui.state import Computed, content_key, model_title, session

JOB_KEY = "dream_job"
GALLERY_JOB_KEY = "dream_gallery_job"

menu.page_frame()
st.title("Deep Dream")
st.write(
    "The CNN only knows 28×28 grey digits, so it dreams like a myopic man: on a coarse version of your "
    "photo (or on 28×28 tiles of it), amplifying whatever looks like the patterns its maps were trained "
    "to detect. The photo's details are re-added afterwards (blog series *Deep Dreams of a CNN trained on "
    "MNIST data*, I–III)."
)


@st.cache_data(show_spinner="Reading the photo…", max_entries=8)
def load_upload(data: bytes, max_side: int) -> tuple[np.ndarray, list[str]]:
    return deep_dream.photo_from_bytes(data, max_side)


@st.cache_data(show_spinner=False)
def load_default_photo(max_side: int) -> tuple[np.ndarray, list[str]]:
    grey, rgb, notes = deep_dream.prepare_photo(deep_dream.default_photo(), max_side)
    return (rgb if rgb is not None else deep_dream.to_uint8(grey)), notes


def _thumb(image: np.ndarray, width: int = 360) -> np.ndarray:
    """A full-size picture shrunk for a narrow column: encoding a 640×427 PNG on the server costs ~15 ms with
    the GIL held, and the stage table alone holds 12 of them; the column shows ~250 px anyway."""
    if image.shape[1] <= width:
        return image
    from PIL import Image

    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BOX))


def _on_its_photo(handle: JobHandle) -> Computed:
    """A dream job's result tagged with its model and the photo it dreamt on."""
    inputs = handle.spec.inputs
    return Computed.of(
        handle.result, handle.spec.model, input_key=content_key(inputs["photo"]), input_name=inputs["photo_name"]
    )


def _keep_dream(handle: JobHandle) -> None:
    session().dream.result = _on_its_photo(handle)


def _describe(snap: JobSnapshot) -> str:
    if not snap.total:
        return "Compiling the gradient ascent" if snap.state == "running" else ""
    unit = "loop" if "loop" in snap.info or snap.label.startswith("Deep Dream · single") else "octave"
    return f"Dreaming: {unit} {snap.done} of {snap.total}"


def _apply_url_target(info: dict[str, tuple[int, bool]], default_layer: str) -> None:
    """``?layer=conv3&map=56`` in the page address picks the single map (once per session and address,
    for links and bookmarks). Values that do not fit the active model are refused with a warning."""
    layer_q, map_q = st.query_params.get("layer"), st.query_params.get("map")
    if layer_q is None and map_q is None:
        return
    token = f"{layer_q}|{map_q}"
    kept = session().dream
    if kept.link_applied == token:
        return
    kept.link_applied = token
    layer = layer_q if layer_q is not None else st.session_state.get("dream_layer", default_layer)
    if layer not in info:
        st.warning(
            f"The page address asks for layer {layer_q!r}, which this model does not have "
            f"(layers: {', '.join(info)}); using {default_layer}."
        )
        return
    n_maps = info[layer][0]
    if map_q is not None:
        try:
            index = int(map_q)
        except ValueError:
            index = None
        if index is None or not 0 <= index < n_maps:
            st.warning(
                f"The page address asks for map {map_q!r} of {layer}, which has maps 0…{n_maps - 1}; "
                "the map was not changed."
            )
            if layer_q is not None:
                st.session_state["dream_layer"] = layer
            return
        st.session_state["dream_map"] = index
    st.session_state["dream_layer"] = layer


bundle = menu.active_bundle()
if bundle is None:
    st.stop()
model_key = run_model_key(bundle.path)
if not widgets.has_conv_maps(bundle):
    widgets.offer_the_cnn("Dreaming on a photo")
model = bundle.model
info = deep_dream.layer_info(model)

# --- 1 · Photo -------------------------------------------------------------------------------
st.subheader("1 · Photo")
left, right = st.columns([2, 1])
with left:
    upload = widgets.kept_upload(
        session().dream,
        "photo",
        "Your photo (JPEG, PNG, WebP, …)",
        key="dream_upload",
        types=list(ALLOWED_EXTENSIONS),
        forget="Use the flower photo instead",
        help="Without an upload the flower photo that ships with scikit-learn is used.",
    )
    max_side = st.select_slider(
        "Dream at most this large (longest side, pixels)",
        [160, 320, 480, 640, 800, 1024],
        value=deep_dream.DEFAULT_MAX_SIDE,
        persist_state="session",
        key="dream_max_side",
        help="Larger photos are shrunk first; tiles and octaves cost time per pixel.",
    )
try:
    if upload is not None:
        photo_name, data = upload
        photo, photo_notes = load_upload(data, int(max_side))
    else:
        photo, photo_notes = load_default_photo(int(max_side))
        photo_name = "flower.jpg (scikit-learn sample, CC BY 2.0)"
except ValueError as exc:  # ImageInputError included: the message is meant for the user
    st.error(f"**{upload[0] if upload is not None else 'The photo'}** cannot be used: {exc}")
    st.stop()
with right:
    st.image(photo, caption=f"{photo_name} · {photo.shape[1]}×{photo.shape[0]}", width="stretch")
photo_key = content_key(photo)  # what the kept dreams are checked against
for note in photo_notes:
    st.info(note)

# --- 2 · What dreams ---------------------------------------------------------------------------
st.subheader("2 · What the CNN dreams of")
mode = st.radio(
    "Mode",
    deep_dream.MODES,
    format_func=deep_dream.MODE_TITLES.get,
    horizontal=True,
    persist_state="session",
    key="dream_mode",
    help="Single map: article I, the whole photo as one 28×28 image. Layers & octaves: the original "
    "DeepDream recipe, conv filters sliding over the photo at growing sizes. Tiles: 28×28 tiles "
    "(article III), randomly shifted every step so no seams show.",
)
layer, map_index, terms = deep_dream.DEFAULT_LAYER, deep_dream.DEFAULT_MAP, ()
if mode == "map":
    default_layer, default_map, message = deep_dream.default_target(model)
    if message:
        st.info(message)
    names = list(info)
    _apply_url_target(info, default_layer)
    st.session_state.setdefault("dream_layer", default_layer)
    if st.session_state["dream_layer"] not in names:  # another model
        st.session_state["dream_layer"] = default_layer
    c = st.columns(2)
    layer = c[0].selectbox("Layer", names, persist_state="session", key="dream_layer")
    n_maps = info[layer][0]
    st.session_state.setdefault("dream_map", default_map)
    if st.session_state["dream_map"] >= n_maps:  # another layer or model: clamp before the widget exists
        st.session_state["dream_map"] = n_maps - 1
    map_index = widgets.number(
        c[1],
        f"Map (0…{n_maps - 1})",
        0,
        n_maps - 1,
        default_map,
        key="dream_map",
        help="conv3 map 56 is the blog's first dream.",
    )
else:
    allowed = [name for name, (_, spatial) in info.items() if spatial] if mode == "layers" else list(info)
    convs = [name for name in allowed if name.startswith("conv")]
    defaults = {name: 1.0 for name in convs[-2:]} if mode == "layers" else {}
    st.caption(
        "Weight of each whole layer's mean response in the cost (0 leaves a layer out)"
        + ("; dense layers need 28×28 input, so they are offered in the tiles mode only." if mode == "layers" else ".")
    )
    cols = st.columns(min(len(allowed), 5))
    weights = {}
    for i, name in enumerate(allowed):
        weights[name] = cols[i % len(cols)].slider(
            name, -2.0, 3.0, defaults.get(name, 0.0), 0.1, persist_state="session", key=f"dream_{mode}_w_{name}"
        )
    extra = st.text_input(
        "Single maps (layer:map=weight, comma-separated)",
        "" if mode == "layers" else f"{deep_dream.DEFAULT_LAYER}:{deep_dream.default_target(model)[1]}=1",
        persist_state="session",
        key=f"dream_{mode}_maps",
        help="e.g. conv3:56=2, conv2:10",
    )
    try:
        terms = tuple(
            deep_dream.Term(name, None, float(w)) for name, w in weights.items() if w != 0
        ) + deep_dream.parse_terms(extra)
    except ValueError as exc:
        st.error(str(exc))
        st.stop()

# --- 3 · Ascent --------------------------------------------------------------------------------
st.subheader("3 · Gradient ascent")
c = st.columns(4)
if mode == "map":
    loops = widgets.number(
        c[0],
        "Loops",
        1,
        deep_dream.MAX_LOOPS,
        4,
        key="dream_loops",
        help="ascent on 28×28 → upscale → re-add details → downscale, this many times",
    )
    octaves, octave_scale = 4, 0.0
else:
    loops = 4
    octaves = widgets.number(
        c[0],
        "Octaves",
        1,
        deep_dream.MAX_OCTAVES,
        4,
        key="dream_octaves",
        help="image sizes from coarse (short side 28) to the full photo",
    )
    octave_scale = widgets.number(
        c[3],
        "Octave scale (0 = auto)",
        0.0,
        8.0,
        0.0,
        0.1,
        key="dream_octave_scale",
        help="size ratio between octaves; auto spreads them from 28 pixels to full size",
    )
epochs = widgets.number(c[1], "Epochs per " + ("loop" if mode == "map" else "octave"), 0, 500, 20, key="dream_epochs")
step_size = widgets.number(
    c[2],
    "Step size",
    0.0,
    10.0,
    0.05,
    0.01,
    format="%.3f",
    key="dream_step",
    help="per epoch, in units of the photo's standard deviation (gradients are normalized); at most 10",
)
c = st.columns(4)
invert = c[0].checkbox(
    "Invert polarity",
    False,
    persist_state="session",
    key="dream_invert",
    help="MNIST digits are white on black; invert photos whose subject is dark on light.",
)
recolour = c[1].checkbox("Recolour with the photo's colours", False, persist_state="session", key="dream_recolour")
widen = widgets.number(
    c[2],
    "Widen values (% clipped)",
    0.0,
    20.0,
    1.0,
    0.5,
    key="dream_widen",
    help="stretch the final value distribution; 0 = off",
)
seed = widgets.number(c[3], "Seed", 0, 2**31 - 1, 0, key="dream_seed", help="random shifts of the tiles")

settings = deep_dream.DreamConfig(
    mode=mode,
    layer=layer,
    map=int(map_index),
    terms=terms,
    loops=int(loops),
    octaves=int(octaves),
    octave_scale=float(octave_scale),
    epochs=int(epochs),
    step_size=float(step_size),
    invert=bool(invert),
    recolour=bool(recolour),
    widen=float(widen),
    max_side=int(max_side),
    seed=int(seed),
)
try:
    settings.validate()
    deep_dream.resolve_terms(settings, model)  # layers and maps that this model does not have
    settings_error = None
except ValueError as exc:
    settings_error = str(exc)
    st.error(f"Cannot dream with these settings: {settings_error}")
jobs.start_button(
    JOB_KEY,
    "Dream",
    lambda: JobSpec(
        "dream", settings, model=str(bundle.path), title="Deep Dream", inputs={"photo": photo, "photo_name": photo_name}
    ),
    key="dream_run",
    busy_label="Dreaming…",
    disabled=settings_error is not None,
    help="Runs as a job; a single-map dream of the default photo takes a few seconds.",
)
jobs.job_panel(
    JOB_KEY,
    on_end=_keep_dream,
    describe=_describe,
    stop_help="Ends after the current loop or octave; the stages dreamt so far are shown.",
)


# --- Gallery: several maps at once ------------------------------------------------------------------
def _keep_gallery(handle: JobHandle) -> None:
    session().dream.gallery = _on_its_photo(handle)


def _describe_gallery(snap: JobSnapshot) -> str:
    if not snap.total:
        return "Compiling the gradient ascent" if snap.state == "running" else ""
    if snap.info.get("phase"):
        return "Computing the maps' OIPs"
    return f"Dreaming all maps at once: loop {snap.done} of {snap.total - 1}"


with st.expander(
    "Gallery: several maps of one layer dream on this photo, each beside its OIP",
    expanded=session().dream.gallery is not None or jobs.job_active(GALLERY_JOB_KEY),
):
    st.caption(
        "The single-map recipe (article I) for many maps in one batch: the blog showed ten dreams of one "
        "photo side by side. Below each dream, the map's OIP: the pattern the map looks for, which the dream "
        "amplifies in the photo. Uses the loops, epochs, step size, polarity and widening set above."
    )
    spatial = [name for name, (_, is_spatial) in info.items() if is_spatial or name in ("dense1", "out")]
    c = st.columns([1, 2])
    st.session_state.setdefault("dream_gallery_layer", "conv3" if "conv3" in spatial else spatial[-1])
    if st.session_state["dream_gallery_layer"] not in spatial:
        st.session_state["dream_gallery_layer"] = spatial[-1]
    gallery_layer = c[0].selectbox("Layer", spatial, persist_state="session", key="dream_gallery_layer")
    maps_text = c[1].text_input(
        "Maps",
        "0-9",
        persist_state="session",
        key="dream_gallery_maps",
        help=f"indices or ranges like 0-9 or 3,17,56 (at most {MAX_GALLERY_MAPS}); "
        f"{gallery_layer} has maps 0..{info[gallery_layer][0] - 1}",
    )
    gallery_error, gallery_settings = None, None
    try:
        gallery_maps = parse_maps(maps_text, info[gallery_layer][0]) or tuple(range(info[gallery_layer][0]))
        gallery_settings = GalleryConfig(
            layer=gallery_layer,
            maps=tuple(gallery_maps),
            loops=int(loops),
            epochs=int(epochs),
            step_size=float(step_size),
            invert=bool(invert),
            widen=float(widen),
            max_side=int(max_side),
            seed=int(seed),
        )
        gallery_settings.validate()
    except ValueError as exc:
        gallery_error = str(exc)
        st.error(gallery_error)
    jobs.start_button(
        GALLERY_JOB_KEY,
        "Dream the gallery",
        lambda: JobSpec(
            "dream-gallery",
            gallery_settings,
            model=str(bundle.path),
            title=f"Dream gallery of {gallery_layer}",
            inputs={"photo": photo, "photo_name": photo_name},
        ),
        key="dream_gallery_run",
        busy_label="Dreaming the gallery…",
        disabled=gallery_error is not None,
        type="secondary",
        help="All maps in one batched ascent; then their OIPs. A job like any dream.",
    )
    jobs.job_panel(
        GALLERY_JOB_KEY,
        on_end=_keep_gallery,
        describe=_describe_gallery,
        stop_help="Ends after the current loop; the dreams so far are shown.",
    )
    kept_gallery = session().dream.gallery
    gallery = kept_gallery.value if kept_gallery is not None else None
    stale = kept_gallery.stale_note(model_key, bundle.path, photo_key, photo_name) if gallery else None
    if stale:
        st.caption(f"The last gallery was {stale}; dream the gallery again to see it here.")
        gallery = None
    if gallery is not None:
        g = gallery.settings
        st.caption(
            f"{g.layer}, maps {', '.join(str(int(m)) for m in gallery.maps)} · {g.loops} loops × {g.epochs} "
            f"epochs · dreaming took {gallery.seconds:.1f} s in the job's worker"
            + (" · **stopped early**" if gallery.stopped else "")
        )
        cols = min(5, len(gallery.maps))
        for start in range(0, len(gallery.maps), cols):
            row = st.columns(cols)
            for j, i in enumerate(range(start, min(start + cols, len(gallery.maps)))):
                with row[j]:
                    st.image(
                        _thumb(gallery.images[i]),
                        caption=f"map {int(gallery.maps[i])} · cost {gallery.losses[i]:.3g}",
                        width="stretch",
                    )
                    if np.isfinite(gallery.oips[i]).all():
                        st.image(
                            enlarge(deep_dream.viridis(contrast_enhance(gallery.oips[i]))),
                            width="stretch",
                            caption=f"its OIP · loss {gallery.oip_losses[i]:.3g}"
                            + ("" if gallery.oip_losses[i] > 0 else " (no OIP)"),
                        )

# --- Results -----------------------------------------------------------------------------------
kept_dream = session().dream.result
result: deep_dream.DreamResult | None = kept_dream.value if kept_dream is not None else None
if result is None:
    st.caption("Press **Dream**: a single-map dream of the default photo takes about a second.")
    st.stop()

st.subheader("The dream")
s = result.settings
stale = kept_dream.stale_note(model_key, bundle.path, photo_key, photo_name)
if stale:
    st.warning(f"This dream was {stale}. Press **Dream** to dream again.", icon=":material/history:")
st.caption(
    f"{deep_dream.MODE_TITLES[s['mode']]} · {s['terms']} · "
    + (f"{s['loops']} loops" if s["mode"] == "map" else f"{len(result.stages)} octaves")
    + f" × {s['epochs']} epochs · step {s['step_size']} · seed {s['seed']} · "
    f"{model_title(kept_dream.model_path)} · "
    f"dreaming took {result.seconds:.1f} s in the job's worker (the click to the result also counts the wait in "
    "line and loading the model)" + (" · **stopped early**" if result.status == "stopped" else "")
)
for note in result.notes:
    st.info(note)
left, right = st.columns(2)
left.image(
    result.original_rgb if result.original_rgb is not None else result.original,
    caption=f"original ({s.get('photo', 'photo')})",
    width="stretch",
)
right.image(
    result.image,
    caption="dream"
    + (" (recoloured)" if s["recolour"] else "")
    + (f", values widened ({s['widen']:g} % clipped)" if s["widen"] > 0 else ""),
    width="stretch",
)
st.download_button(
    "Download PNG",
    result.png_bytes(),
    file_name=f"deep_dream_{s['mode']}.png",
    mime="image/png",
    key="dream_download",
    on_click="ignore",
    help="The settings are stored in the PNG's 'dream_settings' text chunk.",
)

st.subheader("Loop by loop" if s["mode"] == "map" else "Octave by octave")
st.caption(
    "As in the blog: the pattern the CNN dreamt at its own resolution (viridis and grey, as the CNN sees it"
    + (", inverted" if s["invert"] else "")
    + "), the dream upscaled to the photo's size, the photo's "
    "details re-added, and the value distribution widened."
)
head = st.columns([1, 1, 2, 2, 2])
for col, title in zip(head, ("pattern (viridis)", "pattern (grey)", "upscaled dream", "details re-added", "widened")):
    col.markdown(f"**{title}**")
for stage in result.stages:
    cols = st.columns([1, 1, 2, 2, 2])
    small = stage.pattern.shape[0] <= 64
    cols[0].image(
        enlarge(deep_dream.viridis(stage.pattern)) if small else deep_dream.viridis(stage.pattern),
        width="stretch",
        caption=f"{stage.label} · cost {stage.loss:.3f}",
    )
    cols[1].image(
        enlarge(deep_dream.widen(stage.pattern, 0)) if small else deep_dream.widen(stage.pattern, 0), width="stretch"
    )
    cols[2].image(_thumb(stage.upscaled), width="stretch")
    cols[3].image(_thumb(stage.final), width="stretch")
    cols[4].image(_thumb(stage.widened), width="stretch")

left, right = st.columns(2)
with left:
    st.markdown("**Cost during the ascent**")
    fig = go.Figure()
    offset = 0
    for stage in result.stages:
        x = np.arange(offset + 1, offset + len(stage.losses) + 1)
        fig.add_trace(go.Scatter(x=x, y=stage.losses, mode="lines", name=stage.label))
        offset += len(stage.losses)
    fig.update_layout(
        height=260,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis_title="epoch (all loops/octaves)",
        yaxis_title="cost",
        legend=dict(orientation="h", y=-0.3),
    )
    widgets.chart(fig, key="dream_cost_chart")
with right:
    if result.stages:
        st.markdown(f"**Value distribution, {result.stages[-1].label}**")
        widgets.chart(plots.value_histogram(result.stages[-1]), key="dream_histogram")
with st.expander("Settings stored with this dream"):
    st.json(result.summary())
