"""Experiments on the learner's own digit and handwriting.

``knockout``: switch maps off. ``attack``: fool the network (FGSM, PGD). ``invariance``: shift, rotate, scale,
thicken. ``personal_set``: the learner's handwriting set. ``fine_tune``: fine-tune a copy on it.
"""
