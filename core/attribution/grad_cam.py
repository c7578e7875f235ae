"""Grad-CAM (Selvaraju et al. 2017) on the last conv layer, placed on the input at the receptive-field
centres (``core.activations.ActivationModel.grad_cam``)."""

from __future__ import annotations

from core.attribution.base import Attribution, Method


def explain(activation_model, raw, class_index: int) -> Attribution:
    am = activation_model
    cam = am.grad_cam(am.scaler.transform(raw), class_index)
    side = cam.cam.shape
    return Attribution(
        "grad-cam",
        class_index,
        cam.on_input.astype("float32"),
        False,
        f"Grad-CAM on {cam.layer} ({side[0]}×{side[1]}) for class {class_index}",
        f"Grad-CAM: the {cam.layer} maps weighted by their mean gradient, placed at their receptive-field centres.",
    )


METHOD = Method(
    "grad-cam",
    "Grad-CAM",
    "Selvaraju et al. 2017",
    (),
    explain,
    "the last conv layer's maps weighted by their mean gradient",
)
