"""``transfer``: teach a trained CNN new symbols (``core.experiments.transfer``): a copy with frozen conv layers and a
new head, beside the same shape trained from scratch (and with ``--unfreeze`` the copy with trainable conv layers),
judged on held-out examples; the frozen copy is kept as a new run, the original untouched."""

from __future__ import annotations

import sys
import time

from core.cli.common import add_backend_args


def register(sub) -> None:
    p = sub.add_parser(
        "transfer",
        help="teach a model new symbols from a few examples each (.npz with images, labels, names): frozen conv "
        "layers + new head against the same shape from scratch; keeps the frozen copy as a new run",
    )
    p.add_argument(
        "set", help="the symbol set: .npz with images (N, 28, 28), labels (N,) and names (the page's Download)"
    )
    p.add_argument(
        "--from", dest="source", default="bundled", help="run folder (or its model.keras), or 'bundled' (default)"
    )
    p.add_argument("--unfreeze", action="store_true", help="also train the copy with its conv layers unfrozen")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--repeat", type=int, default=4, help="times each example is shown per epoch (default 4)")
    p.add_argument("--hold-out", type=float, default=0.3, help="share of each symbol's examples judged on only")
    p.add_argument("--layer", default=None, help="conv layer whose maps are examined (default: the last)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="name of the new run (default: <model>-symbols)")
    p.add_argument("--out", default=None, help="runs folder for the new run (default: $MNIST_EXPLORER_RUNS or ./runs)")
    add_backend_args(p)
    p.set_defaults(func=_cmd_transfer)


def _cmd_transfer(args) -> int:
    from pathlib import Path

    from core.cli.common import _emit, run_job
    from core.experiments.transfer import SymbolSet, TransferConfig
    from core.jobs.kinds import TransferJobConfig
    from core.jobs.system import JobSpec
    from core.runs import load_run, resolve_model_path, run_title, sanitize_name

    started = time.perf_counter()
    path = Path(args.set)
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is not a file; a symbol set is an .npz (the Transfer page's Download)")
    symbols = SymbolSet.from_npz(path.read_bytes(), repr(str(path)))
    symbols.check_trainable()
    model = resolve_model_path(None if args.source in ("bundled", "default") else args.source)
    bundle = load_run(model)
    config = TransferConfig(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        repeat=args.repeat,
        hold_out=args.hold_out,
        unfreeze=args.unfreeze,
        layer=args.layer,
        seed=args.seed,
    )
    job = TransferJobConfig(config, args.name or sanitize_name(f"{run_title(bundle.path)}-symbols"), args.out)
    spec = JobSpec(
        "transfer",
        job,
        model=str(bundle.path),
        title="transfer learning",
        inputs={"images": symbols.images, "labels": symbols.labels, "names": list(symbols.names)},
    )
    outcome = run_job(args, spec)
    result = outcome.transfer
    for network, score in result.scores.items():
        print(f"{network}: {score.accuracy:.1%} of {len(result.held_out)} held-out examples", file=sys.stderr)
    return _emit(
        {
            "set": str(path),
            "from": run_title(bundle.path),
            "status": outcome.status,
            "run": str(outcome.run_dir) if outcome.run_dir else None,
            **result.summary(),
            "device": outcome.device or None,
        },
        started,
    )
