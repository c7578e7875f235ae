"""Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks").

Each pixel's attribution is its difference from a baseline times the gradient of the class score
averaged along the straight path from the baseline to the digit:

    IG_i(x) = (x_i − x0_i) · ∫₀¹ ∂f(x0 + α(x − x0)) / ∂x_i dα

The integral is the trapezoid rule over ``steps`` intervals; all ``steps + 1`` points of the path go
through the network in ONE batched gradient call. Completeness says the attributions sum to
f(x) − f(x0); ``completeness_gap`` is how far the sum is from it, relative to |f(x) − f(x0)|, and
shrinks as ``steps`` grows.
"""

from __future__ import annotations

import numpy as np

from core.attribution.base import Attribution, Method, Option

BASELINES = ("black", "mean")
SCORES = ("logit", "probability")


def baseline_image(activation_model, baseline: str) -> np.ndarray:
    """The raw ``(28, 28)`` start of the path: 'black' (no ink, the paper's choice for images) or 'mean'
    (the training digits' mean, which the network's standardized input sees as all zeros)."""
    if baseline == "black":
        return np.zeros((activation_model.side, activation_model.side), np.float32)
    if baseline == "mean":
        return activation_model.scaler.mean.astype(np.float32)
    raise ValueError(f"baseline {baseline!r} is not one of {BASELINES}")


def explain(activation_model, raw: np.ndarray, class_index: int, baseline="black", steps=64, score="logit"):
    """Integrated Gradients of class ``class_index`` for the raw digit ``(28, 28)`` (0..255), in the
    network's standardized input units → ``Attribution`` with ``pixels`` ``(28, 28)`` (signed)."""
    am = activation_model
    if am.scaler is None:
        raise ValueError("Integrated Gradients needs the model's scaler (build ActivationModel with scaler=...)")
    x = am.scaler.transform(raw)[0]  # (28, 28, 1)
    x0 = am.scaler.transform(baseline_image(am, baseline))[0]
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)[:, None, None, None]
    path = x0[None] + alphas * (x - x0)[None]  # (steps + 1, 28, 28, 1)
    grads = am.gradients(path, class_index, score)  # (steps + 1, 28, 28, 1)
    weights = np.full(steps + 1, 1.0 / steps, np.float32)
    weights[[0, -1]] /= 2  # trapezoid rule
    mean_grad = np.tensordot(weights, grads, axes=1)
    pixels = ((x - x0) * mean_grad)[..., 0].astype(np.float32)
    ends = am.scores(np.stack([x0, x]), class_index, score)
    change = float(ends[1] - ends[0])
    total = float(pixels.sum(dtype=np.float64))
    gap = abs(total - change) / max(abs(change), 1e-6)
    notes = ()
    if abs(change) < 1e-3:
        notes = (
            f"The {score} of class {class_index} is about the same at the baseline and the digit "
            f"({ends[0]:.4f} vs {ends[1]:.4f}): there is little to attribute, so the map is mostly noise.",
        )
    elif gap > 0.05:
        notes = (f"The attributions miss f(x) − f(baseline) by {gap:.1%}: use more steps for a faithful map.",)
    return Attribution(
        "integrated-gradients",
        class_index,
        pixels,
        True,
        f"Integrated Gradients from {baseline} for class {class_index}",
        f"Integrated Gradients: each pixel's change from the {baseline} baseline times the {score} gradient "
        f"averaged over {steps} steps of the path; red raises class {class_index}, blue lowers it. The pixels "
        f"sum to {total:.3f} against f(x) − f(baseline) = {change:.3f} (gap {gap:.2%}).",
        {"completeness_gap": gap, "attribution_sum": total, "score_change": change, "score": float(ends[1])},
        notes,
    )


METHOD = Method(
    "integrated-gradients",
    "Integrated Gradients",
    "Sundararajan, Taly & Yan 2017",
    (
        Option("baseline", "Baseline", "black", BASELINES, help="black: no ink; mean: the mean training digit"),
        Option("steps", "Steps", 64, low=4, high=512, step=4, help="points on the path, all in one batched call"),
        Option("score", "Score", "logit", SCORES, help="the class score whose change is shared out"),
    ),
    explain,
    "the class score's change from a baseline, shared out among the pixels along a straight path",
)
