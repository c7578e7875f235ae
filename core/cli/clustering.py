"""``cluster`` (MiniBatchKMeans sweep over K) and ``cluster-mlp`` (cluster-distance MLP vs the pixel MLP)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from core.cli.common import _emit, add_backend_args, run_job
from core.progress import PrintProgress


def _write_json(path, obj: dict) -> None:
    import json
    from pathlib import Path

    from core.files import atomic_write_bytes

    folder = Path(path).parent
    if not folder.is_dir():
        raise ValueError(f"the folder of --out {str(path)!r} does not exist")
    atomic_write_bytes(path, json.dumps(obj, indent=1).encode())


def _check_limits(n_train: int | None, n_test: int | None) -> None:
    for name, v in (("--train-limit", n_train), ("--test-limit", n_test)):
        if v is not None and v < 10:
            raise ValueError(f"{name} {v} must be ≥ 10")


class _NamedPrintProgress(PrintProgress):
    def on_epoch(self, epoch: int, metrics: Mapping) -> None:
        if "cost" not in metrics:
            return super().on_epoch(epoch, metrics)
        print(
            f"epoch {epoch} [{metrics.get('model', '')}]: cost={metrics['cost']:.4f} "
            f"(without L2 {metrics['cost_no_l2']:.4f}) train={metrics['train_accuracy']:.4f} "
            f"test={metrics['test_accuracy']:.4f} {metrics['seconds']:.3f} s",
            file=self.stream,
            flush=True,
        )


def cmd_cluster(args) -> int:
    from core.clustering.cluster_mlp import SweepConfig, parse_ks
    from core.jobs.kinds import SweepJobConfig
    from core.jobs.system import JobSpec

    started = time.perf_counter()
    config = SweepConfig(
        ks=parse_ks(args.k),
        silhouette_sample=args.silhouette_sample,
        include_test=args.include_test,
        normalization=args.normalization,
        n_train=args.train_limit,
        n_init=args.n_init,
        seed=args.seed,
    )
    config.validate()
    result = run_job(args, JobSpec("sweep", SweepJobConfig(config, args.mnist), title="k-means sweep"))
    if args.out:
        _write_json(args.out, result.to_dict())
    ps = result.points
    return _emit(
        {
            "ks": [p.k for p in ps],
            "inertia": [round(p.inertia, 3) for p in ps],
            "silhouette": [round(p.silhouette, 5) for p in ps],
            "seconds_per_k": [round(p.seconds, 3) for p in ps],
            "n_points": result.n_points,
            "silhouette_sample": result.n_sample,
            "distance_seconds": round(result.distance_seconds, 3),
            "sweep_seconds": round(result.seconds, 3),
            "status": result.status,
            "out": args.out,
        },
        started,
    )


def cmd_cluster_mlp(args) -> int:
    from core.clustering.cluster_mlp import MLPConfig, check_normalization
    from core.jobs.kinds import ClusterMlpConfig
    from core.jobs.system import JobSpec

    started = time.perf_counter()
    config = MLPConfig(
        activation=args.activation,
        learning_rate=args.learning_rate,
        decay=args.decay,
        momentum=args.momentum,
        batch_size=args.batch_size,
        l2=args.l2,
        epochs=args.epochs,
        seed=args.seed,
    )
    config.validate()
    check_normalization(args.normalization)
    _check_limits(args.train_limit, args.test_limit)
    job = ClusterMlpConfig(
        k=args.k,
        mlp=config,
        reference=args.reference,
        normalization=args.normalization,
        include_test=args.include_test,
        seed=args.seed,
        centre_rows=not args.no_centre,
        n_train=args.train_limit,
        n_test=args.test_limit,
        mnist=args.mnist,
    )
    if args.backend == "local":  # the per-epoch lines of the two MLPs, as before
        from core.jobs.context import JobContext
        from core.jobs.kinds import execute

        result = execute(JobSpec("cluster-mlp", job), JobContext(), _NamedPrintProgress())
    else:
        result = run_job(args, JobSpec("cluster-mlp", job, title="cluster-MLP training"))
    full = result.to_dict()
    if args.out:
        _write_json(args.out, full)
    summary = {
        "k": result.k,
        "normalization": args.normalization,
        "centre_rows": not args.no_centre,
        "kmeans_seconds": full["kmeans_seconds"],
        "cluster": result.cluster.summary(),
        "out": args.out,
    }
    if result.reference is not None:
        summary["reference"] = result.reference.summary()
        summary["comparison"] = full["comparison"]
    return _emit(summary, started)


def register(sub) -> None:
    """Add ``cluster`` (the sweep over K) and ``cluster-mlp`` (cluster MLP vs reference MLP)."""
    from core.clustering.cluster_mlp import (
        DEFAULT_SILHOUETTE_SAMPLE,
        MAX_SILHOUETTE_SAMPLE,
        MLP_ACTIVATIONS,
        NORMALIZATIONS,
        MLPConfig,
    )

    p = sub.add_parser("cluster", help="MiniBatchKMeans sweep over K: inertia, sampled silhouette, time")
    p.add_argument("--k", default="10:170:10", help="start:stop:step (stop included) or a comma list")
    p.add_argument(
        "--silhouette-sample",
        type=int,
        default=DEFAULT_SILHOUETTE_SAMPLE,
        help=f"points for the silhouette (100..{MAX_SILHOUETTE_SAMPLE})",
    )
    p.add_argument("--include-test", action="store_true", help="cluster train + test digits (as the blog did)")
    p.add_argument("--normalization", default="unit", choices=NORMALIZATIONS)
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training digits")
    p.add_argument("--n-init", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mnist", default=None, help="path to a Keras-layout mnist.npz")
    p.add_argument("--out", default=None, help="write all figures per K to this JSON file")
    add_backend_args(p)
    p.set_defaults(func=cmd_cluster)

    d = MLPConfig()
    p = sub.add_parser("cluster-mlp", help="MLP on K cluster-distance features (and the reference MLP)")
    p.add_argument("--k", type=int, default=70)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--reference", action="store_true", help="also train the MLP on 784 pixels and compare")
    p.add_argument("--activation", default=d.activation, choices=MLP_ACTIVATIONS)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--decay", type=float, default=d.decay, help="lr of epoch e = lr / (1 + decay·(e-1))")
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--l2", type=float, default=d.l2, help="lambda for 784 inputs; K inputs get lambda·K/784")
    p.add_argument("--normalization", default="unit", choices=NORMALIZATIONS)
    p.add_argument("--include-test", action="store_true", help="cluster train + test digits")
    p.add_argument(
        "--no-centre",
        action="store_true",
        help="do not subtract each image's mean distance before standardizing the features",
    )
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mnist", default=None, help="path to a Keras-layout mnist.npz")
    p.add_argument("--out", default=None, help="write the per-epoch figures to this JSON file")
    add_backend_args(p)
    p.set_defaults(func=cmd_cluster_mlp)
