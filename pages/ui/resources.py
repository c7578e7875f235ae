"""What all sessions of the server share, each made once: loaded models, MNIST, the job system, the record of what
the server did, and one compiled engine or activation model per model (and layer). All are read-only for the pages.
Cached functions never call ``st.*`` themselves."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import streamlit as st

from core.activations import ActivationModel
from core.ascent.engine import AscentEngine
from core.data import Mnist, MnistUnavailableError, SampleDigits, load_mnist, load_sample_digits
from core.jobs.setup import make_job_system
from core.jobs.system import JobSystem
from core.runs import ModelBundle, bundled_models, default_runs_dir, list_runs, load_run, model_key, read_meta
from core.serving.classroom import Limits
from core.serving.events import EVENTS_ENV, ServerEvents
from pages.ui.server import freeze_long_lived_objects


@st.cache_resource(show_spinner=False)
def server_events() -> ServerEvents:
    """What this server did and when (``core.serving.events``): page runs, drawing steps, models loaded, engines
    compiled, jobs collected, garbage collections; mirrored to ``$MNIST_EXPLORER_EVENTS`` when set."""
    events = ServerEvents(os.environ.get(EVENTS_ENV) or None)
    events.watch_gc()
    return events


# --------------------------------------------------------------------------- models
def _mtime(path: str | Path) -> float:
    try:
        return Path(path, "run.json").stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(show_spinner="Loading model…")
def _load_bundle(path: str, mtime: float) -> ModelBundle:
    with server_events().span("model-load", path=Path(path).name):
        bundle = load_run(path)
    freeze_long_lived_objects()  # the model lives as long as the cache
    return bundle


def bundle_at(path: str | Path) -> ModelBundle:
    """The run at ``path``, loaded once for all sessions (again when its run.json changes): treat it as read-only.
    ValueError or OSError when it cannot be loaded."""
    return _load_bundle(str(path), _mtime(path))


def model_choices() -> list[str]:
    """The bundled models, then the runs folder's runs that read the 10 digits (paths). A run taught new symbols
    (``class_names`` in its run.json, written by the transfer job) is left out: every page but New symbols reads
    ten digit classes."""
    return [str(p) for p in bundled_models()] + [str(p) for p in list_runs(default_runs_dir()) if reads_digits(p)]


def reads_digits(path: str | Path) -> bool:
    """False for a run whose output is another set of classes than the digits 0..9 (a transfer to new symbols)."""
    try:
        return not run_meta(path).get("class_names")
    except (OSError, ValueError):
        return True  # unreadable: the picker shows it and says so when it is chosen


@st.cache_data(show_spinner=False)
def _meta(path: str, mtime: float) -> dict:
    return read_meta(path)


def run_meta(path: str | Path) -> dict:
    """A run's run.json (cached until it changes)."""
    return _meta(str(path), _mtime(path))


@st.cache_resource(show_spinner="Compiling the gradient ascent…", max_entries=16)
def _engine(key: str, layer: str, _bundle: ModelBundle) -> AscentEngine:
    with server_events().span("compile", what="ascent engine", layer=layer):
        built = AscentEngine(_bundle.model, layer)
    freeze_long_lived_objects()  # it lives as long as the cache
    return built


def engine(bundle: ModelBundle, layer: str) -> AscentEngine:
    """The one compiled ascent engine of a model's layer for every page (it only reads the model)."""
    return _engine(model_key(bundle.path), layer, bundle)


@st.cache_resource(show_spinner="Compiling the activation model…", max_entries=16)
def _activation_model(key: str, _bundle: ModelBundle) -> ActivationModel:
    with server_events().span("compile", what="activation model", model=Path(_bundle.path).name):
        built = ActivationModel.from_bundle(_bundle)
        side = built.side
        built.activations(np.zeros((side, side, 1), np.float32))  # traced now, not under a learner's first stroke
    freeze_long_lived_objects()  # the model and its traced graph live as long as the cache
    return built


def activation_model(bundle: ModelBundle) -> ActivationModel:
    """The one multi-output activation model of a model for every page."""
    return _activation_model(model_key(bundle.path), bundle)


# --------------------------------------------------------------------------- data
@st.cache_resource(show_spinner="Loading MNIST…")
def _load_mnist(source: str) -> Mnist:
    # cache_resource, not cache_data: 55 MB of read-only arrays must not be copied on every rerun
    mnist = load_mnist(source or None)
    for arr in (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test):
        arr.setflags(write=False)
    freeze_long_lived_objects()
    return mnist


def get_mnist() -> Mnist | None:
    """The full MNIST set, or None after showing how to provide it."""
    try:
        return _load_mnist(os.environ.get("MNIST_NPZ", ""))
    except (MnistUnavailableError, ValueError) as exc:
        st.error(f"MNIST is not available: {exc}")
        return None


@st.cache_data(show_spinner=False)
def get_sample_digits() -> SampleDigits:
    return load_sample_digits()


def test_digits():
    """(raw uint8 ``(N, 28, 28)``, source name): the MNIST test set, else the shipped sample of 2,000 test digits."""
    mnist = get_mnist()
    if mnist is not None:
        return mnist.x_test, "MNIST test set"
    return get_sample_digits().images, "shipped sample of test digits"


# --------------------------------------------------------------------------- OIP scans of the test digits
@st.cache_resource(show_spinner=False)
def _maxima_store() -> dict:
    """(model key, layer, source of the test digits) → ``core.oip.analysis.DigitMaxima``, shared by all sessions:
    the scans OIP jobs made where they ran (the server never scans the test set itself)."""
    return {}


def keep_maxima(model: str, result) -> None:
    """Move an OIP result's test-digit scan into the shared store (one copy per model and layer for the server)."""
    if result.maxima is not None:
        _maxima_store()[(model, result.config.layer, result.maxima.source)] = result.maxima
        result.maxima = None


def maxima_for(model: str, layer: str, source: str):
    """The layer's largest activations over the test digits from ``source``, once an OIP job scanned them; or None."""
    return _maxima_store().get((model, layer, source))


# --------------------------------------------------------------------------- the job system
@st.cache_resource(show_spinner="Starting the job workers…")
def _jobs() -> tuple[JobSystem, str]:
    """The server's job system and the notice to show when Ray was asked for but not reached."""
    system, notice = make_job_system()
    system.limit_submissions(Limits.from_env().jobs_per_minute)  # per owner: a scripted burst is refused
    events = server_events()

    def ended(handle) -> None:
        ran = (handle.ended or 0) - (handle.started or handle.ended or 0)
        events.record("job-end", time.time() - ran, ran, job=handle.kind, state=handle.state)

    system.add_listener(ended)
    return system, notice


def job_system() -> JobSystem:
    return _jobs()[0]


def job_system_notice() -> str:
    """Why jobs do not run where they were asked to (Ray unreachable at start, or gone since), or ''."""
    system, notice = _jobs()
    return getattr(system.backend, "notice", "") or notice
