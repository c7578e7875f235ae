"""Jobs as Ray tasks, for a class that outgrows one machine (``MNIST_EXPLORER_RAY=local|auto|ray://HOST:PORT``).

The dashboard server stays light: it submits each job as one Ray task (with ``num_gpus`` where the
cluster has GPUs), reads its progress from a small actor the task reports to, and receives the result
from the object store. Any number of dashboard servers can share one cluster. Work that splits (the
precursor's pattern ranges, the values of K of a sweep) fans out from the job's task into part tasks
through ``RayJobContext.map``; the parts report their units of work to the same actor, and a stop
request reaches all of them through it.

What a job needs travels with it: the model's run folder as bytes and MNIST, both put into the object
store once per version, and this package itself (``runtime_env`` ``py_modules``), so cluster workers
need no copy of the project. A trained run comes back as bytes and is written into the dashboard's
runs folder (``core.tasks``'s train kind).

A worker that dies mid-job makes Ray retry the task once; a second death fails the job with a message.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .context import JobContext
from .jobs import FAILED, FINISHED, STOPPED, Backend, JobHandle, JobSystem
from .progress import ProgressCallback

CORE_DIR = Path(__file__).resolve().parent
POLL_SECONDS = 0.5
STOP_CHECK_SECONDS = 0.5
STEP_SECONDS = 0.2
HARD_STOP_SECONDS = 45.0


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("Ray is not installed; install the optional extra with "
                           "'pip install -r requirements-ray.txt'") from exc
    return ray


def worker_env(threads: int) -> dict[str, str]:
    """Environment of the cluster's worker processes: thread counts per job, quiet TensorFlow."""
    return {"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(max(1, min(2, threads))),
            "OMP_WAIT_POLICY": "PASSIVE", "TF_CPP_MIN_LOG_LEVEL": "2"}


def connect(address: str, threads: int = 1, num_cpus: int | None = None) -> None:
    """Connect to (``auto``, ``ray://HOST:PORT``) or start (``local``) a Ray instance for the jobs."""
    ray = _ray()
    address = address.strip()
    runtime_env = {"py_modules": [str(CORE_DIR)], "env_vars": worker_env(threads),
                   "excludes": ["__pycache__", "*.pyc"]}
    if ray.is_initialized():
        return
    common = dict(runtime_env=runtime_env, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                  configure_logging=False)
    if address == "local":
        ray.init(num_cpus=num_cpus, **common)
    elif address == "auto" or address.startswith("ray://") or ":" in address:
        ray.init(address=address, **common)
    else:
        raise ValueError(f"Ray address {address!r} is not understood; use local, auto or ray://HOST:PORT")


# --------------------------------------------------------------------------------------------
# What travels with a job
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFiles:
    """A run folder as bytes (model.keras, spec.json, scaler.npz, run.json) and their digest."""

    digest: str
    files: dict

    @classmethod
    def read(cls, folder: Path) -> "ModelFiles":
        from .runs import MODEL_FILE, SCALER_FILE, SPEC_FILE, META_FILE

        files = {name: (folder / name).read_bytes() for name in (MODEL_FILE, SPEC_FILE, SCALER_FILE, META_FILE)}
        digest = hashlib.sha256(b"".join(files[n] for n in sorted(files))).hexdigest()[:16]
        return cls(digest, files)

    def materialise(self, root: Path) -> Path:
        """Write the files into ``root/<digest>`` (once; atomically) and return that folder."""
        folder = root / self.digest
        if not folder.is_dir():
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
            for name, data in self.files.items():
                (tmp / name).write_bytes(data)
            try:
                os.rename(tmp, folder)
            except OSError:  # another task of this worker was first
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
        return folder


@dataclass
class Shipment:
    """Object-store references a job's tasks resolve on their worker: MNIST and model folders by path."""

    mnist: Any = None
    models: dict = field(default_factory=dict)  # the job's model (its run folder, or "default") → ModelFiles ref
    parallelism: int = 1
    threads: int = 1
    gpus: float = 0.0

    def refs(self) -> list:
        """The object references, in a fixed order (models, then MNIST)."""
        return list(self.models.values()) + ([self.mnist] if self.mnist is not None else [])


# --------------------------------------------------------------------------------------------
# Progress: an actor per job, relays in the tasks
# --------------------------------------------------------------------------------------------
class _ProgressState:
    """The state the progress actor keeps (a plain class, wrapped by ``ray.remote`` on first use)."""

    def __init__(self) -> None:
        self.label, self.total, self.done, self.info = "", 0, 0, {}
        self.records: list = []
        self.batches: list = []
        self.stop = False
        self.part_offset = 0
        self.parts: dict = {}

    def begin(self, total, label):
        self.label, self.total, self.done = label, int(total), 0

    def step(self, done, info):
        self.done = int(done)
        self.parts = {}
        if info:
            self.info = info
            if "loss" in info and len(self.batches) < 20_000:
                self.batches.append((float(done), float(info["loss"]), float(info.get("accuracy", float("nan")))))

    def epoch(self, epoch, metrics):
        self.records.append({"epoch": epoch, **metrics})

    def parts_begin(self, offset):
        self.part_offset, self.parts = int(offset), {}

    def part_step(self, part, done, info):
        self.parts[part] = int(done)
        self.done = self.part_offset + sum(self.parts.values())
        if info:
            self.info = info

    def request_stop(self):
        self.stop = True

    def stopped(self):
        return self.stop

    def snapshot(self, n_records, n_batches):
        return (self.label, self.total, self.done, self.info, self.records[n_records:], self.batches[n_batches:])


class RayProgress(ProgressCallback):
    """A job's progress, sent to its actor from wherever the job runs (steps at most every 0.2 s)."""

    def __init__(self, actor, part: int | None = None) -> None:
        self.actor, self.part = actor, part
        self.done, self.total = 0, 0
        self._last_step, self._phase = 0.0, None
        self._last_check, self._stop, self._answer = 0.0, False, None

    def on_begin(self, total, label=""):
        self.total = int(total)
        if self.part is None:
            self.actor.begin.remote(int(total), str(label))

    def on_step(self, done, info=None):
        self.done = int(done)
        now = time.monotonic()
        phase = (info or {}).get("phase")
        if now - self._last_step < STEP_SECONDS and self.done < self.total and phase == self._phase:
            return
        self._last_step, self._phase = now, phase
        if self.part is None:
            self.actor.step.remote(self.done, dict(info or {}))
        else:
            self.actor.part_step.remote(self.part, self.done, dict(info or {}))

    def on_epoch(self, epoch, metrics):
        self.actor.epoch.remote(int(epoch), dict(metrics))

    def should_stop(self) -> bool:
        # Never a blocking ray.get here: a task blocked in Ray hands its CPU back, Ray starts another queued part
        # in it, and the task then resumes beside it (3–4 parts on 2 CPUs, measured). The answer is awaited as
        # a future and read on a later check.
        if self._stop:
            return True
        if self._answer is not None and self._answer.done():
            self._stop = bool(self._answer.result())
            self._answer = None
        now = time.monotonic()
        if not self._stop and self._answer is None and now - self._last_check >= STOP_CHECK_SECONDS:
            self._last_check = now
            self._answer = self.actor.stopped.remote().future()
        return self._stop


class _PartOffset(ProgressCallback):
    """A part's progress seen from its own work: its units, reported as one part of the job."""

    def __init__(self, relay: RayProgress, info: dict | None) -> None:
        self.relay, self.info, self.done = relay, dict(info or {}), 0

    def on_step(self, done, info=None):
        self.done = int(done)
        self.relay.on_step(self.done, {**self.info, **(info or {})})

    def on_epoch(self, epoch, metrics):
        self.relay.on_epoch(epoch, metrics)

    def should_stop(self):
        return self.relay.should_stop()


# --------------------------------------------------------------------------------------------
# The worker side
# --------------------------------------------------------------------------------------------
class RayJobContext(JobContext):
    """The context of a Ray worker process: models and MNIST from the job's shipment, parts as tasks."""

    def __init__(self) -> None:
        super().__init__()
        self.shipment: Shipment | None = None
        self.actor = None
        self.resolved: dict = {}  # the shipment's objects, resolved by Ray before the task began (ref hex → value)
        self._model_root = Path(tempfile.gettempdir()) / f"mnist-explorer-ray-models-{os.getuid()}"

    @property
    def parallelism(self) -> int:  # type: ignore[override]
        return self.shipment.parallelism if self.shipment else 1

    def model_path(self, path: str | None):
        from .runs import resolve_model_path

        ref = (self.shipment.models if self.shipment else {}).get(path or "default")
        if ref is None:  # not shipped: the worker must see the folder itself
            return resolve_model_path(path)
        return self._object(ref).materialise(self._model_root)

    def _object(self, ref):
        value = self.resolved.get(ref.hex())
        return value if value is not None else _ray().get(ref)

    def mnist(self, source: str | None = None):
        if self.shipment is None or self.shipment.mnist is None:
            return super().mnist(source)
        ref = self.shipment.mnist
        return self._mnist.get(("ray", ref.hex()), lambda: self._object(ref))

    def map(self, fn: Callable[..., Any], items: Sequence[Any], progress: ProgressCallback,
            units: Sequence[int] | None = None, offset: int = 0, info: dict | None = None) -> list[Any]:
        ray = _ray()
        self.actor.parts_begin.remote(int(offset))
        options = dict(num_cpus=self.shipment.threads, num_gpus=self.shipment.gpus / 2, max_retries=1)
        refs = [_remote_part().options(**options).remote(fn, item, self.shipment, self.actor, i, info,
                                                         *self.shipment.refs())
                for i, item in enumerate(items)]
        try:
            return ray.get(refs)
        except BaseException:
            for ref in refs:
                ray.cancel(ref)
            raise


_WORKER_CONTEXT: RayJobContext | None = None  # one per Ray worker process: its compiled engines stay warm


def _worker_context(shipment: Shipment, actor, resolved: tuple = ()) -> RayJobContext:
    global _WORKER_CONTEXT
    if _WORKER_CONTEXT is None:
        _WORKER_CONTEXT = RayJobContext()
    _WORKER_CONTEXT.shipment, _WORKER_CONTEXT.actor = shipment, actor
    _WORKER_CONTEXT.resolved = {ref.hex(): value for ref, value in zip(shipment.refs(), resolved)}
    return _WORKER_CONTEXT


# The shipment's objects go in as top-level arguments (``*resolved``): Ray fetches them before the task starts,
# so the task never blocks in ray.get (which would hand its CPU to another part, see RayProgress.should_stop).
def _run_job(spec_bytes: bytes, shipment: Shipment, actor, *resolved):
    """The job's task on a Ray worker."""
    from .tasks import execute

    spec = pickle.loads(spec_bytes)
    return execute(spec, _worker_context(shipment, actor, resolved), RayProgress(actor))


def _run_part(fn, item, shipment: Shipment, actor, part: int, info, *resolved):
    """One part of a split job on a Ray worker."""
    ctx = _worker_context(shipment, actor, resolved)
    return fn(ctx, item, _PartOffset(RayProgress(actor, part), info))


_REMOTES: dict = {}


def _remote(name: str, fn):
    if name not in _REMOTES:
        _REMOTES[name] = _ray().remote(fn)
    return _REMOTES[name]


def _remote_part():
    return _remote("part", _run_part)


# --------------------------------------------------------------------------------------------
# The dashboard side
# --------------------------------------------------------------------------------------------
@dataclass
class _Running:
    handle: JobHandle
    system: JobSystem
    ref: Any
    actor: Any
    records: int = 0
    batches: int = 0
    stop_sent: float | None = None


class RayBackend(Backend):
    """Jobs on a Ray cluster: one task per job (a GPU each where the cluster has GPUs)."""

    name = "ray"

    def __init__(self, address: str = "local", threads: int = 1, num_cpus: int | None = None) -> None:
        connect(address, threads, num_cpus)
        ray = _ray()
        self.address, self.threads = address, max(1, int(threads))
        resources = ray.cluster_resources()
        self.cpus = int(resources.get("CPU", 1))
        self.gpus = int(resources.get("GPU", 0))
        self._actor_class = ray.remote(num_cpus=0)(_ProgressState)
        self._job_remote = _remote("job", _run_job)
        self._mnist_ref = None
        self._models: dict = {}
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._closed = False
        self._monitor = threading.Thread(target=self._watch, name="ray-jobs", daemon=True)
        self._monitor.start()

    # -- capacity and resources
    def capacity(self) -> int:
        if self.gpus:
            return max(1, self.gpus)
        return max(1, self.cpus // self.threads)

    @property
    def workers(self) -> int:
        """How many parts of a split job can run at once on this cluster."""
        return self.capacity()

    @property
    def device(self) -> str:
        return "GPU" if self.gpus else "CPU"

    def describe(self) -> str:
        where = "a local Ray instance" if self.address == "local" else f"the Ray cluster at {self.address}"
        return f"{where} ({self.cpus} CPUs{f', {self.gpus} GPUs' if self.gpus else ''})"

    # -- shipping
    def _shipment(self, handle: JobHandle) -> Shipment:
        from .runs import model_key, resolve_model_path
        from .tasks import kind

        ray = _ray()
        ship = Shipment(parallelism=self.workers, threads=self.threads, gpus=1.0 if self.gpus else 0.0)
        spec = handle.spec
        if kind(spec.kind).uses_model:
            folder = resolve_model_path(spec.model)
            key = model_key(folder)
            with self._lock:
                if key not in self._models:
                    self._models[key] = ray.put(ModelFiles.read(folder))
                ship.models[spec.model or "default"] = self._models[key]
        if spec.kind in ("train", "sweep", "cluster-mlp"):
            with self._lock:
                if self._mnist_ref is None:
                    from .data import load_mnist

                    self._mnist_ref = ray.put(load_mnist(getattr(spec.config, "mnist", None)))
                ship.mnist = self._mnist_ref
        return ship

    # -- running
    def start(self, handle: JobHandle, system: JobSystem) -> None:
        shipment = self._shipment(handle)
        actor = self._actor_class.remote()
        options = dict(num_cpus=self.threads, num_gpus=0.5 if self.gpus else 0, max_retries=1)
        ref = self._job_remote.options(**options).remote(pickle.dumps(handle.spec), shipment, actor, *shipment.refs())
        with self._lock:
            self._running[handle.id] = _Running(handle, system, ref, actor)

    def stop(self, handle: JobHandle) -> None:
        handle.progress.request_stop()
        with self._lock:
            run = self._running.get(handle.id)
        if run is None:
            return
        run.actor.request_stop.remote()
        run.stop_sent = time.monotonic()

    def _watch(self) -> None:
        ray = _ray()
        while not self._closed:
            time.sleep(POLL_SECONDS)
            with self._lock:
                running = [] if self._closed else list(self._running.values())
            for run in running:
                if self._closed:  # shutdown() waits for this loop: nothing may touch Ray after ray.shutdown()
                    break
                try:
                    self._update(ray, run)
                except Exception:  # noqa: BLE001 - the actor may be gone with its node; the ref tells
                    pass
                done, _ = ray.wait([run.ref], timeout=0)
                if done:
                    self._collect(ray, run)
                elif run.stop_sent is not None and time.monotonic() - run.stop_sent > HARD_STOP_SECONDS:
                    ray.cancel(run.ref, force=True)

    def _update(self, ray, run: _Running) -> None:
        label, total, done, info, records, batches = ray.get(run.actor.snapshot.remote(run.records, run.batches),
                                                              timeout=5)
        progress = run.handle.progress
        if label != progress.label or total != progress.total:
            progress.on_begin(total, label)
        for record in records:
            progress.on_epoch(record.pop("epoch"), record)
        with progress._lock:
            progress.done = int(done)
            progress.info = dict(info)
            progress.batches.extend(batches)
        run.records += len(records)
        run.batches += len(batches)

    def _collect(self, ray, run: _Running) -> None:
        from .tasks import finish
        from .worker import describe_error

        with self._lock:
            self._running.pop(run.handle.id, None)
        try:
            self._update(ray, run)
        except Exception:  # noqa: BLE001
            pass
        state, result, message = FINISHED, None, ""
        try:
            result = ray.get(run.ref)
        except ray.exceptions.TaskCancelledError:
            state, message = STOPPED, "Stopped."
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            state, message = FAILED, describe_error(cause) if cause is not None else str(exc).splitlines()[0]
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            state = STOPPED if run.stop_sent is not None else FAILED
            message = ("Stopped: the job did not end by itself, so its Ray worker was stopped."
                       if state == STOPPED else
                       f"The Ray worker running this job died twice ({type(exc).__name__}); nothing was saved.")
        except Exception as exc:  # noqa: BLE001
            state, message = FAILED, f"The Ray job failed: {describe_error(exc)}"
        if state == FINISHED:
            try:
                result = finish(run.handle.spec, result)
            except Exception as exc:  # noqa: BLE001
                state, result, message = FAILED, None, f"The result could not be kept: {describe_error(exc)}"
        try:
            ray.kill(run.actor)
        except Exception:  # noqa: BLE001
            pass
        run.system.job_ended(run.handle, state, result, message)

    def shutdown(self) -> None:
        """Cancel the running jobs and stop watching them. Returns only when the watcher thread has ended:
        a thread that calls Ray after ``ray.shutdown()`` makes Ray end the whole process (exit code 1)."""
        self._closed = True
        with self._lock:
            running = list(self._running.values())
        ray = _ray()
        for run in running:
            try:
                ray.cancel(run.ref, force=True)
            except Exception:  # noqa: BLE001
                pass
        if self._monitor is not threading.current_thread():
            self._monitor.join(timeout=30)
