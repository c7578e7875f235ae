"""Deep Dream (core/dream.py, pages/deep_dream.py): recipe invariants, tiles, octaves, CLI, page, bad inputs."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from core.ascent import engine as ascent
from core.dream import deep_dream as D
from core.images import ImageInputError
from tests.conftest import finish_job, session_of

FAST = dict(epochs=2, loops=1, octaves=2)


def _photo(h=60, w=90, seed=0) -> np.ndarray:
    """A smooth colour test photo (H, W, 3) uint8: a bright disc on a gradient plus some noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2) * 150.0
    grey = 40 + 60 * xx / w + disc + rng.normal(0, 8, (h, w))
    rgb = np.stack([grey, grey * 0.8, grey * 0.5], axis=2)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _png(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def tiny(tiny_bundle):
    return tiny_bundle.model


# --- the recipe ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", D.MODES)
@pytest.mark.parametrize("invert", [False, True])
def test_detail_readding_restores_the_original_when_the_dream_changes_nothing(tiny, mode, invert):
    photo = _photo()
    for changes_nothing in (dict(epochs=0), dict(epochs=3, step_size=0.0)):
        settings = D.DreamConfig(
            mode=mode, layer="conv2", map=1, loops=3, octaves=3, widen=0.0, invert=invert, **changes_nothing
        )
        result = D.dream(photo, tiny, settings)
        grey, _, _ = D.prepare_photo(photo)
        np.testing.assert_allclose(result.final_grey, grey, atol=2e-3)
        for stage in result.stages:  # every loop/octave shows the untouched photo once details are back
            assert np.abs(stage.final.astype(int) - D.to_uint8(grey)).max() <= 1
        assert len(result.stages) == (3 if mode == "map" else len(D.octave_sizes(*grey.shape, 3)))


def test_the_dream_changes_the_photo_and_raises_the_cost(tiny):
    result = D.dream(_photo(), tiny, D.DreamConfig(mode="map", layer="conv2", map=1, loops=2, epochs=10, step_size=0.1))
    assert np.abs(result.final_grey - D.prepare_photo(_photo())[0]).mean() > 1.0
    assert result.stages[0].losses[-1] > result.stages[0].losses[0]
    assert result.stages[0].pattern.shape == (28, 28)
    assert result.stages[0].upscaled.shape == result.stages[0].final.shape == result.stages[0].widened.shape == (60, 90)


def _merged(tiles: np.ndarray, h: int, w: int, shift) -> np.ndarray:
    """The tiles ``(N, 28, 28, 1)`` put back into the ``(h, w)`` image: padding dropped, roll undone."""
    nh, nw = -(-h // 28), -(-w // 28)
    padded = tiles[..., 0].reshape(nh, nw, 28, 28).transpose(0, 2, 1, 3).reshape(nh * 28, nw * 28)
    return np.roll(padded[:h, :w], (-shift[0], -shift[1]), axis=(0, 1))


def test_split_tiles_cover_the_image_once_each():
    for h, w in ((28, 28), (60, 90), (29, 57), (427, 640)):
        ids = np.arange(h * w, dtype=np.float32).reshape(h, w)
        for shift in ((0, 0), (5, 27), (27, 1)):
            tiles = ascent.split_tiles(ids, np.array(shift, np.int32)).numpy()
            assert tiles.shape == (ascent.tile_count(h, w), 28, 28, 1)
            assert ascent.tile_count(h, w) == -(-h // 28) * -(-w // 28)
            assert set(np.unique(tiles).astype(int)) == set(range(h * w))  # every pixel is in some tile
            np.testing.assert_array_equal(_merged(tiles, h, w, shift), ids)


def test_tiles_ascent_reaches_every_part_of_the_image(tiny):
    engine = ascent.AscentEngine(tiny, "conv1")
    rng = np.random.default_rng(1)
    image = rng.normal(0, 1, (70, 100)).astype(np.float32)
    out, losses = engine.ascend_canvas(
        image, engine.term_weights([("conv1", None, 1.0)]), 4, 0.1, view="tiles", clip=(-5.0, 5.0), seed=(3, 0)
    )
    changed = np.abs(out - image) > 1e-6
    assert changed.mean() > 0.95
    for block in (changed[:35, :50], changed[:35, 50:], changed[35:, :50], changed[35:, 50:]):
        assert block.mean() > 0.9
    assert losses.shape == (4,)


def test_tiles_are_seeded(tiny):
    photo = _photo()
    make = lambda seed: (
        D.dream(
            photo,
            tiny,
            D.DreamConfig(
                mode="tiles",
                layer="conv2",
                map=2,
                epochs=4,
                octaves=1,  # noqa: E731
                seed=seed,
            ),
        ).image
    )
    a, b, c = make(5), make(5), make(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "h, w, octaves, scale, expected",
    [
        (427, 640, 4, 0.0, None),  # auto: short side 28 → full size
        (100, 300, 3, 1.4, [(51, 153), (71, 214), (100, 300)]),
        (28, 28, 4, 0.0, [(28, 28)]),  # nothing smaller than 28: one octave
        (56, 84, 4, 3.0, [(28, 42), (56, 84)]),  # a too-large scale is clamped at 28 and repeats dropped
        (427, 640, 1, 0.0, [(427, 640)]),
    ],
)
def test_octave_sizes(h, w, octaves, scale, expected):
    sizes = D.octave_sizes(h, w, octaves, scale)
    if expected is not None:
        assert sizes == expected
    assert sizes[-1] == (h, w)
    assert all(min(s) >= 28 for s in sizes)
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(sizes, sizes[1:]))
    if expected is None:
        assert len(sizes) == octaves and min(sizes[0]) == 28
        ratios = [b[0] / a[0] for a, b in zip(sizes, sizes[1:])]
        assert max(ratios) - min(ratios) < 0.05  # geometric


def test_settings_are_stored_with_the_result_and_in_the_png(tiny):
    settings = D.DreamConfig(mode="tiles", terms=D.parse_terms("conv2=0.5, conv3:3=2"), seed=9, **FAST)
    result = D.dream(_photo(), tiny, settings, model_name="tiny")
    assert result.settings == {**settings.to_dict(), "terms": "conv2=0.5, conv3:3=2"}
    stored = json.loads(Image.open(io.BytesIO(result.png_bytes())).text["dream_settings"])
    assert stored["seed"] == 9 and stored["mode"] == "tiles" and stored["model"] == "tiny"
    again = D.DreamConfig.from_dict({k: stored[k] for k in D.DreamConfig.__dataclass_fields__})
    assert again == settings
    np.testing.assert_array_equal(D.dream(_photo(), tiny, again).image, result.image)


def test_recolour_keeps_the_photo_colours_and_the_dream_luminance(tiny):
    result = D.dream(_photo(), tiny, D.DreamConfig(mode="map", layer="conv2", map=0, recolour=True, **FAST))
    assert result.image.shape == (60, 90, 3)
    luma = np.asarray(Image.fromarray(result.image).convert("L"), dtype=float)
    grey = D.widen(result.final_grey, 1.0).astype(float)
    assert np.abs(luma - grey).mean() < 6


def test_progress_and_stop(tiny):
    from core.progress import ProgressCallback

    class StopAfterOne(ProgressCallback):
        def __init__(self):
            self.steps, self.ended = [], False

        def on_step(self, done, info=None):
            self.steps.append((done, dict(info or {})))

        def should_stop(self):
            return len(self.steps) >= 1

        def on_end(self):
            self.ended = True

    progress = StopAfterOne()
    result = D.dream(
        _photo(), tiny, D.DreamConfig(mode="map", layer="conv2", map=0, loops=4, epochs=2), progress=progress
    )
    assert result.status == "stopped" and len(result.stages) == 1 and progress.ended
    assert progress.steps[0][0] == 1 and "loss" in progress.steps[0][1]


def test_the_shared_model_is_not_changed(tiny):
    before = [w.copy() for w in tiny.get_weights()]
    nodes = [len(layer._inbound_nodes) for layer in tiny.layers]
    D.dream(_photo(), tiny, D.DreamConfig(mode="layers", terms=D.parse_terms("conv1,conv3"), **FAST))
    assert [len(layer._inbound_nodes) for layer in tiny.layers] == nodes
    for a, b in zip(before, tiny.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_default_target_is_conv3_map_56_or_clamped(tiny, default_bundle):
    assert D.default_target(default_bundle.model) == ("conv3", 56, None)
    layer, index, message = D.default_target(tiny)  # the tiny model's conv3 has 12 maps
    assert (layer, index) == ("conv3", 11) and "only 12 maps" in message


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(mode="dreamy"), "mode 'dreamy' is not known"),
        (dict(loops=0), "loops=0 must be"),
        (dict(epochs=-1), "epochs=-1 must be"),
        (dict(octaves=11), "octaves=11 must be"),
        (dict(step_size=float("nan")), "step_size=nan"),
        (dict(octave_scale=1.01), "octave_scale=1.01"),
        (dict(max_side=10), "max_side=10"),
        (dict(widen=60.0), "widen=60.0"),
        (dict(map=999), "map 999 does not exist in conv3, which has maps 0..11"),
        (dict(layer="conv9"), "layer 'conv9' is not in this model"),
        (dict(mode="layers", terms=(D.Term("dense1"),)), "Use the tiles mode for dense1"),
        (dict(mode="tiles", terms=(D.Term("conv2", None, 0.0),)), "all layer weights are 0"),
    ],
)
def test_bad_settings_are_refused(tiny, kwargs, fragment):
    with pytest.raises(ValueError, match=None) as err:
        D.dream(_photo(), tiny, D.DreamConfig(**kwargs))
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("conv2=0.5, conv3:56=2", (D.Term("conv2", None, 0.5), D.Term("conv3", 56, 2.0))),
        ("conv3", (D.Term("conv3"),)),
        ("", ()),
        ("conv3:x", ValueError),
        ("=2", ValueError),
    ],
)
def test_parse_terms(text, expected):
    if expected is ValueError:
        with pytest.raises(ValueError, match="not understood"):
            D.parse_terms(text)
    else:
        assert D.parse_terms(text) == expected


# --- bad (and odd) uploads ------------------------------------------------------------------
def _exif_rotated() -> bytes:
    img = Image.fromarray(_photo(40, 80))  # 80 wide, 40 high; orientation 6 = rotate 90° on display
    exif = Image.Exif()
    exif[0x0112] = 6
    return _png(img, "JPEG", exif=exif.tobytes())


def _sixteen_bit() -> bytes:
    arr = (np.linspace(0, 65535, 50 * 70).reshape(50, 70)).astype(np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I")
    return _png(img)


UPLOADS = {
    "non-image": (lambda: b"this is a text file, not a photo", "not an image"),
    "corrupt": (lambda: _png(Image.fromarray(_photo()), "JPEG")[:300], "truncated or corrupt"),
    "empty": (lambda: b"", "empty"),
    "over the pixel limit": (lambda: _png(Image.fromarray(_photo(200, 300))), "the limit is 10,000"),
    "extreme aspect": (lambda: _png(Image.new("L", (900, 30))), "too extreme"),
    "grayscale": (lambda: _png(Image.fromarray(_photo()[..., 0])), (60, 90)),
    "RGBA": (
        lambda: _png(Image.fromarray(np.dstack([_photo(), np.full((60, 90), 128, np.uint8)]), "RGBA")),
        (60, 90, 3),
    ),
    "CMYK": (lambda: _png(Image.fromarray(_photo()).convert("CMYK"), "JPEG"), (60, 90, 3)),
    "16-bit": (_sixteen_bit, (50, 70)),
    "EXIF-rotated": (_exif_rotated, (80, 40, 3)),
    "tiny (10×12)": (lambda: _png(Image.fromarray(_photo(10, 12))), (28, 34, 3)),
    "large (shrunk)": (lambda: _png(Image.fromarray(_photo(300, 1000))), (192, 640, 3)),
}


@pytest.mark.parametrize("name", list(UPLOADS))
def test_uploads(tiny, name):
    make, expected = UPLOADS[name]
    max_pixels = 10_000 if name == "over the pixel limit" else None
    if isinstance(expected, str):
        with pytest.raises(ValueError) as err:
            D.photo_from_bytes(make(), max_pixels=max_pixels)
        assert expected in str(err.value)
        if name != "extreme aspect":
            assert isinstance(err.value, ImageInputError)
        return
    photo, notes = D.photo_from_bytes(make(), max_pixels=max_pixels)
    assert photo.shape == expected and photo.dtype == np.uint8
    if name.startswith(("tiny", "large")):
        assert any("enlarged" in note or "dreamt at" in note for note in notes)
    result = D.dream(photo, tiny, D.DreamConfig(mode="tiles", layer="conv2", map=0, **FAST))
    assert result.image.shape[:2] == expected[:2] and result.status == "finished"


def test_exif_rotation_is_applied():
    photo, _ = D.photo_from_bytes(_exif_rotated())
    upright = _photo(40, 80)
    # orientation 6: the stored image is shown rotated 90° clockwise
    expected = np.asarray(Image.fromarray(upright).transpose(Image.Transpose.ROTATE_270))
    assert np.abs(photo.astype(int) - expected.astype(int)).mean() < 12  # JPEG noise only


# --- CLI -------------------------------------------------------------------------------------
def test_cli_dream_writes_png_and_prints_json(tiny_bundle, tmp_path, capsys):
    from core import cli

    photo = tmp_path / "photo.png"
    photo.write_bytes(_png(Image.fromarray(_photo())))
    out = tmp_path / "out" / "dream.png"
    rc = cli.main(
        [
            "dream",
            "--model",
            str(tiny_bundle.path),
            "--image",
            str(photo),
            "--mode",
            "map",
            "--layer",
            "conv3",
            "--map",
            "5",
            "--loops",
            "2",
            "--epochs",
            "3",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["mode"] == "map" and summary["map"] == 5 and summary["loops"] == 2 and summary["epochs"] == 3
    assert summary["seconds"] > 0 and len(summary["stages"]) == 2 and summary["out"] == str(out)
    assert "2/2" in captured.err  # progress on stderr
    img = Image.open(out)
    assert img.size == (90, 60) and json.loads(img.text["dream_settings"])["map"] == 5


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--map", "99"], "map 99 does not exist"),
        (["--mode", "layers", "--layers", "dense1"], "Use the tiles mode"),
        (["--image", "/nonexistent.jpg"], "is not a file"),
        (["--epochs", "-3"], "epochs=-3"),
    ],
)
def test_cli_bad_arguments(tiny_bundle, tmp_path, capsys, args, fragment):
    from core import cli

    rc = cli.main(["dream", "--model", str(tiny_bundle.path), "--out", str(tmp_path / "x.png"), *args])
    assert rc == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


# --- the page ---------------------------------------------------------------------------------
def test_page_dreams_on_the_default_photo(app_test):
    at = app_test("pages/deep_dream.py")
    assert not at.exception
    assert at.number_input(key="dream_map").value == 56
    assert at.selectbox(key="dream_layer").value == "conv3"
    at.number_input(key="dream_epochs").set_value(5)
    at.button(key="dream_run").click().run()
    assert at.button(key="dream_run").label == "Dreaming…"
    finish_job(at, "dream_job")
    assert not at.exception and not at.error
    assert at.button(key="dream_run").label == "Dream" and not at.button(key="dream_run").disabled
    result = session_of(at).dream.result.value
    assert result.settings["map"] == 56 and result.settings["epochs"] == 5 and len(result.stages) == 4
    assert result.image.shape == (427, 640)
    assert len(at.get("image")) >= 1 + 2 + 4 * 5  # photo, original + dream, 4 rows of 5
    at.radio(key="dream_mode").set_value("tiles").run()
    at.number_input(key="dream_octaves").set_value(2).run()
    at.number_input(key="dream_epochs").set_value(2)
    at.checkbox(key="dream_recolour").check()
    at.button(key="dream_run").click().run()
    finish_job(at, "dream_job")
    assert not at.exception and not at.error
    result = session_of(at).dream.result.value
    assert result.settings["mode"] == "tiles" and result.image.shape == (427, 640, 3) and len(result.stages) == 2
    # the gallery: three conv3 maps dream in one batch, each shown with its OIP
    before = len(at.get("image"))
    at.text_input(key="dream_gallery_maps").set_value("55-57").run()
    at.button(key="dream_gallery_run").click().run()
    finish_job(at, "dream_gallery_job")
    assert not at.exception and not at.error
    gallery = session_of(at).dream.gallery.value
    assert gallery.maps.tolist() == [55, 56, 57] and gallery.images.shape == (3, 427, 640)
    assert len(at.get("image")) == before + 2 * 3  # each dream above its OIP
    at.text_input(key="dream_gallery_maps").set_value("0,99").run()
    assert any("do not exist" in e.value for e in at.error) and at.button(key="dream_gallery_run").disabled


def test_page_with_a_small_model_clamps_the_map_and_reports_bad_terms(app_test, runs_dir, tiny_bundle):
    target = runs_dir / "tiny"
    shutil.copytree(tiny_bundle.path, target)
    at = app_test("pages/deep_dream.py")
    at.session_state["active_model"] = str(target)
    at.run()
    assert not at.exception
    assert any("only 12 maps" in info.value for info in at.info)
    assert at.number_input(key="dream_map").value == 11
    at.radio(key="dream_mode").set_value("layers").run()
    at.text_input(key="dream_layers_maps").input("conv3:40").run()
    assert not at.exception
    assert any("map 40 does not exist in conv3" in e.value for e in at.error)
    assert at.button(key="dream_run").disabled  # nothing to click that could only fail


def test_a_dream_for_another_model_is_marked_as_such(app_test, runs_dir, tiny_bundle):
    """Issue 25, defect 5: the old dream under a new active model says which model it was computed for."""
    target = runs_dir / "tiny"
    shutil.copytree(tiny_bundle.path, target)
    at = app_test("pages/deep_dream.py")
    at.number_input(key="dream_epochs").set_value(2)
    at.number_input(key="dream_loops").set_value(1)
    at.button(key="dream_run").click().run()
    finish_job(at, "dream_job")
    assert not at.exception and not at.warning
    assert any("the bundled article II model ·" in c.value for c in at.caption), [c.value for c in at.caption]
    at.session_state["active_model"] = str(target)
    at.run()
    assert not at.exception
    assert any(
        "computed for the bundled article II model, not for the active model (tiny)" in w.value for w in at.warning
    ), [w.value for w in at.warning]


def test_the_uploaded_photo_survives_a_page_switch_until_removed(app_test):
    """Issue 25, defect 5: the photo comes back after a visit to another page; removing it brings the flower."""
    from tests.test_activations import photo_bytes

    at = app_test("pages/deep_dream.py")
    at.file_uploader(key="dream_upload").set_value(("my_desk.jpg", photo_bytes(), "image/jpeg")).run()
    assert not at.exception and not at.error
    at.switch_page("pages/activations.py").run()
    at.switch_page("pages/deep_dream.py").run()
    assert not at.exception
    assert any("**my_desk.jpg**, uploaded before" in c.value for c in at.caption), [c.value for c in at.caption]
    assert session_of(at).dream.photo[0] == "my_desk.jpg"
    at.button(key="dream_upload_forget").click().run()
    assert not any("my_desk.jpg" in c.value for c in at.caption)


# --------------------------------------------------------------------------- one engine, and the gallery
def test_the_single_map_mode_runs_on_the_oip_engine_without_retracing(tiny):
    from core.ascent.engine import AscentEngine

    engine = AscentEngine(tiny, "conv2")
    settings = D.DreamConfig(mode="map", layer="conv2", map=1, loops=3, epochs=3)
    result = D.dream(_photo(), tiny, settings, engine=engine)
    assert [s.label for s in result.stages] == ["loop 1", "loop 2", "loop 3"]
    assert engine._ascend_fn.experimental_get_tracing_count() == 1
    assert result.stages[-1].losses.shape == (3,)
    with pytest.raises(ValueError, match="engine is for layer 'conv2', but the settings need 'conv1'"):
        D.dream(_photo(), tiny, settings.__class__(mode="map", layer="conv1", map=0), engine=engine)


def test_a_gallery_dreams_each_map_as_its_own_single_map_dream_and_shows_its_oip(tiny):
    from core.ascent.engine import AscentEngine
    from core.dream.gallery import GalleryConfig, dream_gallery

    engine = AscentEngine(tiny, "conv2")
    photo = _photo()
    gallery = dream_gallery(photo, engine, GalleryConfig(layer="conv2", maps=(0, 2, 3), loops=2, epochs=4))
    assert gallery.images.shape == (3, 60, 90) and gallery.oips.shape == (3, 28, 28) and not gallery.stopped
    for i, m in enumerate((0, 2, 3)):
        alone = D.dream(
            photo, tiny, D.DreamConfig(mode="map", layer="conv2", map=m, loops=2, epochs=4), engine=engine
        ).image
        assert np.abs(gallery.images[i].astype(int) - alone.astype(int)).max() <= 1  # the batch changes nothing
    assert engine._ascend_fn.experimental_get_tracing_count() == 1


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(maps=()), "0 maps given"),
        (dict(maps=(1, 1)), "contain duplicates"),
        (dict(maps=(0, 99)), "maps [99] do not"),
        (dict(loops=0), "loops=0"),
        (dict(step_size=0.0), "step_size=0.0"),
        (dict(layer="conv1"), "engine is for layer"),
    ],
)
def test_bad_gallery_settings_name_the_value(tiny, settings, message):
    from core.ascent.engine import AscentEngine
    from core.dream.gallery import GalleryConfig, dream_gallery

    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        dream_gallery(_photo(), AscentEngine(tiny, "conv2"), GalleryConfig(**{"layer": "conv2", **settings}))


# --------------------------------------------------------------------------- the canvas on the one engine
@pytest.mark.parametrize("view", ascent.CANVAS_VIEWS)
@pytest.mark.parametrize(
    "terms",
    [(("conv2", 1, 1.0),), (("conv1", None, 0.5), ("conv2", 3, 2.0)), (("conv2", None, 1.0), ("conv1", 2, -1.0))],
)
def test_the_canvas_dreams_as_the_previous_loops_did(tiny, view, terms):
    """Both octave modes moved onto the engine's loop: the same image within float rounding (the previous
    loops stacked the terms, the engine sums weighted channel means), and no retracing when terms change."""
    from tests.reference import PreviousDreamer

    rng = np.random.default_rng(4)
    image = rng.normal(0, 1, (45, 70)).astype(np.float32)
    engine = ascent.AscentEngine(tiny, "conv2")
    previous = PreviousDreamer(tiny, [(layer, m) for layer, m, _ in terms])
    weights = [w for _, _, w in terms]
    if view == "tiles":
        want, want_losses = previous.ascent_tiles(image, 6, 0.1, weights, -3.0, 3.0, (7, 1))
    else:
        want, want_losses = previous.ascent_full(image, 6, 0.1, weights, -3.0, 3.0)
    got, losses = engine.ascend_canvas(
        image, engine.term_weights(terms), 6, 0.1, view=view, clip=(-3.0, 3.0), seed=(7, 1)
    )
    np.testing.assert_allclose(got, want, atol=2e-4)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4, atol=1e-5)
    engine.ascend_canvas(image[:30], engine.term_weights([("conv1", 0, 1.0)]), 2, 0.1, view=view)
    assert engine._canvas_fns[view].experimental_get_tracing_count() == 1


def test_tiles_reach_dense_layers_and_class_scores_but_the_whole_view_refuses_them(tiny):
    engine = ascent.AscentEngine(tiny, "out")
    assert engine.term_layers[-1] == "out" and not engine.whole_canvas
    image = np.random.default_rng(0).normal(0, 1, (40, 60)).astype(np.float32)
    weights = engine.term_weights([("out", 3, 1.0), ("dense1", None, 0.5)])

    def cost(img):  # averaged over tilings: the ascent rolls the tiles differently every epoch, and a class
        # score of one tiling swings with where the tiles fall
        return np.mean(
            [
                np.mean(engine._term_objective(ascent.split_tiles(img, np.array([a, b], np.int32)), weights))
                for a in range(0, 28, 7)
                for b in range(0, 28, 7)
            ]
        )

    out, losses = engine.ascend_canvas(image, weights, 10, 0.05, seed=(0, 0))
    assert out.shape == image.shape and losses.shape == (10,)
    assert cost(out) > cost(image) + 0.02
    with pytest.raises(ValueError, match="whole-image ascent needs conv/pool layers only"):
        engine.ascend_canvas(image, engine.term_weights([("out", 3, 1.0)]), 2, 0.1, view="whole")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: e.term_weights([("dense1", None, 1.0)]), "layer 'dense1' is not below this engine's layer 'conv2'"),
        (lambda e: e.term_weights([("conv2", 99, 1.0)]), "map 99 does not exist in layer 'conv2'"),
        (
            lambda e: e.ascend_canvas(np.zeros((20, 40), np.float32), e.term_weights([("conv2", 0, 1.0)]), 2, 0.1),
            r"tiles need an image of at least 28×28, got \(20, 40\)",
        ),
        (
            lambda e: e.ascend_canvas(np.zeros((2, 30, 40), np.float32), e.term_weights([("conv2", 0, 1.0)]), 2, 0.1),
            "one grey image",
        ),
        (lambda e: e.ascend_canvas(np.zeros((30, 40), np.float32), np.ones(3, np.float32), 2, 0.1), "term_weights"),
        (
            lambda e: e.ascend_canvas(
                np.zeros((30, 40), np.float32), e.term_weights([("conv2", 0, 1.0)]), 2, 0.1, view="octaves"
            ),
            "view='octaves' is not one of",
        ),
    ],
)
def test_bad_canvas_settings_name_the_value(tiny, call, message):
    with pytest.raises(ValueError, match=message):
        call(ascent.AscentEngine(tiny, "conv2"))


def test_a_dream_job_and_the_oips_share_one_engine_per_layer(tiny_bundle):
    """Every mode of a dream asks the job context for the engine of its deepest layer: the one an OIP run uses."""
    from core.jobs.context import JobContext

    ctx = JobContext()
    path = str(tiny_bundle.path)
    settings = D.DreamConfig(mode="layers", terms=D.parse_terms("conv1=0.5, conv2:3=2"), **FAST)
    layer = D.deepest_layer(D.resolve_terms(settings, tiny_bundle.model), tiny_bundle.model)
    assert layer == "conv2"
    engine = ctx.engine(path, layer)
    result = D.dream(_photo(), tiny_bundle.model, settings, engine=engine)
    assert result.status == "finished" and ctx.engine(path, "conv2") is engine
