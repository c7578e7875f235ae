"""What the commands of ``python -m core`` share: the last JSON line, the backend arguments, running a job."""

from __future__ import annotations

import argparse
import json
import time

from core.progress import PrintProgress


def _emit(result: dict, started: float) -> int:
    """Print a command's result as the last stdout line: its figures, ``seconds`` and ``device`` (where it computed,
    ``core.device.describe_device()``, unless the command names it itself, e.g. a job's own device)."""
    result["seconds"] = round(time.perf_counter() - started, 3)
    result.setdefault("device", current_device())
    print(json.dumps(result))
    return 0


def current_device() -> str:
    """The device of this process, in words: 'CPU' or 'GPU (name)' (``core.device.describe_device``). A job run on
    Ray computed on its worker's device, which the job's result names where it matters."""
    from core.device import describe_device

    return describe_device()


BACKENDS = ("local", "ray")


def add_backend_args(parser: argparse.ArgumentParser) -> None:
    """``--backend local|ray`` and ``--ray-address`` for a command that runs a job."""
    parser.add_argument(
        "--backend",
        default="local",
        choices=BACKENDS,
        help="local: in this process; ray: as a Ray task (a local Ray instance unless --ray-address)",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to use with --backend ray: auto, ray://HOST:PORT (default: start a local one)",
    )


def run_job(args: argparse.Namespace, spec):
    """Run a job as the page would (``core.jobs.kinds``), here or on Ray, printing progress on stderr; returns
    its result. A failed job raises ValueError with its message; a stopped one returns its partial result."""
    from core.jobs.kinds import execute, finish

    if getattr(args, "backend", "local") == "local":
        from core.jobs.context import JobContext

        return finish(spec, execute(spec, JobContext(), PrintProgress()))
    from core.jobs.kinds import job_system
    from core.jobs.ray import RayBackend
    from core.jobs.setup import BackendConfig
    from core.jobs.system import FAILED

    threads = BackendConfig.from_env().threads  # $MNIST_EXPLORER_THREADS per job, as for the dashboard
    system = job_system(RayBackend(args.ray_address or "local", threads=threads))
    try:
        handle = system.submit(spec)
        shown = PrintProgress()
        label = None
        while not handle.wait(1.0):
            snap = handle.snapshot()
            if snap.total and snap.label != label:
                label = snap.label
                shown.on_begin(snap.total, snap.label)
            if snap.total:
                shown.on_step(snap.done, snap.info)
        if handle.state == FAILED:
            raise ValueError(handle.message)
        return handle.result
    finally:
        system.shutdown()
