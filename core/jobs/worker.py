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
prediction) is served first when both want the CPU. When the dashboard goes away (the socket closes), the worker
exits at once.
"""

from __future__ import annotations

import argparse
import os
import pickle
import queue
import sys
import threading


def configure_threads(threads: int) -> None:
    """Thread counts of this process, set before numpy, scikit-learn or TensorFlow load them."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(max(1, min(2, threads)))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no spinning threads stealing the dashboard's CPU


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
    from core.device import configure_tensorflow, quiet_tensorflow_logs

    quiet_tensorflow_logs()  # the dashboard's stderr gets the product's lines only ($MNIST_EXPLORER_VERBOSE=1: all)
    device = configure_tensorflow(args.threads)
    from core.jobs.context import JobContext
    from core.jobs.kinds import describe_error, execute
    from core.progress import Relay

    context = JobContext()
    send(("ready", {"pid": os.getpid(), "device": device, "threads": args.threads}))
    while True:
        message = jobs.get()
        if message is None:
            return 0
        _, job_id, spec_bytes = message
        stop_event.clear()
        current[0] = job_id
        # the job's progress: every begin and epoch, steps at most 20 a second
        progress = Relay(lambda event, *values, job=job_id: send((event, job, *values)), stop_event.is_set, 0.05)
        try:
            spec = pickle.loads(spec_bytes)  # here, not in the reader: unpickling imports TensorFlow
            result = execute(spec, context, progress)
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
