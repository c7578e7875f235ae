"""Where TensorFlow computes: the one probe of the device, the worker's TensorFlow settings, and a CPU fall-back
when the GPU runs out of memory."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def describe_device() -> str:
    """'GPU (name)' when TensorFlow sees a GPU, else 'CPU': for results, the sidebar and the CLI. Probed once per
    process (the devices do not change while it runs)."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return f"GPU ({gpus[0].name})" if gpus else "CPU"


def gpu_available() -> bool:
    return describe_device().startswith("GPU")


def device_kind() -> str:
    """'GPU' or 'CPU'."""
    return "GPU" if gpu_available() else "CPU"


def configure_tensorflow(threads: int) -> str:
    """A job worker's TensorFlow: ``threads`` for its operations, GPU memory that grows as needed (several workers
    share one GPU). Call it before any computation; returns ``describe_device()``."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: keep what it has
            pass
    return describe_device()


def _is_out_of_memory(exc: BaseException) -> bool:
    import tensorflow as tf

    return isinstance(exc, tf.errors.ResourceExhaustedError) or "OOM" in str(exc) or "out of memory" in str(exc)


def run_with_cpu_fallback(fn: Callable[[], T], notify: Callable[[str], None] | None = None) -> tuple[T, str]:
    """Run ``fn()`` on the default device; if the GPU runs out of memory, run it again on the CPU.

    Returns ``(result, device)`` where device is 'GPU', 'CPU' or 'CPU (GPU out of memory)'.
    ``notify`` receives a user-facing sentence when the fall-back happens.
    """
    if not gpu_available():
        return fn(), "CPU"
    try:
        return fn(), "GPU"
    except Exception as exc:
        if not _is_out_of_memory(exc):
            raise
        import tensorflow as tf

        message = (
            "The GPU ran out of memory for this batch, so it was computed on the CPU instead "
            "(slower). Select fewer maps or starts to stay on the GPU."
        )
        log.warning("%s (%s)", message, exc)
        if notify:
            notify(message)
        with tf.device("/CPU:0"):
            return fn(), "CPU (GPU out of memory)"
