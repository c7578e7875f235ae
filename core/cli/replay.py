"""``replay``: a run's training replayed from its checkpoints (``core.compare.replay``): the test accuracy at each,
and with
``--layer`` how many maps of that layer have an OIP at each."""

from __future__ import annotations

import sys
import time

from core.cli.common import add_backend_args


def register(sub) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a run trained with --checkpoints: test accuracy per checkpoint, and "
        "with --layer the maps with an OIP per checkpoint",
    )
    p.add_argument("run", help="the run folder")
    p.add_argument("--layer", default=None, help="also compute the OIPs of this layer at every checkpoint")
    p.add_argument("--epochs", type=int, default=200, help="gradient-ascent epochs of those OIPs (default 200)")
    p.add_argument("--mnist", default=None, help="Keras-layout mnist.npz (default: $MNIST_NPZ or Keras' download)")
    add_backend_args(p)
    p.set_defaults(func=_cmd_replay)


def _cmd_replay(args) -> int:
    from core.cli.common import _emit, run_job
    from core.compare.replay import read_checkpoints
    from core.jobs.kinds import ReplayConfig
    from core.jobs.system import JobSpec
    from core.oip.search import OipConfig
    from core.runs import resolve_model_path

    started = time.perf_counter()
    run = resolve_model_path(args.run)
    checkpoints = read_checkpoints(run)
    if checkpoints is None:
        raise ValueError(f"{args.run!r} kept no checkpoints; train it with --checkpoints epoch (or epoch+early)")
    accuracy = run_job(args, JobSpec("replay", ReplayConfig(mnist=args.mnist), model=str(run), title="replay")).accuracy
    result = {
        "run": str(run),
        "positions": checkpoints.positions.tolist(),
        "accuracy": [round(float(a), 4) for a in accuracy],
    }
    if args.layer is not None:
        with_oip = []
        for k in range(len(checkpoints)):
            job = ReplayConfig(k, OipConfig(layer=args.layer, epochs=args.epochs), args.mnist)
            job.validate()
            oips = run_job(args, JobSpec("replay", job, model=str(run), title="replay OIPs")).oip
            with_oip.append(int(oips.has_oip.sum()))
            print(
                f"{checkpoints.label(k)}: accuracy {accuracy[k]:.2%}, {with_oip[-1]} of {len(oips.maps)} maps of "
                f"{args.layer} with an OIP",
                file=sys.stderr,
            )
        result.update(layer=args.layer, maps_with_oip=with_oip, maps=int(len(oips.maps)))
    return _emit(result, started)
