"""Reliability: work that is killed or fails mid-way leaves no half-written run or result file.

* ``python -m core train`` killed with SIGKILL mid-training: no run folder appears, ``list_runs``
  shows nothing, and the next training saves normally;
* a process killed *while writing* a run (before its folder's rename): only a hidden temporary folder is
  left, which ``list_runs`` ignores and a later save clears once it is stale;
* ``python -m core dream`` killed mid-way: no output PNG; a failure while writing removes the
  temporary file and leaves no PNG (the same for the ``activations`` and ``oip`` CLIs' .npz files).

The three subprocesses start together (TensorFlow takes seconds to import on 2 cores).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRESS = re.compile(r": \d+/\d+$")


def _start(args: list[str], tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w")
    )
    return proc, log


def _kill_when(proc: subprocess.Popen, log: Path, pattern: re.Pattern, timeout: float = 150) -> str:
    """SIGKILL ``proc`` as soon as its stderr shows a line matching ``pattern``; returns the log."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if any(pattern.search(line) for line in text.splitlines()):
                return text
            if proc.poll() is not None:
                pytest.fail(f"the process ended before it could be killed (rc {proc.returncode}):\n{text[-2000:]}")
            time.sleep(0.1)
        pytest.fail(f"no progress within {timeout} s:\n{log.read_text(errors='replace')[-2000:]}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)


SAVE_AND_DIE = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, os.getcwd())
    import numpy as np
    from core import runs
    from core.training import TrainConfig, TrainResult

    bundle = runs.load_run(sys.argv[1])
    result = TrainResult(model=bundle.model, spec=bundle.spec, scaler=bundle.scaler, config=TrainConfig(),
                         history={}, batch_history=[], test_accuracy=0.5, test_loss=1.0,
                         confusion=np.zeros((10, 10), int), misclassified=np.array([], int),
                         predictions=np.array([], int), seconds=1.0, epoch_seconds=[], device="CPU",
                         status="completed")
    real_rename = os.rename

    def die_before_the_rename(src, dst):
        if os.path.basename(src).startswith(".tmp-"):  # every file is written, the folder not yet renamed
            print("half written", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        real_rename(src, dst)

    runs.os.rename = die_before_the_rename
    runs.save_run(result, sys.argv[2], name="half")
""")


@pytest.fixture(scope="module")
def killed(tmp_path_factory, tiny_bundle):
    """Start the three victims at once, kill each at its moment, hand over the folders."""
    tmp = tmp_path_factory.mktemp("killed")
    train_runs, save_runs, dream_out = tmp / "train-runs", tmp / "save-runs", tmp / "dream-out"
    save_runs.mkdir()
    (tmp / "save_and_die.py").write_text(SAVE_AND_DIE)
    train = _start(
        [
            "-m",
            "core",
            "train",
            "--preset",
            "tiny filters",
            "--epochs",
            "50",
            "--train-limit",
            "20000",
            "--out",
            str(train_runs),
            "--name",
            "killed",
        ],
        tmp,
        "train",
    )
    dream = _start(
        [
            "-m",
            "core",
            "dream",
            "--model",
            str(tiny_bundle.path),
            "--mode",
            "map",
            "--map",
            "5",
            "--loops",
            "50",
            "--epochs",
            "500",
            "--max-side",
            "320",
            "--out",
            str(dream_out / "dream.png"),
        ],
        tmp,
        "dream",
    )
    saver = _start([str(tmp / "save_and_die.py"), str(tiny_bundle.path), str(save_runs)], tmp, "save")
    logs = {"train": _kill_when(*train, PROGRESS), "dream": _kill_when(*dream, PROGRESS)}
    saver[0].wait(150)
    logs["save"] = saver[1].read_text()
    assert saver[0].returncode == -signal.SIGKILL, logs["save"][-2000:]
    return {"train_runs": train_runs, "save_runs": save_runs, "dream_out": dream_out, "logs": logs}


def test_training_killed_mid_way_leaves_no_run_and_the_next_training_works(killed, mnist):
    from core.runs import is_run_dir, list_runs, load_run, save_run
    from core.spec import preset
    from core.training import TrainConfig, train

    runs = killed["train_runs"]
    assert "training:" in killed["logs"]["train"]  # it was killed mid-training, not before
    leftovers = list(runs.iterdir()) if runs.exists() else []
    assert not any(is_run_dir(p) for p in leftovers) and all(p.name.startswith(".") for p in leftovers)
    assert list_runs(runs) == []
    result = train(preset("tiny filters"), TrainConfig(epochs=1, train_limit=300, test_limit=100), mnist)
    saved = save_run(result, runs, name="killed")
    assert saved.name == "killed" and list_runs(runs) == [saved]
    assert load_run(saved).spec == preset("tiny filters")


def test_a_run_killed_while_being_written_is_invisible_and_cleared_later(killed, tiny_bundle):
    from core import runs as R

    runs = killed["save_runs"]
    assert "half written" in killed["logs"]["save"]
    leftovers = list(runs.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".tmp-")
    assert (leftovers[0] / "model.keras").is_file()  # complete inside, but never renamed into place
    assert R.list_runs(runs) == []
    assert R.remove_stale_temps(runs) == []  # young: might be another user's save in progress
    old = time.time() - 2 * R.STALE_TEMP_SECONDS
    os.utime(leftovers[0], (old, old))
    bundle = R.load_run(tiny_bundle.path)
    fake = _fake_result(bundle)
    saved = R.save_run(fake, runs, name="half")  # the next save works, under the wanted name, and clears the leftover
    assert saved.name == "half" and sorted(p.name for p in runs.iterdir()) == ["half"]


def test_dream_killed_mid_way_leaves_no_output(killed):
    assert "/50" in killed["logs"]["dream"]
    out = killed["dream_out"]
    assert not out.exists() or list(out.iterdir()) == []


def _fake_result(bundle):
    from core.training import TrainConfig, TrainResult

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


def _fail_on_rename(monkeypatch):
    real = os.replace

    def boom(src, dst):
        raise KeyboardInterrupt(f"killed while renaming {src} → {dst}")

    monkeypatch.setattr(os, "replace", boom)
    return real


@pytest.mark.parametrize("command", ["dream", "activations", "oip"])
def test_an_interrupted_write_leaves_no_output_file(command, tiny_bundle, tmp_path, monkeypatch, capsys):
    """The CLIs write results to a temporary file and rename it; interrupted, nothing appears under the name."""
    from core import cli

    out = tmp_path / "out" / ("result.png" if command == "dream" else "result.npz")
    args = {
        "dream": [
            "dream",
            "--model",
            str(tiny_bundle.path),
            "--map",
            "5",
            "--loops",
            "1",
            "--epochs",
            "1",
            "--max-side",
            "64",
        ],
        "activations": ["activations", "--model", str(tiny_bundle.path)],
        "oip": ["oip", "--model", str(tiny_bundle.path), "--layer", "conv1", "--maps", "0", "--epochs", "2"],
    }
    _fail_on_rename(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        cli.main([*args[command], "--out", str(out)])
    monkeypatch.undo()
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir()] if out.parent.exists() else []
    assert leftovers == []
    assert cli.main([*args[command], "--out", str(out)]) == 0  # and the next run writes it
    assert out.is_file()
