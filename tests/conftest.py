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
