"""Where TensorFlow computes: the one probe of the device, the worker's TensorFlow settings, a CPU fall-back
when the GPU runs out of memory, and quiet TensorFlow logs.

``quiet_tensorflow_logs()`` is called once, before TensorFlow is imported, by each entry point: the command line
(``core.cli.main``), the dashboard (``app.py``) and the job workers (``core.jobs.worker``). It is never an import
side effect of a library module. Without it TensorFlow 2.21 prints C++ lines such as
``E0000 … cuda_platform.cc:52] failed call to cuInit: … UNKNOWN ERROR (303)`` on every machine without a GPU,
which a user reads as a failure.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

# Digits per call when a model reads many (a test set): on 2 CPU cores 1,024 a call is 1.42x slower than 128 through
# a conv at full resolution and 1.35x through the pooled CNN (a batch's maps then stay in the cache: 128 x 24 x 24 x 64
# floats is 19 MB, 1,024 is 151 MB); 32 and 256 are slower too (bench/bench_forward_batch.py).
FORWARD_BATCH = 128
VERBOSE_ENV = "MNIST_EXPLORER_VERBOSE"  # 1: keep TensorFlow's own log lines (as the CLI's --verbose does)
# TensorFlow's and absl's C++ lines: "I0000 00:00:1796638596.397674   31510 cudart_stub.cc:31] ..." (before absl
# is set up the "seconds" are the whole epoch time), absl's notice
# before its logging is set up, and the continuation line of the CPU-feature notice
_TF_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} \d+:\d+:\d+\.\d+\s+\d+ [\w.]+:\d+\] .*"
    r"|To enable the following instructions: .*)$"
)


def verbose_requested() -> bool:
    """True when ``$MNIST_EXPLORER_VERBOSE`` asks for TensorFlow's own log lines (any value but '', '0', 'false')."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


_QUIET_IMPORT = threading.Lock()


def quiet_tensorflow_logs(verbose: bool | None = None) -> bool:
    """Keep TensorFlow's C++ and absl log lines off stderr, so only the product's own messages are printed.

    Call it once at an entry point, before anything imports TensorFlow or Keras: it sets
    ``TF_CPP_MIN_LOG_LEVEL=3`` (TensorFlow reads it once, at import; level 2 still lets ``E0000 … cuInit`` through),
    imports TensorFlow with its import-time lines (``cudart_stub.cc … Could not find cuda drivers``, absl's
    ``WARNING: All log messages before absl::InitializeLog()``, which no level silences) filtered out of stderr
    (anything else printed meanwhile is passed on), and turns the Python ``absl`` and ``tensorflow`` loggers down to
    errors. The variable is inherited, so worker processes started later are quiet too.

    ``verbose`` True, or ``$MNIST_EXPLORER_VERBOSE=1`` when ``verbose`` is None: change nothing (every line shows).
    Returns True when it quietened the logs. Called after TensorFlow was imported it can only set the loggers."""
    if verbose is None:
        verbose = verbose_requested()
    if verbose:
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with _QUIET_IMPORT:  # two server threads' first runs: one redirects file descriptor 2 at a time
        if "tensorflow" not in sys.modules:
            with _without_tensorflow_lines():
                import tensorflow  # noqa: F401
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return True


@contextlib.contextmanager
def _without_tensorflow_lines() -> Iterator[None]:
    """File descriptor 2 goes to a temporary file meanwhile (C++ writes there directly, past ``sys.stderr``); then
    every line but TensorFlow's own is written to stderr again."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (an embedding host): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [
                line
                for line in held.read().decode("utf-8", "replace").splitlines(keepends=True)
                if not _TF_NOISE.match(line.rstrip("\r\n"))
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


@functools.lru_cache(maxsize=1)
def describe_device() -> str:
    """The device TensorFlow computes on, in words: 'GPU (NVIDIA H100 80GB HBM3)' when it sees a GPU (its name as
    the driver gives it), else 'CPU'. For results, the sidebar and every CLI result (``core.cli.common``). Probed
    once per process (the devices do not change while it runs)."""
    import tensorflow as tf

    logical = tf.config.list_logical_devices("GPU")  # what computes (a GPU hidden from TensorFlow does not)
    if not logical:
        return "CPU"
    name = logical[0].name
    with contextlib.suppress(Exception):  # a driver that gives no details: the device's TensorFlow name
        name = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])["device_name"]
    return f"GPU ({name})" + (f" ×{len(logical)}" if len(logical) > 1 else "")


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
