"""The kinds of job: for each, what runs where the job runs, and what is kept where it was asked for.

``KINDS[name]`` describes one kind: its config dataclass, ``run(spec, context, progress)`` (executed by a
worker: a worker process, a thread, a Ray worker; see ``core.jobs.context.JobContext``) and an optional
``finish(result)`` executed where the job was submitted (the train kind writes its run folder there,
so a run trained on a Ray worker still lands in the dashboard's runs folder). Results travel between
processes, so they hold arrays and dataclasses, never a Keras model.

``execute(spec, context, progress)`` is what every backend calls; the CLI calls it too, so the page and
the command line compute exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.jobs.system import FAILED, FINISHED, STOPPED, Backend, JobHandle, JobSpec, JobSystem
from core.progress import ProgressCallback


# --------------------------------------------------------------------------------------------
# Configs of the job kinds (each a frozen dataclass; a kind whose computation has its own config wraps it)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainJobConfig:
    """Train ``spec`` with ``config`` (whose seed is the job's) and keep it as a run named ``name``."""

    spec: Any  # core.spec.ArchitectureSpec
    config: Any  # core.training.TrainConfig
    preset: str = "custom"
    name: str | None = None
    runs_dir: str | None = None  # None: $MNIST_EXPLORER_RUNS or ./runs, where the job was submitted
    mnist: str | None = None  # a Keras-layout mnist.npz; None: $MNIST_NPZ or Keras' download

    @property
    def seed(self) -> int:
        return self.config.seed


@dataclass(frozen=True)
class ClusterMlpConfig:
    """Cluster features for ``k`` → the cluster MLP (and the reference MLP on pixels), as in
    ``core.clustering.cluster_mlp.train_pair``; ``n_train``/``n_test`` use the first digits only."""

    k: int = 70
    mlp: Any = None  # core.clustering.cluster_mlp.MLPConfig (None: its defaults)
    reference: bool = True
    normalization: str = "unit"
    include_test: bool = False
    seed: int = 0  # of the k-means; the MLPs use mlp.seed
    centre_rows: bool = True
    n_train: int | None = None
    n_test: int | None = None
    mnist: str | None = None


@dataclass(frozen=True)
class SweepJobConfig:
    """A k-means sweep (``core.clustering.cluster_mlp.SweepConfig``) on MNIST from ``mnist``."""

    sweep: Any
    mnist: str | None = None

    @property
    def seed(self) -> int:
        return self.sweep.seed


@dataclass(frozen=True)
class CompareConfig:
    """Map alignment (``core.compare.alignment.align``) of the runs ``run_a`` and ``run_b`` (folders; None: the bundled
    model) over the first ``digits`` MNIST test digits from ``mnist``."""

    run_a: str | None
    run_b: str | None
    layers: tuple[str, ...] = ("conv1", "conv2", "conv3")
    threshold: float = 0.5
    digits: int = 10_000
    mnist: str | None = None


@dataclass(frozen=True)
class KnockoutConfig:
    """The test digits with ``maps`` (``((layer, (map, ...)), ...)``) switched off in the job's model, and
    optionally every map of ``rank_layer`` ranked by the accuracy it alone costs."""

    maps: tuple[tuple[str, tuple[int, ...]], ...]
    rank_layer: str | None = None
    mnist: str | None = None


@dataclass(frozen=True)
class FineTuneJobConfig:
    """Fine-tune a copy of the job's model (``core.experiments.fine_tune``) on MNIST from ``mnist`` plus the personal
    digits
    in the job's inputs (``images`` ``(N, 28, 28)`` uint8, ``labels`` ``(N,)``), kept as a new run ``name``."""

    config: Any  # core.experiments.fine_tune.FineTuneConfig
    name: str | None = None
    runs_dir: str | None = None
    mnist: str | None = None

    @property
    def seed(self) -> int:
        return self.config.seed

    def validate(self) -> None:
        self.config.validate()


@dataclass(frozen=True)
class ImportConfig:
    """Import the model file in the job's inputs (``data``: its bytes, a ``.keras`` zip or a legacy HDF5 ``.h5``,
    told apart by content) as a run ``name`` (``core.import_model``) with the ``scaler`` chosen; with
    ``with_mnist`` the MNIST test set from ``mnist`` gives its figures (and the 'mnist' scaler), otherwise the 2,000
    shipped test digits. The result is an ``ImportOutcome`` whose ``report`` (``ImportReport``) the page shows."""

    file_name: str
    scaler: str = "auto"
    name: str | None = None
    runs_dir: str | None = None
    mnist: str | None = None
    with_mnist: bool = True

    def validate(self) -> None:
        from core.import_model import SCALERS

        if self.scaler not in SCALERS:
            raise ValueError(f"scaler {self.scaler!r} is not one of {SCALERS}")


@dataclass(frozen=True)
class ReplayConfig:
    """Replay the job's run from its checkpoints (``core.compare.replay``): without ``oip``, the test accuracy of every
    checkpoint on MNIST from ``mnist``; with ``oip`` (a ``core.oip.search.OipConfig``), the OIPs at ``checkpoint``."""

    checkpoint: int | None = None
    oip: Any = None
    mnist: str | None = None

    @property
    def seed(self) -> int | None:
        return None if self.oip is None else self.oip.seed

    def validate(self) -> None:
        if self.oip is not None:
            if self.checkpoint is None:
                raise ValueError("OIPs of a replay need the checkpoint to compute them at")
            self.oip.validate()


@dataclass
class ReplayOutcome:
    """Accuracy per checkpoint ``(K,)`` (NaN where not measured), or the OIPs (``core.oip.search.OipResult``) at
    ``checkpoint``."""

    accuracy: Any = None
    checkpoint: int | None = None
    oip: Any = None

    @property
    def stopped(self) -> bool:
        import numpy as np

        return bool(getattr(self.oip, "stopped", False)) or (
            self.accuracy is not None and bool(np.isnan(self.accuracy).any())
        )


@dataclass
class TrainOutcome:
    """What a train job sends back: the run as bytes (``core.runs.RunPayload``) and how it ended;
    after ``finish`` also the folder it was written to."""

    payload: Any
    status: str
    message: str
    test_accuracy: float
    seconds: float
    device: str
    run_dir: Path | None = None

    @property
    def stopped(self) -> bool:
        return self.status == "stopped"


@dataclass
class FineTuneOutcome(TrainOutcome):
    """A fine-tuning's run (as a TrainOutcome) and the scores before and after (``core.experiments.fine_tune.SETS`` →
    ``core.experiments.personal_set.SetScore``), the held-out personal digits and notes for the learner."""

    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    held_out: Any = None
    personal_digits: int = 0
    notes: list = field(default_factory=list)
    base_name: str = ""


@dataclass(frozen=True)
class TransferJobConfig:
    """Transfer the job's model to the symbols in the job's inputs (``images`` ``(N, 28, 28)`` uint8, ``labels``
    ``(N,)``, ``names``; ``core.experiments.transfer``); the frozen copy is kept as a new run ``name``."""

    config: Any  # core.experiments.transfer.TransferConfig
    name: str | None = None
    runs_dir: str | None = None

    @property
    def seed(self) -> int:
        return self.config.seed

    def validate(self) -> None:
        self.config.validate()


@dataclass
class TransferOutcome(TrainOutcome):
    """A transfer's new run (as a TrainOutcome: the frozen copy) and its ``transfer``
    (``core.experiments.transfer.TransferResult`` without the Keras model)."""

    transfer: Any = None
    base_name: str = ""


# --------------------------------------------------------------------------------------------
# What each kind runs
# --------------------------------------------------------------------------------------------
def _run_train(spec: JobSpec, ctx, progress: ProgressCallback) -> TrainOutcome:
    from core.runs import run_payload
    from core.training import train

    job: TrainJobConfig = spec.config
    result = train(job.spec, job.config, ctx.mnist(job.mnist), progress=progress)
    if result.status == "diverged" and not result.epoch_seconds:
        payload = None  # nothing worth keeping
    else:
        progress.on_step(progress_done(progress), {"phase": "saving the run"})
        payload = run_payload(result, {"preset": job.preset})
    return TrainOutcome(payload, result.status, result.message, result.test_accuracy, result.seconds, result.device)


def _finish_train(outcome: TrainOutcome, spec: JobSpec) -> TrainOutcome:
    from core.runs import write_run

    if outcome.payload is not None:
        job: TrainJobConfig = spec.config
        outcome.run_dir = write_run(outcome.payload, job.runs_dir, job.name, owner=spec.owner_name or None)
        outcome.payload = None  # the bytes are on disk now; the handle keeps only the figures
    return outcome


def _run_fine_tune(spec: JobSpec, ctx, progress: ProgressCallback) -> FineTuneOutcome:
    from core.experiments.fine_tune import fine_tune
    from core.experiments.personal_set import PersonalSet
    from core.runs import run_payload, run_title

    job: FineTuneJobConfig = spec.config
    bundle = ctx.bundle(spec.model)
    personal = PersonalSet(spec.inputs["images"], spec.inputs["labels"])
    result = fine_tune(bundle, ctx.mnist(job.mnist), personal, job.config, progress)
    run = result.train
    payload = None
    if run.status != "diverged" or run.epoch_seconds:
        progress.on_step(progress_done(progress), {"phase": "saving the fine-tuned copy as a new run"})
        payload = run_payload(
            run,
            {
                "preset": "fine-tuned",
                "fine_tuned_from": bundle.name,
                "personal_digits": len(personal),
                "held_out": len(result.held_out),
                "fine_tune": asdict(job.config),
                "personal_before_after": result.summary(),
            },
        )
    return FineTuneOutcome(
        payload,
        run.status,
        run.message,
        run.test_accuracy,
        run.seconds,
        run.device,
        before=result.before,
        after=result.after,
        held_out=result.held_out,
        personal_digits=len(personal),
        notes=result.notes,
        base_name=run_title(bundle.path),
    )


def _run_transfer(spec: JobSpec, ctx, progress: ProgressCallback) -> TransferOutcome:
    from core.experiments.transfer import SymbolSet, run_meta, run_transfer
    from core.runs import run_payload, run_title

    job: TransferJobConfig = spec.config
    bundle = ctx.bundle(spec.model)
    symbols = SymbolSet(spec.inputs["images"], spec.inputs["labels"], tuple(spec.inputs["names"]))
    result = run_transfer(bundle, symbols, job.config, progress)
    kept, payload = result.kept, None
    if kept is not None and (kept.status != "diverged" or kept.epoch_seconds):
        progress.on_step(progress_done(progress), {"phase": "saving the frozen copy as a new run"})
        payload = run_payload(kept, run_meta(result, run_title(bundle.path), job.config))
    status = kept.status if kept is not None else "stopped"
    return TransferOutcome(
        payload,
        status,
        kept.message if kept is not None else "Stopped before the frozen copy was trained.",
        kept.test_accuracy if kept is not None else float("nan"),
        result.seconds,
        kept.device if kept is not None else "",
        transfer=result.without_model(),
        base_name=run_title(bundle.path),
    )


def _run_import(spec: JobSpec, ctx, progress: ProgressCallback):
    from core.import_model import import_model

    job: ImportConfig = spec.config
    mnist = ctx.mnist(job.mnist) if job.with_mnist else None
    return import_model(spec.inputs["data"], job.file_name, job.scaler, mnist, progress)


def _run_replay(spec: JobSpec, ctx, progress: ProgressCallback) -> ReplayOutcome:
    from core.compare.replay import accuracy_curve, oip_at, read_checkpoints

    job: ReplayConfig = spec.config
    bundle = ctx.bundle(spec.model)
    checkpoints = read_checkpoints(bundle.path)
    if checkpoints is None:
        raise ValueError(f"the run {bundle.name!r} kept no checkpoints; train it with checkpoints to replay it")
    if job.oip is None:
        mnist = ctx.mnist(job.mnist)
        return ReplayOutcome(accuracy=accuracy_curve(bundle, checkpoints, mnist.x_test, mnist.y_test, progress))
    return ReplayOutcome(checkpoint=job.checkpoint, oip=oip_at(bundle, checkpoints, job.checkpoint, job.oip, progress))


def _run_oip(spec: JobSpec, ctx, progress: ProgressCallback):
    from core.device import run_with_cpu_fallback
    from core.oip.search import run_oip

    engine = ctx.engine(spec.model, spec.config.layer)
    result, _ = run_with_cpu_fallback(lambda: run_oip(engine, spec.config, progress=progress))
    if engine.spatial and not result.stopped:
        progress.on_step(progress_done(progress), {"phase": "finding the test digits that excite each map most"})
        try:
            result.maxima = ctx.digit_maxima(spec.model, spec.config.layer)
        except (OSError, ValueError):  # no test digits where the job runs (a remote Ray worker without the assets)
            result.maxima = None
    return result


def _run_variants(spec: JobSpec, ctx, progress: ProgressCallback):
    from core.oip.variants import run_variants

    return run_variants(ctx.engine(spec.model, spec.config.base.layer), spec.config, progress=progress)


def _run_precursor(spec: JobSpec, ctx, progress: ProgressCallback):
    from core.oip.precursor import run_precursor

    engine = ctx.engine(spec.model, spec.config.layer)
    return run_precursor(engine, spec.config, progress=progress, context=ctx, model=spec.model)


def _run_sweep(spec: JobSpec, ctx, progress: ProgressCallback):
    from core.clustering.cluster_mlp import sweep

    job: SweepJobConfig = spec.config
    return sweep(ctx.mnist(job.mnist), job.sweep, progress, context=ctx, mnist_source=job.mnist)


def _run_cluster_mlp(spec: JobSpec, ctx, progress: ProgressCallback):
    from core.clustering.cluster_mlp import MLPConfig, train_pair

    job: ClusterMlpConfig = spec.config
    mnist = ctx.mnist(job.mnist).subset(job.n_train, job.n_test)
    pair = train_pair(
        mnist,
        job.k,
        job.mlp or MLPConfig(),
        reference=job.reference,
        normalization=job.normalization,
        include_test=job.include_test,
        seed=job.seed,
        centre_rows=job.centre_rows,
        progress=progress,
    )
    return pair.without_models()


def _run_dream(spec: JobSpec, ctx, progress: ProgressCallback):
    from core.dream.deep_dream import deepest_layer, dream, resolve_terms

    bundle = ctx.bundle(spec.model)
    settings = spec.config
    layer = deepest_layer(resolve_terms(settings, bundle.model), bundle.model)
    result = dream(
        spec.inputs["photo"],
        bundle.model,
        settings,
        progress=progress,
        engine=ctx.engine(spec.model, layer),
        model_name=bundle.name,
    )
    if spec.inputs.get("photo_name"):
        result.settings["photo"] = spec.inputs["photo_name"]
    return result


def _run_compare(spec: JobSpec, ctx, progress: ProgressCallback):
    from core.compare.alignment import align

    job: CompareConfig = spec.config
    if job.digits < 2:
        raise ValueError(f"digits={job.digits} must be at least 2")
    images = ctx.mnist(job.mnist).x_test[: job.digits]
    return align(ctx.bundle(job.run_a), ctx.bundle(job.run_b), images, job.layers, job.threshold, progress=progress)


def _run_knockout(spec: JobSpec, ctx, progress: ProgressCallback):
    from core.experiments.knockout import Knockout, evaluate

    job: KnockoutConfig = spec.config
    bundle = ctx.bundle(spec.model)
    mnist = ctx.mnist(job.mnist)
    return evaluate(
        Knockout(bundle.model),
        bundle.scaler.transform(mnist.x_test),
        mnist.y_test,
        dict(job.maps),
        job.rank_layer,
        progress,
    )


def _run_dream_gallery(spec: JobSpec, ctx, progress: ProgressCallback):
    from core.dream.gallery import dream_gallery

    return dream_gallery(spec.inputs["photo"], ctx.engine(spec.model, spec.config.layer), spec.config, progress)


def _run_augment_lesson(spec: JobSpec, ctx, progress: ProgressCallback):
    from core.augmentation.lesson import run_lesson

    job = spec.config  # core.augmentation.lesson.LessonConfig
    hand = (spec.inputs["images"], spec.inputs["labels"]) if "images" in spec.inputs else None
    return run_lesson(ctx.mnist(job.mnist), ctx.bundle(None), job, hand, progress)


def progress_done(progress: ProgressCallback) -> int:
    """The units a progress callback has seen so far (0 when it does not keep count)."""
    return int(getattr(progress, "done", 0) or 0)


# --------------------------------------------------------------------------------------------
# The table of kinds
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    name: str
    title: str  # for sentences: "Your <title> job is running"
    config_type: Callable[[], type]  # imported lazily: the job system must not import TensorFlow
    run: Callable[[JobSpec, Any, ProgressCallback], Any]
    finish: Callable[[Any, JobSpec], Any] | None = None
    expected_seconds: float = 15.0  # before any job of the kind has been timed on this server
    uses_model: bool = False
    splits: bool = False  # parts can run in parallel on a cluster (see JobContext.map)
    reads_models: Callable[[JobSpec], list] | None = None  # the run folders it loads (default: the job's model)
    check_inputs: Callable[[JobSpec], None] | None = None  # ValueError naming what the job's inputs lack
    reads_mnist: Callable[[JobSpec], bool] = lambda spec: False  # whether it loads MNIST
    mnist_optional: bool = False  # it does without MNIST (the shipped sample digits) where MNIST cannot be read

    def models(self, spec: JobSpec) -> list:
        """The models (run folders as the job names them; None: the bundled one) a job of this kind loads."""
        if self.reads_models is not None:
            return list(self.reads_models(spec))
        return [spec.model] if self.uses_model else []

    def needs_mnist(self, spec: JobSpec) -> bool:
        return bool(self.reads_mnist(spec))


def _type(module: str, name: str) -> Callable[[], type]:
    def get() -> type:
        import importlib

        return getattr(importlib.import_module(module), name)

    return get


def _always(spec: JobSpec) -> bool:
    return True


def _needs_photo(spec: JobSpec) -> None:
    if "photo" not in spec.inputs:
        raise ValueError(f"a {spec.kind!r} job needs inputs['photo'] (an (H, W) or (H, W, 3) uint8 array)")


def _needs_keras_file(spec: JobSpec) -> None:
    if not isinstance(spec.inputs.get("data"), (bytes, bytearray)):
        raise ValueError("an 'import-model' job needs inputs['data']: the bytes of a .keras or .h5 file")


def _needs_personal_digits(spec: JobSpec) -> None:
    from core.experiments.personal_set import PersonalSet

    if "images" not in spec.inputs or "labels" not in spec.inputs:
        raise ValueError("a 'fine-tune' job needs inputs['images'] (N, 28, 28) and inputs['labels'] (N,)")
    if len(PersonalSet(spec.inputs["images"], spec.inputs["labels"])) == 0:
        raise ValueError("the personal set is empty: add some of your digits (with their labels) first")


def _needs_symbols(spec: JobSpec) -> None:
    from core.experiments.transfer import SymbolSet

    if not all(k in spec.inputs for k in ("images", "labels", "names")):
        raise ValueError("a 'transfer' job needs inputs['images'] (N, 28, 28), inputs['labels'] (N,), inputs['names']")
    SymbolSet(spec.inputs["images"], spec.inputs["labels"], tuple(spec.inputs["names"])).check_trainable()


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("train", "training", lambda: TrainJobConfig, _run_train, _finish_train, 60.0, reads_mnist=_always),
        Kind(
            "oip",
            "OIP",
            _type("core.oip.search", "OipConfig"),
            _run_oip,
            None,
            8.0,
            uses_model=True,
            reads_mnist=_always,
            mnist_optional=True,
        ),
        Kind(
            "oip-variants",
            "OIP variants",
            _type("core.oip.variants", "VariantsConfig"),
            _run_variants,
            None,
            5.0,
            uses_model=True,
        ),
        Kind(
            "precursor",
            "precursor search",
            _type("core.oip.precursor", "PrecursorConfig"),
            _run_precursor,
            None,
            60.0,
            uses_model=True,
            splits=True,
        ),
        Kind(
            "sweep", "k-means sweep", lambda: SweepJobConfig, _run_sweep, None, 30.0, splits=True, reads_mnist=_always
        ),
        Kind(
            "cluster-mlp",
            "cluster-MLP training",
            lambda: ClusterMlpConfig,
            _run_cluster_mlp,
            None,
            40.0,
            reads_mnist=_always,
        ),
        Kind(
            "dream",
            "Deep Dream",
            _type("core.dream.deep_dream", "DreamConfig"),
            _run_dream,
            None,
            5.0,
            uses_model=True,
            check_inputs=_needs_photo,
        ),
        Kind(
            "dream-gallery",
            "dream gallery",
            _type("core.dream.gallery", "GalleryConfig"),
            _run_dream_gallery,
            None,
            8.0,
            uses_model=True,
            check_inputs=_needs_photo,
        ),
        Kind(
            "compare",
            "map alignment",
            lambda: CompareConfig,
            _run_compare,
            None,
            5.0,
            reads_models=lambda spec: [spec.config.run_a, spec.config.run_b],
            reads_mnist=_always,
        ),
        Kind(
            "knockout",
            "knock-out",
            lambda: KnockoutConfig,
            _run_knockout,
            None,
            3.0,
            uses_model=True,
            reads_mnist=_always,
        ),
        Kind(
            "replay",
            "replay",
            lambda: ReplayConfig,
            _run_replay,
            None,
            8.0,
            uses_model=True,
            reads_mnist=lambda spec: spec.config.oip is None,
        ),
        Kind(
            "import-model",
            "model import",
            lambda: ImportConfig,
            _run_import,
            _finish_train,
            5.0,
            reads_mnist=lambda spec: spec.config.with_mnist,
            check_inputs=_needs_keras_file,
        ),
        Kind(
            "fine-tune",
            "fine-tuning",
            lambda: FineTuneJobConfig,
            _run_fine_tune,
            _finish_train,
            20.0,
            uses_model=True,
            reads_mnist=_always,
            check_inputs=_needs_personal_digits,
        ),
        Kind(
            "transfer",
            "transfer learning",
            lambda: TransferJobConfig,
            _run_transfer,
            _finish_train,
            15.0,
            uses_model=True,
            check_inputs=_needs_symbols,
        ),
        Kind(
            "augment-lesson",
            "augmentation lesson",
            _type("core.augmentation.lesson", "LessonConfig"),
            _run_augment_lesson,
            None,
            150.0,
            reads_models=lambda spec: [None],  # the bundled blog model is the baseline
            reads_mnist=_always,
        ),
    )
}


def kind(name: str) -> Kind:
    if name not in KINDS:
        raise ValueError(f"unknown job kind {name!r}; known kinds: {sorted(KINDS)}")
    return KINDS[name]


def check_spec(spec: JobSpec) -> None:
    """ValueError naming the problem when a spec cannot be run (unknown kind, wrong config type, bad settings,
    missing inputs)."""
    k = kind(spec.kind)
    expected = k.config_type()
    if not isinstance(spec.config, expected):
        raise ValueError(f"a {spec.kind!r} job needs a {expected.__name__} config, got {type(spec.config).__name__}")
    validate = getattr(spec.config, "validate", None)
    if callable(validate):
        validate()
    if k.check_inputs is not None:
        k.check_inputs(spec)


def execute(spec: JobSpec, ctx, progress: ProgressCallback) -> Any:
    """Run a job here and now (in a worker); the result is what travels back to the job's handle."""
    return kind(spec.kind).run(spec, ctx, progress)


def finish(spec: JobSpec, result: Any) -> Any:
    """Complete a result where the job was submitted (e.g. write a trained run into the runs folder)."""
    k = kind(spec.kind)
    return k.finish(result, spec) if k.finish is not None and result is not None else result


def with_seed(config: Any, seed: int) -> Any:
    """A copy of a config dataclass with another seed (several seeds of one training)."""
    if isinstance(config, TrainJobConfig):
        return replace(config, config=replace(config.config, seed=int(seed)))
    return replace(config, seed=int(seed))


def stopped(result: Any) -> bool:
    """True when a result is partial because its job was asked to stop (``result.stopped``, or a status 'stopped')."""
    if result is None:
        return False
    return getattr(result, "stopped", False) is True or getattr(result, "status", None) == "stopped"


def describe_error(exc: BaseException) -> str:
    """A sentence for the job panel: a ValueError's own words, otherwise the error's type and text."""
    if isinstance(exc, MemoryError):
        return "The job ran out of memory. Use fewer maps, starts, patterns or digits."
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, ValueError):
        return text
    if "OOM" in text or "out of memory" in text.lower():
        return f"The job ran out of memory ({type(exc).__name__}). Use fewer maps, starts, patterns or digits."
    return f"{type(exc).__name__}: {text}"


def complete(system: JobSystem, handle: JobHandle, result: Any) -> None:
    """A job's result arrived where it was submitted: finish it there (e.g. write the run), then end the job, as
    stopped when it was asked to stop and its result says it is partial. Every backend ends its jobs through here."""
    try:
        result = finish(handle.spec, result)
    except Exception as exc:  # noqa: BLE001 - writing the run failed: the job failed, say why
        system.job_ended(handle, FAILED, None, f"The result could not be kept: {describe_error(exc)}")
        return
    state = STOPPED if handle.progress.should_stop() and stopped(result) else FINISHED
    system.job_ended(handle, state, result)


def job_system(backend: Backend, slots: int | None = None) -> JobSystem:
    """A job system for these kinds on ``backend``: submissions checked by ``check_spec``, waits estimated from
    each kind's expected duration until jobs of it have been timed."""
    return JobSystem(backend, slots, {k.name: k.expected_seconds for k in KINDS.values()}, check=check_spec)
