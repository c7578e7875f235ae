"""The network at a glance: one block per layer, drawn to scale by its output's size, with its shape,
parameters and receptive field (the start page's figure)."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from core.spec import ArchitectureSpec, layer_table

KIND_COLOURS = {"input": "#9e9e9e", "conv": "#d62728", "pool": "#ff9896", "dense": "#1f77b4", "out": "#2ca02c"}


def _colour(name: str) -> str:
    for prefix, colour in KIND_COLOURS.items():
        if name.startswith(prefix):
            return colour
    return "#bcbd22"  # batch-norm, dropout, flatten


def network_diagram(spec: ArchitectureSpec, height: int = 260) -> go.Figure:
    """One bar per layer from the input to ``out``: its height grows with the log of the layer's output size
    (H·W·C or units), its label gives the name and shape; hover adds parameters and receptive field."""
    rows = [("input", (spec.input_side, spec.input_side, 1), 0, 1)] + [
        (r.name, r.output_shape, r.params, r.receptive_field) for r in layer_table(spec) if r.name != "flatten"
    ]
    names = [name for name, *_ in rows]
    sizes = [math.prod(shape) for _, shape, *_ in rows]
    shapes = ["×".join(str(s) for s in shape) for _, shape, *_ in rows]
    hover = [
        f"<b>{name}</b><br>output {shape}<br>{params:,} parameters"
        + (f"<br>sees {field}×{field} input pixels" if field else "")
        for (name, _, params, field), shape in zip(rows, shapes)
    ]
    figure = go.Figure(
        go.Bar(
            x=names,
            y=[math.log10(size) + 0.3 for size in sizes],
            marker_color=[_colour(name) for name in names],
            text=shapes,
            textposition="outside",
            hovertext=hover,
            hoverinfo="text",
        )
    )
    total = sum(params for _, _, params, _ in rows)
    figure.update_layout(
        title=f"{len(rows) - 1} layers, {total:,} parameters: the size of each layer's output",
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        yaxis=dict(visible=False, range=[0, max(math.log10(s) for s in sizes) + 1.2]),
        xaxis=dict(title=None),
        showlegend=False,
        plot_bgcolor="white",
    )
    return figure
