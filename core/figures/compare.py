"""Figures of the comparison of runs: curves overlaid, confusion differences, map alignment (plotly)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.compare.alignment import LayerAlignment
from core.figures.common import image_grid

PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")


def overlaid_curves(metas: Sequence[dict], names: Sequence[str], key: str = "val_accuracy") -> go.Figure:
    """One line per run of ``history[key]`` against the epoch (``key``: accuracy, loss, val_accuracy, val_loss)."""
    fig = go.Figure()
    for i, (meta, name) in enumerate(zip(metas, names)):
        values = (meta.get("history") or {}).get(key) or []
        if values:
            fig.add_trace(
                go.Scatter(
                    x=list(range(1, len(values) + 1)),
                    y=values,
                    name=name,
                    mode="lines+markers",
                    line=dict(color=PALETTE[i % len(PALETTE)]),
                )
            )
    label = {"val_accuracy": "test accuracy", "val_loss": "test loss"}.get(key, "train " + key)
    fig.update_layout(
        title=f"{label} per epoch",
        xaxis_title="epoch",
        yaxis_title=label,
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.3),
    )
    return fig


def confusion_difference(conf_a: np.ndarray, conf_b: np.ndarray, name_a: str, name_b: str) -> go.Figure:
    """Heatmap of ``conf_b − conf_a`` ``(10, 10)`` (rows: true digit, columns: predicted): red where B makes
    more of that mistake than A, blue where fewer; the diagonal (correct answers) is left blank."""
    diff = (np.asarray(conf_b) - np.asarray(conf_a)).astype(float)
    np.fill_diagonal(diff, np.nan)
    lim = max(1.0, float(np.nanmax(np.abs(diff))))
    text = [["" if np.isnan(v) or v == 0 else f"{int(v):+d}" for v in row] for row in diff]
    fig = go.Figure(
        go.Heatmap(
            z=diff,
            x=list(range(10)),
            y=list(range(10)),
            zmin=-lim,
            zmax=lim,
            colorscale="RdBu_r",
            text=text,
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z:+d}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"mistakes of {name_b} minus {name_a}",
        xaxis_title="predicted",
        yaxis_title="true digit",
        yaxis=dict(autorange="reversed", dtick=1),
        xaxis=dict(dtick=1),
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def matched_histogram(layer: LayerAlignment) -> go.Figure:
    """Histogram of the matched pairs' correlations with the threshold marked."""
    fig = go.Figure(go.Histogram(x=layer.matched, xbins=dict(start=-1, end=1.0001, size=0.05), marker_color=PALETTE[0]))
    fig.add_vline(
        x=layer.threshold,
        line_dash="dash",
        line_color="#ef553b",
        annotation_text=f"threshold {layer.threshold:g}",
        annotation_position="top left",
    )
    fig.update_layout(
        title=f"{layer.layer}: correlation of the matched pairs",
        xaxis_title="correlation",
        yaxis_title="pairs",
        xaxis=dict(range=[-0.2, 1.02]),
        height=300,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def matched_heatmap(layer: LayerAlignment, name_a: str = "A", name_b: str = "B") -> go.Figure:
    """The correlation matrix with A's maps in matching order and B's maps placed under their partners: a
    bright diagonal is maps learnt by both; B's maps without a partner come last."""
    rows = [int(a) for a, _ in layer.pairs] + [m for m in range(layer.maps[0]) if m not in set(layer.pairs[:, 0])]
    cols = [int(b) for _, b in layer.pairs] + [m for m in range(layer.maps[1]) if m not in set(layer.pairs[:, 1])]
    z = layer.correlation[np.ix_(rows, cols)]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"{name_b} {c}" for c in cols],
            y=[f"{name_a} {r}" for r in rows],
            zmin=-1,
            zmax=1,
            colorscale="RdBu_r",
            hovertemplate="%{y} · %{x}: %{z:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{layer.layer}: all pairs of maps, matched ones on the diagonal",
        xaxis=dict(showticklabels=False, title=name_b),
        yaxis=dict(showticklabels=False, autorange="reversed", title=name_a),
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def matched_patches(layer: LayerAlignment, raw_images: np.ndarray, pairs: int = 8) -> go.Figure:
    """The best-matched pairs side by side: for each, the test patch that excites A's map most next to the
    one that excites B's partner most (receptive-field crops), four pairs per row."""
    crops, titles = layer.pair_patches(raw_images, pairs)
    return image_grid(crops, titles, cols=8, height_per_row=120)


def matched_kernels(layer: LayerAlignment, kernels_a: np.ndarray, kernels_b: np.ndarray, pairs: int = 16) -> go.Figure:
    """For a layer that reads the digit itself (conv1): the ``pairs`` best-matched pairs' kernels side by side,
    ``kernels_a`` ``(Ca, k, k)`` and ``kernels_b`` ``(Cb, k, k)``, each on its own grey range."""
    images, titles = [], []
    for (a, b), corr in zip(layer.pairs[:pairs], layer.matched[:pairs]):
        images += [kernels_a[int(a)], kernels_b[int(b)]]
        titles += [f"A {int(a)} · r {corr:.2f}", f"B {int(b)}"]
    return image_grid(np.asarray(images), titles, cols=8, height_per_row=110)


def first_layer_kernels(model, layer: str) -> np.ndarray | None:
    """``(C, k, k)`` kernels of a conv layer that reads a one-channel image, else None."""
    weights = model.get_layer(layer).get_weights()
    if not weights or weights[0].ndim != 4 or weights[0].shape[2] != 1:
        return None
    return np.moveaxis(weights[0][:, :, 0, :], -1, 0)


def settings_that_differ(metas: Sequence[dict]) -> list[str]:
    """The training settings (``config`` keys) whose values are not the same in all runs."""
    configs = [meta.get("config") or {} for meta in metas]
    keys = sorted(set().union(*configs)) if configs else []
    return [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]


def matched_oips(
    layer: LayerAlignment,
    images_a: np.ndarray,
    maps_a: Sequence[int],
    images_b: np.ndarray,
    maps_b: Sequence[int],
    pairs: int = 8,
) -> go.Figure:
    """The best-matched pairs' OIPs side by side: ``images_a`` ``(Ma, 28, 28)`` for the maps ``maps_a`` of run A (an
    OIP run's best images), likewise for B; pairs whose maps are missing from an OIP run are skipped."""
    from core.oip.analysis import contrast_enhance

    where_a = {int(m): i for i, m in enumerate(maps_a)}
    where_b = {int(m): i for i, m in enumerate(maps_b)}
    images, titles = [], []
    for (a, b), corr in zip(layer.pairs, layer.matched):
        if int(a) in where_a and int(b) in where_b:
            images += [images_a[where_a[int(a)]], images_b[where_b[int(b)]]]
            titles += [f"A {int(a)} · r {corr:.2f}", f"B {int(b)}"]
        if len(images) >= 2 * pairs:
            break
    shown = contrast_enhance(np.asarray(images, np.float32)) if images else np.zeros((0, 28, 28), np.float32)
    return image_grid(shown, titles, cols=8, height_per_row=120, colorscale="Viridis", zmin=0, zmax=1)
