"""Optimal input patterns (OIPs): what each map of a layer responds to most.

``search``: the OIP search (``OipConfig``, ``run_oip``, ``OipResult``).
``analysis``: OIPs beside the test digits (top patches, percentiles, kernels).
``variants``: negative and diverse OIPs of one map.
``precursor``: the blog's precursor search for maps without an OIP.
``similarity``: how alike two OIPs are, up to a shift.
"""
