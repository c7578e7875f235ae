"""``import-model``: a Keras file trained elsewhere (``.keras`` or a legacy HDF5 ``.h5``, told apart by content)
becomes a run every page can open (``core.import_model``). The JSON line carries the import report
(``ImportReport.to_dict()``: the file's layers and what became of each, the rebuilt architecture, what the pages
cannot show, the scaler and why, the test accuracy)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from core.cli.common import add_backend_args


def register(sub) -> None:
    p = sub.add_parser(
        "import-model",
        help="import a .keras or .h5 model trained elsewhere as a run (no code from the file runs; layers mapped to "
        "conv1, pool1, ..., out)",
    )
    p.add_argument("file", help="the .keras or .h5 file (the format is read from its content)")
    p.add_argument(
        "--scaler",
        default="auto",
        help="auto (default: the one under which it reads the shipped test "
        "digits best), unit (pixels/255), article-ii or mnist",
    )
    p.add_argument("--name", default=None, help="name of the run (default: the file's name)")
    p.add_argument("--out", default=None, help="runs folder (default: $MNIST_EXPLORER_RUNS or ./runs)")
    p.add_argument(
        "--mnist",
        default=None,
        help="Keras-layout mnist.npz for the test figures and the mnist scaler "
        "(default: $MNIST_NPZ; without either, the 2,000 shipped digits)",
    )
    add_backend_args(p)
    p.set_defaults(func=_cmd_import)


def _cmd_import(args) -> int:
    import os

    from core.cli.common import _emit, run_job
    from core.jobs.kinds import ImportConfig
    from core.jobs.system import JobSpec

    started = time.perf_counter()
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{args.file!r} could not be read: {exc.strerror or exc}") from None
    with_mnist = bool(args.mnist or os.environ.get("MNIST_NPZ"))
    job = ImportConfig(path.name, args.scaler, args.name or path.stem, args.out, args.mnist, with_mnist)
    job.validate()
    outcome = run_job(args, JobSpec("import-model", job, inputs={"data": data}, title="model import"))
    for note in outcome.notes:
        print(note, file=sys.stderr)
    return _emit(
        {
            "run": str(outcome.run_dir),
            "scaler": outcome.scaler,
            "scaler_accuracy": {k: round(v, 4) for k, v in outcome.scaler_accuracy.items()},
            "test_accuracy": round(outcome.test_accuracy, 5),
            "test_source": outcome.test_source,
            "mapping": outcome.mapping,
            "notes": outcome.notes,
            "report": outcome.report.to_dict() if outcome.report is not None else None,
        },
        started,
    )
