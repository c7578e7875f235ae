"""The dashboard's job system, as the environment asks for it: how many jobs at once, threads per job, worker
processes or threads, and Ray (``MNIST_EXPLORER_JOBS``, ``MNIST_EXPLORER_THREADS``, ``MNIST_EXPLORER_EXECUTOR``,
``MNIST_EXPLORER_RAY``). An unreachable Ray falls back to this machine, with a notice saying so."""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.jobs.kinds import job_system
from core.jobs.local import InlineBackend, ProcessBackend
from core.jobs.system import Backend, JobSystem

JOBS_ENV, THREADS_ENV, EXECUTOR_ENV, RAY_ENV = (
    "MNIST_EXPLORER_JOBS",
    "MNIST_EXPLORER_THREADS",
    "MNIST_EXPLORER_EXECUTOR",
    "MNIST_EXPLORER_RAY",
)
EXECUTORS = ("process", "thread")


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class BackendConfig:
    """How many heavy jobs run at once (``slots``, default one per 2 cores), threads per job (default:
    the cores divided among the slots), the embedded executor (``process`` or ``thread``) and the Ray
    address (``local``, ``auto``, ``ray://HOST:PORT`` or empty for none)."""

    slots: int
    threads: int
    executor: str = "process"
    ray: str = ""

    @classmethod
    def from_env(cls, environ=None) -> BackendConfig:
        env = os.environ if environ is None else environ
        cores = cpu_count()
        slots = _positive_int(env, JOBS_ENV, max(1, cores // 2))
        threads = _positive_int(env, THREADS_ENV, max(1, cores // slots))
        executor = env.get(EXECUTOR_ENV, "process").strip().lower() or "process"
        if executor not in EXECUTORS:
            raise ValueError(f"{EXECUTOR_ENV}={executor!r} is not one of {EXECUTORS}")
        return cls(slots, threads, executor, env.get(RAY_ENV, "").strip())


def _positive_int(env, name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} must be a whole number ≥ 1") from None
    if value < 1:
        raise ValueError(f"{name}={value} must be ≥ 1")
    return value


@dataclass
class BackendChoice:
    """The backend in use and, when Ray was asked for but could not be reached, why not."""

    backend: Backend
    slots: int
    notice: str = ""


def make_backend(settings: BackendConfig | None = None) -> BackendChoice:
    """The backend the environment asks for. An unreachable Ray address falls back to the embedded
    backend, with a notice saying so (shown once in the sidebar)."""
    settings = settings or BackendConfig.from_env()
    notice = ""

    def embedded() -> Backend:
        if settings.executor == "thread":
            return InlineBackend(settings.slots)
        return ProcessBackend(settings.slots, settings.threads)

    if settings.ray:
        try:
            from core.jobs.ray import RayBackend

            backend = RayBackend(settings.ray, threads=settings.threads, fallback=embedded)
            return BackendChoice(backend, backend.capacity())
        except Exception as exc:  # noqa: BLE001 - one clear message, then the embedded backend
            notice = (
                f"Ray at {settings.ray!r} could not be used ({type(exc).__name__}: {exc}); jobs run on this "
                "machine instead."
            )
    return BackendChoice(embedded(), settings.slots, notice)


def make_job_system(settings: BackendConfig | None = None) -> tuple[JobSystem, str]:
    """A job system on the backend the environment asks for, and the fall-back notice (or "")."""
    choice = make_backend(settings)
    return job_system(choice.backend), choice.notice
