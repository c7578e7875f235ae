"""Occlusion (Zeiler & Fergus 2014): a patch slid over the digit, the drop in the class's score at each
position, all positions in one batched call (``core.activations.ActivationModel.occlusion``)."""

from __future__ import annotations

from core.activations import OCCLUSION_FILLS, OCCLUSION_SCORES
from core.attribution.base import FILL_LABELS, Attribution, Method, Option


def explain(activation_model, raw, class_index: int, patch=4, fill="mean", score="probability") -> Attribution:
    occ = activation_model.occlusion(raw, class_index, patch=patch, stride=1, fill=fill, score=score)
    largest = float(occ.pixel_map.max())
    notes = ()
    if score == "probability" and largest < 0.05:
        notes = (
            f"The probability of class {class_index} hardly moves under the patch (largest drop {largest:.3f}): "
            "the model is very sure. Choose the logit score to see which parts still matter.",
        )
    return Attribution(
        "occlusion",
        class_index,
        occ.pixel_map,
        True,
        f"occlusion {patch}×{patch}: drop in {score}",
        f"Occlusion: a {patch}×{patch} {dict(FILL_LABELS)[fill].split(' (')[0]} patch slid over the digit; red = "
        f"the {score} of class {class_index} (unoccluded {occ.base_value:.4f}) drops when that pixel is covered, "
        "blue = it rises.",
        {"base_value": occ.base_value, "largest_drop": largest},
        notes,
    )


METHOD = Method(
    "occlusion",
    "Occlusion",
    "Zeiler & Fergus 2014",
    (
        Option("patch", "Occlusion patch", 4, low=2, high=8),
        Option("fill", "Patch colour", "mean", OCCLUSION_FILLS, choice_labels=FILL_LABELS),
        Option(
            "score",
            "Occlusion measures the drop in",
            "probability",
            OCCLUSION_SCORES,
            help="A confident model keeps p ≈ 1 under most patches: the logit still shows which parts matter.",
        ),
    ),
    explain,
    "how much the class's score drops when a patch hides each part of the digit",
)
