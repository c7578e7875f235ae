"""Training runs on disk: save atomically, list, load (Keras safe_mode).

A run is a folder holding ``model.keras`` (inference copy, no optimizer state), ``spec.json``,
``scaler.npz`` and ``run.json`` (settings, history, metrics, confusion matrix, ...). It is
written into a hidden temporary folder and renamed into place, so a killed process never
leaves a half-written run behind.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from core.data import ASSETS_DIR, PixelScaler
from core.model import build_model, check_matches_spec
from core.spec import ArchitectureSpec, layer_table, validate
from core.training import TrainResult, config_to_dict

DEFAULT_MODEL_DIR = ASSETS_DIR / "default_model"
OIP_SERIES_MODEL_DIR = ASSETS_DIR / "oip_series_model"  # the blog's OIP articles: conv3 with 128 maps
BUNDLED_MODELS = {DEFAULT_MODEL_DIR: "article II", OIP_SERIES_MODEL_DIR: "OIP series"}  # its conv3 has 128 maps
RUNS_ENV_VAR = "MNIST_EXPLORER_RUNS"
RUNS_CAP_ENV = "MNIST_EXPLORER_RUNS_CAP_MB"  # the runs folder's cap in MB (0: none)
DEFAULT_RUNS_CAP_MB = 2048
MODEL_FILE, SPEC_FILE, SCALER_FILE, META_FILE = "model.keras", "spec.json", "scaler.npz", "run.json"
CHECKPOINTS_FILE = "checkpoints.npz"  # optional: the weights during training (core.compare.replay)
_TMP_PREFIX = ".tmp-"
_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")
_OWNER_RE = re.compile(r"[^a-z0-9_-]+")
_WRITE_LOCK = threading.Lock()  # one run written at a time per process: the cap is checked and kept together


class RunsFolderFull(ValueError):
    """The runs folder has reached its cap (``$MNIST_EXPLORER_RUNS_CAP_MB``): a new run is not written."""


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_ENV_VAR, "runs")).resolve()


def sanitize_name(name: str) -> str:
    """A safe single path component: letters, digits, ``_.-``; never empty, never hidden."""
    cleaned = _NAME_RE.sub("-", name).strip("-.")[:80]
    return cleaned or "run"


def sanitize_owner(owner: str) -> str:
    """An owner's nickname as recorded in run.json: lower-case letters, digits, ``_-``, at most 24 characters."""
    return _OWNER_RE.sub("-", str(owner).lower()).strip("-")[:24]


def runs_cap_bytes(environ=None) -> int:
    """The runs folder's cap in bytes from ``$MNIST_EXPLORER_RUNS_CAP_MB`` (default 2048 MB; 0: no cap)."""
    env = os.environ if environ is None else environ
    try:
        megabytes = float(str(env.get(RUNS_CAP_ENV, "")).strip() or DEFAULT_RUNS_CAP_MB)
    except ValueError:
        megabytes = DEFAULT_RUNS_CAP_MB
    return max(0, int(megabytes * 1_000_000))


def folder_bytes(folder: str | os.PathLike) -> int:
    """The bytes of the files under ``folder`` (links are not followed; 0 when it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


@dataclass
class ModelBundle:
    """A trained model with everything needed to feed it: its spec and its scaler."""

    model: keras.Model
    spec: ArchitectureSpec
    scaler: PixelScaler
    meta: dict
    path: Path

    @property
    def name(self) -> str:
        return self.meta.get("name", self.path.name)


STALE_TEMP_SECONDS = 3600.0


def remove_stale_temps(runs_dir: str | os.PathLike, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete temporary folders left by writers that were killed mid-save (SIGKILL, power cut).

    Only folders untouched for ``older_than`` seconds go: a save takes seconds, so a younger one may
    belong to another user's save in progress. Returns what was removed.
    """
    removed = []
    now = time.time()
    for path in Path(runs_dir).glob(_TMP_PREFIX + "*"):
        try:
            if path.is_dir() and now - path.stat().st_mtime > older_than:
                shutil.rmtree(path)
                removed.append(path)
        except OSError:
            continue
    return removed


@dataclass
class RunPayload:
    """A run as bytes, ready to be written anywhere: ``files`` (model.keras, spec.json, scaler.npz) and
    the ``meta`` that becomes run.json. A job makes it where it trains (a worker process, a Ray worker);
    the dashboard writes it into its runs folder with ``write_run``."""

    files: dict[str, bytes]
    meta: dict


def run_payload(result: TrainResult, extra_meta: dict | None = None) -> RunPayload:
    """Serialise a training result: an uncompiled inference copy of the model (no optimizer state),
    the spec, the scaler and the run's figures."""
    meta = {
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "config": config_to_dict(result.config),
        "history": result.history,
        "batch_history": [list(map(float, row)) for row in result.batch_history],
        "test_accuracy": result.test_accuracy,
        "test_loss": result.test_loss,
        "confusion": result.confusion.tolist(),
        "misclassified": result.misclassified.tolist(),
        "predictions": result.predictions.tolist(),
        "seconds": result.seconds,
        "epoch_seconds": result.epoch_seconds,
        "device": result.device,
        "status": result.status,
        "message": result.message,
        "params": result.params,
        "seed": result.config.seed,
        "read_only": False,
        **(extra_meta or {}),
    }
    with tempfile.TemporaryDirectory(prefix="mnist-explorer-run-") as tmp:
        inference = build_model(result.spec)
        inference.set_weights(result.model.get_weights())
        inference.save(Path(tmp) / MODEL_FILE)
        result.scaler.save(Path(tmp) / SCALER_FILE)
        files = {
            MODEL_FILE: (Path(tmp) / MODEL_FILE).read_bytes(),
            SCALER_FILE: (Path(tmp) / SCALER_FILE).read_bytes(),
            SPEC_FILE: result.spec.to_json().encode(),
        }
    if result.checkpoints:
        files[CHECKPOINTS_FILE] = checkpoints_npz(result.checkpoints)
        meta["checkpoints"] = [position for position, _ in result.checkpoints]
    return RunPayload(files, meta)


def checkpoints_npz(checkpoints: list[tuple[float, list[np.ndarray]]]) -> bytes:
    """Checkpoints as compressed ``.npz`` bytes: ``positions`` ``(K,)`` (epochs) and ``c{k}_w{j}`` the j-th weight
    array of checkpoint k (float16)."""
    import io

    arrays = {"positions": np.array([p for p, _ in checkpoints], np.float64)}
    for k, (_, weights) in enumerate(checkpoints):
        for j, w in enumerate(weights):
            arrays[f"c{k}_w{j}"] = np.asarray(w, np.float16)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def run_name(preset: str | None, seed: int | None, stamp: str | None = None) -> str:
    """The one pattern of a run's default name: ``<preset>-<YYYYmmdd-HHMMSS>-seed<seed>``, e.g.
    ``article-II-20261207-014355-seed7`` (``run`` without a preset, no seed part without a seed)."""
    stamp = stamp or _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return sanitize_name(f"{preset or 'run'}-{stamp}" + (f"-seed{seed}" if seed is not None else ""))


def write_run(
    payload: RunPayload,
    runs_dir: str | os.PathLike | None = None,
    name: str | None = None,
    owner: str | None = None,
    cap_bytes: int | None = None,
) -> Path:
    """Write a run folder atomically (a hidden temporary folder, then one rename) and return its path.
    The folder is named ``name`` (sanitised) or after the time and accuracy; an existing name gets a
    suffix. ``owner`` (a nickname, sanitised) is recorded in run.json. Stale temporary folders of killed writers
    are cleared first. ``RunsFolderFull`` before anything is written when the folder would pass its cap
    (``cap_bytes``; None: ``$MNIST_EXPLORER_RUNS_CAP_MB``)."""
    runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
    runs_dir.mkdir(parents=True, exist_ok=True)
    with _WRITE_LOCK:
        return _write_run(payload, runs_dir, name, owner, runs_cap_bytes() if cap_bytes is None else cap_bytes)


def _write_run(payload: RunPayload, runs_dir: Path, name: str | None, owner: str | None, cap: int) -> Path:
    remove_stale_temps(runs_dir)
    if cap:
        used = folder_bytes(runs_dir)
        incoming = sum(len(data) for data in payload.files.values()) + len(json.dumps(payload.meta))
        if used + incoming > cap:
            raise RunsFolderFull(
                f"The runs folder is full: it holds {used / 1e6:,.0f} MB, this run needs {incoming / 1e6:,.1f} MB "
                f"more and the cap is {cap / 1e6:,.0f} MB ({RUNS_CAP_ENV}); the run was not kept. Delete runs "
                "(the teacher can delete any) to make room."
            )
    base = sanitize_name(name or run_name(payload.meta.get("preset"), payload.meta.get("seed")))
    meta = dict(payload.meta)
    if owner:
        meta["owner"] = sanitize_owner(owner)
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=runs_dir))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a run is an ordinary folder
        for file_name, data in payload.files.items():
            if file_name not in (MODEL_FILE, SPEC_FILE, SCALER_FILE, CHECKPOINTS_FILE):
                raise ValueError(
                    f"unexpected file {file_name!r} in a run; allowed: {MODEL_FILE}, {SPEC_FILE}, "
                    f"{SCALER_FILE}, {CHECKPOINTS_FILE}"
                )
            (tmp / file_name).write_bytes(data)
        final = runs_dir / base
        suffix = 1
        while final.exists():
            suffix += 1
            final = runs_dir / f"{base}-{suffix}"
        meta["name"] = final.name
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def save_run(
    result: TrainResult,
    runs_dir: str | os.PathLike | None = None,
    name: str | None = None,
    extra_meta: dict | None = None,
    owner: str | None = None,
) -> Path:
    """Write a training result as a run folder, atomically; returns its path."""
    return write_run(run_payload(result, extra_meta), runs_dir, name, owner)


def model_key(run_dir: str | os.PathLike) -> str:
    """The one key of a model version: its resolved run folder and the time its run.json was written
    (a run saved again in the same folder gets a new key, so no cache serves the old weights)."""
    path = Path(run_dir).resolve()
    try:
        mtime = (path / META_FILE).stat().st_mtime_ns
    except OSError:
        mtime = 0
    return f"{path}|{mtime}"


def read_meta(run_dir: str | os.PathLike) -> dict:
    """The run's ``run.json`` as a dict; ValueError naming the file when it is damaged."""
    path = Path(run_dir) / META_FILE
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is damaged (not valid JSON: {exc})") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{str(path)!r} is damaged (a JSON object was expected, got {type(meta).__name__})")
    return meta


def is_run_dir(path: Path) -> bool:
    return (
        path.is_dir()
        and not path.name.startswith(".")
        and all((path / f).is_file() for f in (MODEL_FILE, SPEC_FILE, SCALER_FILE, META_FILE))
    )


def list_runs(runs_dir: str | os.PathLike | None = None) -> list[Path]:
    """Complete run folders, newest first (temporary and incomplete folders are skipped)."""
    runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
    if not runs_dir.is_dir():
        return []
    inside = runs_dir.resolve()
    runs = [p for p in runs_dir.iterdir() if not p.is_symlink() and is_run_dir(p) and p.resolve().parent == inside]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


def run_in(runs_dir: str | os.PathLike, name: str) -> Path:
    """The run folder called ``name`` directly inside ``runs_dir``. ValueError for anything else: an empty or
    hidden name, a name with a separator or ``..``, an absolute path, a link (a link could lead out), a folder
    that is not a complete run."""
    runs_dir = Path(runs_dir)
    text = str(name)
    if not text or text != sanitize_name(text) or text.startswith(".") or os.sep in text or "/" in text:
        raise ValueError(f"{text[:80]!r} is not a run name (letters, digits, _ . - only, no path)")
    path = runs_dir / text
    if path.is_symlink() or path.resolve().parent != runs_dir.resolve():
        raise ValueError(f"{text!r} is not a run of the runs folder")
    if not is_run_dir(path):
        raise ValueError(f"there is no run named {text!r}")
    return path


def _own_run(path: str | os.PathLike, runs_dir: str | os.PathLike | None) -> Path:
    """``path`` when it is a run folder directly inside the runs folder (never a bundled model); else ValueError."""
    runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
    path = Path(path)
    if path.resolve() in {p.resolve() for p in BUNDLED_MODELS}:
        raise ValueError(f"{run_title(path)!r} is a bundled model: it is read-only")
    if path.is_symlink() or path.parent.resolve() != runs_dir.resolve():
        raise ValueError(f"{path.name!r} is not a run of the runs folder")
    return run_in(runs_dir, path.name)


def rename_run(path: str | os.PathLike, new_name: str, runs_dir: str | os.PathLike | None = None) -> Path:
    """Rename a run of the runs folder to ``new_name`` (sanitised; ValueError when it is taken); returns the new
    folder. Its run.json's name follows (written to a temporary file, then renamed over the old one)."""
    path = _own_run(path, runs_dir)
    base = sanitize_name(str(new_name).strip())
    if base != str(new_name).strip():
        raise ValueError(f"{str(new_name)[:80]!r} is not a run name: use letters, digits, _ . - (e.g. {base!r})")
    target = path.parent / base
    if target.exists() or target.is_symlink():
        raise ValueError(f"a run named {base!r} already exists")
    with _WRITE_LOCK:
        os.rename(path, target)
        try:
            meta = read_meta(target)
            meta["name"] = base
            tmp = target / (_TMP_PREFIX + META_FILE)
            tmp.write_text(json.dumps(meta, indent=1))
            os.replace(tmp, target / META_FILE)
        except (OSError, ValueError):
            pass  # the folder's name is the run's name; a damaged run.json stays as it was
    return target


def delete_run(path: str | os.PathLike, runs_dir: str | os.PathLike | None = None) -> None:
    """Delete a run of the runs folder: first renamed to a hidden temporary name (it leaves the list at once,
    whole), then removed."""
    path = _own_run(path, runs_dir)
    doomed = path.parent / f"{_TMP_PREFIX}deleted-{path.name}-{os.getpid()}-{time.time_ns()}"
    os.rename(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def load_run(run_dir: str | os.PathLike) -> ModelBundle:
    """Load a run folder; the model goes through Keras safe_mode (no arbitrary code)."""
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise ValueError(
            f"{str(run_dir)!r} is not a complete run folder "
            f"(needs {MODEL_FILE}, {SPEC_FILE}, {SCALER_FILE}, {META_FILE})"
        )
    try:
        spec = ArchitectureSpec.from_json((run_dir / SPEC_FILE).read_text())
        validate(spec)  # ValueError for an architecture that cannot be built
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(run_dir / SPEC_FILE)!r} is not a usable architecture: {exc}") from exc
    if not zipfile.is_zipfile(run_dir / MODEL_FILE):
        raise ValueError(
            f"{str(run_dir / MODEL_FILE)!r} could not be loaded: it is not a Keras model file "
            "(a .keras file is a zip archive; this one is damaged or something else renamed)"
        )
    try:
        model = keras.saving.load_model(run_dir / MODEL_FILE, compile=False, safe_mode=True)
    except Exception as exc:
        raise ValueError(
            f"{str(run_dir / MODEL_FILE)!r} could not be loaded as a Keras model "
            f"with safe_mode: {type(exc).__name__}: {exc}"
        ) from exc
    check_matches_spec(model, spec)
    for row in layer_table(spec):  # same names are not enough: a model of another size would break the pages
        got = tuple(int(d) for d in model.get_layer(row.name).output.shape[1:])
        if got != tuple(row.output_shape):
            raise ValueError(
                f"{str(run_dir / MODEL_FILE)!r} does not match {SPEC_FILE}: layer {row.name} outputs "
                f"{got}, the architecture says {tuple(row.output_shape)}"
            )
    try:
        scaler = PixelScaler.load(run_dir / SCALER_FILE)
    except Exception as exc:  # a damaged .npz raises zipfile/pickle/KeyError errors
        raise ValueError(f"{str(run_dir / SCALER_FILE)!r} is damaged: {type(exc).__name__}: {exc}") from exc
    return ModelBundle(model=model, spec=spec, scaler=scaler, meta=read_meta(run_dir), path=run_dir)


def run_title(path: str | os.PathLike) -> str:
    """A model's short name: 'article II' or 'OIP series' for the bundled ones, else the run's folder name."""
    return BUNDLED_MODELS.get(Path(path), Path(path).name)


def bundled_models() -> list[Path]:
    """The read-only models shipped in assets/ (article II first)."""
    return [path for path in BUNDLED_MODELS if is_run_dir(path)]


def load_default() -> ModelBundle:
    return load_run(DEFAULT_MODEL_DIR)


def resolve_model_path(path: str | os.PathLike | None) -> Path:
    """A run folder (or its model.keras); None means the bundled default model."""
    if path is None:
        return DEFAULT_MODEL_DIR
    p = Path(path)
    return p.parent if p.name == MODEL_FILE else p


def confusion_of(meta: dict) -> np.ndarray:
    return np.array(meta["confusion"], dtype=np.int64)
