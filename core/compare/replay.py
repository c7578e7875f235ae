"""Replay a training from its checkpoints: the weights at the start, during the first epoch (where most features
form) and after every epoch, as kept by ``core.training`` (``TrainConfig.checkpoints``) in the run's
``checkpoints.npz``.

For any checkpoint: the model as it was (``checkpoint_model``), its conv1 filters, its OIPs of a layer
(``oip_at``, with the one gradient-ascent engine), and over all checkpoints the test accuracy (``accuracy_curve``,
every checkpoint in one compiled forward pass per batch).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from core.model import build_model
from core.progress import ProgressCallback, progress_scope
from core.runs import CHECKPOINTS_FILE, ModelBundle


@dataclass
class Checkpoints:
    """``positions`` ``(K,)`` in epochs (0 = the start; 0.1 = a tenth of the first epoch), ``weights[k]`` the model's
    weight arrays at checkpoint k (float16, in ``model.get_weights()`` order)."""

    positions: np.ndarray
    weights: list[list[np.ndarray]]

    def __len__(self) -> int:
        return len(self.positions)

    def label(self, k: int) -> str:
        p = float(self.positions[k])
        if p == 0:
            return "start"
        return f"epoch {int(p)}" if p == int(p) else f"{p:.1f} of epoch 1"

    def index(self, k: int) -> int:
        if not 0 <= int(k) < len(self):
            raise ValueError(f"checkpoint {k} is outside 0..{len(self) - 1}")
        return int(k)


def read_checkpoints(run_dir: str | Path) -> Checkpoints | None:
    """The run's checkpoints, or None when it kept none; ValueError naming the file when it is damaged."""
    path = Path(run_dir) / CHECKPOINTS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            positions = np.asarray(npz["positions"], np.float64)
            weights = []
            for k in range(len(positions)):
                arrays, j = [], 0
                while f"c{k}_w{j}" in npz.files:
                    arrays.append(npz[f"c{k}_w{j}"])
                    j += 1
                weights.append(arrays)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{str(path)!r} is damaged: {type(exc).__name__}: {exc}") from None
    return Checkpoints(positions, weights)


def checkpoint_model(bundle: ModelBundle, checkpoints: Checkpoints, k: int) -> keras.Model:
    """A new model of the run's architecture with the weights of checkpoint ``k`` (the run's model is untouched)."""
    model = build_model(bundle.spec)
    weights = checkpoints.weights[checkpoints.index(k)]
    if len(weights) != len(model.get_weights()):
        raise ValueError(
            f"checkpoint {k} holds {len(weights)} weight arrays; the architecture has {len(model.get_weights())}"
        )
    model.set_weights([w.astype(np.float32) for w in weights])
    return model


def conv1_filters(checkpoints: Checkpoints, k: int) -> np.ndarray:
    """conv1's kernels at checkpoint ``k`` as images ``(C, k, k)`` (the first weight array is conv1's kernel)."""
    kernel = np.asarray(checkpoints.weights[checkpoints.index(k)][0], np.float32)  # (k, k, 1, C)
    return np.transpose(kernel[:, :, 0, :], (2, 0, 1))


def accuracy_curve(
    bundle: ModelBundle,
    checkpoints: Checkpoints,
    images: np.ndarray,
    labels: np.ndarray,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Test accuracy ``(K,)`` of every checkpoint on raw ``images`` ``(N, 28, 28)`` with ``labels`` ``(N,)``. One model
    is built and compiled once; each checkpoint only swaps its weights in."""
    import tensorflow as tf

    model = build_model(bundle.spec)
    x = tf.constant(bundle.scaler.transform(images))
    forward = tf.function(
        lambda batch: tf.argmax(model(batch, training=False), axis=1), autograph=False, reduce_retracing=True
    )
    out = np.zeros(len(checkpoints))
    with progress_scope(progress, len(checkpoints), "test accuracy per checkpoint") as prog:
        for k in range(len(checkpoints)):
            if prog.should_stop():
                out[k:] = np.nan
                break
            model.set_weights([w.astype(np.float32) for w in checkpoints.weights[k]])
            predicted = np.concatenate([forward(x[i : i + 2048]).numpy() for i in range(0, len(images), 2048)])
            out[k] = float((predicted == np.asarray(labels)).mean())
            prog.on_step(k + 1, {"checkpoint": checkpoints.label(k)})
    return out


def oip_at(bundle: ModelBundle, checkpoints: Checkpoints, k: int, config, progress: ProgressCallback | None = None):
    """The OIPs (``core.oip.search.run_oip`` with ``config``) of the model as it was at checkpoint ``k``."""
    from core.ascent.engine import AscentEngine
    from core.oip.search import run_oip

    return run_oip(AscentEngine(checkpoint_model(bundle, checkpoints, k), config.layer), config, progress=progress)


__all__ = ["Checkpoints", "accuracy_curve", "checkpoint_model", "conv1_filters", "oip_at", "read_checkpoints"]
