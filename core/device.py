"""Where TensorFlow computes, and a CPU fall-back when the GPU runs out of memory."""
from __future__ import annotations

import logging
from typing import Callable, TypeVar

import tensorflow as tf

T = TypeVar("T")
log = logging.getLogger(__name__)


def gpu_available() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def describe_device() -> str:
    """'GPU (name)' or 'CPU', for result metadata and the UI."""
    gpus = tf.config.list_logical_devices("GPU")
    return f"GPU ({gpus[0].name})" if gpus else "CPU"


def _is_out_of_memory(exc: BaseException) -> bool:
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
        message = ("The GPU ran out of memory for this batch, so it was computed on the CPU instead "
                   "(slower). Select fewer maps or starts to stay on the GPU.")
        log.warning("%s (%s)", message, exc)
        if notify:
            notify(message)
        with tf.device("/CPU:0"):
            return fn(), "CPU (GPU out of memory)"
