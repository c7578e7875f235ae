"""One small job of every kind (``core.jobs.kinds.KINDS``), on a tiny model and synthetic digits made in the test: a
backend must run each of them (the embedded executor, Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def small_job_of_every_kind(tiny_run: Path, tiny_mnist: Path, work: Path) -> dict:
    """kind → a ``JobSpec`` that runs in seconds. ``work`` holds the runs it writes and the run with checkpoints
    that the replay needs."""
    from core.augmentation.lesson import LessonConfig
    from core.clustering.cluster_mlp import MLPConfig, SweepConfig
    from core.data import read_mnist_npz
    from core.dream.deep_dream import DreamConfig
    from core.dream.gallery import GalleryConfig
    from core.experiments.fine_tune import FineTuneConfig
    from core.experiments.robustness import RobustnessConfig
    from core.experiments.transfer import TransferConfig
    from core.jobs.kinds import (
        ClusterMlpConfig,
        CompareConfig,
        FineTuneJobConfig,
        ImportConfig,
        KnockoutConfig,
        ReplayConfig,
        SweepJobConfig,
        TrainJobConfig,
        TransferJobConfig,
    )
    from core.jobs.system import JobSpec
    from core.oip.precursor import PrecursorConfig
    from core.oip.search import OipConfig
    from core.oip.variants import VariantsConfig
    from core.runs import MODEL_FILE, save_run
    from core.spec import preset
    from core.training import TrainConfig, train

    mnist, runs, model = str(tiny_mnist), str(work / "runs"), str(tiny_run)
    with_checkpoints = save_run(
        train(
            preset("tiny filters"),
            TrainConfig(epochs=1, batch_size=32, seed=3, checkpoints="epoch"),
            read_mnist_npz(mnist),
        ),
        work / "checkpointed",
        name="checkpointed",
    )
    photo = np.random.default_rng(0).integers(0, 255, (40, 48, 3)).astype(np.uint8)
    labels = np.arange(10)
    digits = np.zeros((10, 28, 28), np.uint8)
    for i in labels:
        digits[i, 4 + 2 * i : 6 + 2 * i, 4:24] = 250
    train_config = TrainConfig(epochs=1, seed=5, train_limit=200, test_limit=100)
    specs = [
        JobSpec(
            "train", TrainJobConfig(preset("tiny filters"), train_config, name="trained", runs_dir=runs, mnist=mnist)
        ),
        JobSpec("oip", OipConfig(layer="conv1", maps=(0, 1), epochs=5), model=model),
        JobSpec("oip-variants", VariantsConfig(OipConfig(layer="conv2", epochs=10), 1, 2, 2.0), model=model),
        JobSpec(
            "precursor",
            PrecursorConfig(
                layer="conv3", maps=(1,), grid=2, values=(0.2, 0.8), test_epochs=2, keep=2, epochs=5, mode="faithful"
            ),
            model=model,
        ),
        JobSpec("sweep", SweepJobConfig(SweepConfig(ks=(3, 5), silhouette_sample=100), mnist)),
        JobSpec(
            "cluster-mlp",
            ClusterMlpConfig(k=5, mlp=MLPConfig(hidden=(8,), epochs=1), n_train=300, n_test=100, mnist=mnist),
        ),
        JobSpec(
            "dream",
            DreamConfig(mode="map", layer="conv2", map=1, loops=1, octaves=1, epochs=2),
            model=model,
            inputs={"photo": photo},
        ),
        JobSpec(
            "dream-gallery",
            GalleryConfig(layer="conv3", maps=(0, 1), loops=1, epochs=2, oip_epochs=5),
            model=model,
            inputs={"photo": photo},
        ),
        JobSpec("compare", CompareConfig(model, str(with_checkpoints), digits=50, mnist=mnist)),
        JobSpec("knockout", KnockoutConfig((("conv1", (0,)),), mnist=mnist), model=model),
        JobSpec("replay", ReplayConfig(mnist=mnist), model=str(with_checkpoints)),
        JobSpec(
            "import-model",
            ImportConfig("tiny.keras", name="imported", runs_dir=runs, with_mnist=False),
            inputs={"data": (Path(model) / MODEL_FILE).read_bytes()},
        ),
        JobSpec(
            "fine-tune",
            FineTuneJobConfig(
                FineTuneConfig(epochs=1, mnist_digits=100, repeat=2), name="tuned", runs_dir=runs, mnist=mnist
            ),
            model=model,
            inputs={"images": digits, "labels": labels},
        ),
        JobSpec(
            "augment-lesson",
            LessonConfig(
                epochs=1,
                preset="tiny filters",
                train_limit=200,
                robustness=RobustnessConfig(test_digits=50, invariance_digits=3),
                mnist=mnist,
            ),
            inputs={"images": digits, "labels": labels},
        ),
        JobSpec(
            "transfer",
            TransferJobConfig(TransferConfig(epochs=1, repeat=1), name="symbols", runs_dir=runs),
            model=model,
            inputs={"images": digits[:6], "labels": np.repeat(np.arange(3), 2), "names": ["plus", "minus", "times"]},
        ),
    ]
    return {spec.kind: spec for spec in specs}
