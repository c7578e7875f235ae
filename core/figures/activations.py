"""Plotly figures for the Activations page: map mosaics, overlays, receptive fields, patterns.

Every figure takes plain arrays (shapes in the docstrings) and returns a ``go.Figure``.
A layer's maps are drawn as ONE heatmap (a mosaic of tiles separated by gaps) plus one small
clickable label per map: hundreds of subplots would make the browser slow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

MAP_SCALE = "Viridis"
HEAT_SCALE = "Hot"
DIVERGING = "RdBu_r"


def _square(fig: go.Figure, height: int, *, reversed_y: bool = True) -> go.Figure:
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(
        visible=False, scaleanchor="x", scaleratio=1, constrain="domain", autorange="reversed" if reversed_y else True
    )
    fig.update_layout(height=height, margin=dict(l=5, r=5, t=30, b=5), plot_bgcolor="rgba(0,0,0,0)")
    return fig


def digit_figure(image: np.ndarray, title: str = "", height: int = 260) -> go.Figure:
    """A grey image ``(H, W)`` (0..255) with pixel values on hover."""
    fig = go.Figure(
        go.Heatmap(
            z=np.asarray(image, float),
            colorscale="gray",
            zmin=0,
            zmax=255,
            showscale=False,
            hovertemplate="row %{y}, col %{x}: %{z:.0f}<extra></extra>",
        )
    )
    fig.update_layout(title=dict(text=title, font_size=13))
    return _square(fig, height)


def probability_chart(probabilities: np.ndarray, predicted: int | None = None, height: int = 240) -> go.Figure:
    """Bar chart of the class probabilities ``(C,)``; the predicted class in red."""
    p = np.asarray(probabilities, float)
    predicted = int(np.argmax(p)) if predicted is None else predicted
    colors = ["#ef553b" if i == predicted else "#636efa" for i in range(len(p))]
    fig = go.Figure(
        go.Bar(
            x=[str(i) for i in range(len(p))],
            y=p,
            marker_color=colors,
            text=[f"{v * 100:.1f}%" if v >= 0.005 else "" for v in p],
            textposition="outside",
            hovertemplate="class %{x}: %{y:.4%}<extra></extra>",
        )
    )
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%")
    fig.update_xaxes(title_text="class", type="category")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=False)
    return fig


class ProbabilityChart:
    """``probability_chart`` made once and updated in place for each new digit: a drawn stroke then costs
    about 1 ms of figure work instead of about 12 ms for a new figure (the server answers every stroke of
    a whole class). Keep one per browser session: the figure is mutable."""

    def __init__(self, n_classes: int = 10, height: int = 180) -> None:
        self.figure = probability_chart(np.full(n_classes, 1.0 / n_classes), 0, height)

    def update(self, probabilities: np.ndarray, predicted: int | None = None) -> go.Figure:
        p = np.asarray(probabilities, float)
        predicted = int(np.argmax(p)) if predicted is None else predicted
        with self.figure.batch_update():
            bar = self.figure.data[0]
            bar.y = p
            bar.marker.color = ["#ef553b" if i == predicted else "#636efa" for i in range(len(p))]
            bar.text = [f"{v * 100:.1f}%" if v >= 0.005 else "" for v in p]
        return self.figure


def picked_marks(picture: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """The grey working image ``(h, w)`` uint8 as RGB ``(h, w, 3)`` with a red frame around ``box``
    (top, left, bottom, right): which marks of an upload were taken for the digit."""
    rgb = np.repeat(np.asarray(picture, np.uint8)[..., None], 3, axis=2).copy()
    if box is not None:
        top, left, bottom, right = box
        t = max(1, round(max(rgb.shape[:2]) / 150))
        red = np.array([230, 40, 40], np.uint8)
        for rows, cols in (
            (slice(max(0, top - t), top + 1), slice(left, right + 1)),
            (slice(bottom, bottom + t + 1), slice(left, right + 1)),
            (slice(top, bottom + 1), slice(max(0, left - t), left + 1)),
            (slice(top, bottom + 1), slice(right, right + t + 1)),
        ):
            rgb[rows, cols] = red
    return rgb


def map_mosaic(
    values: np.ndarray,
    order: Sequence[int] | None = None,
    cols: int = 8,
    per_map: bool = False,
    dead: np.ndarray | None = None,
    selected: int | None = None,
    width_px: int = 860,
    colorscale: str = MAP_SCALE,
    marked: Sequence[int] = (),
    hint: str = "click to enlarge",
) -> go.Figure:
    """All maps of a layer ``(H, W, C)`` in one figure, tiles in ``order`` (default 0..C-1).

    Hover shows map, row, column and the activation. ``per_map`` scales each tile's colours to its
    own maximum (hover keeps the true values); otherwise one colour scale spans the layer. Dead
    maps (``dead`` ``(C,)`` bool) get a red ✕ label; ``selected`` a highlighted frame; ``marked`` maps (e.g.
    switched off) a crossed-out tile and a dark frame. The labels (trace 1, one point per shown map,
    ``customdata`` = map index; hover says ``hint``) are clickable for selection.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 3:
        raise ValueError(f"a mosaic needs one layer's maps (H, W, C), got shape {values.shape}")
    h, w, c = values.shape
    order = list(range(c)) if order is None else [int(i) for i in order]
    n = len(order)
    dead = np.zeros(c, bool) if dead is None else np.asarray(dead, bool)
    cols = max(1, min(cols, max(n, 1)))
    rows = max(1, -(-n // cols))
    gap_x = max(1, round(w / 6))
    band = max(2, round(h / 3.5))  # the label band above each tile
    cell_w, cell_h = w + gap_x, h + band
    z = np.full((rows * cell_h, cols * cell_w - gap_x), np.nan, np.float32)
    # hover data: map, row, col (+ the true value when the colours are per map); small integer
    # types keep the figure light (plotly ships typed arrays base64-encoded)
    custom = np.zeros(z.shape + (4,), np.float32) if per_map else np.zeros(z.shape + (3,), np.uint16)
    top_all = float(values.max()) if values.size else 0.0
    lo_all = float(min(values.min(), 0.0)) if values.size else 0.0
    label_x, label_y, label_text, label_color = [], [], [], []
    for slot, m in enumerate(order):
        r, k = divmod(slot, cols)
        y0, x0 = r * cell_h + band, k * cell_w
        tile = values[..., m]
        shown = tile
        if per_map:
            peak = float(np.abs(tile).max())
            shown = tile / peak if peak > 0 else tile
        z[y0 : y0 + h, x0 : x0 + w] = shown
        yy, xx = np.mgrid[0:h, 0:w]
        parts = [np.full((h, w), m), yy, xx] + ([tile] if per_map else [])
        custom[y0 : y0 + h, x0 : x0 + w] = np.stack(parts, axis=-1)
        label_x.append(x0 + (w - 1) / 2)
        label_y.append(y0 - band / 2 - 0.5)
        label_text.append(f"{m}✕" if dead[m] else str(m))
        label_color.append("#d62728" if dead[m] else ("#ff7f0e" if m == selected else "#555"))
    zmin, zmax = (0.0, 1.0) if per_map else (lo_all, top_all if top_all > lo_all else lo_all + 1.0)
    if per_map and values.size and values.min() < 0:
        zmin = -1.0
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            z=z,
            customdata=custom,
            colorscale=colorscale,
            zmin=zmin,
            zmax=zmax,
            hoverongaps=False,
            showscale=not per_map,
            colorbar=dict(thickness=10, len=0.8),
            hovertemplate="map %{customdata[0]} · row %{customdata[1]}, col %{customdata[2]}<br>activation "
            + ("%{customdata[3]:.4g}" if per_map else "%{z:.4g}")
            + "<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=label_x,
            y=label_y,
            mode="markers+text",
            text=label_text,
            textposition="middle center",
            textfont=dict(size=10, color=label_color),
            customdata=order,
            marker=dict(
                symbol="square", size=16, color="rgba(255,255,255,0.01)", line=dict(width=1, color=label_color)
            ),
            hovertemplate="map %{customdata}: " + hint + "<extra></extra>",
            showlegend=False,
        )
    )
    for m in (int(m) for m in marked if int(m) in order):
        r, k = divmod(order.index(m), cols)
        y0, x0 = r * cell_h + band, k * cell_w
        fig.add_shape(
            type="rect",
            x0=x0 - 0.5,
            x1=x0 + w - 0.5,
            y0=y0 - 0.5,
            y1=y0 + h - 0.5,
            line=dict(color="#222", width=2),
            fillcolor="rgba(255,255,255,0.55)",
        )
        fig.add_shape(
            type="line", x0=x0 - 0.5, x1=x0 + w - 0.5, y0=y0 - 0.5, y1=y0 + h - 0.5, line=dict(color="#222", width=2)
        )
    if selected is not None and selected in order:
        slot = order.index(selected)
        r, k = divmod(slot, cols)
        y0, x0 = r * cell_h + band, k * cell_w
        fig.add_shape(
            type="rect",
            x0=x0 - 0.5 - 0.3,
            x1=x0 + w - 0.5 + 0.3,
            y0=y0 - 0.5 - 0.3,
            y1=y0 + h - 0.5 + 0.3,
            line=dict(color="#ff7f0e", width=3),
        )
    height = int(width_px * z.shape[0] / z.shape[1]) + 20
    fig.update_layout(clickmode="event+select", dragmode=False)
    _square(fig, min(1100, max(120, height)))
    fig.update_layout(margin=dict(l=5, r=5, t=10, b=5))
    return fig


def map_figure(
    values: np.ndarray,
    title: str = "",
    zmin: float | None = None,
    zmax: float | None = None,
    height: int = 360,
    colorscale: str = MAP_SCALE,
) -> go.Figure:
    """One map ``(H, W)`` large, values written into the cells when it is small."""
    values = np.asarray(values, float)
    text = np.vectorize(lambda v: f"{v:.2f}")(values) if values.size <= 144 else None
    fig = go.Figure(
        go.Heatmap(
            z=values,
            colorscale=colorscale,
            zmin=zmin,
            zmax=zmax,
            text=text,
            texttemplate="%{text}" if text is not None else None,
            colorbar=dict(thickness=10),
            hovertemplate="row %{y}, col %{x}: %{z:.4g}<extra></extra>",
        )
    )
    fig.update_layout(title=dict(text=title, font_size=13))
    return _square(fig, height)


def dense_strip(values: np.ndarray, title: str = "", height: int = 120) -> go.Figure:
    """A dense layer ``(units,)`` as one strip of cells; dead units (0) are dark."""
    values = np.asarray(values, float).reshape(1, -1)
    fig = go.Figure(
        go.Heatmap(
            z=values,
            colorscale=MAP_SCALE,
            zmin=0 if values.min() >= 0 else None,
            colorbar=dict(thickness=8),
            hovertemplate="unit %{x}: %{z:.4g}<extra></extra>",
        )
    )
    fig.update_yaxes(visible=False)
    fig.update_xaxes(title_text="unit", showgrid=False)
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=30 if title else 5, b=10), title=dict(text=title, font_size=13)
    )
    return fig


def kernel_grid(
    kernels: np.ndarray,
    noun: str = "kernel",
    cols: int = 8,
    highlight: int | None = None,
    width_px: int = 760,
    bound: float | None = None,
) -> go.Figure:
    """Kernels ``(N, k, k)`` as one mosaic on a symmetric blue-red scale (0 is white); hover names
    tile i as '``noun`` i'."""
    kernels = np.asarray(kernels, np.float32)
    n, kh, kw = kernels.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    gap = 1
    z = np.full((rows * (kh + gap) - gap, cols * (kw + gap) - gap), np.nan, np.float32)
    custom = np.full(z.shape + (4,), np.nan, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        y0, x0 = r * (kh + gap), c * (kw + gap)
        z[y0 : y0 + kh, x0 : x0 + kw] = kernels[i]
        yy, xx = np.mgrid[0:kh, 0:kw]
        custom[y0 : y0 + kh, x0 : x0 + kw] = np.stack([np.full((kh, kw), i), yy, xx, kernels[i]], axis=-1)
    bound = bound or float(np.abs(kernels).max()) or 1.0  # a given bound: one scale across several grids
    fig = go.Figure(
        go.Heatmap(
            z=z,
            customdata=custom,
            colorscale=DIVERGING,
            zmin=-bound,
            zmax=bound,
            hoverongaps=False,
            colorbar=dict(thickness=8),
            hovertemplate=noun + " %{customdata[0]:.0f} · row %{customdata[1]:.0f}, "
            "col %{customdata[2]:.0f}: %{customdata[3]:.4f}<extra></extra>",
        )
    )
    if highlight is not None and 0 <= highlight < n:
        r, c = divmod(highlight, cols)
        y0, x0 = r * (kh + gap), c * (kw + gap)
        fig.add_shape(
            type="rect",
            x0=x0 - 0.5,
            x1=x0 + kw - 0.5,
            y0=y0 - 0.5,
            y1=y0 + kh - 0.5,
            line=dict(color="#ff7f0e", width=3),
        )
    height = int(width_px * z.shape[0] / z.shape[1]) + 40
    return _square(fig, min(900, max(90, height)))


def overlay_figure(
    image: np.ndarray,
    heat: np.ndarray,
    title: str = "",
    colorscale: str = HEAT_SCALE,
    opacity: float = 0.6,
    height: int = 300,
    zmin: float | None = None,
    zmax: float | None = None,
    label: str = "value",
) -> go.Figure:
    """The grey digit ``(28, 28)`` with a heat map ``(28, 28)`` laid over it (hover shows both)."""
    image = np.asarray(image, float)
    heat = np.asarray(heat, float)
    custom = np.stack([image, heat], axis=-1)
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=image, colorscale="gray", zmin=0, zmax=255, showscale=False, hoverinfo="skip"))
    fig.add_trace(
        go.Heatmap(
            z=heat,
            customdata=custom,
            colorscale=colorscale,
            opacity=opacity,
            zmin=zmin,
            zmax=zmax,
            colorbar=dict(thickness=8, tickformat=".2~g"),  # no SI prefixes ("5n") on tiny drops
            hovertemplate=f"row %{{y}}, col %{{x}}<br>pixel %{{customdata[0]:.0f}}"
            f"<br>{label} %{{customdata[1]:.4g}}<extra></extra>",
        )
    )
    fig.update_layout(title=dict(text=title, font_size=13))
    return _square(fig, height)


def receptive_field_figure(
    image: np.ndarray, box: tuple[int, int, int, int], size: int, title: str = "", height: int = 320
) -> go.Figure:
    """The digit ``(28, 28)`` with the receptive-field ``box`` (top, left, bottom, right; inclusive)
    drawn on it; the full (unclipped) field is dashed when it reaches past the border."""
    fig = digit_figure(image, title, height)
    top, left, bottom, right = box
    fig.add_shape(
        type="rect",
        x0=left - 0.5,
        x1=right + 0.5,
        y0=top - 0.5,
        y1=bottom + 0.5,
        line=dict(color="#ff7f0e", width=3),
        fillcolor="rgba(255,127,14,0.18)",
    )
    return fig


def pattern_figure(means: np.ndarray, pattern: np.ndarray | None = None, height: int = 330) -> go.Figure:
    """Class-mean patterns ``(n_classes, H, W, C)`` as rows of a heatmap (columns: map-major
    ``C·H·W`` features), with this digit's pattern ``(H, W, C)`` as the last row."""
    means = np.asarray(means, np.float32)
    n, h, w, c = means.shape
    rows = means.transpose(0, 3, 1, 2).reshape(n, -1)
    labels = [f"class {k}" for k in range(n)]
    if pattern is not None:
        rows = np.vstack([rows, np.asarray(pattern, np.float32).transpose(2, 0, 1).reshape(1, -1)])
        labels.append("this digit")
    feature = np.arange(rows.shape[1])
    custom = np.stack(np.broadcast_arrays(feature // (h * w), (feature % (h * w)) // w, feature % w), -1)
    custom = np.broadcast_to(custom, (rows.shape[0],) + custom.shape)
    fig = go.Figure(
        go.Heatmap(
            z=rows,
            y=labels,
            customdata=custom,
            colorscale=MAP_SCALE,
            colorbar=dict(thickness=8),
            hovertemplate="%{y} · map %{customdata[0]} (row %{customdata[1]}, col "
            "%{customdata[2]}): %{z:.3g}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text=f"feature (map × {h}×{w} positions)", showgrid=False)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def similarity_chart(cosine: np.ndarray, predicted: int | None = None, height: int = 240) -> go.Figure:
    """Cosine similarity ``(n_classes,)`` of a digit's pattern to each class mean."""
    cosine = np.asarray(cosine, float)
    best = int(np.argmax(cosine))
    colors = ["#ef553b" if i == best else "#636efa" for i in range(len(cosine))]
    fig = go.Figure(
        go.Bar(
            x=[str(i) for i in range(len(cosine))],
            y=cosine,
            marker_color=colors,
            text=[f"{v:.2f}" for v in cosine],
            textposition="outside",
            hovertemplate="class %{x}: cosine %{y:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(range=[min(0.0, float(cosine.min())), 1.1], title_text="cosine similarity")
    fig.update_xaxes(title_text="class mean", type="category")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10))
    return fig
