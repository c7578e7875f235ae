"""Figures of OIP results (core.oip.search): the clickable gallery of a layer, loss curves, a PNG contact sheet."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from core.ascent.engine import SIDE
from core.oip.analysis import contrast_enhance


def gallery_figure(
    images: np.ndarray,
    maps: Sequence[int],
    losses: Sequence[float],
    has_oip: Sequence[bool],
    rescued: Sequence[bool] | None = None,
    cols: int = 8,
    selected: int | None = None,
    width: int = 900,
):
    """One clickable figure for a layer's OIPs: a mosaic heatmap of the contrast-enhanced
    ``images`` ``(M, 28, 28)`` plus one invisible marker per thumbnail whose ``customdata`` is the
    map index (for ``st.plotly_chart(on_select=...)``). Maps without an OIP are crossed out in red;
    maps rescued by the precursor search are framed in orange and marked "P"; ``selected`` is framed
    in blue. ``width``: the expected display width in px (sets the height)."""
    import plotly.graph_objects as go

    images = np.asarray(images, np.float32)
    m = len(images)
    rescued = np.zeros(m, bool) if rescued is None else np.asarray(rescued, bool)
    cols = max(1, min(cols, m))
    rows = -(-m // cols)
    gap, cell = 4, SIDE + 4
    mosaic = np.full((rows * cell + gap, cols * cell + gap), np.nan, np.float32)
    shown = contrast_enhance(images)
    xs, ys, text, custom = [], [], [], []
    shapes = []
    for i in range(m):
        r, c = divmod(i, cols)
        y0, x0 = gap + r * cell, gap + c * cell
        img = shown[i] if has_oip[i] or rescued[i] else shown[i] * 0.35
        mosaic[y0 : y0 + SIDE, x0 : x0 + SIDE] = img
        xs.append(x0 + SIDE / 2 - 0.5)
        ys.append(y0 + SIDE / 2 - 0.5)
        status = "rescued by precursor" if rescued[i] else ("OIP" if has_oip[i] else "no OIP (loss ≤ 0)")
        text.append(f"map {int(maps[i])}<br>loss {float(losses[i]):.4g}<br>{status}")
        custom.append(int(maps[i]))
        color = "#ff9f1c" if rescued[i] else (None if has_oip[i] else "#e4572e")
        if int(maps[i]) == selected:
            color = "#00c2ff"
        if color:
            shapes.append(
                dict(
                    type="rect",
                    x0=x0 - 1.5,
                    y0=y0 - 1.5,
                    x1=x0 + SIDE + 0.5,
                    y1=y0 + SIDE + 0.5,
                    line=dict(color=color, width=2),
                )
            )
        if not has_oip[i] and not rescued[i]:
            shapes.append(
                dict(
                    type="line", x0=x0, y0=y0, x1=x0 + SIDE - 1, y1=y0 + SIDE - 1, line=dict(color="#e4572e", width=1.5)
                )
            )
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=mosaic, colorscale="viridis", showscale=False, zmin=0, zmax=1, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            customdata=custom,
            text=text,
            hovertemplate="%{text}<extra></extra>",
            marker=dict(symbol="square", size=30, color="rgba(255,255,255,0.01)"),
            showlegend=False,
            name="maps",
        )
    )
    annotations = [
        dict(
            x=gap + (i % cols) * cell + 1,
            y=gap + (i // cols) * cell + 1,
            text=(("P " if rescued[i] else "") + str(int(maps[i]))),
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font=dict(size=10, color="white"),
            bgcolor="rgba(0,0,0,0.45)",
        )
        for i in range(m)
    ]
    aspect = (rows * cell + gap) / (cols * cell + gap)
    fig.update_layout(
        shapes=shapes,
        annotations=annotations,
        height=int(min(1600, max(120, width * aspect))) + 10,
        margin=dict(l=0, r=0, t=5, b=5),
        dragmode=False,
        clickmode="event+select",
        plot_bgcolor="rgba(0,0,0,0)",
    )
    fig.update_xaxes(visible=False, range=[-0.5, cols * cell + gap - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain", constraintoward="top")
    return fig


def loss_curves_figure(history: np.ndarray, labels: Sequence[str]):
    """Loss per epoch ``(epochs, K)``, one line per start."""
    import plotly.graph_objects as go

    fig = go.Figure()
    epochs = np.arange(1, history.shape[0] + 1)
    for k in range(history.shape[1]):
        fig.add_trace(go.Scatter(x=epochs, y=history[:, k], mode="lines", name=labels[k]))
    fig.update_layout(
        height=260,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title="epoch",
        yaxis_title="loss (mean activation)",
        legend=dict(orientation="h", y=-0.3),
    )
    return fig


def sheet_png(images: np.ndarray, labels: Sequence[str] | None = None, cols: int = 8, scale: int = 4) -> bytes:
    """A PNG sheet of contrast-enhanced grey thumbnails ``(M, H, W)`` with labels above each."""
    from PIL import Image, ImageDraw

    images = contrast_enhance(np.asarray(images, np.float32))
    m, h, w = images.shape
    cols = max(1, min(cols, m))
    rows = -(-m // cols)
    tw, th, pad, head = w * scale, h * scale, 6, 14 if labels else 0
    sheet = Image.new("L", (cols * (tw + pad) + pad, rows * (th + pad + head) + pad), 32)
    draw = ImageDraw.Draw(sheet)
    for i in range(m):
        r, c = divmod(i, cols)
        x0, y0 = pad + c * (tw + pad), pad + r * (th + pad + head)
        tile = Image.fromarray(np.rint(images[i] * 255).astype(np.uint8)).resize((tw, th), Image.NEAREST)
        sheet.paste(tile, (x0, y0 + head))
        if labels:
            draw.text((x0, y0), str(labels[i]), fill=230)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()
