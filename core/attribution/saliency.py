"""Saliency (Simonyan, Vedaldi & Zisserman 2014): |∂ class score / ∂ pixel|, optionally SmoothGrad
(Smilkov et al. 2017: the mean over 24 noisy copies, in one batched call). The gradient itself is one of
``core.activations.ActivationModel``'s compiled functions."""

from __future__ import annotations

from core.activations import SCORES
from core.attribution.base import Attribution, Method, Option

SMOOTH_SAMPLES = 24


def explain(activation_model, raw, class_index: int, score="logit", smooth=False) -> Attribution:
    am = activation_model
    pixels = am.saliency(am.scaler.transform(raw), class_index, score=score, smooth_samples=SMOOTH_SAMPLES * smooth)
    return Attribution(
        "saliency",
        class_index,
        pixels.astype("float32"),
        False,
        f"saliency |∂{score}/∂pixel| for class {class_index}" + (" (SmoothGrad)" if smooth else ""),
        f"Saliency: how strongly each pixel changes the class-{class_index} {score}"
        + (f", averaged over {SMOOTH_SAMPLES} noisy copies." if smooth else "."),
    )


METHOD = Method(
    "saliency",
    "Saliency",
    "Simonyan, Vedaldi & Zisserman 2014",
    (
        Option(
            "score",
            "Saliency score",
            "logit",
            SCORES,
            help="logit: the class score before softmax (Simonyan et al.); probability saturates for confident "
            "predictions",
        ),
        Option("smooth", "SmoothGrad", False, help=f"average the gradients of {SMOOTH_SAMPLES} noisy copies"),
    ),
    explain,
    "the gradient of the class score with respect to each pixel",
)
