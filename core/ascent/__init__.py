"""Gradient ascent on input images: the one compiled engine every recipe calls (OIPs, the precursor, dreams).

``engine``: ``AscentEngine``, batched ascent for the maps of one layer (objectives, transforms, parameterisations).
``starts``: the random start images (fluctuations on several length scales).
"""
