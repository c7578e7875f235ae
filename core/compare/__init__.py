"""Runs beside each other and through time.

``alignment``: which maps of two runs match. ``replay``: a run's checkpoints during training.
"""
