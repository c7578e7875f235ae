"""Deep Dream on photos with the digit network.

``deep_dream``: the dream (``DreamConfig``, ``dream``) and photo handling.
``gallery``: one dream per map of a layer, beside the maps' OIPs.
"""
