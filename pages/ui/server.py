"""Tuning the server process: called once, explicitly, by app.py (never on import)."""

from __future__ import annotations

import gc
import sys

import streamlit as st

# Hand the GIL on after 1 ms instead of 5: a drawing session's prediction releases the GIL at every TensorFlow and
# NumPy call and waited up to the interval to get it back each time while other sessions' pages were drawn (p95
# 440 -> 151 ms beside two page-drawing threads, bench/bench_switch_interval.py). Only the scheduling of the
# server's own threads changes, never a result; jobs run in worker processes.
SWITCH_INTERVAL_S = 0.001


def _keep_keras_session(*args, **kwargs) -> None:
    """Stands in for ``keras.backend.clear_session`` in the server (see ``tune_process``)."""


@st.cache_resource(show_spinner=False)
def tune_process() -> None:
    """Once per server process: a short GIL switch interval (above), Keras' session kept between script runs, and
    what lives as long as the server out of the garbage collector's sight.

    Streamlit clears Keras' session after every script run, fragment refreshes included, to free what a script
    built. This server builds its models once and shares them between sessions: clearing would reset Keras' state
    while other sessions' scripts use it, and ran a full garbage collection over TensorFlow's heap each time, holding
    the GIL (a third of the server's time in a class, measured)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    import keras

    keras.backend.clear_session = _keep_keras_session
    _load_plotly_validators()
    freeze_long_lived_objects()


def _load_plotly_validators() -> None:
    """Plotly builds each trace type's validators on first use and keeps them for good; built before the freeze,
    they stay out of the collector's sight instead of making the next full collections long (0.46 s seen in the
    classroom test, under a drawing session's stroke)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(specs=[[{"secondary_y": True}]])
    for trace in (go.Heatmap(z=[[0]]), go.Scatter(x=[0], y=[0]), go.Bar(x=[0], y=[0]), go.Image(z=[[[0, 0, 0]]])):
        figure.add_trace(trace)
    figure.update_layout(title="warm-up", coloraxis=dict(colorscale="gray"), xaxis=dict(title="x"))
    figure.to_plotly_json()


def freeze_long_lived_objects() -> None:
    """Take the objects alive now (TensorFlow, Keras, Streamlit, loaded models and data) out of the cyclic garbage
    collector's sight: they live as long as the server, and a full collection over them took about 0.2 s with the
    GIL held (400,000 objects). New objects are still collected."""
    gc.freeze()
