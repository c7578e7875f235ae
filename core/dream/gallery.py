"""Several maps of one layer dream on the same photo in one batched run, each beside its OIP (the blog showed ten).

The recipe is the single-map dream of ``core.dream.deep_dream`` (article I): the photo's 28×28 version is ascended for
one map, upscaled, the photo's lost detail re-added, downscaled again, ``loops`` times. Here every map gets
its own copy of the 28×28 version and all copies go through the OIP engine's ascent as one batch, each with
its own target map; the result for a map equals its single-map dream. The maps' OIPs (the blog's settings)
come from the same engine, so a learner sees why a map's ghost looks as it does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from core.ascent.engine import AscentEngine, capped_epochs
from core.checks import check_range
from core.dream.deep_dream import DEFAULT_MAX_SIDE, TILE, Standardizer, prepare_photo, resize, to_uint8, widen
from core.oip.search import OipConfig, run_oip
from core.progress import ProgressCallback, progress_scope

MAX_GALLERY_MAPS = 32


@dataclass(frozen=True)
class GalleryConfig:
    """The maps of ``layer`` to dream, and the single-map recipe's settings (defaults: the blog's)."""

    layer: str = "conv3"
    maps: tuple[int, ...] = tuple(range(10))
    loops: int = 4
    epochs: int = 20
    step_size: float = 0.05
    invert: bool = False
    widen: float = 1.0
    max_side: int = DEFAULT_MAX_SIDE
    oip_epochs: int = OipConfig.epochs
    seed: int = 0  # of the OIPs' random starts

    def validate(self) -> None:
        if not 1 <= len(self.maps) <= MAX_GALLERY_MAPS:
            raise ValueError(f"{len(self.maps)} maps given; a gallery holds 1 to {MAX_GALLERY_MAPS}")
        if len(set(self.maps)) != len(self.maps):
            raise ValueError(f"maps {list(self.maps)} contain duplicates")
        check_range("loops", self.loops, 1, 20)
        check_range("epochs", self.epochs, 0, 500)
        check_range("step_size", self.step_size, 0, 10, open_low=True)
        if not 0 <= self.widen < 50:
            raise ValueError(f"widen={self.widen} must be a percentage between 0 and 50")
        check_range("max_side", self.max_side, TILE, 4096)


@dataclass
class DreamGallery:
    """``maps`` ``(K,)``; ``images`` the dreams, grey uint8 ``(K, H, W)``; ``patterns`` the dreamt 28×28 versions
    in model space ``(K, 28, 28)``; ``losses`` each map's cost after the last loop ``(K,)``; ``oips``
    ``(K, 28, 28)`` and ``oip_losses`` ``(K,)``; ``original`` the working photo, grey uint8 ``(H, W)``."""

    settings: GalleryConfig
    maps: np.ndarray
    images: np.ndarray
    patterns: np.ndarray
    losses: np.ndarray
    oips: np.ndarray
    oip_losses: np.ndarray
    original: np.ndarray
    seconds: float
    stopped: bool = False
    notes: list[str] = field(default_factory=list)


def dream_gallery(
    photo, engine: AscentEngine, settings: GalleryConfig, progress: ProgressCallback | None = None
) -> DreamGallery:
    """Dream every map of ``settings.maps`` on ``photo`` (uint8 ``(H, W)``/``(H, W, 3)`` or PIL) with ``engine``
    (its layer must be ``settings.layer``); ``progress`` counts loops, then the OIPs; a stop request ends
    after the current loop (the dreams so far are returned, ``stopped=True``)."""
    settings.validate()
    if engine.layer != settings.layer:
        raise ValueError(f"the ascent engine is for layer {engine.layer!r}, but the gallery is of {settings.layer!r}")
    bad = [m for m in settings.maps if not 0 <= m < engine.channels]
    if bad:
        raise ValueError(f"maps {bad} do not exist in {settings.layer}, which has maps 0..{engine.channels - 1}")
    started = time.perf_counter()
    maps = np.asarray(settings.maps, np.int64)
    grey, _, notes = prepare_photo(photo, settings.max_side)
    work = 255.0 - grey if settings.invert else grey
    scaler = Standardizer.of(work)
    z = scaler.forward(work)
    lo, hi = scaler.bounds
    h, w = z.shape
    small = resize(z, (TILE, TILE))
    detail = z - resize(small, (h, w))  # what the 28×28 version cannot hold
    smalls = np.repeat(small[None], len(maps), axis=0)
    finals = np.repeat(z[None], len(maps), axis=0)
    patterns, losses = smalls.copy(), np.zeros(len(maps), np.float32)
    stopped = False
    with progress_scope(progress, settings.loops + 1, f"Dream gallery · {settings.layer}, {len(maps)} maps") as prog:
        for k in range(settings.loops):
            if prog.should_stop():
                stopped = True
                break
            res = engine.ascend(smalls, maps, settings.epochs, settings.step_size, clip=(lo, hi), normalize="std")
            patterns = res.images[..., 0]
            losses = res.final_loss
            for i, pattern in enumerate(patterns):
                finals[i] = resize(pattern, (h, w)) + detail
                smalls[i] = resize(finals[i], (TILE, TILE))
            prog.on_step(k + 1, {"loop": k + 1, "loss": float(losses.mean())})
        if not stopped:
            oip = run_oip(
                engine,
                OipConfig(
                    layer=settings.layer,
                    maps=tuple(int(m) for m in maps),
                    epochs=capped_epochs(settings.oip_epochs),
                    seed=settings.seed,
                ),
            )
            oips, oip_losses = oip.best_images, oip.best_loss
            prog.on_step(settings.loops + 1, {"phase": "the maps' OIPs"})
        else:
            oips, oip_losses = np.full((len(maps), TILE, TILE), np.nan, np.float32), np.full(len(maps), np.nan)

    def to_picture(final_z: np.ndarray) -> np.ndarray:
        g = np.clip(scaler.inverse(final_z), 0, 255)
        g = 255.0 - g if settings.invert else g
        return widen(g, settings.widen) if settings.widen > 0 else to_uint8(g)

    images = np.stack([to_picture(f) for f in finals])
    return DreamGallery(
        settings,
        maps,
        images,
        patterns.astype(np.float32),
        np.asarray(losses, np.float32),
        np.asarray(oips, np.float32),
        np.asarray(oip_losses, np.float32),
        to_uint8(grey),
        time.perf_counter() - started,
        stopped,
        notes,
    )
