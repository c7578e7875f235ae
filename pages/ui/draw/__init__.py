"""The Activations page's drawing pad: the project's own Streamlit component (frontend/: index.html, draw.js,
digit.js, net.js and TensorFlow.js's built files from package.json/package-lock.json, committed: nothing is
fetched at run time).

The browser reads the drawing and runs the active model itself while the pen moves (the model goes to the
browser once, as ``core.browser_model`` JSON served from frontend/models/ under its content hash). When the pen
lifts, Undo or Clear is pressed, the component's value becomes ``{"seq", "strokes", "pen", "digit" (784 ints or
None), "png" (the pad, a data URL, or None), "predicted", "probabilities"}``; the page computes the reference from
``png`` with the server's own ``canvas_to_gray`` path.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import streamlit.components.v1 as components
from PIL import Image

from core.browser_model import NotInBrowser, export_json, write_export
from core.images import ImageInputError

FRONTEND = Path(__file__).resolve().parent / "frontend"
MODELS = "models"  # under FRONTEND; written at run time, ignored by git
PAD_PX = 280  # the pad's own pixels, whatever size it is shown at: the pen width is in these

_pad = components.declare_component("draw_pad", path=str(FRONTEND))


def model_file(model, scaler, check_digits: np.ndarray) -> str:
    """Write the model for the browser (once per content) and return its URL relative to the component.
    Raises NotInBrowser when the browser cannot run it (or the file cannot be written)."""
    text = export_json(model, scaler, check_digits)
    try:
        name = write_export(text, FRONTEND / MODELS)
    except OSError as exc:
        raise NotInBrowser(f"the model could not be written for the browser ({exc})") from exc
    return f"{MODELS}/{name}"


def draw_pad(
    *,
    key: str,
    model_url: str | None,
    model_note: str,
    strokes: list | None,
    pen: int,
    layer: str | None,
    scale: str,
) -> dict | None:
    """The pad; returns its last value (see the module's docstring) or None before the first stroke."""
    return _pad(
        key=key,
        default=None,
        model_url=model_url,
        model_note=model_note,
        strokes=strokes or [],
        pen=int(pen),
        layer=layer,
        scale=scale,
    )


def pad_pixels(png: str) -> np.ndarray:
    """The pad's picture (a ``data:image/png;base64,...`` URL) → RGBA ``(280, 280, 4)`` uint8."""
    if not isinstance(png, str) or not png.startswith("data:image/png;base64,"):
        raise ImageInputError("The drawing did not arrive as a PNG picture.")
    data = base64.b64decode(png.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as img:
        if img.size != (PAD_PX, PAD_PX):
            raise ImageInputError(f"The drawing is {img.size[0]}×{img.size[1]} pixels; the pad is {PAD_PX}×{PAD_PX}.")
        return np.asarray(img.convert("RGBA"))


def browser_digit(value: dict) -> np.ndarray | None:
    """The 28×28 digit the browser read (uint8), or None when it read none."""
    digit = value.get("digit")
    if not isinstance(digit, list) or len(digit) != 784:
        return None
    return np.clip(np.asarray(digit, dtype=np.int64), 0, 255).astype(np.uint8).reshape(28, 28)
