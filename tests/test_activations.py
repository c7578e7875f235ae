"""Activations feature: image decoding and the MNIST recipe (bad inputs table-driven), the compiled
multi-output model, saliency / occlusion / Grad-CAM, receptive fields, kernels, class-mean conv3
patterns, the CLI, and the page (AppTest)."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from core.activations import (
    ActivationModel,
    class_patterns,
    kernel_slices,
    map_stats,
    pattern_similarity,
    project_to_input,
    receptive_field,
    spatial_layer_info,
)
from core.images import (
    ImageInputError,
    canvas_to_gray,
    decode_image,
    decode_image_details,
    file_to_mnist_digit,
    file_to_mnist_digit_details,
    to_mnist_digit,
)
from core.spec import preset
from tests.conftest import session_of


# --------------------------------------------------------------------------- image factories
def sample_digit(index: int = 227) -> tuple[np.ndarray, int]:
    from core.data import load_sample_digits

    return load_sample_digits().by_test_index(index)


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def paper_digit(digit: np.ndarray, size=(200, 160), scale: int = 5, offset=(20, 30)) -> np.ndarray:
    """A dark digit on light paper ``(h, w)`` uint8: the 28×28 digit scaled up and placed off-centre."""
    big = np.asarray(Image.fromarray(digit).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR), np.float32)
    canvas = np.zeros(size, np.float32)
    y, x = offset
    canvas[y : y + big.shape[0], x : x + big.shape[1]] = big[: size[0] - y, : size[1] - x]
    return (235.0 - canvas * 0.8).clip(0, 255).astype(np.uint8)


def png_bytes(index: int = 227) -> bytes:
    """A PNG of a test digit as a person would upload it: dark on light, off-centre."""
    return encode(Image.fromarray(paper_digit(sample_digit(index)[0])))


def photo_bytes(index: int = 227, orientation: int = 6) -> bytes:
    """A 'phone photo': uneven light, noise, a dark table edge, warm colours, JPEG, EXIF-rotated."""
    digit = sample_digit(index)[0]
    rng = np.random.default_rng(0)
    h, w = 480, 640
    big = np.asarray(Image.fromarray(digit).resize((280, 280), Image.Resampling.BILINEAR), np.float32) / 255.0
    ink = np.zeros((h, w), np.float32)
    ink[120:400, 220:500] = big
    light = np.linspace(150, 235, w)[None, :] * np.linspace(0.85, 1.0, h)[:, None]
    gray = light * (1.0 - 0.75 * ink) + rng.normal(0, 5, (h, w))
    gray[:, :25] = 40.0  # the table beside the sheet
    rgb = np.stack([gray * 1.0, gray * 0.95, gray * 0.85], -1).clip(0, 255).astype(np.uint8)
    upright = Image.fromarray(rgb)
    stored = {6: upright.rotate(90, expand=True), 8: upright.rotate(-90, expand=True), 3: upright.rotate(180)}[
        orientation
    ]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=85, exif=exif.tobytes())


def png_with_size(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims ``width``×``height`` (decoding would fail)."""
    small = encode(Image.new("L", (4, 4), 255))
    ihdr_data = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr_data
    ihdr = struct.pack(">I", len(ihdr_data)) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return small[:8] + ihdr + small[8 + 25 :]


def gif_bytes(first: int = 227, second: int = 0) -> bytes:
    a = Image.fromarray(paper_digit(sample_digit(first)[0]))
    b = Image.fromarray(paper_digit(sample_digit(second)[0]))
    return encode(a, "GIF", save_all=True, append_images=[b], duration=200, loop=0)


def transparent_png(ink_white: bool) -> bytes:
    digit = sample_digit(227)[0]
    alpha = np.asarray(Image.fromarray(digit).resize((140, 140)), np.uint8)
    rgba = np.zeros((140, 140, 4), np.uint8)
    rgba[..., :3] = 255 if ink_white else 0
    rgba[..., 3] = alpha
    return encode(Image.fromarray(rgba, "RGBA"))


def sixteen_bit_png() -> bytes:
    gray16 = paper_digit(sample_digit(227)[0]).astype(np.uint16) * 257
    img = Image.fromarray(gray16.astype(np.uint16))
    assert img.mode == "I;16"
    return encode(img)


def cmyk_jpeg() -> bytes:
    return encode(Image.fromarray(paper_digit(sample_digit(227)[0])).convert("RGB").convert("CMYK"), "JPEG", quality=92)


def palette_png() -> bytes:
    return encode(
        Image.fromarray(paper_digit(sample_digit(227)[0]))
        .convert("RGB")
        .convert("P", palette=Image.ADAPTIVE, colors=16)
    )


def _classify(bundle, digit: np.ndarray) -> int:
    return int(np.argmax(bundle.model(bundle.scaler.transform(digit), training=False).numpy()[0]))


# --------------------------------------------------------------------------- bad inputs
BAD_FILES = [
    ("not an image", lambda: b"hello, this is a text file and not a picture at all", "not an image"),
    ("a PDF", lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
    ("empty file", lambda: b"", "empty"),
    ("truncated PNG", lambda: png_bytes()[:300], "truncated or corrupt"),
    ("truncated JPEG", lambda: photo_bytes()[:2000], "truncated or corrupt"),
    ("corrupt PNG header", lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "truncated or corrupt"),
    ("blank white image", lambda: encode(Image.new("L", (60, 60), 255)), "No digit found"),
    ("all-black image", lambda: encode(Image.new("RGB", (60, 60), (0, 0, 0))), "No digit found"),
    ("over the pixel limit", lambda: png_with_size(30_000, 30_000), "limit"),
    ("a decompression bomb", lambda: png_with_size(100_000, 100_000), "too large"),
    ("a TIFF", lambda: encode(Image.new("L", (20, 20)), "TIFF"), "TIFF"),
]


@pytest.mark.parametrize("name, make, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_give_a_clear_message(name, make, message):
    with pytest.raises(ImageInputError, match=message):
        file_to_mnist_digit(make())


def test_pixel_limit_is_refused_before_decoding(monkeypatch):
    """A file over the limit is refused from its header: no pixel data is ever decoded."""
    from PIL import ImageFile

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    data = encode(Image.new("L", (300, 200), 128))
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageInputError, match=r"300×200 = 60,000 pixels; the limit is 50,000"):
        decode_image(data, max_pixels=50_000)


BAD_DRAWINGS = [
    ("blank (never drawn, transparent)", np.zeros((280, 280, 4), np.uint8), "No digit found"),
    ("all black", np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)]), "No digit found"),
    (
        "a faint smudge",
        np.dstack([np.full((280, 280, 3), 12, np.uint8), np.full((280, 280), 255, np.uint8)]),
        "No digit found",
    ),
    ("wrong shape", np.zeros((280, 280), np.uint8), "must be an"),
]


@pytest.mark.parametrize("name, rgba, message", BAD_DRAWINGS, ids=[b[0] for b in BAD_DRAWINGS])
def test_bad_drawings_give_a_clear_message(name, rgba, message):
    with pytest.raises(ImageInputError, match=message):
        to_mnist_digit(canvas_to_gray(rgba), invert=False)


# --------------------------------------------------------------------------- awkward but valid inputs
AWKWARD_FILES = [
    ("16-bit PNG", sixteen_bit_png, "16-bit"),
    ("CMYK JPEG", cmyk_jpeg, "CMYK"),
    ("palette PNG", palette_png, None),
    ("transparent PNG, dark ink", lambda: transparent_png(ink_white=False), "composited on white"),
    ("transparent PNG, white ink", lambda: transparent_png(ink_white=True), "from the transparency"),
    ("EXIF-rotated photo", photo_bytes, "EXIF orientation (6)"),
    ("EXIF-rotated photo, upside down", lambda: photo_bytes(orientation=3), "EXIF orientation (3)"),
    ("animated GIF", gif_bytes, "first frame"),
    ("BMP", lambda: encode(Image.fromarray(paper_digit(sample_digit(227)[0])), "BMP"), None),
    ("WebP", lambda: encode(Image.fromarray(paper_digit(sample_digit(227)[0])), "WEBP", lossless=True), None),
]


@pytest.mark.parametrize("name, make, note", AWKWARD_FILES, ids=[a[0] for a in AWKWARD_FILES])
def test_awkward_files_are_read_and_classified(default_bundle, name, make, note):
    """Each of these holds test digit 227 (a 4) and must come out as a 4 (the animated GIF's
    second frame is a 7: only the first frame may be used)."""
    digit, notes = file_to_mnist_digit_details(make())
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    if note:
        assert any(note in n for n in notes), notes
    assert _classify(default_bundle, digit) == 4, name


def test_photo_is_straightened_and_matches_the_original(default_bundle):
    """After EXIF rotation, light correction and table-edge removal the photo looks like the MNIST digit."""
    digit = file_to_mnist_digit(photo_bytes())
    original = sample_digit(227)[0].astype(np.float32)
    corr = np.corrcoef(digit.ravel().astype(np.float32), original.ravel())[0, 1]
    assert corr > 0.75, corr


def test_inverted_off_centre_non_square_digits_come_out_centred_and_classified(default_bundle):
    """Dark digits on light, non-square images, placed off-centre and squashed to a non-square shape."""
    from core.data import load_sample_digits

    sample = load_sample_digits()
    picks = [int(np.flatnonzero(sample.labels == k)[0]) for k in range(10)]
    correct = 0
    for i in picks:
        digit, label = sample.images[i], int(sample.labels[i])
        stretched = np.asarray(Image.fromarray(digit).resize((100, 170), Image.Resampling.BILINEAR))  # non-square
        page = np.full((260, 420), 230, np.uint8)
        page[20:190, 300:400] = (230 - stretched.astype(np.float32) * 0.85).clip(0, 255).astype(np.uint8)
        out = file_to_mnist_digit(encode(Image.fromarray(page)))
        cy, cx = ndimage.center_of_mass(out.astype(np.float64))
        assert abs(cy - 13.5) <= 1.0 and abs(cx - 13.5) <= 1.0, (label, cy, cx)
        rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
        assert rows[-1] - rows[0] + 1 <= 21 and cols[-1] - cols[0] + 1 <= 21
        assert rows[-1] - rows[0] + 1 >= 19  # the longer side fills 20 px
        assert out[:, :3].max() == 0 and out[:, -3:].max() == 0  # black border, as MNIST
        correct += _classify(default_bundle, out) == label
    assert correct == 10, f"{correct}/10 classified correctly"


def test_canvas_drawing_becomes_a_centred_digit():
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[40:240, 180:200] = 255  # a '1' drawn right of centre
    digit = to_mnist_digit(canvas_to_gray(rgba), invert=False)
    cy, cx = ndimage.center_of_mass(digit.astype(float))
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1 and digit.max() == 255


def test_decode_keeps_signature_for_other_features():
    img = decode_image(png_bytes())
    assert img.mode in ("L", "RGB") and img.size == (160, 200)
    details = decode_image_details(png_bytes())
    assert details.format == "PNG" and details.alpha is None


# --------------------------------------------------------------------------- activations
@pytest.fixture(scope="module")
def am(default_bundle):
    return ActivationModel.from_bundle(default_bundle)


@pytest.fixture(scope="module")
def x227(default_bundle):
    return default_bundle.scaler.transform(sample_digit(227)[0])


EXPECTED_SHAPES = {
    "conv1": (26, 26, 32),
    "pool1": (13, 13, 32),
    "conv2": (11, 11, 64),
    "pool2": (5, 5, 64),
    "conv3": (3, 3, 64),
    "dense1": (70,),
    "out": (10,),
}


def test_activation_shapes_and_values_match_the_naive_way(default_bundle, am, x227):
    import keras

    result = am.activations(x227)
    assert {n: v.shape for n, v in result.layers.items()} == EXPECTED_SHAPES
    assert result.predicted == 4 and abs(result.probabilities.sum() - 1) < 1e-5
    model = default_bundle.model
    for name, values in result.layers.items():  # one sub-model per layer: the slow way
        sub = keras.Model(model.input, model.get_layer(name).output)
        np.testing.assert_allclose(values, sub(x227, training=False).numpy()[0], rtol=1e-4, atol=1e-5)


def test_one_compiled_call_no_retracing_and_model_untouched(default_bundle, am, x227):
    model = default_bundle.model
    before = [w.copy() for w in model.get_weights()]
    n_layers, outputs = len(model.layers), list(model.outputs)
    am.activations(x227)
    traces = am._features_fn.experimental_get_tracing_count()
    for i in (0, 1, 2):
        am.activations(default_bundle.scaler.transform(sample_digit(i)[0]))
        am.saliency(x227, i)
    assert am._features_fn.experimental_get_tracing_count() == traces == 1
    assert am._saliency_fn.experimental_get_tracing_count() == 1
    assert len(model.layers) == n_layers and list(model.outputs) == outputs
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_activations_of_a_tiny_model(tiny_bundle):
    am_tiny = ActivationModel.from_bundle(tiny_bundle)
    result = am_tiny.activations(tiny_bundle.scaler.transform(sample_digit(0)[0]))
    assert result.layers["conv1"].shape == (26, 26, 3) and result.layers["conv3"].shape == (3, 3, 12)
    assert result.spatial_names == ["conv1", "pool1", "conv2", "pool2", "conv3"]


def test_map_stats_mark_dead_maps_and_sort():
    values = np.zeros((4, 4, 3), np.float32)
    values[..., 1] = 2.0
    values[0, 0, 2] = 8.0
    stats = map_stats(values)
    assert stats.dead.tolist() == [True, False, False]
    assert stats.mean.tolist() == [0.0, 2.0, 0.5]
    assert stats.order("mean desc").tolist() == [1, 2, 0] and stats.order("max desc").tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="sort order"):
        stats.order("random")


# --------------------------------------------------------------------------- receptive fields
def test_receptive_fields_match_the_blog():
    """Article II: a node covers 3, 4×4, 8×8, 10×10 and 18×18 input pixels."""
    spec = preset("article II")
    assert {n: i.receptive_field for n, i in spatial_layer_info(spec).items()} == {
        "conv1": 3,
        "pool1": 4,
        "conv2": 8,
        "pool2": 10,
        "conv3": 18,
    }
    assert receptive_field(spec, "conv3", 0, 0).box == (0, 0, 17, 17)
    assert receptive_field(spec, "conv3", 2, 1).box == (8, 4, 25, 21)
    assert receptive_field(spec, "pool1", 12, 12).box == (24, 24, 27, 27)
    rf = receptive_field(spec, "conv2", 10, 0)
    assert rf.box == (20, 0, 27, 7) and rf.size == 8 and rf.jump == 2 and not rf.clipped


def test_receptive_field_clipped_at_the_border_with_same_padding():
    rf = receptive_field(preset("same padding"), "conv1", 0, 0)
    assert rf.box == (0, 0, 1, 1) and rf.size == 3 and rf.clipped and rf.visible == (2, 2)


@pytest.mark.parametrize(
    "layer, row, col, message",
    [
        ("dense1", 0, 0, "no spatial receptive field"),
        ("conv3", 3, 0, "outside"),
        ("conv1", -1, 0, "outside"),
        ("conv9", 0, 0, "no spatial receptive field"),
    ],
)
def test_receptive_field_bad_requests(layer, row, col, message):
    with pytest.raises(ValueError, match=message):
        receptive_field(preset("article II"), layer, row, col)


def test_project_to_input_places_values_at_field_centres():
    info = spatial_layer_info(preset("article II"))["conv3"]
    cam = np.zeros((3, 3))
    cam[1, 1] = 1.0
    up = project_to_input(cam, info)
    assert up.shape == (28, 28) and np.unravel_index(up.argmax(), up.shape) in {(12, 12), (12, 13), (13, 12), (13, 13)}
    assert np.allclose(project_to_input(np.full((3, 3), 2.0), info), 2.0)


# --------------------------------------------------------------------------- which pixels matter
def test_saliency_is_the_gradient_of_the_class_logit(am, x227):
    sal = am.saliency(x227, 4)
    assert sal.shape == (28, 28) and np.all(sal >= 0) and sal.max() > 0
    eps = 1e-2
    for r, c in [tuple(np.unravel_index(sal.argmax(), sal.shape)), (14, 14)]:
        plus, minus = x227.copy(), x227.copy()
        plus[0, r, c, 0] += eps
        minus[0, r, c, 0] -= eps
        numeric = (am._logits_fn(plus).numpy()[0, 4] - am._logits_fn(minus).numpy()[0, 4]) / (2 * eps)
        assert abs(abs(numeric) - sal[r, c]) < 0.05 * max(1.0, sal.max()), (r, c, numeric, sal[r, c])
    assert not np.allclose(sal, am.saliency(x227, 9))
    assert am.saliency(x227, 4, smooth_samples=8).shape == (28, 28)


def test_occlusion_shapes_and_hand_checked_values(am):
    raw, _ = sample_digit(227)
    occ = am.occlusion(raw, 4, patch=4, stride=1, fill="black")
    assert occ.drops.shape == (25, 25) and occ.pixel_map.shape == (28, 28)
    assert raw[:4, :4].max() == 0 and occ.drops[0, 0] == pytest.approx(0.0, abs=1e-6)  # black on black: no change
    base = am.predict(am.scaler.transform(raw))[0, 4]
    assert occ.base_value == pytest.approx(float(base), abs=1e-6)
    coarse = am.occlusion(raw, 4, patch=6, stride=4, fill="mean", score="logit")
    assert coarse.drops.shape == (7, 7)  # starts 0, 4, ..., 20 and the border-flush 22
    assert coarse.pixel_map.max() > 0.5  # covering the strokes lowers the class-4 logit


def test_grad_cam_shapes(am, x227):
    cam = am.grad_cam(x227, 4)
    assert cam.layer == "conv3" and cam.cam.shape == (3, 3) and cam.on_input.shape == (28, 28)
    assert cam.on_input.min() >= 0 and cam.on_input.max() == pytest.approx(1.0) and cam.weights.shape == (64,)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda am, x, raw: am.activations(np.zeros((28, 28, 3))), "model input"),
        (lambda am, x, raw: am.activations(np.zeros((2, 28, 28, 1))), "one digit"),
        (lambda am, x, raw: am.saliency(x, 10), "class_index=10"),
        (lambda am, x, raw: am.saliency(x, 1, score="softmax"), "score 'softmax'"),
        (lambda am, x, raw: am.occlusion(raw, 1, patch=0), "patch=0"),
        (lambda am, x, raw: am.occlusion(raw, 1, patch=4, stride=5), "stride=5"),
        (lambda am, x, raw: am.occlusion(raw, 1, fill="blue"), "fill 'blue'"),
        (lambda am, x, raw: am.occlusion(raw, 1, fill=300), "fill=300"),
        (lambda am, x, raw: am.occlusion(raw, 1, score="odds"), "score 'odds'"),
        (lambda am, x, raw: am.occlusion(raw[:20], 1), "raw \\(28, 28\\)"),
        (lambda am, x, raw: am.layer_batch(x, ("conv7",)), "unknown layer"),
    ],
)
def test_bad_arguments_name_the_value(am, x227, call, message):
    with pytest.raises(ValueError, match=message):
        call(am, x227, sample_digit(227)[0])


# --------------------------------------------------------------------------- kernels and patterns
def test_kernel_slices(default_bundle):
    model = default_bundle.model
    k1 = kernel_slices(model, "conv1")
    assert k1.shape == (32, 3, 3)
    np.testing.assert_array_equal(k1[5], model.get_layer("conv1").kernel.numpy()[:, :, 0, 5])
    k2 = kernel_slices(model, "conv2", 7)
    assert k2.shape == (32, 3, 3)
    np.testing.assert_array_equal(k2[3], model.get_layer("conv2").kernel.numpy()[:, :, 3, 7])
    for layer, m, message in [
        ("pool1", None, "no kernels"),
        ("conv2", None, "pass map_index"),
        ("conv3", 64, "outside 0..63"),
        ("nope", 0, "unknown layer"),
    ]:
        with pytest.raises(ValueError, match=message):
            kernel_slices(model, layer, m)


def test_class_patterns_are_class_means_and_classify(am):
    from core.data import load_sample_digits

    sample = load_sample_digits()
    images, labels = sample.images[:600], sample.labels[:600]
    patterns = class_patterns(am, images, labels, source="test")
    assert patterns.means.shape == (10, 3, 3, 64) and patterns.counts.sum() == 600
    acts = am.layer_batch(am.scaler.transform(images[labels == 3]), ("conv3",))["conv3"]
    np.testing.assert_allclose(patterns.means[3], acts.mean(axis=0), rtol=1e-4, atol=1e-5)
    assert patterns.accuracy > 0.85 and patterns.confusion.sum() == 600
    match = pattern_similarity(patterns, patterns.means[6])
    assert match.nearest == 6 and match.cosine[6] == pytest.approx(1.0, abs=1e-5) and match.distance[6] < 1e-4
    with pytest.raises(ValueError, match="does not match"):
        pattern_similarity(patterns, np.zeros((5, 5, 64)))
    with pytest.raises(ValueError, match="labels must lie"):
        class_patterns(am, images[:5], np.array([0, 1, 2, 3, 12]))


# --------------------------------------------------------------------------- CLI
def test_cli_activations_writes_npz(tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "a.npz"
    assert main(["activations", "--index", "227", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["predicted"] == 4 and summary["label"] == 4 and "seconds" in summary
    assert summary["receptive_fields"]["conv3"] == 18
    with np.load(out) as npz:
        assert npz["layer_conv1"].shape == (26, 26, 32) and npz["saliency"].shape == (28, 28)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--out", "x.txt"], "must end in .npz"),
        (["--image", "/nonexistent.png"], "is not a file"),
        (["--index", "-3"], "must be ≥ 0"),
        (["--class", "11"], "class_index=11"),
    ],
)
def test_cli_bad_arguments(tmp_path, capsys, args, message):
    from core.cli import main

    assert main(["activations", *args]) == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- the page (AppTest)
def test_page_pick_and_interact(app_test):
    at = app_test("pages/activations.py")
    assert not at.exception
    assert any("Prediction: **4**" in m.value for m in at.markdown)
    at.radio(key="act_layer").set_value("conv3").run()
    at.selectbox(key="act_map").set_value(5).run()
    at.checkbox(key="act_hide_dead").check().run()
    at.selectbox(key="act_sort").set_value("mean activation ↓").run()
    at.selectbox(key="act_filter_layer").set_value("conv2").run()
    at.selectbox(key="act_class").set_value(9).run()
    at.selectbox(key="act_occlusion_score").set_value("logit").run()
    at.selectbox(key="act_rf_layer").set_value("pool1").run()
    at.button(key="act_rf_strongest").click().run()
    assert not at.exception and not at.error
    assert any("a **4×4** field" in m.value for m in at.markdown)
    at.selectbox(key="act_random_class").set_value(3)
    at.button(key="act_random").click().run()
    assert any("true label 3" in m.value for m in at.markdown)
    assert any("Nearest class pattern" in m.value for m in at.markdown)


def test_page_upload_good_and_bad_files(app_test):
    at = app_test("pages/activations.py")
    at.segmented_control(key="act_source").set_value("Upload").run()
    for name, data in [
        ("bad.png", b"not an image"),
        ("empty.png", b""),
        ("half.png", png_bytes()[:300]),
        ("huge.png", png_with_size(30_000, 30_000)),
    ]:
        at.file_uploader(key="act_upload").set_value((name, data, "image/png")).run()
        assert not at.exception, name
        assert len(at.error) == 1 and name in at.error[0].value, name
    at.file_uploader(key="act_upload").set_value(("photo.jpg", photo_bytes(), "image/jpeg")).run()
    assert not at.exception and not at.error
    assert any("Prediction: **4**" in m.value for m in at.markdown)
    assert any("EXIF" in c.value for c in at.caption)
    at.segmented_control(key="act_source").set_value("Draw").run()
    assert not at.exception


def test_page_lime_panel(app_test):
    at = app_test("pages/activations.py")
    assert not at.exception and any("LIME: 1000 copies" in c.value for c in at.caption)
    at.selectbox(key="act_lime_segmentation").set_value("grid").run()
    at.slider(key="act_lime_samples").set_value(500).run()
    assert not at.exception and any("LIME: 500 copies" in c.value and "49 superpixels" in c.value for c in at.caption)
    at.multiselect(key="act_methods").unselect("lime").run()
    assert not at.exception and not any("LIME:" in c.value for c in at.caption)


def test_page_shows_every_registered_attribution_method_with_its_settings(app_test):
    from core.attribution.registry import METHODS

    at = app_test("pages/activations.py")
    assert not at.exception
    for method in METHODS.values():
        assert any(c.value.startswith(method.label.split()[0]) for c in at.caption), method.name
    gap = next(c.value for c in at.caption if c.value.startswith("Integrated Gradients"))
    assert "(gap 0." in gap and "64 steps" in gap
    at.slider(key="act_integrated-gradients_steps").set_value(128).run()
    at.selectbox(key="act_integrated-gradients_baseline").set_value("mean").run()
    assert not at.exception
    gap = next(c.value for c in at.caption if c.value.startswith("Integrated Gradients"))
    assert "128 steps" in gap and "mean baseline" in gap
    at.multiselect(key="act_methods").set_value([]).run()
    assert any("at least one method" in i.value for i in at.info)


def test_changing_the_digit_with_the_predicted_class_chosen_never_crashes(app_test):
    """Issue 25, defect 1: the Class selectbox's label follows the prediction, its value must not."""
    at = app_test("pages/activations.py")
    at.selectbox(key="act_class").set_value("predicted").run()
    for index in (0, 1, 2, 3, 227, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18):
        at.number_input(key="act_index").set_value(index).run()
        assert not at.exception, (index, [e.value for e in at.exception])
        assert at.selectbox(key="act_class").value == "predicted"


def test_an_out_of_range_index_is_said_in_words_and_nothing_is_shown_for_it(app_test):
    """Issue 25, defect 6: the number typed stays visible, a sentence says it is out of range, and no result is
    shown for a digit the learner did not choose."""
    at = app_test("pages/activations.py")
    at.number_input(key="act_index").set_value(99999).run()
    assert not at.exception
    assert at.number_input(key="act_index").value == 99999
    assert any("MNIST test digit (index): 99,999 is outside 0..9,999" in e.value for e in at.error)
    assert not any("Prediction:" in m.value for m in at.markdown)
    at.number_input(key="act_index").set_value(227).run()
    assert not at.error and any("Prediction: **4**" in m.value for m in at.markdown)


def test_the_drawing_is_given_back_to_the_pad_after_a_page_switch(app_test):
    """Issue 25, defect 2 (and issue 28's pad): back from another page, the pad is mounted afresh with the strokes
    it had."""
    strokes = [{"w": 22, "p": [[70, 60], [210, 60]]}]
    at = app_test("pages/activations.py")
    at.segmented_control(key="act_source").set_value("Draw").run()
    memory = session_of(at).activations
    memory.pen_strokes = strokes
    mounted = memory.canvas_mounts
    at.switch_page("pages/oip.py").run()
    at.switch_page("pages/activations.py").run()
    assert not at.exception
    pad = json.loads(at.get("component_instance")[0].proto.json_args)
    assert pad["strokes"] == strokes and pad["model_url"].startswith("models/")
    assert memory.canvas_mounts == mounted + 1
    at.run()  # a run on the same page does not remount it again
    assert memory.canvas_mounts == mounted + 1
