"""Widgets the pages share: a Plotly chart with its toolbar out of the way, and the blog's figures beside the
learner's own."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.blog import published
from core.checks import check_range
from core.images import ImageInputError, canvas_to_gray, to_mnist_digit
from core.runs import DEFAULT_MODEL_DIR
from pages.ui.state import session


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 digit', '3 digits', '1,200 digits'."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def sentence(text: str) -> str:
    """``text`` with its first letter upper-case and the rest as written ('article II' stays, unlike
    ``str.capitalize``)."""
    return text[:1].upper() + text[1:]


def number(
    container,
    label: str,
    low: float | None,
    high: float | None,
    default: float,
    step: float | None = None,
    *,
    key: str,
    stop: bool = True,
    **kwargs,
) -> float | int | None:
    """A number field for a value in ``low..high`` (whole when ``low``, ``high`` and ``default`` are ints) that
    shows what was typed, even out of range, and says in words beside it when it is out of range. A bounded
    ``st.number_input`` would keep the last good value under a red outline, and the page would use a number the
    learner no longer sees. Out of range, nothing below the field runs (``st.stop``), or with ``stop=False`` the
    field returns None and the page must not run on it."""
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high, default) if v is not None)
    if key not in st.session_state:  # a value set through the session state wins; passing both warns
        kwargs["value"] = default
    step = step if step is not None else (1 if whole else None)
    value = container.number_input(label, step=step, persist_state="session", key=key, **kwargs)
    try:
        check_range(label, value, low, high, whole=whole)
    except ValueError:
        if value is None:
            shown = "nothing"
        else:
            shown = f"{value:,}" if whole or float(value).is_integer() else f"{value:g}"
        if low is not None and high is not None:
            where = f"is outside {low:,}..{high:,}"
        else:
            where = f"must be ≥ {low:,}" if low is not None else f"must be ≤ {high:,}"
        container.error(
            f"{label}: {shown} {where}. "
            + ("Nothing below runs until it is in range." if stop else "Nothing runs until it is in range.")
        )
        if stop:
            st.stop()
        return None
    return int(value) if whole else float(value)


def whole_number(container, label: str, low: int, high: int, default: int, *, key: str, **kwargs) -> int | None:
    """``number`` for a whole number that returns None out of range (the page disables what would run on it)."""
    return number(container, label, low, high, default, key=key, stop=False, **kwargs)


def kept_upload(
    owner: object, field: str, label: str, *, key: str, types: list[str], forget: str, help: str | None = None
) -> tuple[str, bytes] | None:
    """A file uploader whose file outlives a page switch: ``(name, bytes)`` of the file uploaded, kept in
    ``owner.field`` (a session dataclass). Streamlit's uploader forgets its file when the page is left; on return
    (its key is absent then) the kept file is given back, with a caption and a ``forget`` button; a file the learner
    removed (the key is there, empty) is forgotten."""
    returning = key not in st.session_state
    upload = st.file_uploader(label, type=types, key=key, help=help)
    if upload is not None:
        setattr(owner, field, (upload.name, upload.getvalue()))
        return getattr(owner, field)
    if not returning:
        setattr(owner, field, None)
    kept = getattr(owner, field)
    if kept is not None:
        st.caption(f"**{kept[0]}**, uploaded before you left this page.")
        st.button(forget, key=key + "_forget", on_click=setattr, args=(owner, field, None))
    return kept


def has_conv_maps(bundle) -> bool:
    """Whether the model has conv layers (a dense network imported from elsewhere has none)."""
    return bool(bundle.spec.convs)


def offer_the_cnn(what: str, *, stop: bool = True) -> None:
    """For a model without conv maps: one sentence saying that ``what`` needs them, and a button that makes the
    bundled CNN the active model; then nothing below runs (``stop``)."""
    st.info(
        f"{what} needs the maps of conv layers, and the active model has none: it is a dense network. "
        "The bundled CNN has them.",
        icon=":material/grid_off:",
    )
    st.button(
        "Use the bundled CNN",
        key="use_bundled_cnn",
        on_click=session().use_model,
        args=(str(DEFAULT_MODEL_DIR),),
        type="primary" if stop else "secondary",
    )
    if stop:
        st.stop()


def chart(figure, **kwargs):
    """``st.plotly_chart`` with plotly's toolbar standing at the right edge, so it never covers a
    chart's title (small charts with titles at the top were hard to read under it)."""
    figure.update_layout(modebar=dict(orientation="v"))
    return st.plotly_chart(figure, **kwargs)


def blog_beside(rows: list[tuple[str, str]], title: str = "The blog beside yours") -> None:
    """A box with one line per published figure (``core.blog`` key) and the user's own result beside it:
    ``rows`` = [(key, your result as a sentence), ...]."""
    with st.container(border=True):
        st.markdown(f"**{title}**")
        sources = []
        for key, yours in rows:
            fig = published(key)
            left, right = st.columns(2)
            left.markdown(f"Blog: {fig.value}")
            right.markdown(f"Yours: {yours}")
            if fig.source not in sources:
                sources.append(fig.source)
        st.caption("Source: " + "; ".join(sources))


# --------------------------------------------------------------------------- a small canvas for examples
SMALL_CANVAS_PX = 196  # the canvas for adding examples (Experiments' handwriting, New symbols)


def small_canvas(key: str) -> np.ndarray | None:
    """A black canvas with a white pen for drawing one example; returns the 28×28 uint8 digit the network would
    see, or None while nothing usable is drawn (why is said under the canvas). Without streamlit-drawable-canvas
    it says so and returns None."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except ImportError:
        st.caption("The drawing canvas is not installed here; upload images instead.")
        return None
    canvas = st_canvas(
        fill_color="#000000",
        stroke_width=16,
        stroke_color="#FFFFFF",
        background_color="#000000",
        update_streamlit=True,
        height=SMALL_CANVAS_PX,
        width=SMALL_CANVAS_PX,
        drawing_mode="freedraw",
        display_toolbar=False,
        key=key,
    )
    if canvas.image_data is None or not (canvas.json_data or {}).get("objects"):
        return None
    try:
        return to_mnist_digit(canvas_to_gray(canvas.image_data), invert=False)
    except ImageInputError as exc:
        st.caption(f"This drawing cannot be used: {exc}")
        return None


def canvas_installed() -> bool:
    """Whether streamlit-drawable-canvas (the small canvas) can be imported here."""
    import importlib.util

    return importlib.util.find_spec("streamlit_drawable_canvas") is not None


def set_file_panel(
    title: str,
    *,
    key: str,
    download_label: str,
    data: bytes,
    file_name: str,
    empty: bool,
    uploader_key: str,
    actions: list[tuple[str, str, object, tuple]],
    caption: str,
) -> None:
    """An expander (``key``, so it stays open) to download a set as ``file_name`` and load one back: the download
    (disabled while the set is ``empty``) on the left, the uploader (``uploader_key``) on the right and, once a file
    is there, one button per ``(label, key, on_click, args)`` in ``actions``; ``caption`` says what a set holds."""
    with st.expander(title, key=key):
        left, right = st.columns(2)
        left.download_button(
            download_label,
            data,
            file_name=file_name,
            mime="application/octet-stream",
            disabled=empty,
            key=f"{key}_download",
            on_click="ignore",
        )
        right.file_uploader("Load a set (.npz from Download)", type=["npz"], key=uploader_key)
        if st.session_state.get(uploader_key) is not None:
            for column, (label, button_key, on_click, args) in zip(right.columns(len(actions)), actions):
                column.button(label, key=button_key, on_click=on_click, args=args)
        st.caption(caption)
