"""Photos of a digit on paper, framed as people frame them: a dark desk on one or two sides, a
neighbouring digit cut by the frame or whole beside it, a shadow across the sheet, desk corners. The
recipe (core.images) must give the one digit nearest the centre, and say when it is unsure.

The photos are made here from the shipped sample of MNIST test digits (no MNIST file needed).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from core.data import load_sample_digits
from core.images import extract_digit, is_dark_on_light, read_digit_file

SAMPLE = load_sample_digits()
PICKS = {k: [int(i) for i in np.flatnonzero(SAMPLE.labels == k)[:2]] for k in range(10)}  # 2 per class


def _ink(digit: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR), np.float32) / 255.0


def photo(
    digit: np.ndarray,
    *,
    h: int = 360,
    w: int = 480,
    size: int = 200,
    at=None,
    border=(),
    neighbour=None,
    shadow: float = 0.0,
    corners: bool = False,
    seed: int = 0,
) -> bytes:
    """A JPEG 'phone photo' of ``digit`` written dark on light paper: ``border`` [(side 'l'|'r'|'t'|'b',
    fraction)] of dark desk, ``neighbour`` (digit, (top, left)) another digit (may be cut by the frame),
    ``shadow`` the darkening from one corner to the other, ``corners`` dark desk corners (a tilted sheet)."""
    rng = np.random.default_rng(seed)
    ink = np.zeros((h, w), np.float32)
    y, x = at if at is not None else ((h - size) // 2, (w - size) // 2)
    ink[y : y + size, x : x + size] = _ink(digit, size)
    if neighbour is not None:
        other, (ny, nx) = neighbour
        big = _ink(other, size)
        y0, x0, y1, x1 = max(ny, 0), max(nx, 0), min(ny + size, h), min(nx + size, w)
        ink[y0:y1, x0:x1] = np.maximum(ink[y0:y1, x0:x1], big[y0 - ny : y1 - ny, x0 - nx : x1 - nx])
    yy, xx = np.mgrid[0:h, 0:w]
    paper = 215.0 * (1.0 - shadow * ((yy / h + xx / w) / 2) ** 1.2)
    grey = paper * (1.0 - 0.8 * ink)
    desk = np.zeros((h, w), bool)
    for side, fraction in border:
        n = int(fraction * (h if side in "tb" else w))
        rows, cols = {
            "l": (slice(None), slice(0, n)),
            "r": (slice(None), slice(w - n, w)),
            "t": (slice(0, n), slice(None)),
            "b": (slice(h - n, h), slice(None)),
        }[side]
        desk[rows, cols] = True
    if corners:
        desk |= (yy + xx < 0.18 * (h + w)) | ((h - yy) + (w - xx) < 0.14 * (h + w))
    grey = np.where(desk, 35.0, grey)
    blurred = np.asarray(
        Image.fromarray(grey.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2)), np.float32
    ) + rng.normal(0, 4, (h, w))
    rgb = np.stack([blurred, blurred * 0.97, blurred * 0.9], -1).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=88)
    return buf.getvalue()


def _neighbour_of(label: int) -> np.ndarray:
    return SAMPLE.images[PICKS[(label + 3) % 10][0]]


# name, photo settings (given the neighbour digit), unsure expected
CASES = [
    ("plain photo", lambda n: {}, False),
    ("dark desk on the left", lambda n: dict(border=[("l", 0.15)]), False),
    ("dark desk on two sides", lambda n: dict(border=[("l", 0.12), ("b", 0.15)]), False),
    ("dark desk above, wide", lambda n: dict(border=[("t", 0.25)]), False),
    ("neighbour cut by the right edge", lambda n: dict(neighbour=(n, (80, 400))), False),
    ("whole neighbour beside it", lambda n: dict(neighbour=(n, (30, 300)), size=160, at=(110, 100)), True),
    ("shadow across the sheet", lambda n: dict(shadow=0.6), False),
    ("tilted sheet: desk corners", lambda n: dict(corners=True), False),
    (
        "desk, shadow and a cut neighbour",
        lambda n: dict(neighbour=(n, (60, 410)), shadow=0.5, border=[("l", 0.12)]),
        False,
    ),
]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


@pytest.mark.parametrize("name, settings, unsure", CASES, ids=[c[0] for c in CASES])
def test_the_digit_nearest_the_centre_comes_out_of_a_framed_photo(name, settings, unsure):
    for label in range(10):
        for index in PICKS[label]:
            digit = SAMPLE.images[index]
            reading = read_digit_file(photo(digit, seed=index, **settings(_neighbour_of(label))))
            assert _corr(reading.digit, digit) > 0.4, (name, index, label)  # the same strokes as the digit
            assert reading.unsure == unsure, (name, index, reading.notes)
            assert reading.box is not None and reading.picture.ndim == 2
    if unsure:
        assert any("nearest the centre was used" in n for n in reading.notes), reading.notes


def test_photos_are_classified_as_their_digit(default_bundle):
    """The bundled model reads the digit right in every framing (2 digits of each class per case)."""
    wrong = []
    for name, settings, _ in CASES:
        for label in range(10):
            for index in PICKS[label]:
                out = read_digit_file(photo(SAMPLE.images[index], seed=index, **settings(_neighbour_of(label)))).digit
                probs = default_bundle.model(default_bundle.scaler.transform(out), training=False).numpy()[0]
                if int(probs.argmax()) != label:
                    wrong.append((name, index, label, int(probs.argmax())))
    assert not wrong, wrong


def test_a_desk_border_does_not_flip_the_polarity():
    """The middle of the frame decides what is background: a dark desk along two edges is not."""
    page = np.full((200, 300), 210.0)
    page[:, :60] = 30.0
    page[150:, :] = 30.0
    page[70:120, 140:150] = 40.0  # a stroke
    assert is_dark_on_light(page)
    drawing = np.zeros((280, 280))
    drawing[40:240, 130:150] = 255.0  # a white stroke through the middle of a black canvas
    assert not is_dark_on_light(drawing)


def test_the_marks_of_one_digit_stay_together():
    """A '5' whose top bar does not touch its body, and a dotted stroke: parts of one digit, not clutter."""
    gray = np.zeros((120, 120), np.float32)
    gray[20:26, 40:80] = 255  # the 5's top bar, apart from its body
    gray[30:70, 40:46] = 255
    gray[64:70, 40:78] = 255
    gray[70:96, 72:78] = 255
    gray[92:98, 40:78] = 255
    digit, pick = extract_digit(gray, invert=False)
    assert not pick.unsure and pick.box[0] == 20 and pick.box[2] == 97  # the bar is part of the digit
    dotted = np.zeros((120, 120), np.float32)
    for y in range(20, 100, 8):
        dotted[y : y + 5, 58:63] = 255  # a '1' drawn as dots
    digit, pick = extract_digit(dotted, invert=False)
    assert pick.box[0] == 20 and pick.box[2] >= 95 and not pick.unsure


def test_the_page_says_when_it_is_unsure_and_shows_what_it_took(app_test):
    four = SAMPLE.images[PICKS[4][0]]
    data = photo(four, neighbour=(SAMPLE.images[PICKS[7][0]], (30, 300)), size=160, at=(110, 100))
    at = app_test("pages/activations.py")
    at.segmented_control(key="act_source").set_value("Upload").run()
    at.file_uploader(key="act_upload").set_value(("two digits.jpg", data, "image/jpeg")).run()
    assert not at.exception
    assert any(
        "not sure this is the digit you meant" in w.value and "nearest the centre was used" in w.value
        for w in at.warning
    ), [w.value for w in at.warning]
    assert len(at.get("image")) >= 1  # the photo with the marks taken framed in red
    assert any("Prediction: **4**" in m.value for m in at.markdown), [m.value for m in at.markdown][:5]
