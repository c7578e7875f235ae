"""Shared fixtures: the shared MNIST file, a tiny trained model, the bundled model.

Nothing here touches the network: MNIST comes from ``$MNIST_NPZ`` (CI points it at
``../shared/data/mnist.npz``) and the tiny model is trained in seconds on a few hundred digits.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_SHARED = ROOT.parent / "shared" / "data" / "mnist.npz"
if "MNIST_NPZ" not in os.environ and _SHARED.is_file():
    os.environ["MNIST_NPZ"] = str(_SHARED)


# What keeps a test out of the fast tier: the real MNIST file, the trained models, AppTest, a browser, Ray.
_NOT_FAST_FIXTURES = {
    "mnist",
    "mnist_small",
    "tiny_bundle",
    "default_bundle",
    "app_test",
    "page",
    "app_url",
    "browser",
    "load_server",
    "classroom_server",
}
_NOT_FAST_MARKERS = {"browser", "load", "slow", "ray", "integration"}


def pytest_collection_modifyitems(config, items):
    """Mark the fast tier (``make test-fast``: ``pytest -m fast``) by what a test uses."""
    for item in items:
        if _NOT_FAST_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())) and _NOT_FAST_MARKERS.isdisjoint(
            m.name for m in item.iter_markers()
        ):
            item.add_marker(pytest.mark.fast)


@pytest.fixture(scope="session")
def mnist():
    """The full MNIST set from $MNIST_NPZ (skips, loudly, when the file is missing)."""
    from core.data import load_mnist

    path = os.environ.get("MNIST_NPZ")
    if not path or not Path(path).is_file():
        pytest.fail("MNIST_NPZ must point at a Keras-layout mnist.npz (CI uses ../shared/data/mnist.npz)")
    return load_mnist(path)


@pytest.fixture(scope="session")
def mnist_small(mnist):
    """3,000 training and 500 test digits."""
    return mnist.subset(3000, 500)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, mnist):
    """A 'tiny filters' CNN (3-6-12) trained for 1 epoch on 2,000 digits, saved and re-loaded as a run."""
    from core.runs import load_run, save_run
    from core.spec import preset
    from core.training import TrainConfig, train

    result = train(preset("tiny filters"), TrainConfig(epochs=1, train_limit=2000, test_limit=300, seed=1), mnist)
    return load_run(save_run(result, tmp_path_factory.mktemp("runs"), name="tiny"))


@pytest.fixture(scope="session")
def default_bundle():
    """The bundled article-II model (read-only)."""
    from core.runs import load_default

    return load_default()


def write_tiny_run(folder: Path, seed: int = 0, filters=(3, 4, 6), dense=(8,)) -> Path:
    """An untrained tiny CNN saved as a complete run folder (no MNIST needed): ``folder`` is returned."""
    import json

    import numpy as np

    from core.data import PixelScaler
    from core.model import build_model
    from core.runs import META_FILE, MODEL_FILE, SCALER_FILE, SPEC_FILE
    from core.spec import ArchitectureSpec, ConvSpec, count_params

    spec = ArchitectureSpec(tuple(ConvSpec(f) for f in filters), dense=dense)
    folder.mkdir(parents=True, exist_ok=True)
    build_model(spec, seed=seed).save(folder / MODEL_FILE)
    (folder / SPEC_FILE).write_text(spec.to_json())
    PixelScaler(np.full((28, 28), 30.0), np.full((28, 28), 80.0)).save(folder / SCALER_FILE)
    (folder / META_FILE).write_text(
        json.dumps(
            {
                "name": folder.name,
                "test_accuracy": 0.1,
                "params": count_params(spec),
                "seed": seed,
                "device": "CPU",
                "read_only": False,
            }
        )
    )
    return folder


def write_tiny_mnist(path: Path, n_train: int = 400, n_test: int = 100, seed: int = 0) -> Path:
    """A Keras-layout mnist.npz of synthetic 'digits' (a bright bar whose position is the label)."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def digits(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, 4 + 2 * label : 6 + 2 * label, 4:24] = 250
        return x, y

    x_train, y_train = digits(n_train)
    x_test, y_test = digits(n_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """An untrained 3-4-6 CNN as a run folder, made in the test (fast tier: no MNIST)."""
    return write_tiny_run(tmp_path_factory.mktemp("tiny-run") / "tiny-untrained")


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    """A small synthetic Keras-layout mnist.npz (fast tier: no MNIST)."""
    return write_tiny_mnist(tmp_path_factory.mktemp("tiny-mnist") / "mnist.npz")


@pytest.fixture()
def runs_dir(tmp_path, monkeypatch):
    """A fresh runs folder, also used by the app (``$MNIST_EXPLORER_RUNS``)."""
    monkeypatch.setenv("MNIST_EXPLORER_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


APP_PATH = str(ROOT / "app.py")


@pytest.fixture()
def app_test(runs_dir):
    """Factory: ``app_test("pages/oip.py")`` → an AppTest of the whole app, already run on that page."""
    from streamlit.testing.v1 import AppTest

    def make(page: str | None = None, timeout: float = 180) -> AppTest:
        at = AppTest.from_file(APP_PATH, default_timeout=timeout)
        at.run()
        if page:
            at.switch_page(page).run()
        return at

    return make


def session_of(at):
    """The app's typed session state (pages.ui.state.Session) of an AppTest run."""
    from pages.ui.state import SESSION_KEY

    return at.session_state[SESSION_KEY]


def job_of(at, slot: str):
    """The handle (a list for a group) of the job a page keeps in its job ``slot``; None when it started none."""
    from pages.ui.state import SESSION_KEY

    if SESSION_KEY not in at.session_state:
        return None
    kept = at.session_state[SESSION_KEY].jobs.get(slot)
    return kept.handle if kept is not None else None


def finish_job(at, slot: str, timeout: float = 180):
    """Wait for the job a page started in its job ``slot``, then run the page as its job panel
    does (it collects the result and reruns); returns the job's handle."""
    handle = job_of(at, slot)
    assert handle.wait(timeout), f"the job in {slot!r} did not end within {timeout} s ({handle.snapshot().state})"
    at.run()
    return handle
