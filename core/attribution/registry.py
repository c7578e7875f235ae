"""Every attribution method, in the order the Activations page shows them: one line per method."""

from core.attribution import grad_cam, integrated_gradients, lime, occlusion, saliency
from core.attribution.base import Method

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        saliency.METHOD,
        occlusion.METHOD,
        grad_cam.METHOD,
        lime.METHOD,
        integrated_gradients.METHOD,
    )
}


def method(name: str) -> Method:
    """The registered method called ``name``; a ValueError lists the others."""
    if name not in METHODS:
        raise ValueError(f"attribution method {name!r} is not one of {list(METHODS)}")
    return METHODS[name]
