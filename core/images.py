"""Turning uploaded files and drawings into images the CNN can take.

``decode_image`` reads untrusted bytes safely: the pixel limit is checked from the header,
before anything is decoded; animations give their first frame; EXIF rotation is applied;
16-bit, CMYK, palette and transparent images are handled (transparency composited on white).
``to_mnist_digit`` applies the MNIST recipe: grey, white-on-black, cropped to the digit,
scaled into 20×20 keeping the aspect ratio, centred by centre of mass in 28×28. Photos of a
digit on paper get an uneven-lighting correction and lose specks and border clutter first.

Every problem raises ``ImageInputError`` (a ValueError) whose message is meant for the user.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage

DEFAULT_MAX_PIXELS = 40_000_000  # a 40-megapixel photo decodes to ~120 MB of RGB
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "MPO")
ALLOWED_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "bmp", "webp")
WORK_SIDE = 512  # photos are reduced to this longer side before the digit is searched
_SUPPORTED = ", ".join(ALLOWED_FORMATS[:5])
_MAGIC = (  # file signatures, to tell a damaged image from something that is no image at all
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"RIFF", "WEBP"),
)
_OTHER_KINDS = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"<svg", "an SVG drawing"),
    (b"<?xml", "an XML/SVG file"),
)


class ImageInputError(ValueError):
    """An uploaded file or drawing that cannot be used; the message says why, for the user."""


@dataclass
class DecodedImage:
    """A decoded upload: ``image`` upright, mode ``L`` or ``RGB`` (transparency composited on white);
    ``alpha`` ``(H, W)`` float32 0..255 when the file had transparency, else None; ``notes``: what was
    done to it, for the user (first frame taken, rotated, ...)."""

    image: Image.Image
    format: str
    alpha: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def _sniff(data: bytes) -> str | None:
    head = data[:16]
    for magic, name in _MAGIC:
        if head.startswith(magic) and (name != "WEBP" or data[8:12] == b"WEBP"):
            return name
    return None


def _not_an_image(data: bytes) -> ImageInputError:
    head = data[:64].lstrip()
    for magic, what in _OTHER_KINDS:
        if head.startswith(magic):
            return ImageInputError(f"This file is {what}, not an image this page can read (use {_SUPPORTED}).")
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"):
        return ImageInputError("HEIC/HEIF photos cannot be read here; export the photo as JPEG or PNG.")
    return ImageInputError(f"This file is not an image that can be read (supported: {_SUPPORTED}).")


def decode_image_details(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, reduce_to: int | None = None
) -> DecodedImage:
    """Untrusted bytes → ``DecodedImage``. ``reduce_to`` lets JPEGs decode at a reduced scale
    (DCT scaling, never below ``reduce_to`` px on the longer side) and shrinks larger results to it."""
    if not data:
        raise ImageInputError("The file is empty (0 bytes).")
    if max_pixels < 1:
        raise ValueError(f"max_pixels={max_pixels} must be ≥ 1")
    sniffed = _sniff(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError(f"The image is too large to process safely ({exc}). Please scale it down.") from exc
    except Exception as exc:
        if sniffed:
            raise ImageInputError(
                f"This looks like a {sniffed} file, but it is truncated or corrupt and cannot be read."
            ) from exc
        raise _not_an_image(data) from exc
    if img.format not in ALLOWED_FORMATS:
        raise ImageInputError(f"Image format {img.format} is not supported; use one of {_SUPPORTED}.")
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageInputError(f"The image has no pixels ({width}×{height}).")
    if width * height > max_pixels:
        raise ImageInputError(
            f"The image is {width}×{height} = {width * height:,} pixels; the limit is "
            f"{max_pixels:,}. Please scale it down."
        )
    notes: list[str] = []
    fmt = img.format or sniffed or "?"
    try:
        if getattr(img, "is_animated", False):  # looks at the second frame only, never counts them all
            notes.append(f"animated {img.format}: the first frame is used")
            img.seek(0)
        if reduce_to and img.format in ("JPEG", "MPO") and max(img.size) > 2 * reduce_to:
            img.draft(img.mode if img.mode in ("L", "RGB") else None, (reduce_to, reduce_to))
        img.load()
        orientation = img.getexif().get(0x0112, 1)
        upright = ImageOps.exif_transpose(img)
        if upright is not None and orientation not in (None, 1):
            notes.append(f"rotated upright as its EXIF orientation ({orientation}) says")
            img = upright
    except ImageInputError:
        raise
    except Exception as exc:
        raise ImageInputError(
            f"The {fmt} image is truncated or corrupt and cannot be decoded ({type(exc).__name__})."
        ) from exc
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        notes.append(f"{_bit_depth(img.mode)} grey values scaled to 8 bits")
    elif img.mode == "CMYK":
        notes.append("CMYK colours converted to RGB")
    alpha = _alpha(img)
    if alpha is not None:
        notes.append("transparent areas composited on white")
    out = _normalize_mode(img)
    if reduce_to and max(out.size) > reduce_to:
        out.thumbnail((reduce_to, reduce_to), Image.Resampling.BOX)
        if alpha is not None:
            alpha = np.asarray(
                Image.fromarray(alpha.astype(np.uint8)).resize(out.size, Image.Resampling.BOX), dtype=np.float32
            )
    return DecodedImage(out, fmt, alpha, notes)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Untrusted file bytes → an upright PIL image in mode ``L`` or ``RGB``.

    Transparent areas are composited on white. Raises ImageInputError with a user-facing reason.
    """
    return decode_image_details(data, max_pixels).image


def _bit_depth(mode: str) -> str:
    return "16-bit" if mode.startswith("I;16") else "32-bit" if mode in ("I", "F") else mode


def _alpha(img: Image.Image) -> np.ndarray | None:
    """The alpha channel ``(H, W)`` float32, or None when the image has no (real) transparency."""
    if (
        img.mode in ("RGBA", "LA", "RGBa", "La", "PA")
        or (img.mode == "P" and "transparency" in img.info)
        or (img.mode in ("L", "RGB") and "transparency" in img.info)
    ):
        alpha = np.asarray(img.convert("RGBA").getchannel("A"), dtype=np.float32)
        return alpha if alpha.min() < 255 else None
    return None


def _normalize_mode(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            top = 65535.0
        elif mode == "F":
            top = 1.0 if arr.max() <= 1.0 else 255.0
        else:
            top = 65535.0 if arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0, 0, 255).round().astype(np.uint8), "L")
    if mode in ("P", "PA", "RGBA", "LA", "RGBa", "La") or "transparency" in img.info:
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
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageInputError(f"A drawing must be an (H, W, 3|4) array, got shape {arr.shape}.")
    rgb = arr[..., :3].mean(axis=2)
    if arr.shape[2] == 4:
        rgb = rgb * (arr[..., 3] / 255.0)  # unpainted pixels are transparent
    return rgb


DRAWING_INK_LEVEL = 64  # a canvas pixel brighter than this is ink
MIN_DRAWING_INK = 0.01  # share of the canvas: a dot of the default pen covers about 0.5 %
MIN_DRAWING_EXTENT = 0.25  # the drawing's taller or wider side, as a share of the canvas's side
EDGE_MARGIN = 0.01  # ink this close to the canvas's edge (share of its side) may have been cut off


def drawing_doubts(gray: np.ndarray) -> list[str]:
    """Why a prediction for a canvas drawing ``(H, W)`` (white ink on black, 0..255) may be a guess: too little
    ink, too small, or touching the edge. Empty when the drawing looks like something MNIST could hold."""
    ink = np.asarray(gray) > DRAWING_INK_LEVEL
    if not ink.any():
        return []
    height, width = ink.shape
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    extent = max((rows[-1] - rows[0] + 1) / height, (cols[-1] - cols[0] + 1) / width)
    doubts = []
    share = float(ink.mean())
    if share < MIN_DRAWING_INK:
        doubts.append(f"very little ink ({share:.1%} of the canvas)")
    if extent < MIN_DRAWING_EXTENT:
        doubts.append(
            f"it is small ({extent:.0%} of the canvas at its longest side; digits in MNIST fill most of their box)"
        )
    margin_r, margin_c = max(1, round(EDGE_MARGIN * height)), max(1, round(EDGE_MARGIN * width))
    if rows[0] < margin_r or cols[0] < margin_c or rows[-1] >= height - margin_r or cols[-1] >= width - margin_c:
        doubts.append("it touches the canvas's edge, so part of it may be cut off")
    return doubts


def is_dark_on_light(gray: np.ndarray) -> bool:
    """True when the background is brighter than the ink: the middle of the image (mostly background
    around the strokes) is brighter than halfway between the image's dark and bright ends. The middle,
    not the border: a photo's border may be the desk beside the sheet."""
    gray = np.asarray(gray, np.float32)
    h, w = gray.shape
    middle = gray[h // 5 : h - h // 5 or h, w // 5 : w - w // 5 or w]
    low, high = np.percentile(ndimage.uniform_filter(gray, 3), [0.1, 99.9])  # a thin digit is little of the image
    if high - low < 1e-3:
        return False
    return float(np.median(middle)) > (low + high) / 2


def _border(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    b = max(1, min(h, w) // 20)
    return np.concatenate([gray[:b].ravel(), gray[-b:].ravel(), gray[:, :b].ravel(), gray[:, -b:].ravel()])


def _shrink(gray: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    h, w = gray.shape
    if max(h, w) <= side:
        return gray
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(
        Image.fromarray(gray.astype(np.float32), "F").resize(size, Image.Resampling.BOX), dtype=np.float32
    )


def _background(gray: np.ndarray, uneven: bool) -> np.ndarray | float:
    """The background level: one number for flat backgrounds (drawings, scans), a smooth map
    for photos with uneven light (a grey opening removes the strokes, then a blur)."""
    if not uneven:
        return float(np.median(gray))
    size = max(3, round(max(gray.shape) / 5))
    opened = ndimage.maximum_filter(ndimage.minimum_filter(gray, size), size)
    return ndimage.uniform_filter(opened, size)


@dataclass
class DigitPick:
    """Which marks of an image were taken for the digit: ``box`` (top, left, bottom, right, inclusive) in
    the working image of ``shape``; ``unsure``: another digit-sized mark was there too, or the digit touches
    the image's edge; ``notes``: what was left out, for the user."""

    box: tuple[int, int, int, int]
    shape: tuple[int, int]
    unsure: bool = False
    notes: list[str] = field(default_factory=list)


def _gap(a: tuple, b: tuple) -> float:
    """Distance between two boxes (top, left, bottom, right); 0 when they overlap."""
    dy = max(0, a[0] - b[2], b[0] - a[2])
    dx = max(0, a[1] - b[3], b[1] - a[3])
    return float(np.hypot(dy, dx))


def _pick_digit(strokes: np.ndarray, drop_border: bool) -> tuple[np.ndarray, DigitPick | None]:
    """Keep the one digit nearest the centre of ``strokes`` ``(H, W)`` (ink 0..1) and zero the rest.

    Marks touching the image's edge (a desk or paper edge, a shadow, a neighbour cut by the frame) are
    left out for photos, unless nothing else is there. Of the remaining marks those at least a quarter
    the size of the largest are digit-sized; the one nearest the centre is the digit, and every mark
    within a quarter of its size (at least 5 % of the frame) from it belongs to it (the parts of a 5, a
    dotted stroke). Specks under 5 % of the digit's ink are dropped."""
    labels, n = ndimage.label(strokes > 0, structure=np.ones((3, 3)))
    if n == 0:
        return strokes, None
    h, w = strokes.shape
    index = np.arange(1, n + 1)
    mass = ndimage.sum_labels(strokes, labels, index)
    boxes = [(sl[0].start, sl[1].start, sl[0].stop - 1, sl[1].stop - 1) for sl in ndimage.find_objects(labels)]
    # at the edge: touching it (a desk, the paper's edge, a neighbour cut by the frame), or spanning almost the
    # whole frame (what is left of a desk's or shadow's edge once the background is removed; no digit does)
    edge = np.array(
        [
            b[0] == 0
            or b[1] == 0
            or b[2] == h - 1
            or b[3] == w - 1
            or b[3] - b[1] + 1 >= 0.9 * w
            or b[2] - b[0] + 1 >= 0.95 * h
            for b in boxes
        ]
    )
    candidates = np.ones(n, bool)
    notes: list[str] = []
    if drop_border and edge.any():
        inner = ~edge & (mass >= 0.05 * mass.max())
        if inner.any() and mass[inner].max() >= 0.1 * mass[edge].max():
            candidates = ~edge
            notes.append(
                "marks at the image's edge (a desk, the paper's edge, a shadow or a cut-off digit) were left out"
            )
    sized = candidates & (mass >= 0.25 * mass[candidates].max())
    centre = ((h - 1) / 2, (w - 1) / 2)
    point = (centre[0], centre[1], centre[0], centre[1])
    order = sorted(np.flatnonzero(sized), key=lambda i: (_gap(boxes[i], point), -mass[i]))
    group = {order[0]}
    box = boxes[order[0]]
    parts = candidates & (mass >= 0.05 * mass[order[0]])  # specks do not bridge to far marks
    grown = True
    while grown:
        grown = False
        reach = max(0.25 * max(box[2] - box[0] + 1, box[3] - box[1] + 1), 0.05 * max(h, w))
        for i in np.flatnonzero(parts):
            if i not in group and _gap(boxes[i], box) <= reach:
                group.add(i)
                box = (
                    min(box[0], boxes[i][0]),
                    min(box[1], boxes[i][1]),
                    max(box[2], boxes[i][2]),
                    max(box[3], boxes[i][3]),
                )
                grown = True
    digit_mass = mass[list(group)].sum()
    group = {i for i in group if mass[i] >= 0.05 * digit_mass}
    others = [i for i in np.flatnonzero(sized) if i not in group]
    unsure = False
    if others:
        unsure = True
        notes.append(f"{len(others) + 1} digit-like marks were found; the one nearest the centre was used")
    if box[0] == 0 or box[1] == 0 or box[2] == h - 1 or box[3] == w - 1:
        unsure = True
        notes.append("the digit touches the image's edge and may be cut off")
    kept = np.isin(labels, index[sorted(group)])
    return np.where(kept, strokes, 0.0), DigitPick(box, (h, w), unsure, notes)


def to_mnist_digit(gray: np.ndarray, invert: bool | None = None) -> np.ndarray:
    """Grey image ``(H, W)`` 0..255 of one digit → MNIST-style ``(28, 28)`` uint8, white on black
    (``extract_digit`` without the account of what was picked)."""
    return extract_digit(gray, invert)[0]


def extract_digit(gray: np.ndarray, invert: bool | None = None) -> tuple[np.ndarray, DigitPick | None]:
    """Grey image ``(H, W)`` 0..255 → MNIST-style digit ``(28, 28)`` uint8 and which marks were taken.

    Steps: invert dark-on-light input (auto-detected when ``invert`` is None); remove the
    background level (a smooth map when the border shows uneven light, as in photos) and stretch
    the strokes to full white; keep the one digit nearest the centre (``_pick_digit``: for photos,
    marks at the edge such as a desk, a shadow or a cut-off neighbour are left out); crop to it;
    scale the longer side to 20 px keeping the aspect ratio; place in 28×28 with the centre of mass
    at the centre. Raises ImageInputError for a blank image.
    """
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2 or gray.size == 0:
        raise ImageInputError(f"Expected a grey image (H, W), got shape {gray.shape}.")
    if not np.all(np.isfinite(gray)):
        raise ImageInputError("The image contains values that are not finite numbers.")
    gray = _shrink(gray)
    if invert is None:
        invert = is_dark_on_light(gray)
    if invert:
        gray = 255.0 - gray
    border = _border(gray)
    uneven = float(np.percentile(border, 90) - np.percentile(border, 10)) > 12.0 and min(gray.shape) >= 16
    strokes = gray - _background(gray, uneven)
    h, w = strokes.shape  # the ink's level from the middle of the frame, where the digit is (not a desk's edge)
    middle = strokes[h // 5 : h - h // 5 or h, w // 5 : w - w // 5 or w]
    top = float(np.percentile(middle, 99.5)) if middle.size >= 64 else 0.0
    if top < 25.0:  # no ink in the middle: the digit is off-centre, take the level of the whole image
        top = float(np.percentile(strokes, 99.5))
    if top < 25.0:
        raise ImageInputError("No digit found: the image (or drawing) is blank or has too little contrast.")
    strokes = np.clip(strokes / top, 0.0, 1.0)
    strokes[strokes < 0.15] = 0.0  # paper texture and JPEG noise are not ink
    strokes, pick = _pick_digit(strokes, drop_border=uneven or bool(invert))
    rows, cols = np.flatnonzero(strokes.any(axis=1)), np.flatnonzero(strokes.any(axis=0))
    if rows.size == 0:
        raise ImageInputError("No digit found: the image (or drawing) is blank or has too little contrast.")
    crop = strokes[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    small = Image.fromarray((crop * 255).astype(np.uint8)).resize((new_w, new_h), Image.Resampling.LANCZOS)
    digit = np.zeros((28, 28), dtype=np.float32)
    top_left = ((28 - new_h) // 2, (28 - new_w) // 2)
    digit[top_left[0] : top_left[0] + new_h, top_left[1] : top_left[1] + new_w] = np.asarray(small, dtype=np.float32)
    if digit.max() <= 0:
        raise ImageInputError("No digit found: the marks are too faint or too small.")
    cy, cx = ndimage.center_of_mass(digit)
    shift = (int(round(13.5 - cy)), int(round(13.5 - cx)))
    digit = ndimage.shift(digit, shift, order=0, mode="constant", cval=0.0)
    return np.clip(np.rint(digit), 0, 255).astype(np.uint8), pick


def file_to_mnist_digit(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Uploaded file bytes → ``(28, 28)`` uint8 digit as the network will see it."""
    return read_digit_file(data, max_pixels).digit


def file_to_mnist_digit_details(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, list[str]]:
    """Like ``file_to_mnist_digit``, also returning notes for the user about what was done."""
    reading = read_digit_file(data, max_pixels)
    return reading.digit, reading.notes


@dataclass
class DigitReading:
    """A digit read from a file: ``digit`` ``(28, 28)`` uint8 as the network sees it, ``notes`` for the
    user, ``unsure`` when the choice of marks may be wrong, ``picture`` the grey working image
    ``(h, w)`` uint8 with ``box`` (top, left, bottom, right) the marks taken, to show what was picked."""

    digit: np.ndarray
    notes: list[str]
    unsure: bool
    picture: np.ndarray
    box: tuple[int, int, int, int] | None


def read_digit_file(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DigitReading:
    """Uploaded file bytes → the digit nearest the centre of the image, and an account of the choice.

    A transparent image whose strokes vanish when composited on white (a white digit on a
    transparent background) is read from its alpha channel instead.
    """
    decoded = decode_image_details(data, max_pixels, reduce_to=WORK_SIDE)
    notes = list(decoded.notes)
    gray = luminance(decoded.image)
    source = gray
    try:
        digit, pick = extract_digit(gray)
    except ImageInputError:
        if decoded.alpha is None:
            raise
        source = decoded.alpha
        digit, pick = extract_digit(decoded.alpha, invert=False)  # the shape is in the transparency
        notes.append("the digit was read from the transparency (light strokes on a transparent background)")
    if source is gray and is_dark_on_light(_shrink(gray)):
        notes.append("dark digit on a light background: inverted")
    if pick is not None:
        notes += pick.notes
    picture = np.clip(_shrink(np.asarray(source, np.float32)), 0, 255).astype(np.uint8)
    return DigitReading(digit, notes, bool(pick and pick.unsure), picture, pick.box if pick else None)
