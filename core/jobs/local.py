"""Where jobs run: worker processes on this machine (the default), threads in this process, or Ray.

``ProcessBackend`` keeps one worker process per slot (``python -m core.jobs.worker``), started once and
reused, so TensorFlow is imported and engines are compiled once per worker, not per job. Long work in
its own process does not share the dashboard's interpreter lock: the dashboard's page runs (and the
garbage collection Streamlit does after each of them) cannot slow a job down, and a job cannot make
the pages stutter. A worker that dies fails its job with a message and is replaced; a job that does
not honour Stop within ``hard_stop_seconds`` has its worker restarted.

``InlineBackend`` runs jobs in threads of this process (notebooks, unit tests). ``ChildProcess`` is the socket
both the worker processes and the Ray driver process (``core.jobs.ray``) are spoken to through;
``core.jobs.setup`` picks a backend from the environment.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.jobs.system import FAILED, STOPPED, Backend, JobHandle, JobSystem

ROOT = Path(__file__).resolve().parents[2]  # the project: worker processes start here


def relay_progress(progress, message: tuple) -> bool:
    """Apply a worker's progress message (``begin``, ``step``, ``epoch``; see ``core.jobs.worker``) to a job's
    ``ProgressRecord``; False for any other message."""
    kind = message[0]
    if kind == "begin":
        progress.on_begin(message[2], message[3])
    elif kind == "step":
        if len(message) > 4:  # the step with the loss figures collected since the last one (a Ray job)
            progress.merge(message[2], message[3], message[4])
        else:
            progress.on_step(message[2], message[3])
    elif kind == "epoch":
        progress.on_epoch(message[2], message[3])
    else:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Threads in this process
# --------------------------------------------------------------------------------------------
class InlineBackend(Backend):
    """Jobs in threads of this process, sharing one ``JobContext`` (models and engines compiled once)."""

    name = "inline"

    def __init__(self, slots: int = 1) -> None:
        from core.jobs.context import JobContext

        self._slots = max(1, int(slots))
        self.context = JobContext()

    def capacity(self) -> int:
        return self._slots

    def start(self, handle: JobHandle, system: JobSystem) -> None:
        threading.Thread(target=self._run, args=(handle, system), name=f"job-{handle.id}", daemon=True).start()

    def _run(self, handle: JobHandle, system: JobSystem) -> None:
        from core.jobs.kinds import complete, describe_error, execute

        try:
            result = execute(handle.spec, self.context, handle.progress)
        except Exception as exc:  # noqa: BLE001
            system.job_ended(handle, FAILED, None, describe_error(exc))
            return
        complete(system, handle, result)

    def describe(self) -> str:
        return f"this process ({self._slots} job{'s' if self._slots > 1 else ''} at a time)"


# --------------------------------------------------------------------------------------------
# A child process spoken to over a socket (the worker processes, the Ray driver)
# --------------------------------------------------------------------------------------------
class ChildProcess:
    """``python -m MODULE --fd N ARGS...`` started with one end of a socket pair; pickled tuples both ways."""

    def __init__(self, module: str, args: list[str], env: dict | None = None) -> None:
        from multiprocessing.connection import Connection

        parent, child = socket.socketpair()
        environ = dict(os.environ, **(env or {}))
        environ.pop("PYTHONSTARTUP", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, "--fd", str(child.fileno()), *args],
            pass_fds=(child.fileno(),),
            cwd=str(ROOT),
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None,
            close_fds=True,
        )
        child.close()
        self.conn = Connection(parent.detach())
        self._send_lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: tuple) -> None:
        """OSError when the process is gone."""
        with self._send_lock:
            self.conn.send(message)

    def recv(self) -> tuple:
        """The next message; EOFError or OSError when the process is gone."""
        return self.conn.recv()

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """The exit code, killing the process when it has not ended within ``timeout`` seconds."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.wait()

    def kill(self) -> None:
        try:
            self.process.kill()
        except OSError:
            pass

    def close(self, timeout: float = 5.0) -> None:
        """Ask it to exit (``("exit",)``) and wait ``timeout`` seconds before killing it."""
        try:
            self.send(("exit",))
        except OSError:
            pass
        self.wait(timeout)


# --------------------------------------------------------------------------------------------
# Worker processes
# --------------------------------------------------------------------------------------------
class _Worker:
    """One ``python -m core.jobs.worker`` process and the thread that reads its messages."""

    def __init__(self, backend: ProcessBackend, index: int) -> None:
        self.backend, self.index = backend, index
        self.handle: JobHandle | None = None
        self.system: JobSystem | None = None
        self.ready = threading.Event()
        self.info: dict = {}
        self.stopping_since: float | None = None
        self.child = ChildProcess("core.jobs.worker", ["--threads", str(backend.threads)])
        self.process = self.child.process
        self._reader = threading.Thread(target=self._read, name=f"worker-{index}-reader", daemon=True)
        self._reader.start()

    @property
    def idle(self) -> bool:
        return self.handle is None and self.child.alive()

    def send(self, message: tuple) -> None:
        self.child.send(message)

    def run(self, handle: JobHandle, system: JobSystem) -> None:
        self.handle, self.system, self.stopping_since = handle, system, None
        if not self.ready.is_set():
            handle.progress.on_step(0, {"phase": "starting a worker process (loading TensorFlow)"})
        self.send(("run", handle.id, pickle.dumps(handle.spec)))

    def _read(self) -> None:
        while True:
            try:
                message = self.child.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # noqa: BLE001 - a result that cannot be unpickled here
                self._end(FAILED, None, f"The result could not be read: {type(exc).__name__}: {exc}")
                continue
            kind = message[0]
            if kind == "ready":
                self.info = message[1]
                self.ready.set()
                continue
            handle = self.handle
            if handle is None or message[1] != handle.id:
                continue  # a late message of a job that was already ended (stopped by force)
            if relay_progress(handle.progress, message):
                continue
            if kind == "result":
                system = self.system
                self.handle = None
                from core.jobs.kinds import complete

                complete(system, handle, message[2])
            elif kind == "failed":
                self._end(FAILED, None, message[2])
        self._died()

    def _end(self, state: str, result, message: str) -> None:
        handle, system = self.handle, self.system
        self.handle = None
        if handle is not None and system is not None:
            system.job_ended(handle, state, result, message)

    def _died(self) -> None:
        """The process is gone (killed, crashed, or asked to exit): end its job, let a new one take over."""
        code = self.child.wait(10)
        handle = self.handle
        if handle is not None:
            if self.stopping_since is not None:
                self._end(
                    STOPPED,
                    None,
                    f"Stopped: the job did not end by itself within "
                    f"{self.backend.hard_stop_seconds:.0f} s, so its worker process was restarted.",
                )
            else:
                why = " (killed: the machine may have run out of memory)" if code in (-9, 137) else ""
                self._end(
                    FAILED,
                    None,
                    f"The worker process running this job ended unexpectedly (exit code "
                    f"{code}{why}). Nothing was saved; try smaller settings.",
                )
        self.backend.replace_worker(self)

    def kill(self) -> None:
        self.child.kill()

    def close(self) -> None:
        self.child.close(5.0)


class ProcessBackend(Backend):
    """``slots`` worker processes on this machine, each with ``threads`` threads for its job."""

    name = "processes"

    def __init__(self, slots: int = 1, threads: int = 1, hard_stop_seconds: float = 45.0) -> None:
        self.slots, self.threads = max(1, int(slots)), max(1, int(threads))
        self.hard_stop_seconds = hard_stop_seconds
        self._lock = threading.Condition()
        self._closed = False
        self._workers = [_Worker(self, i) for i in range(self.slots)]  # start now: TensorFlow loads meanwhile

    def capacity(self) -> int:
        return self.slots

    def replace_worker(self, worker: _Worker) -> None:
        """A worker process ended: a fresh one takes its slot (unless the backend is shutting down)."""
        with self._lock:
            if self._closed or worker not in self._workers:
                return
            self._workers[self._workers.index(worker)] = _Worker(self, worker.index)
            self._lock.notify_all()

    def start(self, handle: JobHandle, system: JobSystem) -> None:
        with self._lock:
            deadline = time.monotonic() + 30
            while True:
                idle = [w for w in self._workers if w.idle]
                if idle or self._closed:
                    break
                if not self._lock.wait(max(0.0, deadline - time.monotonic())) and time.monotonic() > deadline:
                    raise RuntimeError("no worker process became free")
            if self._closed:
                raise RuntimeError("the job backend is shut down")
            worker = idle[0]
        worker.run(handle, system)

    def stop(self, handle: JobHandle) -> None:
        handle.progress.request_stop()
        worker = self._worker_of(handle)
        if worker is None:
            return
        worker.stopping_since = time.monotonic()
        try:
            worker.send(("stop", handle.id))
        except OSError:
            pass
        timer = threading.Timer(self.hard_stop_seconds, self._force_stop, args=(worker, handle))
        timer.daemon = True
        timer.start()

    def _force_stop(self, worker: _Worker, handle: JobHandle) -> None:
        if worker.handle is handle and not handle.done:
            worker.kill()  # its reader ends the job as stopped and a fresh worker takes the slot

    def _worker_of(self, handle: JobHandle) -> _Worker | None:
        with self._lock:
            return next((w for w in self._workers if w.handle is handle), None)

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Block until every worker has loaded TensorFlow (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        return all(w.ready.wait(max(0.0, deadline - time.monotonic())) for w in list(self._workers))

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def describe(self) -> str:
        device = next((w.info.get("device") for w in self._workers if w.info), None)
        return (
            f"{self.slots} worker process{'es' if self.slots > 1 else ''} on this machine, "
            f"{self.threads} thread{'s' if self.threads > 1 else ''} each" + (f", {device}" if device else "")
        )

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._workers)
            self._lock.notify_all()
        for worker in workers:
            worker.close()
