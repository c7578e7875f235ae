"""Security: no widget takes a file-system path, and runs are written only under the configured runs
folder, with sanitised names (page, CLI and library)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.conftest import APP_PATH

PAGES = [
    "pages/home.py",
    "pages/train.py",
    "pages/activations.py",
    "pages/oip.py",
    "pages/precursor.py",
    "pages/clustering.py",
    "pages/deep_dream.py",
]
PATHLIKE = re.compile(r"\b(path|file ?name|folder|director(y|ies)|dir)\b", re.IGNORECASE)
# Widgets revealed by a toggle or a mode: (page, widget kind, key, value)
REVEAL = {
    "pages/train.py": [("toggle", "train_edit", True)],
    "pages/deep_dream.py": [("radio", "dream_mode", "layers"), ("radio", "dream_mode", "tiles")],
}


def _free_text_labels(at) -> list[str]:
    """Labels (and keys) of every widget that accepts typed text, sidebar included."""
    found = []
    for kind in ("text_input", "text_area", "chat_input"):
        for widget in getattr(at, kind, []):
            found.append(f"{widget.label} [{widget.key}]")
    return found


@pytest.mark.integration
def test_no_widget_takes_a_file_system_path(runs_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP_PATH, default_timeout=180)
    at.run()
    seen: dict[str, list[str]] = {}
    for page in PAGES:
        if page != PAGES[0]:
            at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        labels = _free_text_labels(at)
        for kind, key, value in REVEAL.get(page, []):
            getattr(at, kind)(key=key).set_value(value).run()
            labels += _free_text_labels(at)
        seen[page] = labels
        offending = [label for label in labels if PATHLIKE.search(label)]
        assert not offending, f"{page}: text widgets that look like they take a path: {offending}"
    # the scan saw something: the editor's dense layers and the dream's single-map terms are free text
    assert any("dense" in label.lower() for label in seen["pages/train.py"]), seen
    assert any("dream_" in label for label in seen["pages/deep_dream.py"]), seen


def _fake_result():
    from core.runs import load_default
    from core.training import TrainConfig, TrainResult

    bundle = load_default()
    return TrainResult(
        model=bundle.model,
        spec=bundle.spec,
        scaler=bundle.scaler,
        config=TrainConfig(),
        history={},
        batch_history=[],
        test_accuracy=0.5,
        test_loss=1.0,
        confusion=np.zeros((10, 10), int),
        misclassified=np.array([], int),
        predictions=np.array([], int),
        seconds=1.0,
        epoch_seconds=[],
        device="CPU",
        status="completed",
    )


NAMES = [
    "../../escape",
    "/etc/passwd",
    "..",
    ".",
    ".hidden",
    "a/b\\c",
    "nul\x00byte",
    "x" * 300,
    "",
    "   ",
    "~/home",
    "ünïcode name",
    "run:1?*<>|",
    "-.-",
    "CON",
]


def test_run_names_are_sanitised_and_runs_stay_in_the_runs_folder(tmp_path):
    from core.runs import list_runs, sanitize_name, save_run

    runs = tmp_path / "inner" / "runs"
    result = _fake_result()
    saved = []
    for name in NAMES:
        clean = sanitize_name(name)
        assert clean and "/" not in clean and "\\" not in clean and "\x00" not in clean, (name, clean)
        assert not clean.startswith(".") and clean not in (".", "..") and len(clean) <= 80, (name, clean)
        path = save_run(result, runs, name=name)
        assert path.parent == runs and path.resolve().parent == runs.resolve(), (name, path)
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", path.name), (name, path.name)
        saved.append(path)
    assert len(set(saved)) == len(NAMES)  # clashes get a suffix, nothing is overwritten
    assert sorted(list_runs(runs)) == sorted(saved)
    # nothing was written beside or above the runs folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inner"]
    assert sorted(p.name for p in (tmp_path / "inner").iterdir()) == ["runs"]


@pytest.mark.integration
def test_cli_train_name_cannot_escape_the_runs_folder(tmp_path, capsys):
    from core import cli

    runs = tmp_path / "runs"
    rc = cli.main(
        [
            "train",
            "--preset",
            "tiny filters",
            "--epochs",
            "1",
            "--train-limit",
            "200",
            "--out",
            str(runs),
            "--name",
            "../../../outside",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]
    assert [p.name for p in runs.iterdir()] == ["outside"]
