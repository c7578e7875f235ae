"""Data augmentation: random shifts, rotations, zooms, stroke thickness and elastic distortion of training digits,
applied on the fly inside the training's tf.data pipeline (``augment.py``), and the lesson that trains the blog's
model with and without it and measures what it buys (``lesson.py``)."""

from core.augmentation.augment import AUGMENT_KEYS, OFF, AugmentConfig, augment_batch, parse_augment

__all__ = ["AUGMENT_KEYS", "OFF", "AugmentConfig", "augment_batch", "parse_augment"]
