"""Plotly figures from core's results (arrays in, ``go.Figure`` out; no computation of their own).

``common``: training curves, image grids, bars, histograms. ``activations``, ``oip``, ``experiments``, ``compare``:
the figures of those pages.
"""
