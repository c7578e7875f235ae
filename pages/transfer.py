"""New symbols page: teach a copy of the active CNN symbols of the learner's own (+, −, ×, letters, arrows) from a few
drawn or uploaded examples each, and see what transfers.

Thin: the symbol set (core.experiments.transfer.SymbolSet) is drawn or uploaded here and kept in the session (and on
the server under the nickname, as the handwriting set is); the transfer is a job (kind 'transfer': the frozen copy,
the same shape from scratch, optionally unfrozen) that keeps the frozen copy as a new run; the figures come from
core.figures.transfer, the OIPs of the maps from the OIP job and the session's OIP store.
"""

from __future__ import annotations

from core.device import quiet_tensorflow_logs

# First of all: a deep link to a fresh server runs this file before app.py (Streamlit's pages/ folder mode).
quiet_tensorflow_logs()

import numpy as np
import streamlit as st

from core.experiments.personal_set import save_set
from core.experiments.transfer import (
    MAX_SYMBOLS,
    MIN_EXAMPLES,
    TITLES,
    SymbolSet,
    SymbolSetError,
    TransferConfig,
    load_symbols,
)
from core.figures import transfer as figures
from core.figures.common import enlarge
from core.images import ImageInputError, read_digit_file
from core.jobs.kinds import TransferJobConfig
from core.jobs.system import JobHandle, JobSpec
from core.oip.search import OipConfig
from core.runs import default_runs_dir, resolve_model_path, run_title, sanitize_name
from core.runs import model_key as run_model_key
from core.serving.classroom import person_dir
from pages.ui import access, jobs, menu, state, widgets
from pages.ui.state import Computed, model_title, session

JOB_KEY = "transfer_job"
OIP_JOB_KEY = "transfer_oip_job"
SYMBOLS_FILE = "symbols.npz"  # beside the handwriting set in <runs>/.people/<nickname>/

menu.page_frame()
st.title("Teach the network new symbols")
bundle = menu.active_bundle()
if bundle is None:
    st.stop()
if not widgets.has_conv_maps(bundle):
    widgets.offer_the_cnn("Transfer learning")
model_key = run_model_key(bundle.path)
mine = session().transfer


# --- the set, kept in the session and on the server -------------------------------------------------------
def _symbols() -> SymbolSet:
    return mine.symbols or SymbolSet()


def _say(kind: str, text: str) -> None:
    mine.message = (kind, text)


def _kept_file():
    name = access.nickname()
    return person_dir(default_runs_dir(), name) / SYMBOLS_FILE if name else None


def _restore() -> None:
    """Once per nickname: the symbols kept on the server become the session's (when it has none yet)."""
    name = access.nickname()
    if not name or mine.kept_for == name:
        return
    mine.kept_for = name
    try:
        kept = load_symbols(_kept_file())
    except (SymbolSetError, OSError) as exc:
        st.warning(f"Your symbols kept on the server could not be read: {exc}")
        kept = None
    if kept is not None and mine.symbols is None:
        mine.symbols = kept
    mine.kept = mine.symbols


def _keep() -> None:
    """A set this run replaced is written to the server (whole, or not at all)."""
    if not access.nickname() or mine.kept_for != access.nickname() or mine.symbols is mine.kept:
        return
    mine.kept = mine.symbols
    try:
        save_set(_symbols(), _kept_file())
    except (OSError, ValueError) as exc:
        st.warning(f"Your symbols could not be kept on the server: {exc}")


def _name() -> str:
    return str(st.session_state.get("tr_name") or "").strip()


def _add(images: np.ndarray, what: str) -> bool:
    try:
        mine.symbols = _symbols().add_many(images, st.session_state.get("tr_name"))
    except SymbolSetError as exc:
        _say("error", str(exc))
        return False
    _say("success", f"Added {what} as {_name()!r}.")
    return True


def _add_drawing() -> None:
    if mine.drawn is None:
        _say("warning", "Draw a symbol first: the canvas is empty.")
    elif _add(mine.drawn, "your drawing"):
        mine.canvas_mounts += 1  # a fresh canvas for the next example


def _uploader_key() -> str:
    return f"tr_images_{mine.uploader_mounts}"


def _add_uploads() -> None:
    images, refused = [], []
    for f in st.session_state.get(_uploader_key()) or []:
        try:
            images.append(read_digit_file(f.getvalue()).digit)
        except ImageInputError as exc:
            refused.append(f"{f.name}: {exc}")
    if images and _add(np.stack(images), widgets.count(len(images), "image")):
        mine.uploader_mounts += 1
    if refused:
        _say("warning", "Not added: " + "; ".join(refused))


def _set_file_key() -> str:
    return f"tr_file_{mine.set_file_mounts}"


def _load_file() -> None:
    up = st.session_state.get(_set_file_key())
    if up is None:
        return
    try:
        mine.symbols = SymbolSet.from_npz(up.getvalue(), repr(up.name))
    except SymbolSetError as exc:
        _say("error", f"Your symbols were kept as they were: {exc}")
        return
    _say("success", f"Loaded {widgets.count(len(mine.symbols), 'example')} of {len(mine.symbols.names)} symbols.")
    mine.set_file_mounts += 1


def _remove(indices: list[int]) -> None:
    try:
        mine.symbols = _symbols().without(indices)
    except SymbolSetError as exc:
        _say("error", str(exc))
        return
    st.session_state["tr_remove"] = []
    _say("success", f"Removed {widgets.count(len(indices), 'example')}.")


def _keep_result(handle: JobHandle) -> None:
    mine.result = Computed.of(handle.result, handle.spec.model)


_restore()
st.write(
    "A network trained on digits has learned strokes, curves and corners. Do they serve for symbols it has never "
    f"seen? Draw or upload a few examples (10 or so) of 2 to {MAX_SYMBOLS} symbols of your own (+, −, ×, letters, "
    "arrows) and give each a name. A copy of the active model keeps its conv layers frozen and learns a new head on "
    "them, in seconds; a network of the same shape learns from scratch on the same examples. Both are judged on "
    "examples they never saw."
)

c_draw, c_add = st.columns([1, 2])
with c_draw:
    mine.drawn = widgets.small_canvas(f"tr_canvas_{mine.canvas_mounts}")
    if mine.drawn is not None:
        st.image(enlarge(mine.drawn, 56), caption="as the network sees it (28×28)")
with c_add:
    st.text_input(
        "Symbol name",
        key="tr_name",
        max_chars=24,
        placeholder="e.g. plus, ×, A, arrow up",
        help="Examples added below go to the symbol of this name (a new symbol when the name is new).",
    )
    named = bool(_name())
    st.button(
        f"Add the drawing as {_name()!r}" if named else "Add the drawing",
        key="tr_add_drawing",
        on_click=_add_drawing,
        disabled=not widgets.canvas_installed() or not named,
        help="Draw on the black canvas (white ink), name the symbol, then add the drawing.",
    )
    photos = st.file_uploader(
        "Or images of the symbol (one symbol per image)",
        type=["png", "jpg", "jpeg", "gif", "bmp", "webp"],
        accept_multiple_files=True,
        key=_uploader_key(),
    )
    if photos:
        st.button(
            f"Add {widgets.count(len(photos), 'image')} as {_name()!r}" if named else "Name the symbol first",
            key="tr_add_images",
            on_click=_add_uploads,
            disabled=not named,
        )

note, mine.message = mine.message, None
with st.container():  # always there, so the elements below keep their places
    if note:
        getattr(st, note[0])(note[1])

symbols = _symbols()
_keep()  # the callbacks above ran before this run: the set is current here
widgets.set_file_panel(
    "Download your symbols, or load a set (.npz)",
    key="tr_file_panel",
    download_label="Download my symbols (.npz)",
    data=symbols.to_npz(),
    file_name="my_symbols.npz",
    empty=len(symbols) == 0,
    uploader_key=_set_file_key(),
    actions=[("Replace my symbols", "tr_replace", _load_file, ())],
    caption="A set is images (N, 28, 28), labels (N,) and names. "
    "`python -m core transfer my_symbols.npz --from bundled` runs the same transfer from the command line.",
)

if len(symbols) == 0:
    st.info("No symbols yet: name a symbol, draw it and add the drawing; or upload images, or load a set.")
else:
    counts = symbols.counts()
    st.markdown(
        f"**{widgets.count(len(symbols.names), 'symbol')}**, {widgets.count(len(symbols), 'example')}: "
        + ", ".join(f"{n} ({c})" for n, c in zip(symbols.names, counts))
    )
    widgets.chart(figures.symbol_grid(symbols.images, symbols.labels, symbols.names), key="tr_grid")
    st.multiselect(
        "Delete examples", list(range(len(symbols))), key="tr_remove", help="by the number above each thumbnail"
    )
    if st.session_state.get("tr_remove"):
        st.button("Delete them", key="tr_remove_go", on_click=_remove, args=(list(st.session_state["tr_remove"]),))

# --- the transfer ----------------------------------------------------------------------------------------
st.subheader("Transfer")
t = st.columns(4)
epochs = widgets.number(t[0], "Epochs", 1, 200, 20, key="tr_epochs")
lr = t[1].select_slider(
    "Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], 1e-3, persist_state="session", key="tr_lr", help="Adam"
)
hold = t[2].slider(
    "Held out of each symbol",
    0.1,
    0.5,
    0.3,
    0.05,
    persist_state="session",
    key="tr_hold",
    help="judged on, never trained on (at least one example of each symbol, never all)",
)
unfreeze = t[3].toggle(
    "Also unfreeze the conv layers",
    False,
    persist_state="session",
    key="tr_unfreeze",
    help="a third network: the copy with its conv layers learning too; how far do they move?",
)
try:
    symbols.check_trainable()
    not_ready = None
except SymbolSetError as exc:
    not_ready = str(exc)
if not_ready and len(symbols):
    st.info(f"Not yet: {not_ready}.")


def _make_spec() -> JobSpec | None:
    config = TransferConfig(epochs=int(epochs), learning_rate=float(lr), hold_out=float(hold), unfreeze=unfreeze)
    return JobSpec(
        "transfer",
        TransferJobConfig(config, name=sanitize_name(f"{run_title(bundle.path)}-symbols")),
        model=str(bundle.path),
        inputs={"images": symbols.images, "labels": symbols.labels, "names": list(symbols.names)},
        title=f"transfer of {run_title(bundle.path)} to {widgets.count(len(symbols.names), 'symbol')}",
    )


jobs.start_button(
    JOB_KEY,
    "Teach a copy these symbols",
    _make_spec,
    key="tr_start",
    busy_label="Training…",
    disabled=not_ready is not None,
    help=f"2 to {MAX_SYMBOLS} symbols, at least {MIN_EXAMPLES} examples each. A new run; the active model stays "
    "as it is.",
)
jobs.job_panel(JOB_KEY, on_end=_keep_result)

kept = mine.result
outcome = kept.value if kept is not None else None
if outcome is not None and outcome.transfer is not None and outcome.transfer.scores:
    result = outcome.transfer
    stale = kept.stale_note(model_key, bundle.path)
    if stale:
        st.caption(f"The transfer below was {stale}.")
    if outcome.run_dir is not None:
        st.success(
            f"A copy of {outcome.base_name} learned {widgets.count(len(result.names), 'symbol')} in "
            f"{jobs.duration(result.seconds)}: new run **{outcome.run_dir.name}** (conv layers frozen); the original "
            "is untouched. It reads your symbols, not digits, so keep a digit model active on the other pages."
        )
    elif result.stopped:
        st.warning("Stopped: the networks trained so far are shown; no run was kept.")
    frozen, scratch = result.scores.get("frozen"), result.scores.get("scratch")
    if frozen is not None and scratch is not None:
        st.markdown(
            f"On **{widgets.count(len(result.held_out), 'held-out example')}**: frozen conv layers + new head "
            f"**{frozen.accuracy:.0%}**, the same network from scratch **{scratch.accuracy:.0%}** "
            f"(trained on {widgets.count(len(result.train), 'example')}; the frozen copy trained "
            f"{frozen.trainable:,} weights, the one from scratch {scratch.trainable:,})."
        )
    left, right = st.columns(2)
    with left:
        widgets.chart(figures.accuracy_bars(result, TITLES), key="tr_accuracy")
    with right:
        widgets.chart(figures.per_symbol_bars(result, TITLES), key="tr_per_symbol")
    if result.conv_change:
        widgets.chart(figures.conv_change_bars(result.conv_change), key="tr_conv_change")
        st.caption(
            "Unfrozen, the conv layers adapt to the symbols: the bars say how far their weights moved from the "
            "digit-trained ones. The frozen copy's moved 0 % by construction, so its maps are the original's."
        )

    st.subheader(f"Which {result.layer} maps the new symbols use")
    widgets.chart(figures.map_usage_heatmap(result), key="tr_maps")
    st.caption(
        "Each symbol's mean activation of every map (over all its examples); outlined are the maps whose activation "
        "on the symbol most exceeds their mean over all symbols: "
        + "; ".join(f"{n}: {', '.join(str(int(m)) for m in row)}" for n, row in zip(result.names, result.top_maps))
        + "."
    )
    source = str(resolve_model_path(kept.model_path))
    source_key = run_model_key(source)
    oips = state.oip_store().latest_result(source_key, result.layer)
    if oips is not None:
        widgets.chart(
            figures.top_map_oips(oips.best_images, oips.maps, result.names, result.top_maps), key="tr_top_oips"
        )
        st.caption(
            f"The OIPs (the pattern each map responds to most) of each symbol's top maps, from "
            f"{model_title(source)}: the frozen copy's conv layers are the same, so these are its maps too."
        )
    elif source_key == model_key:
        st.info(
            f"What do these maps look for? Compute the OIPs of {result.layer} (as on the Filters / OIP page) to see "
            "the top maps' patterns beside each symbol."
        )
        jobs.start_button(
            OIP_JOB_KEY,
            f"Compute the OIPs of {result.layer}",
            lambda: JobSpec(
                "oip", OipConfig(layer=result.layer), model=str(bundle.path), title=f"OIPs of {result.layer}"
            ),
            key="tr_oip_start",
            busy_label="Computing OIPs…",
            type="secondary",
        )
        jobs.job_panel(OIP_JOB_KEY, on_end=state.store_oip_result, describe=jobs.describe_oip_job)
