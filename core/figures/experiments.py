"""Figures of the experiments on one digit: knock-out, adversarial change, invariances (plotly)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.figures.common import whole_dtick

BEFORE, AFTER = "#636efa", "#ef553b"


def _layout(fig: go.Figure, title: str, height: int = 300, **kwargs) -> go.Figure:
    fig.update_layout(
        title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25), **kwargs
    )
    return fig


def before_after_bars(
    before: Sequence[float], after: Sequence[float], title: str, y_title: str, labels: Sequence[str] | None = None
) -> go.Figure:
    """Two bars per class (or label): before in blue, after in red."""
    x = list(labels) if labels is not None else [str(i) for i in range(len(before))]
    fig = go.Figure(
        [
            go.Bar(x=x, y=list(before), name="before", marker_color=BEFORE),
            go.Bar(x=x, y=list(after), name="after", marker_color=AFTER),
        ]
    )
    fig.update_xaxes(type="category")  # every class labelled, not 0, 2, 4, ...
    return _layout(fig, title, barmode="group", xaxis_title="class", yaxis_title=y_title)


def importance_bars(drop: np.ndarray, order: np.ndarray, layer: str, top: int = 20) -> go.Figure:
    """The ``top`` maps by accuracy lost when each alone is off (percentage points)."""
    picked = order[:top]
    fig = go.Figure(
        go.Bar(
            x=[f"map {int(m)}" for m in picked],
            y=100 * drop[picked],
            marker_color=AFTER,
            hovertemplate="%{x}: %{y:.2f} points<extra></extra>",
        )
    )
    return _layout(
        fig,
        f"{layer}: accuracy lost with one map off (the {len(picked)} that matter most)",
        yaxis_title="accuracy lost (points)",
    )


def change_picture(change: np.ndarray) -> np.ndarray:
    """A change ``(28, 28)`` in grey levels as an RGB picture ``(28, 28, 3)`` uint8, amplified to its largest
    value: red where pixels got brighter, blue where darker, white where nothing changed."""
    change = np.asarray(change, float)
    lim = max(1.0, float(np.abs(change).max()))
    t = np.clip(change / lim, -1, 1)[..., None]
    white = np.ones(change.shape + (3,))
    red, blue = np.array([0.84, 0.15, 0.16]), np.array([0.13, 0.40, 0.67])
    rgb = np.where(t >= 0, white * (1 - t) + red * t, white * (1 + t) + blue * (-t))
    return (255 * rgb).round().astype(np.uint8)


def divergence_chart(divergence: dict[str, float]) -> go.Figure:
    """Per layer ‖a′ − a‖ / ‖a‖: where the changed digit's activations part from the original's."""
    names = list(divergence)
    fig = go.Figure(
        go.Bar(
            x=names, y=[divergence[n] for n in names], marker_color=AFTER, hovertemplate="%{x}: %{y:.2f}<extra></extra>"
        )
    )
    return _layout(fig, "how far each layer's activations moved (‖a′ − a‖ / ‖a‖)", yaxis_title="relative change")


def _mark(fig: go.Figure, at: float | None) -> go.Figure:
    if at is not None:
        fig.add_vline(x=at, line=dict(color="#888", dash="dot"))
    return fig


def invariance_curves(
    values: np.ndarray, probabilities: np.ndarray, digit_class: int, kind: str, unit: str, at: float | None = None
) -> go.Figure:
    """The probability of ``digit_class`` and of the predicted class over the transform's range ``(V,)``
    (``probabilities`` ``(V, 10)``), each point labelled with the predicted digit; ``at`` marked."""
    predicted = np.argmax(probabilities, axis=1)
    fig = go.Figure(
        [
            go.Scatter(
                x=values,
                y=probabilities[:, digit_class],
                name=f"probability of {digit_class}",
                mode="lines+markers",
                line=dict(color=BEFORE),
            ),
            go.Scatter(
                x=values,
                y=probabilities.max(axis=1),
                name="prediction (its digit above)",
                mode="markers+text",
                text=[str(int(p)) for p in predicted],
                textposition="top center",
                marker=dict(color=[BEFORE if p == digit_class else AFTER for p in predicted], size=8),
            ),
        ]
    )
    return _mark(
        _layout(
            fig,
            f"the prediction under {kind}",
            xaxis_title=f"{kind} ({unit})",
            yaxis_title="probability",
            yaxis=dict(range=[0, 1.12]),
        ),
        at,
    )


def map_response_curve(
    values: np.ndarray, response: np.ndarray, layer: str, map_index: int, kind: str, unit: str, at: float | None = None
) -> go.Figure:
    """One map's mean response ``(V,)`` over the transform's range ``(V,)``; ``at`` marked."""
    fig = go.Figure(
        go.Scatter(
            x=values,
            y=response,
            mode="lines+markers",
            line=dict(color=BEFORE),
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    return _mark(
        _layout(
            fig,
            f"{layer} map {map_index}: its mean response under {kind}",
            height=260,
            xaxis_title=f"{kind} ({unit})",
            yaxis_title="mean response",
        ),
        at,
    )


def response_heatmap(values: np.ndarray, responses: np.ndarray, layer: str, kind: str, unit: str) -> go.Figure:
    """Every map's mean response ``(V, C)`` over the range, each map scaled to its own maximum."""
    peak = np.abs(responses).max(axis=0)
    scaled = np.divide(responses, peak, out=np.zeros_like(responses), where=peak > 0)
    fig = go.Figure(
        go.Heatmap(
            z=scaled.T,
            x=[f"{v:g}" for v in values],
            y=[f"map {m}" for m in range(responses.shape[1])],
            colorscale="Viridis",
            zmin=0,
            zmax=1,
            customdata=responses.T,
            hovertemplate="%{y} at %{x}: %{customdata:.3f}<extra></extra>",
        )
    )
    return _layout(
        fig,
        f"{layer}: each map's mean response (scaled to its own maximum)",
        height=420,
        xaxis_title=f"{kind} ({unit})",
        yaxis=dict(showticklabels=False, title="maps"),
    )


def personal_misses(counts: np.ndarray, misses: np.ndarray, model_name: str) -> go.Figure:
    """Per true class ``(10,)``: the digits of the personal set read right (stacked) and wrongly."""
    x = [str(i) for i in range(len(counts))]
    right = np.asarray(counts) - np.asarray(misses)
    fig = go.Figure(
        [
            go.Bar(x=x, y=right, name="read right", marker_color=BEFORE),
            go.Bar(x=x, y=misses, name="read wrongly", marker_color=AFTER),
        ]
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(tickformat="d", dtick=whole_dtick(int(np.max(counts, initial=0))))
    return _layout(
        fig,
        f"your digits by true class: what {model_name} reads",
        barmode="stack",
        xaxis_title="true class",
        yaxis_title="digits",
    )


def sets_before_after(before: dict, after: dict) -> go.Figure:
    """Accuracy (%) on each set (``name → core.experiments.personal_set.SetScore``) before and after fine-tuning."""
    names = [n for n in before if n in after]
    return (
        before_after_bars(
            [100 * before[n].accuracy.overall for n in names],
            [100 * after[n].accuracy.overall for n in names],
            "accuracy before and after fine-tuning",
            "accuracy %",
            labels=[f"{n} ({before[n].accuracy.n:,})" for n in names],
        )
        .update_layout(xaxis_title="")
        .update_traces(texttemplate="%{y:.1f} %", textposition="outside")
        .update_yaxes(range=[0, 112])
    )


def importance_oip_gallery(
    images: np.ndarray, maps: Sequence[int], drop: Sequence[float], has_oip: Sequence[bool], layer: str, each: int = 8
) -> go.Figure:
    """The OIPs ``(M, 28, 28)`` of the ``each`` most and ``each`` least important maps (``drop`` ``(M,)``: accuracy
    lost, 0..1), two rows, each thumbnail labelled with its map and the points it costs; maps without an OIP
    are dimmed."""
    from core.oip.analysis import contrast_enhance

    drop = np.asarray(drop, float)
    order = np.argsort(-drop, kind="stable")
    each = max(1, min(each, len(order) // 2 or 1))
    rows = [order[:each], order[::-1][:each]] if len(order) > each else [order]
    shown = contrast_enhance(np.asarray(images, np.float32))
    side, gap = shown.shape[1], 4
    cell = side + gap
    z = np.full((len(rows) * (cell + 6), each * cell), np.nan, np.float32)
    annotations = []
    for r, row in enumerate(rows):
        for c, i in enumerate(row):
            y0, x0 = r * (cell + 6) + 8, c * cell
            z[y0 : y0 + side, x0 : x0 + side] = shown[i] * (1.0 if has_oip[i] else 0.35)
            annotations.append(
                dict(
                    x=x0 + side / 2,
                    y=y0 - 1,
                    yanchor="bottom",
                    showarrow=False,
                    text=f"{int(maps[i])}: {100 * drop[i]:.2f}",
                    font=dict(size=10),
                )
            )
    fig = go.Figure(go.Heatmap(z=z, colorscale="viridis", zmin=0, zmax=1, showscale=False, hoverinfo="skip"))
    fig.update_layout(
        annotations=annotations,
        height=130 * len(rows) + 40,
        margin=dict(l=90, r=5, t=40, b=5),
        title=f"{layer}: OIPs of the most and least important maps (map: points lost)",
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(
        autorange="reversed",
        scaleanchor="x",
        tickvals=[r * (cell + 6) + 8 + side / 2 for r in range(len(rows))],
        ticktext=["most<br>important", "least<br>important"][: len(rows)],
        showgrid=False,
        zeroline=False,
    )
    return fig


def importance_vs_oip(relation) -> go.Figure:
    """Each map (``core.experiments.knockout.OipRelation``): how strongly its OIP drives it against the accuracy it
    costs."""
    colors = [BEFORE if h else AFTER for h in relation.has_oip]
    fig = go.Figure(
        go.Scatter(
            x=relation.oip_loss,
            y=100 * relation.drop,
            mode="markers",
            marker=dict(color=colors, size=8),
            customdata=relation.maps,
            hovertemplate="map %{customdata}: OIP loss %{x:.3g}, %{y:.2f} points<extra></extra>",
        )
    )
    return _layout(
        fig,
        f"{relation.layer}: strong OIP, important map? (red: no OIP)",
        xaxis_title="OIP loss (the map's mean response to its OIP)",
        yaxis_title="accuracy lost when off (points)",
    )
