"""Jobs as Ray tasks, for a class that outgrows one machine (``MNIST_EXPLORER_RAY=local|auto|HOST:PORT|ray://HOST:PORT``).

Three places take part:

* **The dashboard** (``RayBackend``) never imports Ray. It starts one *driver process*
  (``python -m core.jobs.ray``) and talks to it over a socket, with the messages of the embedded
  worker processes (``core.jobs.worker``). Ray's driver code ends its whole process when its Ray instance
  goes away ("The connection to the plasma store is failed. Terminate the process"); in a process of its
  own that ends the driver, not the dashboard. The dashboard then fails the running jobs with a message
  and runs new ones on this machine's worker processes (``core.jobs.local.ProcessBackend``), saying so.
* **The driver process** (``RayDriver``) connects to Ray on its main thread. Ray starts a local
  instance's processes with ``PR_SET_PDEATHSIG``, which Linux fires when the *thread* that started them
  ends; Streamlit runs scripts in short-lived threads, so ``ray.init`` in a script killed the instance
  a moment later and, with it, the dashboard (the cause of the crash on the first job). The driver ships
  what a job needs (its models' run folders as bytes and MNIST, put into the object store once per
  version, and this package as ``py_modules``), submits one task per job, relays its progress from a small
  actor and sends back the result as bytes. It never unpickles a job or a result, so it never imports
  TensorFlow.
* **Ray workers** (``_run_job``, ``_run_part``) run the job with ``core.jobs.kinds.execute`` in a
  ``RayJobContext``. Work that splits (the precursor's pattern ranges, the values of K of a sweep) fans out
  into part tasks through ``RayJobContext.map``; the parts report to the same actor, and a stop request
  reaches all of them through it.

A worker that dies mid-job makes Ray retry the task once; a second death fails the job with a message.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.jobs.context import JobContext
from core.jobs.system import FAILED, STOPPED, Backend, JobHandle, JobSystem
from core.progress import PartProgress, ProgressCallback, ProgressRecord, Relay

CORE_DIR = Path(__file__).resolve().parents[1]  # the core package, shipped to Ray workers
POLL_SECONDS = 0.5
STOP_CHECK_SECONDS = 0.5
STEP_SECONDS = 0.2
HARD_STOP_SECONDS = 45.0
CONNECT_TIMEOUT_SECONDS = 120.0  # a local instance starts in ~6 s; a cluster over a slow link may take longer


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError(
            "Ray is not installed; install the optional extra with 'pip install -r requirements-ray.txt'"
        ) from exc
    return ray


def worker_env(threads: int) -> dict[str, str]:
    """Environment of the cluster's worker processes: thread counts per job, quiet TensorFlow."""
    return {
        "OMP_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(max(1, min(2, threads))),
        "OMP_WAIT_POLICY": "PASSIVE",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


def check_address(address: str) -> str:
    """``local``, ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``; ValueError for anything else."""
    address = address.strip()
    if address in ("local", "auto") or address.startswith("ray://") or ":" in address:
        return address
    raise ValueError(f"Ray address {address!r} is not understood; use local, auto, HOST:PORT or ray://HOST:PORT")


def connect(address: str, threads: int = 1, num_cpus: int | None = None) -> None:
    """Connect to (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) or start (``local``) a Ray instance.

    Call it on a thread that lives as long as the connection (the driver process's main thread): a local
    instance's processes die with the thread that started them."""
    ray = _ray()
    address = check_address(address)
    if ray.is_initialized():
        return
    runtime_env = {"py_modules": [str(CORE_DIR)], "env_vars": worker_env(threads), "excludes": ["__pycache__", "*.pyc"]}
    common = dict(
        runtime_env=runtime_env,
        include_dashboard=False,
        log_to_driver=False,
        ignore_reinit_error=True,
        configure_logging=False,
    )
    if address == "local":
        ray.init(num_cpus=num_cpus, **common)
    else:
        ray.init(address=address, **common)


# --------------------------------------------------------------------------------------------
# What travels with a job
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFiles:
    """A run folder's files as bytes (model.keras, spec.json, scaler.npz, run.json, checkpoints) and their digest."""

    digest: str
    files: dict

    @classmethod
    def read(cls, folder: Path) -> ModelFiles:
        files = {
            p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file() and not p.name.startswith(".")
        }
        digest = hashlib.sha256(b"".join(name.encode() + files[name] for name in sorted(files))).hexdigest()[:16]
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
    models: dict = field(default_factory=dict)  # a model as the job names it (a run folder, or "default") → ref
    parallelism: int = 1
    threads: int = 1
    gpus: float = 0.0

    def refs(self) -> list:
        """The object references, in a fixed order (models, then MNIST)."""
        return list(self.models.values()) + ([self.mnist] if self.mnist is not None else [])


@dataclass(frozen=True)
class JobNeeds:
    """What the dashboard tells the driver about a job, so that the driver never unpickles it: the run
    folders it reads (as the job names them → the folder on this machine) and the MNIST file it reads."""

    models: dict = field(default_factory=dict)
    mnist: str | None = None
    needs_mnist: bool = False
    mnist_optional: bool = False  # the job does without it where it cannot be read


def job_needs(spec) -> JobNeeds:
    """The models and data a job reads, from its kind (``core.jobs.kinds.Kind.models`` / ``needs_mnist``)."""
    from core.data import MNIST_ENV_VAR
    from core.jobs.kinds import kind
    from core.runs import resolve_model_path

    k = kind(spec.kind)
    models = {(name or "default"): str(resolve_model_path(name)) for name in k.models(spec)}
    source = getattr(spec.config, "mnist", None) or os.environ.get(MNIST_ENV_VAR) or None
    return JobNeeds(models, source, k.needs_mnist(spec), k.mnist_optional)


# --------------------------------------------------------------------------------------------
# Progress: an actor per job, relays in the tasks
# --------------------------------------------------------------------------------------------
_ACTOR_CALLS = {"begin": "on_begin", "step": "on_step", "epoch": "on_epoch"}


class _StopCheck:
    """Asks a job's actor whether to stop, without ever blocking: a task blocked in Ray hands its CPU back, Ray starts
    another queued part in it, and the task then resumes beside it (3–4 parts on 2 CPUs, measured). The answer is
    awaited as a future and read on a later check."""

    def __init__(self, actor) -> None:
        self.actor, self._last, self._stop, self._answer = actor, 0.0, False, None

    def __call__(self) -> bool:
        if self._stop:
            return True
        if self._answer is not None and self._answer.done():
            self._stop = bool(self._answer.result())
            self._answer = None
        now = time.monotonic()
        if not self._stop and self._answer is None and now - self._last >= STOP_CHECK_SECONDS:
            self._last = now
            self._answer = self.actor.should_stop.remote().future()
        return self._stop


def actor_progress(actor, part: int | None = None) -> Relay:
    """A job's (or one part's) progress, sent to the job's actor (a ``ProgressRecord``) at most every 0.2 s."""
    if part is None:

        def send(event, *values):
            getattr(actor, _ACTOR_CALLS[event]).remote(*values)
    else:

        def send(event, *values):
            if event == "step":
                actor.on_part_step.remote(part, *values)
            elif event == "epoch":
                actor.on_epoch.remote(*values)

    return Relay(send, _StopCheck(actor), STEP_SECONDS)


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
        from core.runs import resolve_model_path

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

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[Any],
        progress: ProgressCallback,
        units: Sequence[int] | None = None,
        offset: int = 0,
        info: dict | None = None,
    ) -> list[Any]:
        ray = _ray()
        self.actor.begin_parts.remote(int(offset))
        options = dict(num_cpus=self.shipment.threads, num_gpus=self.shipment.gpus / 2, max_retries=1)
        refs = [
            _remote_part()
            .options(**options)
            .remote(fn, item, self.shipment, self.actor, i, info, *self.shipment.refs())
            for i, item in enumerate(items)
        ]
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
def _run_job(spec_bytes: bytes, shipment: Shipment, actor, *resolved) -> tuple[str, Any]:
    """The job's task on a Ray worker: ``("result", pickled result)`` or ``("failed", message)``. Both travel as
    plain values, so the driver never needs the classes of a job's results or errors."""
    from core.jobs.kinds import describe_error, execute

    try:
        spec = pickle.loads(spec_bytes)
        result = execute(spec, _worker_context(shipment, actor, resolved), actor_progress(actor))
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the job's panel
        return "failed", describe_error(exc)
    return "result", pickle.dumps(result)


def _run_part(fn, item, shipment: Shipment, actor, part: int, info, *resolved):
    """One part of a split job on a Ray worker."""
    ctx = _worker_context(shipment, actor, resolved)
    return fn(ctx, item, PartProgress(actor_progress(actor, part), 0, info))


_REMOTES: dict = {}


def _remote(name: str, fn):
    if name not in _REMOTES:
        _REMOTES[name] = _ray().remote(fn)
    return _REMOTES[name]


def _remote_part():
    return _remote("part", _run_part)


# --------------------------------------------------------------------------------------------
# The driver process: Ray on its main thread, jobs in from the dashboard, progress and results out
# --------------------------------------------------------------------------------------------
@dataclass
class _Running:
    job_id: str
    ref: Any
    actor: Any
    records: int = 0
    batches: int = 0
    label: str = ""
    total: int = -1
    stop_sent: float | None = None


class RayDriver:
    """Submits jobs to Ray and reports on them through ``emit(message)`` (the messages of ``core.jobs.worker``,
    plus ``("stopped", job_id, message)``). Lives in the driver process; its watcher thread polls the jobs."""

    def __init__(
        self,
        address: str = "local",
        threads: int = 1,
        num_cpus: int | None = None,
        emit: Callable[[tuple], None] = lambda message: None,
    ) -> None:
        connect(address, threads, num_cpus)
        ray = _ray()
        self.address, self.threads, self.emit = address, max(1, int(threads)), emit
        resources = ray.cluster_resources()
        self.cpus = int(resources.get("CPU", 1))
        self.gpus = int(resources.get("GPU", 0))
        self._actor_class = ray.remote(num_cpus=0)(ProgressRecord)
        self._job_remote = _remote("job", _run_job)
        self._mnist: dict = {}
        self._models: dict = {}
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._closed = False
        self._monitor = threading.Thread(target=self._watch, name="ray-jobs", daemon=True)
        self._monitor.start()

    def capacity(self) -> int:
        if self.gpus:
            return max(1, self.gpus)
        return max(1, self.cpus // self.threads)

    def describe(self) -> str:
        where = "a local Ray instance" if self.address == "local" else f"the Ray cluster at {self.address}"
        return f"{where} ({self.cpus} CPUs{f', {self.gpus} GPUs' if self.gpus else ''})"

    def info(self) -> dict:
        return {
            "pid": os.getpid(),
            "capacity": self.capacity(),
            "describe": self.describe(),
            "device": "GPU" if self.gpus else "CPU",
            "cpus": self.cpus,
            "gpus": self.gpus,
        }

    # -- shipping
    def _shipment(self, needs: JobNeeds) -> Shipment:
        ray = _ray()
        ship = Shipment(parallelism=self.capacity(), threads=self.threads, gpus=1.0 if self.gpus else 0.0)
        for name, folder in needs.models.items():
            files = ModelFiles.read(Path(folder))
            with self._lock:
                if files.digest not in self._models:
                    self._models[files.digest] = ray.put(files)
                ship.models[name] = self._models[files.digest]
        if needs.needs_mnist:
            from core.data import load_mnist

            key = needs.mnist or "keras"
            with self._lock:
                if key not in self._mnist:
                    try:
                        self._mnist[key] = ray.put(load_mnist(needs.mnist))
                    except Exception:
                        if not needs.mnist_optional:
                            raise
                        self._mnist[key] = None
                ship.mnist = self._mnist[key]
        return ship

    # -- running
    def start(self, job_id: str, spec_bytes: bytes, needs: JobNeeds) -> None:
        shipment = self._shipment(needs)
        actor = self._actor_class.remote()
        options = dict(num_cpus=self.threads, num_gpus=0.5 if self.gpus else 0, max_retries=1)
        ref = self._job_remote.options(**options).remote(spec_bytes, shipment, actor, *shipment.refs())
        with self._lock:
            self._running[job_id] = _Running(job_id, ref, actor)

    def stop(self, job_id: str) -> None:
        with self._lock:
            run = self._running.get(job_id)
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
        label, total, done, info, records, batches = ray.get(
            run.actor.since.remote(run.records, run.batches), timeout=5
        )
        if label != run.label or total != run.total:
            run.label, run.total = label, total
            self.emit(("begin", run.job_id, total, label))
        for record in records:
            self.emit(("epoch", run.job_id, record.pop("epoch"), record))
        self.emit(("step", run.job_id, int(done), dict(info), list(batches)))
        run.records += len(records)
        run.batches += len(batches)

    def _collect(self, ray, run: _Running) -> None:
        with self._lock:
            self._running.pop(run.job_id, None)
        try:
            self._update(ray, run)
        except Exception:  # noqa: BLE001
            pass
        try:
            state, value = ray.get(run.ref)
            message = (state, run.job_id, value)
        except ray.exceptions.TaskCancelledError:
            message = ("stopped", run.job_id, "Stopped.")
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            message = (
                ("stopped", run.job_id, "Stopped: the job did not end by itself, so its Ray worker was stopped.")
                if run.stop_sent is not None
                else (
                    "failed",
                    run.job_id,
                    f"The Ray worker running this job died twice ({type(exc).__name__}); nothing was saved.",
                )
            )
        except Exception as exc:  # noqa: BLE001
            message = ("failed", run.job_id, f"The Ray job failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        try:
            ray.kill(run.actor)
        except Exception:  # noqa: BLE001
            pass
        self.emit(message)

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


def driver_main(argv: list[str] | None = None) -> int:
    """``python -m core.jobs.ray --fd N --address A --threads T [--num-cpus C]``: the driver process."""
    parser = argparse.ArgumentParser(description="The Ray driver process of the dashboard (core.jobs.ray).")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--address", default="local")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--num-cpus", type=int, default=None)
    args = parser.parse_args(argv)
    from multiprocessing.connection import Connection

    conn = Connection(args.fd)
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            try:
                conn.send(message)
            except OSError:
                os._exit(0)  # the dashboard is gone

    try:
        driver = RayDriver(args.address, args.threads, args.num_cpus, emit=send)
    except Exception as exc:  # noqa: BLE001 - one sentence for the dashboard's notice
        send(("unavailable", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"))
        return 1
    send(("ready", driver.info()))
    inbox: queue.Queue = queue.Queue()

    def reader() -> None:
        while True:
            try:
                inbox.put(conn.recv())
            except (EOFError, OSError):
                inbox.put(("exit",))
                return

    threading.Thread(target=reader, name="driver-reader", daemon=True).start()
    while True:  # Ray calls stay on this (the main) thread and the driver's watcher
        message = inbox.get()
        if message[0] == "run":
            _, job_id, spec_bytes, needs = message
            try:
                driver.start(job_id, spec_bytes, needs)
            except Exception as exc:  # noqa: BLE001
                send(("failed", job_id, f"The job could not be sent to Ray: {type(exc).__name__}: {exc}"))
        elif message[0] == "stop":
            driver.stop(message[1])
        elif message[0] == "exit":
            driver.shutdown()
            _ray().shutdown()
            return 0


# --------------------------------------------------------------------------------------------
# The dashboard side
# --------------------------------------------------------------------------------------------
class RayBackend(Backend):
    """Jobs on Ray through a driver process; when Ray cannot be reached or goes away, this machine's worker
    processes (``fallback()``, made on first need) run the jobs instead and ``notice`` says so."""

    name = "ray"

    def __init__(
        self,
        address: str = "local",
        threads: int = 1,
        num_cpus: int | None = None,
        fallback: Callable[[], Backend] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        self.address, self.threads = check_address(address), max(1, int(threads))
        self.notice = ""
        self._make_fallback = fallback
        self._fallback: Backend | None = None
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[JobHandle, JobSystem]] = {}
        self._closed = False
        self._ready = threading.Event()
        self.info: dict = {}
        self._start_driver(num_cpus)
        if not self._ready.wait(connect_timeout):
            self.driver.kill()
            raise ConnectionError(f"Ray at {address!r} did not answer within {connect_timeout:.0f} s")
        if not self.info:
            raise ConnectionError(self._unavailable or f"the Ray driver for {address!r} ended at once")

    def _start_driver(self, num_cpus: int | None) -> None:
        from core.jobs.local import ChildProcess

        self._unavailable = ""
        # A lost GCS ends the driver after 10 s instead of Ray's 60, so the jobs' panels say so sooner.
        self.driver = ChildProcess(
            "core.jobs.ray",
            ["--address", self.address, "--threads", str(self.threads)]
            + (["--num-cpus", str(num_cpus)] if num_cpus else []),
            env={"RAY_USAGE_STATS_ENABLED": "0", "RAY_gcs_rpc_server_reconnect_timeout_s": "10"},
        )
        self.process = self.driver.process
        threading.Thread(target=self._read, name="ray-driver-reader", daemon=True).start()

    # -- what the job system asks
    @property
    def broken(self) -> bool:
        """True once Ray went away: new jobs run on the fallback (or cannot start without one)."""
        return bool(self.notice)

    def capacity(self) -> int:
        if self.broken:
            return self._fallback.capacity() if self._fallback is not None else 1
        return max(1, int(self.info.get("capacity", 1)))

    @property
    def workers(self) -> int:
        return 1 if self.broken else self.capacity()

    @property
    def device(self) -> str | None:
        return None if self.broken else self.info.get("device")

    def describe(self) -> str:
        if self.broken:
            return self._fallback.describe() if self._fallback is not None else "nowhere (Ray stopped)"
        return str(self.info.get("describe", f"Ray at {self.address}"))

    def start(self, handle: JobHandle, system: JobSystem) -> None:
        if not self.broken:
            needs = job_needs(handle.spec)
            with self._lock:
                self._jobs[handle.id] = (handle, system)
            try:
                self._send(("run", handle.id, pickle.dumps(handle.spec), needs))
                return
            except OSError:
                with self._lock:
                    self._jobs.pop(handle.id, None)
                self._went_away("the connection to its driver process was lost")
        if self._fallback is None:
            raise RuntimeError(self.notice)
        self._fallback.start(handle, system)

    def stop(self, handle: JobHandle) -> None:
        handle.progress.request_stop()
        with self._lock:
            mine = handle.id in self._jobs
        if mine:
            try:
                self._send(("stop", handle.id))
            except OSError:
                pass
        elif self._fallback is not None:
            self._fallback.stop(handle)

    def shutdown(self) -> None:
        self._closed = True
        self.driver.close(30.0)
        if self._fallback is not None:
            self._fallback.shutdown()

    # -- the driver's messages
    def _send(self, message: tuple) -> None:
        self.driver.send(message)

    def _read(self) -> None:
        from core.jobs.kinds import complete
        from core.jobs.local import relay_progress

        while True:
            try:
                message = self.driver.recv()
            except (EOFError, OSError):
                break
            except Exception:  # noqa: BLE001 - a message that cannot be read: skip it
                continue
            kind = message[0]
            if kind == "ready":
                self.info = dict(message[1])
                self._ready.set()
                continue
            if kind == "unavailable":
                self._unavailable = message[1]
                continue
            with self._lock:
                entry = self._jobs.get(message[1])
            if entry is None:
                continue
            handle, system = entry
            if relay_progress(handle.progress, message):
                continue
            with self._lock:
                self._jobs.pop(handle.id, None)
            if kind == "result":
                try:
                    result = pickle.loads(message[2])
                except Exception as exc:  # noqa: BLE001
                    system.job_ended(handle, FAILED, None, f"The result could not be read: {type(exc).__name__}: {exc}")
                    continue
                complete(system, handle, result)
            elif kind == "failed":
                system.job_ended(handle, FAILED, None, message[2])
            elif kind == "stopped":
                system.job_ended(handle, STOPPED, None, message[2])
        self._ready.set()
        if not self._closed:
            code = self.driver.wait(5)
            self._went_away(f"the connection to it was lost; its driver process ended with exit code {code}")

    def _went_away(self, why: str) -> None:
        """Ray is gone: fail what ran there, run new jobs on this machine."""
        with self._lock:
            if self.notice:
                return
            lost, self._jobs = list(self._jobs.values()), {}
            if not self.info:
                return  # it never connected: the constructor says why
            if self._make_fallback is not None:
                self._fallback = self._make_fallback()
                self.notice = (
                    f"Ray at {self.address!r} stopped ({why}). Jobs that ran there failed; new jobs run "
                    f"on {self._fallback.describe()}."
                )
            else:
                self.notice = f"Ray at {self.address!r} stopped ({why}); no new jobs can start."
        for handle, system in lost:
            system.job_ended(
                handle,
                FAILED,
                None,
                f"The Ray instance at {self.address!r} stopped while this job ran ({why}). Nothing was "
                "saved; start the job again"
                + (" (it will run on this machine)." if self._fallback is not None else "."),
            )
        for _handle, system in lost:
            system.wake()


if __name__ == "__main__":
    # Through the module's own name: Ray pickles the remote functions by reference to ``core.jobs.ray``
    # (a function of ``__main__`` would travel by value, with this module's globals).
    from core.jobs.ray import driver_main as _driver_main

    sys.exit(_driver_main())
