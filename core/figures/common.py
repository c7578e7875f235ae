"""Plotly figures shared by the pages and usable from notebooks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def whole_dtick(largest: int, ticks: int = 5) -> int:
    """The step between y ticks of a count axis up to ``largest``: a whole number, so a small count never shows
    ticks like '0 0 0 1 1 1'."""
    return max(1, math.ceil(largest / ticks))


def enlarge(image: np.ndarray, side: int = 196) -> np.ndarray:
    """A small ``(h, w)`` or ``(h, w, 3)`` uint8 image enlarged by repeating pixels (sharp squares) so that its longer
    side is about ``side`` px, for ``st.image``."""
    image = np.asarray(image, np.uint8)
    factor = max(1, side // max(image.shape[:2]))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def training_curves(
    epochs: Sequence[dict], batches: Sequence[tuple[float, float, float]] = (), steps_per_epoch: int | None = None
) -> go.Figure:
    """Loss and accuracy against epochs: train and test per epoch, plus the live per-batch values.

    ``epochs``: dicts with ``epoch``, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``.
    ``batches``: (batches done, loss, accuracy); x is converted to epochs with ``steps_per_epoch``.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    if batches and steps_per_epoch:
        b = np.asarray(batches, dtype=float)
        stride = max(1, len(b) // 400)  # keep the figure light
        b = b[::stride]
        x = b[:, 0] / steps_per_epoch
        fig.add_trace(
            go.Scatter(
                x=x,
                y=b[:, 1],
                name="train (running, per batch)",
                mode="lines",
                line=dict(color="rgba(99,110,250,0.35)"),
                legendgroup="batch",
            ),
            1,
            1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=b[:, 2],
                name="train (running, per batch)",
                mode="lines",
                line=dict(color="rgba(99,110,250,0.35)"),
                showlegend=False,
                legendgroup="batch",
            ),
            1,
            2,
        )
    if epochs:
        e = [row["epoch"] for row in epochs]
        for col, key in ((1, "loss"), (2, "accuracy")):
            for prefix, name, color in (("", "train (epoch)", "#636efa"), ("val_", "test (epoch)", "#ef553b")):
                values = [row.get(prefix + key) for row in epochs]
                if any(v is not None for v in values):
                    fig.add_trace(
                        go.Scatter(
                            x=e,
                            y=values,
                            name=name,
                            mode="lines+markers",
                            line=dict(color=color),
                            showlegend=col == 1,
                            legendgroup=name,
                        ),
                        1,
                        col,
                    )
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def confusion_heatmap(confusion: np.ndarray) -> go.Figure:
    """``confusion`` (C, C): rows true class, columns predicted class."""
    c = np.asarray(confusion)
    off = c.copy()
    np.fill_diagonal(off, 0)
    fig = px.imshow(
        c,
        text_auto=True,
        color_continuous_scale="Blues",
        labels=dict(x="predicted", y="true", color="count"),
        x=[str(i) for i in range(c.shape[1])],
        y=[str(i) for i in range(c.shape[0])],
        zmax=max(1, int(off.max()) * 2),
    )  # saturate the diagonal so errors stay visible
    fig.update_layout(height=430, margin=dict(l=10, r=10, t=30, b=10), coloraxis_showscale=False)
    fig.update_xaxes(dtick=1, side="bottom")
    fig.update_yaxes(dtick=1)
    return fig


def image_grid(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    cols: int = 8,
    colorscale: str = "gray",
    height_per_row: int = 110,
    zmin=None,
    zmax=None,
) -> go.Figure:
    """A grid of small images ``(N, H, W)`` with titles, drawn as one mosaic heatmap (hover shows each image's
    value). Each image gets its own colour range (min..max) unless ``zmin``/``zmax`` fix one.

    One heatmap rather than a subplot per image: plotly's ``make_subplots`` with dozens of panels cost the server
    about a second of Python per figure, felt by everyone sharing it."""
    images = np.asarray(images, dtype=float)
    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    h, w = images.shape[1:3] if n else (1, 1)
    gap = max(1, round(w / 14))
    band = round(h * 0.3) if titles else 0  # room for the titles above each row
    cell_h, cell_w = h + band + gap, w + gap
    z = np.full((rows * cell_h, cols * cell_w - gap), np.nan)
    raw = np.full(z.shape, np.nan)  # the values under the pointer (z holds each image scaled to its range)
    annotations = []
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        y0, x0 = r * cell_h + band, c * cell_w
        if zmin is None and zmax is None:
            span = float(np.nanmax(img) - np.nanmin(img)) if np.isfinite(img).any() else 0.0
            shown = (img - np.nanmin(img)) / span if span > 0 else np.zeros_like(img)
        else:
            shown = img
        z[y0 : y0 + h, x0 : x0 + w] = shown
        raw[y0 : y0 + h, x0 : x0 + w] = img
        if titles:
            annotations.append(
                dict(
                    x=x0 + (w - 1) / 2,
                    y=y0 - 0.5 - band / 2,
                    text=str(titles[i]),
                    showarrow=False,
                    xanchor="center",
                    yanchor="middle",
                    font=dict(size=11),
                )
            )
    fixed = zmin is not None or zmax is not None
    fig = go.Figure(
        go.Heatmap(
            z=z,
            customdata=None if fixed else raw,
            colorscale=colorscale,
            showscale=False,
            hoverongaps=False,
            zmin=zmin if fixed else 0.0,
            zmax=zmax if fixed else 1.0,
            hovertemplate=("%{z:.3g}" if fixed else "%{customdata:.3g}") + "<extra></extra>",
        ),
        layout=dict(
            annotations=annotations,
            height=rows * height_per_row + 30,
            margin=dict(l=5, r=5, t=5, b=5),
            plot_bgcolor="rgba(0,0,0,0)",
            xaxis=dict(visible=False, constrain="domain"),
            yaxis=dict(visible=False, autorange="reversed", scaleanchor="x", constrain="domain"),
        ),
    )
    return fig


def bar_chart(
    values: Sequence[float], labels: Sequence[str], title: str = "", highlight: int | None = None
) -> go.Figure:
    colors = ["#ef553b" if i == highlight else "#636efa" for i in range(len(values))]
    fig = go.Figure(go.Bar(x=list(labels), y=list(values), marker_color=colors))
    fig.update_layout(title=title, height=260, margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    return fig


def epoch_times(epoch_seconds: Sequence[float]) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(range(1, len(epoch_seconds) + 1)), y=list(epoch_seconds)))
    fig.update_layout(height=220, margin=dict(l=10, r=10, t=30, b=10), title="seconds per epoch", xaxis_title="epoch")
    return fig


def similarity_matrix(similarity: np.ndarray, labels: Sequence[str], title: str = "") -> go.Figure:
    """Pairwise similarity up to a shift ``(N, N)`` as a heatmap with its values written in."""
    fig = px.imshow(
        np.asarray(similarity),
        x=list(labels),
        y=list(labels),
        zmin=-1,
        zmax=1,
        text_auto=".2f",
        color_continuous_scale="RdBu_r",
    )
    fig.update_layout(
        height=80 + 40 * len(labels),
        margin=dict(l=10, r=10, t=30 if title else 10, b=10),
        title=title,
        coloraxis_showscale=False,
    )
    return fig


def similarity_histogram(values: Sequence[float], title: str = "") -> go.Figure:
    """The per-map similarity of a layer's starts (NaNs left out), 0.05 wide bins over [−1, 1]."""
    v = np.asarray(values, np.float64)
    fig = go.Figure(go.Histogram(x=v[np.isfinite(v)], xbins=dict(start=-1, end=1.0001, size=0.05)))
    fig.update_layout(
        height=240,
        margin=dict(l=10, r=10, t=30 if title else 10, b=10),
        title=title,
        bargap=0.05,
        xaxis_title="mean similarity of a map's OIPs (up to a shift)",
        yaxis_title="maps",
    )
    fig.update_xaxes(range=[-1, 1])
    return fig


def value_histogram(stage) -> go.Figure:
    """``stage``: a core.dream.deep_dream.DreamStage."""
    # the value distribution of a stage's picture before and after widening
    fig = go.Figure()
    for name, img, color in (("with details", stage.final, "#636efa"), ("widened", stage.widened, "#ef553b")):
        counts = np.bincount(img.ravel(), minlength=256)
        fig.add_trace(
            go.Scatter(
                x=np.arange(256),
                y=np.maximum(counts, 0.8),
                name=name,
                mode="lines",
                line=dict(color=color),
                hovertemplate="grey %{x}: %{y:.0f} pixels",
            )
        )
    fig.update_layout(
        height=240,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis_title="grey value",
        yaxis=dict(type="log", title="pixels"),
        legend=dict(orientation="h", y=1.15),
    )
    return fig


def replay_curve(
    positions: np.ndarray, accuracy: np.ndarray, at: float, without_oip: dict[float, int] | None = None, layer: str = ""
) -> go.Figure:
    """Test accuracy at each checkpoint ``positions`` ``(K,)`` (in epochs), the shown checkpoint ``at`` marked, and
    (right axis) the maps of ``layer`` without an OIP at the checkpoints computed so far (position → count)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=positions,
            y=100 * np.asarray(accuracy),
            mode="lines+markers",
            name="test accuracy %",
            hovertemplate="epoch %{x:.2f}: %{y:.2f} %<extra></extra>",
        ),
        secondary_y=False,
    )
    if without_oip:
        xs = sorted(without_oip)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[without_oip[x] for x in xs],
                mode="markers",
                name=f"{layer} maps without OIP",
                marker=dict(symbol="diamond", size=9, color="#ef553b"),
                hovertemplate="epoch %{x:.2f}: %{y} maps<extra></extra>",
            ),
            secondary_y=True,
        )
    fig.add_vline(x=at, line=dict(color="#888", dash="dot"))
    fig.update_layout(
        height=300,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=-0.3),
        title="the training replayed",
    )
    fig.update_xaxes(title_text="epochs")
    fig.update_yaxes(title_text="test accuracy %", secondary_y=False)
    fig.update_yaxes(
        title_text="maps without OIP",
        secondary_y=True,
        rangemode="tozero",
        tickformat="d",
        dtick=whole_dtick(max((without_oip or {}).values(), default=0)),
        showgrid=False,
    )
    return fig
