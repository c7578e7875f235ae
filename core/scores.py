"""Accuracy of a classifier on a labelled set, overall and per class (numpy only: no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_CLASSES = 10


@dataclass
class TestScore:
    """Accuracy on a labelled set: ``overall`` and ``per_class`` ``(10,)`` (NaN for a class with no digit)."""

    overall: float
    per_class: np.ndarray
    n: int


def score(probabilities: np.ndarray, labels: np.ndarray) -> TestScore:
    """``probabilities`` ``(N, 10)``, ``labels`` ``(N,)`` → accuracy overall and per class."""
    labels = np.asarray(labels).astype(int)
    right = np.argmax(probabilities, axis=1) == labels
    per_class = np.array([right[labels == k].mean() if np.any(labels == k) else np.nan for k in range(N_CLASSES)])
    return TestScore(float(right.mean()) if len(right) else float("nan"), per_class, int(len(right)))
