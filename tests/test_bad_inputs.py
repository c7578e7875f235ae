"""Reliability: one table of bad and odd inputs across the pages, the page address and the CLI.

Every case must end in a clear message, never a traceback:

* UI (AppTest of the whole app): no exception element, and an ``st.error``/``st.warning`` whose text
  names the problem, or, for odd but usable inputs, a sensible result (a prediction, a picture) and a
  note saying what was done to the file;
* CLI (``core.cli.main`` in-process): exit code 2, one ``error: ...`` line naming the problem, no
  traceback, no output file;

and nothing already saved changes: the runs folder and ``assets/default_model`` are hashed before and
after each case. All files are generated here, in memory; nothing large is committed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import APP_PATH, finish_job, job_of, session_of

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "assets" / "default_model"


# --------------------------------------------------------------------------- file factories
def _enc(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _digit(index: int = 227) -> np.ndarray:
    from core.data import load_sample_digits

    return load_sample_digits().by_test_index(index)[0]


def _paper(index: int = 227) -> np.ndarray:
    """A dark test digit on light paper, 120×100, off-centre (as a person would scan it)."""
    big = np.asarray(Image.fromarray(_digit(index)).resize((84, 84), Image.Resampling.BILINEAR), np.float32)
    canvas = np.zeros((120, 100), np.float32)
    canvas[10:94, 12:96] = big
    return (235.0 - canvas * 0.8).clip(0, 255).astype(np.uint8)


def _png_claiming(width: int, height: int) -> bytes:
    """A 4×4 PNG whose header claims ``width``×``height``: a decompression bomb as far as a decoder knows."""
    small = _enc(Image.new("L", (4, 4), 255))
    data = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + data
    ihdr = struct.pack(">I", len(data)) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return small[:8] + ihdr + small[8 + 25 :]


def _sixteen_bit() -> bytes:
    img = Image.fromarray(_paper().astype(np.uint16) * 257)
    assert img.mode == "I;16"
    return _enc(img)


def _cmyk() -> bytes:
    return _enc(Image.fromarray(_paper()).convert("RGB").convert("CMYK"), "JPEG", quality=92)


def _palette() -> bytes:
    return _enc(Image.fromarray(_paper()).convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16))


def _transparent() -> bytes:
    """White ink on a fully transparent background: on white it vanishes, the shape is in the alpha."""
    rgba = np.zeros((112, 112, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.asarray(Image.fromarray(_digit()).resize((112, 112)), np.uint8)
    return _enc(Image.fromarray(rgba, "RGBA"))


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise
    return _enc(
        Image.fromarray(_paper()).convert("RGB").rotate(90, expand=True), "JPEG", quality=90, exif=exif.tobytes()
    )


def _animated_gif() -> bytes:
    a, b = Image.fromarray(_paper(227)), Image.fromarray(_paper(0))
    return _enc(a, "GIF", save_all=True, append_images=[b], duration=200, loop=0)


def _five_by_five() -> bytes:
    arr = np.zeros((5, 5), np.uint8)
    arr[:, 2] = 255  # a "1"
    return _enc(Image.fromarray(arr))


def _photo(h: int = 60, w: int = 90) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 255 / w), (y * 255 / h), ((x + y) % 40) * 6], -1).astype(np.uint8)


TEXT = b"This is a text file with an image extension, not a picture.\n" * 3
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><path d="M1 1L27 27"/></svg>'


# --------------------------------------------------------------------------- the case table
@dataclass(frozen=True)
class Case:
    """``kind`` says where the input goes; ``expect`` is ``error``/``warning`` (the message must contain
    ``text``, case-insensitive) or ``ok`` (a sensible result; ``text``, if given, must appear in a note)."""

    name: str
    kind: str
    payload: object
    expect: str
    text: str | None = None


BOMB = lambda: _png_claiming(100_000, 100_000)  # noqa: E731
HUGE = lambda: _png_claiming(8_000, 6_000)  # 48 MP: over the 40 MP limit, under PIL's bomb threshold  # noqa: E731

CASES = [
    # --- uploads on the Activations page (filename, bytes) -------------------------------------
    Case("text file named .png", "act_upload", ("digit.png", lambda: TEXT), "error", "not an image"),
    Case("PDF named .jpg", "act_upload", ("scan.jpg", lambda: PDF), "error", "PDF"),
    Case("SVG named .png", "act_upload", ("drawing.png", lambda: SVG), "error", "SVG"),
    Case("HEIC photo named .jpg", "act_upload", ("phone.jpg", lambda: HEIC), "error", "HEIC"),
    Case(
        "TIFF named .png", "act_upload", ("scan.png", lambda: _enc(Image.new("L", (20, 20)), "TIFF")), "error", "TIFF"
    ),
    Case("empty file", "act_upload", ("empty.png", lambda: b""), "error", "empty"),
    Case(
        "truncated PNG",
        "act_upload",
        ("half.png", lambda: _enc(Image.fromarray(_paper()))[:200]),
        "error",
        "truncated or corrupt",
    ),
    Case("truncated JPEG", "act_upload", ("half.jpg", lambda: _exif_rotated()[:700]), "error", "truncated or corrupt"),
    Case("decompression bomb", "act_upload", ("bomb.png", BOMB), "error", "too large"),
    Case("huge dimensions (48 MP)", "act_upload", ("huge.png", HUGE), "error", "limit"),
    Case("1x1 image", "act_upload", ("dot.png", lambda: _enc(Image.new("L", (1, 1), 255))), "error", "No digit found"),
    Case(
        "blank white image",
        "act_upload",
        ("white.png", lambda: _enc(Image.new("L", (60, 60), 255))),
        "error",
        "No digit found",
    ),
    Case("5x5 image", "act_upload", ("five.png", _five_by_five), "ok", None),
    Case("16-bit PNG", "act_upload", ("deep.png", _sixteen_bit), "ok", "16-bit"),
    Case("CMYK JPEG", "act_upload", ("print.jpg", _cmyk), "ok", "CMYK"),
    Case("palette PNG", "act_upload", ("palette.png", _palette), "ok", None),
    Case("transparent PNG", "act_upload", ("alpha.png", _transparent), "ok", "transparen"),
    Case("EXIF-rotated JPEG", "act_upload", ("phone.jpg", _exif_rotated), "ok", "EXIF"),
    Case("animated GIF", "act_upload", ("anim.gif", _animated_gif), "ok", "first frame"),
    # --- uploads on the Deep Dream page ----------------------------------------------------------
    Case("dream: text file named .jpg", "dream_upload", ("photo.jpg", lambda: TEXT), "error", "not an image"),
    Case("dream: decompression bomb", "dream_upload", ("bomb.png", BOMB), "error", "too large"),
    Case(
        "dream: truncated JPEG",
        "dream_upload",
        ("half.jpg", lambda: _enc(Image.fromarray(_photo()), "JPEG")[:300]),
        "error",
        "truncated or corrupt",
    ),
    Case(
        "dream: 1000x1 strip",
        "dream_upload",
        ("strip.png", lambda: _enc(Image.new("L", (1000, 1)))),
        "error",
        "too extreme",
    ),
    Case(
        "dream: 1x1 photo",
        "dream_upload",
        ("dot.png", lambda: _enc(Image.new("RGB", (1, 1), (9, 99, 199)))),
        "ok",
        "enlarged",
    ),
    Case("dream: animated GIF", "dream_upload", ("anim.gif", _animated_gif), "ok", "first frame"),
    # --- settings on the pages: (page, {widget key: value} or a callable) --------------------------
    Case("train: learning rate 100", "settings", ("pages/train.py", {"train_lr": 100.0}), "error", "learning_rate=100"),
    Case("train: learning rate 0", "settings", ("pages/train.py", {"train_lr": 0.0}), "error", "learning_rate=0"),
    Case(
        "train: 5 conv layers (maps below 1x1)",
        "settings",
        ("pages/train.py", {"train_edit": True, "train_ed_n_conv": 5}),
        "error",
        "cannot be built",
    ),
    Case(
        "train: 9x9 kernels everywhere",
        "settings",
        ("pages/train.py", {"train_edit": True, "train_ed_k1": 9, "train_ed_k2": 9, "train_ed_k3": 9}),
        "error",
        "1×1",
    ),
    Case(
        "train: dense layers 'seventy'",
        "settings",
        ("pages/train.py", {"train_edit": True, "train_ed_dense": "seventy"}),
        "error",
        "whole numbers",
    ),
    Case(
        "dream: step size 1e9",
        "settings",
        ("pages/deep_dream.py", {"dream_step": 1e9}),
        "error",
        "is outside 0.0..10.0",
    ),
    Case(
        "dream: map 999 in the cost terms",
        "settings",
        ("pages/deep_dream.py", {"dream_mode": "tiles", "dream_tiles_maps": "conv3:999"}),
        "error",
        "map 999 does not exist",
    ),
    # --- model files, chosen through ?model=NAME (folders made by the `world` fixture) ----------
    Case("model file that is not a model", "model", "not-a-model", "error", "not a Keras model file"),
    Case("truncated model file", "model", "truncated-model", "error", "not a Keras model file"),
    Case("model with a Lambda layer", "model", "lambda-layer", "error", "Lambda"),
    Case("architecture that cannot be built", "model", "unbuildable-spec", "error", "not a usable architecture"),
    Case("model that does not match its spec", "model", "mismatched-spec", "error", "does not match"),
    Case("damaged run.json", "model", "damaged-meta", "error", "damaged"),
    Case("damaged scaler", "model", "damaged-scaler", "error", "damaged"),
    # --- the page address ------------------------------------------------------------------------
    Case(
        "URL: unknown model",
        "url",
        ("pages/train.py", {"model": "no-such-run"}),
        "warning",
        "No model named 'no-such-run'",
    ),
    Case(
        "URL: model path escaping the runs folder",
        "url",
        ("pages/train.py", {"model": "../../etc/passwd"}),
        "warning",
        "No model named",
    ),
    Case(
        "URL: absolute path to a model outside the runs folder",
        "url",
        ("pages/train.py", {"model": "{outside}"}),
        "warning",
        "No model named",
    ),
    Case("URL: map index 999", "url", ("pages/deep_dream.py", {"map": "999"}), "warning", "map '999'"),
    Case(
        "URL: negative map index",
        "url",
        ("pages/deep_dream.py", {"layer": "conv2", "map": "-1"}),
        "warning",
        "map '-1' of conv2",
    ),
    Case("URL: map index that is not a number", "url", ("pages/deep_dream.py", {"map": "abc"}), "warning", "map 'abc'"),
    Case(
        "URL: unknown layer",
        "url",
        ("pages/deep_dream.py", {"layer": "dense9", "map": "0"}),
        "warning",
        "layer 'dense9'",
    ),
    # --- the command line ------------------------------------------------------------------------
    Case(
        "CLI: dream --map 999",
        "cli",
        ["dream", "--model", "{tiny}", "--map", "999", "--out", "{out}.png"],
        "error",
        "map 999 does not exist",
    ),
    Case(
        "CLI: oip --maps 999",
        "cli",
        ["oip", "--model", "{tiny}", "--maps", "999", "--out", "{out}.npz"],
        "error",
        "do not exist",
    ),
    Case(
        "CLI: dream --step-size 1e9",
        "cli",
        ["dream", "--step-size", "1e9", "--out", "{out}.png"],
        "error",
        "step_size=1000000000.0",
    ),
    Case("CLI: oip --step 1e9", "cli", ["oip", "--step", "1e9", "--out", "{out}.npz"], "error", "step=1000000000.0"),
    Case(
        "CLI: train --learning-rate 100",
        "cli",
        ["train", "--learning-rate", "100", "--out", "{runs}"],
        "error",
        "learning_rate=100.0",
    ),
    Case(
        "CLI: activations --class 42",
        "cli",
        ["activations", "--model", "{tiny}", "--class", "42", "--out", "{out}.npz"],
        "error",
        "class_index=42",
    ),
    Case("CLI: activations --index 10000", "cli", ["activations", "--index", "10000"], "error", "--index 10000"),
    Case(
        "CLI: dream on a text file named .png",
        "cli",
        ["dream", "--image", "{text_png}", "--out", "{out}.png"],
        "error",
        "not an image",
    ),
    Case(
        "CLI: activations on a decompression bomb",
        "cli",
        ["activations", "--image", "{bomb_png}"],
        "error",
        "too large",
    ),
    Case(
        "CLI: model with a Lambda layer",
        "cli",
        ["dream", "--model", "{runs}/lambda-layer", "--out", "{out}.png"],
        "error",
        "Lambda",
    ),
    Case(
        "CLI: model file that is not a model",
        "cli",
        ["evaluate", "--model", "{runs}/not-a-model"],
        "error",
        "not a Keras model file",
    ),
]


def test_the_corpus_is_large_and_covers_the_issue():
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)
    names = " ".join(c.name for c in CASES).lower()
    for topic in (
        "text file",
        "truncated",
        "empty",
        "bomb",
        "huge",
        "1x1",
        "5x5",
        "16-bit",
        "cmyk",
        "palette",
        "transparent",
        "exif",
        "animated gif",
        "learning rate 100",
        "step size 1e9",
        "cannot be built",
        "not a model",
        "lambda",
        "map 999",
        "map index 999",
    ):
        assert topic in names, topic


# --------------------------------------------------------------------------- the world
def _hash_tree(*roots: Path) -> dict[str, str]:
    """Every file (and folder) under ``roots``: relative path → sha256 of the content."""
    out = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            rel = f"{root.name}/{path.relative_to(root)}"
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_bundle):
    """A runs folder holding one good run ('tiny') and broken ones, used by the app ($MNIST_EXPLORER_RUNS)."""
    import keras

    base = tmp_path_factory.mktemp("bad-inputs")
    runs = base / "runs"
    runs.mkdir()
    good = runs / "tiny"
    shutil.copytree(tiny_bundle.path, good)

    def broken(name: str, fix: Callable[[Path], None]) -> None:
        target = runs / name
        shutil.copytree(good, target)
        fix(target)

    broken("not-a-model", lambda p: (p / "model.keras").write_bytes(b"this is not a Keras model"))
    broken("truncated-model", lambda p: (p / "model.keras").write_bytes((good / "model.keras").read_bytes()[:3000]))

    def lambda_layer(p: Path) -> None:
        inputs = keras.Input((28, 28, 1))
        keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0, name="conv1")(inputs)).save(p / "model.keras")

    broken("lambda-layer", lambda_layer)

    def unbuildable(p: Path) -> None:
        spec = json.loads((p / "spec.json").read_text())
        spec["convs"] = spec["convs"] * 2  # six conv layers shrink the maps below 1×1
        (p / "spec.json").write_text(json.dumps(spec))

    broken("unbuildable-spec", unbuildable)

    def mismatched(p: Path) -> None:
        spec = json.loads((p / "spec.json").read_text())
        spec["convs"][2]["filters"] = 64  # same layer names, other shapes
        (p / "spec.json").write_text(json.dumps(spec))

    broken("mismatched-spec", mismatched)
    broken("damaged-meta", lambda p: (p / "run.json").write_text('{"name": "damaged-meta", '))
    broken("damaged-scaler", lambda p: (p / "scaler.npz").write_bytes(b"PK\x03\x04 not really a zip"))
    (base / "text.png").write_bytes(TEXT)
    (base / "bomb.png").write_bytes(BOMB())
    old = os.environ.get("MNIST_EXPLORER_RUNS")
    os.environ["MNIST_EXPLORER_RUNS"] = str(runs)
    try:
        yield {"base": base, "runs": runs, "tiny": good, "outside": tiny_bundle.path, "apps": {}}
    finally:
        if old is None:
            os.environ.pop("MNIST_EXPLORER_RUNS", None)
        else:
            os.environ["MNIST_EXPLORER_RUNS"] = old


def _new_app(page: str, query: dict | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP_PATH, default_timeout=180)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _shared_app(world, page: str, setup: Callable | None = None):
    """One AppTest per page for the upload cases (each case replaces the previous upload)."""
    if page not in world["apps"]:
        at = _new_app(page)
        if setup:
            setup(at)
        world["apps"][page] = at
    return world["apps"][page]


def _messages(at, *kinds: str) -> list[str]:
    return [el.value for kind in kinds for el in getattr(at, kind)]


def _check_ui(at, case: Case) -> None:
    assert not at.exception, f"{case.name}: exception shown: {[e.value for e in at.exception]}"
    if case.expect == "ok":
        assert not at.error, f"{case.name}: {_messages(at, 'error')}"
        if case.text:
            notes = _messages(at, "caption", "info", "warning")
            assert any(case.text.lower() in n.lower() for n in notes), f"{case.name}: notes {notes}"
        return
    kinds = ("error",) if case.expect == "error" else ("warning",)
    shown = _messages(at, *kinds)
    assert any(case.text.lower() in m.lower() for m in shown), (
        f"{case.name}: expected {case.expect} with {case.text!r}, got {shown}"
    )
    assert not any("Traceback" in m for m in _messages(at, "error", "warning", "markdown", "code"))


# --------------------------------------------------------------------------- runners per kind
def _run_act_upload(world, case: Case) -> None:
    at = _shared_app(
        world, "pages/activations.py", lambda a: a.segmented_control(key="act_source").set_value("Upload").run()
    )
    name, make = case.payload
    at.file_uploader(key="act_upload").set_value((name, make(), "image/png")).run()
    _check_ui(at, case)
    if case.expect == "ok":
        assert any("Prediction:" in m for m in _messages(at, "markdown")), f"{case.name}: no prediction"
    else:
        assert any(name in m for m in _messages(at, "error")), f"{case.name}: the message does not name the file"


def _run_dream_upload(world, case: Case) -> None:
    at = _shared_app(world, "pages/deep_dream.py")
    name, make = case.payload
    at.file_uploader(key="dream_upload").set_value((name, make(), "image/png")).run()
    _check_ui(at, case)
    if case.expect == "ok":  # the photo is shown and the Dream button is ready
        assert at.get("image") and not at.button(key="dream_run").disabled
    else:
        assert any(name in m for m in _messages(at, "error")), f"{case.name}: the message does not name the file"


def _run_settings(world, case: Case) -> None:
    page, values = case.payload
    at = _new_app(page)
    for key, value in values.items():  # one script run for all values, plus one per widget that appears later
        try:
            widget = _widget(at, key)
        except KeyError:
            at.run()
            widget = _widget(at, key)
        widget.set_value(value)
    at.run()
    _check_ui(at, case)
    start, slot = ("train_start", "train_job") if page == "pages/train.py" else ("dream_run", "dream_job")
    for button in [b for b in at.button if b.key == start and not b.disabled]:  # pressing it anyway starts nothing
        button.click().run()
        _check_ui(at, case)
    assert job_of(at, slot) is None, f"{case.name}: the bad settings were used"


def _widget(at, key: str):
    for kind in ("number_input", "text_input", "toggle", "selectbox", "radio", "checkbox", "slider", "select_slider"):
        try:
            return getattr(at, kind)(key=key)
        except (KeyError, IndexError):
            continue
    raise KeyError(f"no widget with key {key!r}")


def _run_model(world, case: Case) -> None:
    at = _new_app("pages/train.py", {"model": case.payload})
    _check_ui(at, case)
    shown = _messages(at, "error")
    assert any(case.payload in m for m in shown), f"{case.name}: the message does not name the run: {shown}"
    at.switch_page("pages/activations.py").run()  # a page that needs the model stops with the message
    _check_ui(at, case)


def _run_url(world, case: Case) -> None:
    page, query = case.payload
    query = {k: v.replace("{outside}", str(world["outside"])) for k, v in query.items()}
    at = _new_app(page, query)
    assert at.session_state["active_model"] != str(world["outside"])
    _check_ui(at, case)
    if page == "pages/deep_dream.py":  # the page still works with a valid map
        n = at.number_input(key="dream_map")  # labelled "Map (0…N)"
        assert 0 <= n.value <= int(n.label.split("…")[1].rstrip(")"))


def _run_cli(world, case: Case, capsys) -> None:
    from core import cli

    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if case.payload[0] not in commands:
        pytest.skip(f"the '{case.payload[0]}' sub-command is not registered yet")
    out = world["base"] / "out" / case.name.replace(" ", "_").replace("/", "_")
    subst = {
        "{tiny}": str(world["tiny"]),
        "{out}": str(out),
        "{runs}": str(world["runs"]),
        "{text_png}": str(world["base"] / "text.png"),
        "{bomb_png}": str(world["base"] / "bomb.png"),
    }
    args = []
    for arg in case.payload:
        for key, value in subst.items():
            arg = arg.replace(key, value)
        args.append(arg)
    capsys.readouterr()
    rc = cli.main(args)
    captured = capsys.readouterr()
    assert rc == 2, f"{case.name}: exit code {rc}; stderr {captured.err[-500:]}"
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and case.text in errors[0], f"{case.name}: {captured.err[-800:]}"
    assert "Traceback" not in captured.err
    assert not out.parent.exists() or not any(out.parent.iterdir()), "an output file was written"


RUNNERS = {
    "act_upload": _run_act_upload,
    "dream_upload": _run_dream_upload,
    "settings": _run_settings,
    "model": _run_model,
    "url": _run_url,
}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_a_clear_message_and_changes_nothing_saved(world, case, capsys):
    before = _hash_tree(world["runs"], DEFAULT_MODEL)
    if case.kind == "cli":
        _run_cli(world, case, capsys)
    else:
        RUNNERS[case.kind](world, case)
    assert _hash_tree(world["runs"], DEFAULT_MODEL) == before, f"{case.name} changed something already saved"


# --------------------------------------------------------------------------- NaN on the Train page
def test_training_that_turns_nan_stops_with_a_message_and_saves_nothing(world):
    """Learning rate 10 with SGD makes article II's loss NaN within the first batches: the page says so,
    keeps nothing half-trained, and the runs folder is unchanged."""
    before = _hash_tree(world["runs"], DEFAULT_MODEL)
    at = _new_app("pages/train.py")
    at.selectbox(key="train_optimizer").set_value("sgd")
    at.number_input(key="train_lr").set_value(10.0)
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_limit").set_value(500)
    at.run()
    assert not at.error, _messages(at, "error")
    at.button(key="train_start").click().run()
    job = finish_job(at, "train_job")
    assert job.state == "finished", job.message
    assert job.result.status == "diverged" and job.result.run_dir is None and job.result.payload is None
    assert not at.exception
    assert any("NaN" in w and "learning rate" in w for w in _messages(at, "warning")), _messages(at, "warning")
    assert any("Nothing was saved" in e for e in _messages(at, "error")), _messages(at, "error")
    assert _hash_tree(world["runs"], DEFAULT_MODEL) == before


def test_the_largest_dream_step_gives_a_finite_picture(world):
    """Step size 10 (the largest allowed) on the page: a finished dream with finite values, no NaN."""
    at = _new_app("pages/deep_dream.py")
    at.number_input(key="dream_step").set_value(10.0)
    at.number_input(key="dream_loops").set_value(1)
    at.number_input(key="dream_epochs").set_value(3)
    at.select_slider(key="dream_max_side").set_value(160)
    at.run()
    at.button(key="dream_run").click().run()
    finish_job(at, "dream_job")
    assert not at.exception and not at.error, _messages(at, "error")
    result = session_of(at).dream.result.value
    assert result.status == "finished" and result.settings["step_size"] == 10.0
    assert np.all(np.isfinite(result.final_grey)) and result.image.dtype == np.uint8
    assert all(np.all(np.isfinite(stage.losses)) for stage in result.stages)
    # the model every session shares (st.cache_resource) is exactly the file's model afterwards
    from core.runs import load_default
    from pages.ui import resources

    cached = resources.bundle_at(DEFAULT_MODEL)
    fresh = load_default()
    assert cached is resources.bundle_at(DEFAULT_MODEL)
    for a, b in zip(cached.model.get_weights(), fresh.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
