"""Figures of the Transfer page (plotly): the symbol set, frozen against from scratch, the maps the symbols use."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.figures.common import image_grid

COLORS = {"frozen": "#636efa", "scratch": "#ef553b", "unfrozen": "#00cc96"}


def symbol_grid(images: np.ndarray, labels: np.ndarray, names: Sequence[str], cols: int = 10) -> go.Figure:
    """The set's examples ``(N, 28, 28)`` as thumbnails titled '<number>: <symbol>'."""
    titles = [f"{i}: {names[int(k)]}" for i, k in enumerate(labels)]
    return image_grid(np.asarray(images), titles, cols=cols, height_per_row=90, zmin=0, zmax=255)


def accuracy_bars(result, titles: dict[str, str]) -> go.Figure:
    """Held-out accuracy (%) of each network of a ``core.experiments.transfer.TransferResult``."""
    keys = list(result.scores)
    values = [100 * result.scores[k].accuracy for k in keys]
    fig = go.Figure(
        go.Bar(
            x=[titles[k] for k in keys],
            y=values,
            marker_color=[COLORS[k] for k in keys],
            text=[f"{v:.0f} %" for v in values],
            textposition="outside",
        )
    )
    fig.update_layout(
        title=f"accuracy on {len(result.held_out)} held-out examples",
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        yaxis=dict(title="accuracy %", range=[0, 112]),
    )
    return fig


def per_symbol_bars(result, titles: dict[str, str]) -> go.Figure:
    """Held-out accuracy (%) per symbol, one bar per network."""
    fig = go.Figure(
        [
            go.Bar(x=list(result.names), y=100 * np.nan_to_num(s.per_symbol), name=titles[k], marker_color=COLORS[k])
            for k, s in result.scores.items()
        ]
    )
    fig.update_xaxes(type="category")
    fig.update_layout(
        title="per symbol (held out)",
        barmode="group",
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        yaxis=dict(title="accuracy %", range=[0, 105]),
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def map_usage_heatmap(result) -> go.Figure:
    """The mean activation of each map of ``result.layer`` per symbol (symbols × maps), the top maps of each
    symbol outlined."""
    means = np.asarray(result.map_means)
    fig = go.Figure(
        go.Heatmap(
            z=means,
            x=[str(m) for m in range(means.shape[1])],
            y=list(result.names),
            colorscale="viridis",
            colorbar=dict(title="mean"),
            hovertemplate="%{y}, map %{x}: %{z:.3f}<extra></extra>",
        )
    )
    for row, maps in enumerate(result.top_maps):
        for m in maps:
            fig.add_shape(
                type="rect", x0=m - 0.5, x1=m + 0.5, y0=row - 0.5, y1=row + 0.5, line=dict(color="white", width=2)
            )
    fig.update_xaxes(type="category", title=f"map of {result.layer}")
    fig.update_layout(
        title=f"mean activation of each {result.layer} map per symbol (outlined: each symbol's top maps)",
        height=140 + 28 * len(result.names),
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def top_map_oips(images: np.ndarray, maps: Sequence[int], names: Sequence[str], top_maps: np.ndarray) -> go.Figure:
    """For each symbol (a row), the OIPs of its top maps; ``images`` ``(M, 28, 28)`` are the OIPs of ``maps``."""
    index = {int(m): i for i, m in enumerate(maps)}
    shown, titles = [], []
    for name, row in zip(names, top_maps):
        for m in row:
            i = index.get(int(m))
            shown.append(images[i] if i is not None else np.full_like(images[0], np.nan))
            titles.append(f"{name}: map {int(m)}")
    return image_grid(np.stack(shown), titles, cols=top_maps.shape[1], colorscale="viridis", height_per_row=120)


def conv_change_bars(change: dict[str, float]) -> go.Figure:
    """How far each conv layer's weights moved when unfrozen (‖W − W₀‖ / ‖W₀‖, %)."""
    fig = go.Figure(go.Bar(x=list(change), y=[100 * v for v in change.values()], marker_color=COLORS["unfrozen"]))
    fig.update_layout(
        title="unfrozen: how far each conv layer's weights moved",
        height=260,
        margin=dict(l=10, r=10, t=40, b=10),
        yaxis=dict(title="change of the weights %"),
    )
    return fig
