"""Turning uploaded files and drawings into images the CNN can take.

``decode_image`` reads untrusted bytes safely (size limit checked before decoding, first
frame of animations, EXIF rotation, 16-bit / CMYK / palette / transparent images handled).
``to_mnist_digit`` applies the MNIST recipe: grey, white-on-black, cropped to the digit,
scaled into 20×20 keeping the aspect ratio, centred by centre of mass in 28×28.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage

DEFAULT_MAX_PIXELS = 40_000_000  # a 40-megapixel photo decodes to ~120 MB of RGB
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "MPO")
ALLOWED_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "bmp", "webp")


class ImageInputError(ValueError):
    """An uploaded file or drawing that cannot be used; the message says why, for the user."""


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Untrusted file bytes → an upright PIL image in mode ``L`` or ``RGB``.

    Transparent areas are composited on white. Raises ImageInputError with a user-facing reason.
    """
    if not data:
        raise ImageInputError("The file is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError(f"The image is too large to process safely ({exc}).") from exc
    except Exception as exc:
        raise ImageInputError("This file is not an image that can be read "
                              f"(supported: {', '.join(ALLOWED_FORMATS[:5])}).") from exc
    if img.format not in ALLOWED_FORMATS:
        raise ImageInputError(f"Image format {img.format} is not supported; use one of {', '.join(ALLOWED_FORMATS[:5])}.")
    width, height = img.size
    if width * height > max_pixels:
        raise ImageInputError(f"The image is {width}×{height} = {width * height:,} pixels; the limit is "
                              f"{max_pixels:,}. Please scale it down.")
    if width < 1 or height < 1:
        raise ImageInputError(f"The image has no pixels ({width}×{height}).")
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)  # animated GIF/WebP: the first frame
        img.load()
        img = ImageOps.exif_transpose(img) or img
    except Exception as exc:
        raise ImageInputError(f"The image file is truncated or corrupt ({type(exc).__name__}).") from exc
    return _normalise_mode(img)


def _normalise_mode(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "1":
        return img.convert("L")
    if mode in ("L", "RGB"):
        return img
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def luminance(img: Image.Image) -> np.ndarray:
    """PIL image → grey values ``(H, W)`` float32 in 0..255 (ITU-R 601 luma for colour)."""
    return np.asarray(img.convert("L"), dtype=np.float32)


def canvas_to_gray(rgba: np.ndarray) -> np.ndarray:
    """A drawing-canvas buffer ``(H, W, 4)`` (white strokes on black) → grey ``(H, W)`` 0..255."""
    arr = np.asarray(rgba, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageInputError(f"A drawing must be an (H, W, 3|4) array, got shape {arr.shape}.")
    rgb = arr[..., :3].mean(axis=2)
    if arr.shape[2] == 4:
        rgb = rgb * (arr[..., 3] / 255.0)  # unpainted pixels are transparent
    return rgb


def is_dark_on_light(gray: np.ndarray) -> bool:
    """True when the border (the background) is brighter than the middle of the image."""
    h, w = gray.shape
    b = max(1, min(h, w) // 10)
    border = np.concatenate([gray[:b].ravel(), gray[-b:].ravel(), gray[:, :b].ravel(), gray[:, -b:].ravel()])
    return float(np.median(border)) > 127.0


def to_mnist_digit(gray: np.ndarray, invert: bool | None = None) -> np.ndarray:
    """Grey image ``(H, W)`` 0..255 of one digit → MNIST-style ``(28, 28)`` uint8, white on black.

    Steps: invert dark-on-light input (auto-detected when ``invert`` is None); remove the
    background level and stretch the strokes to full white; crop to the digit; scale the
    longer side to 20 px keeping the aspect ratio; place in 28×28 with the centre of mass at
    the centre. Raises ImageInputError for a blank image.
    """
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2:
        raise ImageInputError(f"Expected a grey image (H, W), got shape {gray.shape}.")
    if invert is None:
        invert = is_dark_on_light(gray)
    if invert:
        gray = 255.0 - gray
    background = float(np.median(gray))  # most of a digit image is background
    top = float(np.percentile(gray, 99.5))
    if top - background < 25.0:
        raise ImageInputError("No digit found: the image (or drawing) is blank or has too little contrast.")
    strokes = np.clip((gray - background) / (top - background), 0.0, 1.0)
    strokes[strokes < 0.15] = 0.0  # paper texture and JPEG noise are not ink
    rows, cols = np.flatnonzero(strokes.any(axis=1)), np.flatnonzero(strokes.any(axis=0))
    crop = strokes[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    small = Image.fromarray((crop * 255).astype(np.uint8)).resize((new_w, new_h), Image.Resampling.LANCZOS)
    digit = np.zeros((28, 28), dtype=np.float32)
    top_left = ((28 - new_h) // 2, (28 - new_w) // 2)
    digit[top_left[0]:top_left[0] + new_h, top_left[1]:top_left[1] + new_w] = np.asarray(small, dtype=np.float32)
    cy, cx = ndimage.center_of_mass(digit)
    shift = (int(round(13.5 - cy)), int(round(13.5 - cx)))
    digit = ndimage.shift(digit, shift, order=0, mode="constant", cval=0.0)
    return np.clip(np.rint(digit), 0, 255).astype(np.uint8)


def file_to_mnist_digit(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Uploaded file bytes → ``(28, 28)`` uint8 digit as the network will see it."""
    return to_mnist_digit(luminance(decode_image(data, max_pixels)))
