"""The blog's published figures that the product reproduces, each with its source, in one place: the pages show
them beside the user's own results (faithful first, then better), and the tests and benchmarks compare against
them. Figures only; the blog's code and words are not reproduced here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """One published figure: ``value`` as the blog states it, ``number`` for comparisons (None for a text),
    and the article it comes from."""

    value: str
    number: float | None
    source: str


ARTICLE_II = "A simple CNN for the MNIST datasets – II (building the CNN with Keras)"
ARTICLE_I = "A simple CNN for the MNIST datasets – I (CNN basics)"
OIP_SERIES = "A simple CNN for the MNIST dataset – VIII/IX (filter visualisation, OIPs of conv3 with 128 maps)"
ARTICLE_X = "A simple CNN for the MNIST dataset – X (precursor patterns)"
MLP_XIV = "MLP, MNIST and cluster detection – XIV (k-means cluster distances as MLP input)"

PUBLISHED = {
    "params": Published("96,844 parameters", 96_844, ARTICLE_II),
    "accuracy": Published("99 % test accuracy after 5 epochs", 0.99, ARTICLE_II),
    "train_time": Published("20.6 s for 5 epochs on a GTX 960 GPU", 20.6, ARTICLE_II),
    "receptive_fields": Published("conv1 3, pool1 4, conv2 8, pool2 10, conv3 18 px", None, ARTICLE_I),
    "oip_conv3": Published("61 of 128 conv3 maps with an OIP (67 without)", 61 / 128, OIP_SERIES),
    "precursor": Published("33 of 67 failing maps rescued (49 %)", 33 / 67, ARTICLE_X),
    "cluster_mlp": Published("97.8 % with K = 70 cluster distances", 0.978, MLP_XIV),
    "reference_mlp": Published("97.35 % for the MLP on all 784 pixels", 0.9735, MLP_XIV),
    "cluster_speedup": Published("14× less CPU time to reach 97.4 %", 14.0, MLP_XIV),
}
RECEPTIVE_FIELDS = {"conv1": 3, "pool1": 4, "conv2": 8, "pool2": 10, "conv3": 18}


def published(key: str) -> Published:
    if key not in PUBLISHED:
        raise ValueError(f"no published figure {key!r}; known: {sorted(PUBLISHED)}")
    return PUBLISHED[key]


__all__ = ["PUBLISHED", "Published", "RECEPTIVE_FIELDS", "published"]
