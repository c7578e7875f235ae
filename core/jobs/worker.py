"""A worker process of the embedded job backend: ``python -m core.jobs.worker --fd N --threads T [--nice 10]``.

It talks to the dashboard (``core.jobs.local.ProcessBackend``) over one socket, whose file descriptor it
inherits, with pickled tuples:

    from the dashboard: ("run", job_id, pickled spec) · ("stop", job_id) · ("exit",)
    to the dashboard:   ("ready", info) · ("begin", job_id, total, label) · ("step", job_id, done, info)
                        · ("epoch", job_id, epoch, metrics) · ("result", job_id, result)
                        · ("failed", job_id, message)

Jobs run one at a time on the main thread; a reader thread receives stop requests meanwhile. The
thread counts (TensorFlow, OpenMP, BLAS) are this process's own configuration, set before the
libraries load, so a job computes the same in every worker with the same count, whatever runs beside
it. The worker runs at a lower scheduling priority (nice 10), so the dashboard's own work (a stroke's
prediction) is served first when both want the CPU. When the dashboard goes away (the socket closes), the worker exits at once.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time


def configure_threads(threads: int) -> None:
    """Thread counts of this process, set before numpy, scikit-learn or TensorFlow load them."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(max(1, min(2, threads)))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no spinning threads stealing the dashboard's CPU
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _configure_tensorflow(threads: int) -> str:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
    for gpu in tf.config.list_physical_devices("GPU"):
        try:  # several workers can share one GPU
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    gpus = tf.config.list_logical_devices("GPU")
    return f"GPU ({gpus[0].name})" if gpus else "CPU"


def describe_error(exc: BaseException) -> str:
    """A sentence for the job panel: a ValueError's own words, otherwise the error's type and text."""
    if isinstance(exc, MemoryError):
        return "The job ran out of memory. Use fewer maps, starts, patterns or digits."
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, ValueError):
        return text
    if "OOM" in text or "out of memory" in text.lower():
        return f"The job ran out of memory ({type(exc).__name__}). Use fewer maps, starts, patterns or digits."
    return f"{type(exc).__name__}: {text}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    try:  # long work yields to the dashboard: pages and drawing stay responsive while jobs run
        os.nice(args.nice)
    except (AttributeError, OSError):
        pass

    from multiprocessing.connection import Connection

    conn = Connection(args.fd)
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            conn.send(message)

    import queue

    jobs: queue.Queue = queue.Queue()
    stop_event = threading.Event()
    current: list = [None]

    def reader() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the dashboard is gone: nothing to report to
            if message[0] == "run":
                jobs.put(message)
            elif message[0] == "stop":
                if current[0] == message[1]:
                    stop_event.set()
            elif message[0] == "exit":
                jobs.put(None)
                return

    threading.Thread(target=reader, name="worker-reader", daemon=True).start()
    device = _configure_tensorflow(args.threads)
    from core.jobs.context import JobContext
    from core.progress import ProgressCallback
    from core.jobs.kinds import execute

    class PipeProgress(ProgressCallback):
        """Sends a job's progress to the dashboard: every begin/epoch, steps at most 20 per second."""

        def __init__(self, job_id: str) -> None:
            self.job_id, self.done, self.total = job_id, 0, 0
            self._last, self._phase = 0.0, None

        def on_begin(self, total, label=""):
            self.total, self.done = int(total), 0
            send(("begin", self.job_id, int(total), str(label)))

        def on_step(self, done, info=None):
            self.done = int(done)
            now = time.monotonic()
            phase = (info or {}).get("phase")
            if now - self._last >= 0.05 or phase != self._phase or self.done >= self.total:
                self._last, self._phase = now, phase
                send(("step", self.job_id, self.done, dict(info or {})))

        def on_epoch(self, epoch, metrics):
            send(("epoch", self.job_id, int(epoch), dict(metrics)))

        def should_stop(self):
            return stop_event.is_set()

    context = JobContext()
    send(("ready", {"pid": os.getpid(), "device": device, "threads": args.threads}))
    while True:
        message = jobs.get()
        if message is None:
            return 0
        _, job_id, spec_bytes = message
        stop_event.clear()
        current[0] = job_id
        try:
            import pickle

            spec = pickle.loads(spec_bytes)  # here, not in the reader: unpickling imports TensorFlow
            result = execute(spec, context, PipeProgress(job_id))
            try:
                send(("result", job_id, result))
            except Exception as exc:  # a result that cannot be pickled is a bug: say so, do not hang
                send(("failed", job_id, f"The result could not be sent back: {describe_error(exc)}"))
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a message in the job's panel
            send(("failed", job_id, describe_error(exc)))
            if isinstance(exc, KeyboardInterrupt):
                return 1
        finally:
            current[0] = None


if __name__ == "__main__":
    sys.exit(main())
