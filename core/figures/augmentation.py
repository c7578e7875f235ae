"""Figures of augmentation (the Train page): samples of augmented digits, and the lesson's three models side by side
(accuracies on the test set, its moved copies and the handwriting set; invariance over the test digits)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.experiments.invariance import UNITS
from core.figures.common import image_grid

COLOURS = ("#7f7f7f", "#636efa", "#ef553b")  # blog model, without, with augmentation
TITLES = {"shift": "shift (px)", "rotate": "rotation (°)", "scale": "scale (×)", "thickness": "thickness (px)"}


def augmented_samples(originals: np.ndarray, augmented: np.ndarray) -> go.Figure:
    """One row per digit: ``originals`` ``(N, 28, 28)`` first, then its copies ``augmented`` ``(N, K, 28, 28)``."""
    n, k = augmented.shape[:2]
    images = np.concatenate([np.asarray(originals, np.float32)[:, None], augmented], axis=1).reshape(-1, 28, 28)
    titles = [("digit" if j == 0 else f"copy {j}") for _ in range(n) for j in range(k + 1)]
    return image_grid(images, titles, cols=k + 1, height_per_row=80, zmin=0, zmax=255)


def _colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def lesson_accuracies(reports: Sequence) -> go.Figure:
    """Grouped bars: each model's (``core.experiments.robustness.Robustness``) accuracy on the test set, each moved
    test set and the handwriting set (when measured)."""
    sets = ["test set", *reports[0].moved] if reports else []
    if reports and reports[0].handwriting is not None:
        sets.append(f"your handwriting ({reports[0].handwriting_digits})")
    fig = go.Figure()
    for i, r in enumerate(reports):
        values = [r.test_accuracy, *r.moved.values()] + ([r.handwriting] if r.handwriting is not None else [])
        fig.add_trace(
            go.Bar(
                x=sets,
                y=[100 * v for v in values],
                name=r.name,
                marker_color=_colour(i),
                text=[f"{100 * v:.1f}" for v in values],
                textposition="outside",
            )
        )
    fig.update_layout(
        barmode="group",
        height=340,
        yaxis=dict(title="accuracy %", range=[0, 105]),
        margin=dict(l=10, r=10, t=40, b=10),
        title="Accuracy on the test set and on moved copies of it",
        legend=dict(orientation="h", y=-0.15),
    )
    return fig


def _per_transform(reports: Sequence, trace) -> tuple[go.Figure, list[str]]:
    """One panel per transform of the reports' invariances, with ``trace(i, report, kind, (lo, hi))`` → the plotly
    trace of model ``i`` in the panel of ``kind`` (its legend entry shown once)."""
    kinds = list(reports[0].ranges) if reports else []
    fig = make_subplots(rows=1, cols=max(1, len(kinds)), subplot_titles=[TITLES.get(k, k) for k in kinds])
    for i, r in enumerate(reports):
        for j, kind in enumerate(kinds):
            fig.add_trace(trace(i, r, kind, r.median_range(kind)), 1, j + 1)
            fig.data[-1].update(name=r.name, legendgroup=r.name, showlegend=j == 0)
    return fig, kinds


def lesson_invariance(reports: Sequence) -> go.Figure:
    """Per transform of the Experiments page: the share of the test digits each model still reads right at each
    value (a line per model); the hover adds the median range over which a digit's prediction holds."""

    def trace(i, r, kind, held):
        return go.Scatter(
            x=r.values[kind],
            y=100 * np.asarray(r.curves[kind]),
            mode="lines+markers",
            marker=dict(size=4),
            line=dict(color=_colour(i)),
            hovertemplate=f"{r.name}<br>%{{x}} {UNITS[kind]}: %{{y:.1f}} % right<br>median range "
            f"{held[0]:g}..{held[1]:g} {UNITS[kind]}<extra></extra>",
        )

    fig, kinds = _per_transform(reports, trace)
    n = len(reports[0].ranges[kinds[0]]) if reports and kinds else 0
    fig.update_yaxes(range=[0, 102])
    fig.update_yaxes(title_text="% still read right", col=1)
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=60, b=10),
        title=f"Invariance over {n} test digits",
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def lesson_ranges(reports: Sequence) -> go.Figure:
    """Per transform: each model's median invariance range (low..high end over the digits it reads right
    untouched) as a floating bar."""

    def trace(i, r, kind, held):
        lo, hi = held
        return go.Bar(
            x=[r.name.split(" (")[0]],
            y=[hi - lo],
            base=[lo],
            marker_color=_colour(i),
            text=[f"{lo:g}..{hi:g}"],
            textposition="inside",
            hovertemplate=f"{r.name}: {lo:g}..{hi:g} {UNITS[kind]}<extra></extra>",
        )

    fig, _ = _per_transform(reports, trace)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(
        height=300,
        margin=dict(l=10, r=10, t=60, b=10),
        title="Median range over which a digit's prediction holds",
        legend=dict(orientation="h", y=-0.1),
    )
    return fig
