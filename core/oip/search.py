"""Optimal input patterns (OIPs): the recipe of an OIP run over the maps of a layer.

An OIP is an input image that makes one map respond strongly. It is found with the trained
weights fixed, by gradient ascent on the pixels (blog articles VII–IX, XI; F. Chollet):

* loss of an image for its target map: the mean activation of that map (``objective="map"``), or
  one neuron of it (``objective="neuron"``), or minus it (``objective="negative"``: what the map hates);
  for the layer ``out`` the class score *before* the softmax (class visualisation);
* every epoch: ``x += step · g / rms(g)`` with ``g`` the gradient of the loss with respect to the
  image and ``rms(g)`` its root-mean-square over that image's pixels (per image of the batch);
* a map *has an OIP* when its loss ends above 0 (a map whose activations stay at zero has none).

``run_oip`` makes the start images (``core.ascent.starts``: random noise on 4 length scales, standardized per
image) for every (map, start) and sends them all as one batch through the engine (``core.ascent.engine``). What an
OIP means against the test digits is in ``core.oip.analysis``; its figures in ``core.figures.oip``.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from core.ascent.engine import (
    MAX_EPOCHS,
    PARAMETERISATIONS,
    SIDE,
    AscentEngine,
    capped_epochs,  # noqa: E402
    check_diversity,
    check_transforms,
)
from core.ascent.starts import DEFAULT_SCALE_WEIGHTS, check_scale_weights, random_starts  # noqa: E402
from core.checks import check_range
from core.device import describe_device
from core.files import atomic_write_bytes  # noqa: E402
from core.progress import ProgressCallback  # noqa: E402

OBJECTIVES = ("map", "neuron", "negative")  # negative: minimise the map (what it hates)
MAX_STARTS = 16
MAX_IMAGES = 4096  # maps × starts in one OIP run
GIVEN_UP_NOTICE = 10.0  # percent: diverse OIPs that gave up more of a map's objective than this should say so


# --- OIP runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OipConfig:
    """Settings of an OIP run. Defaults: all maps of conv3, 200 epochs, step 0.05, 1 start per map,
    improvements off (faithful to the blog)."""

    layer: str = "conv3"
    maps: tuple[int, ...] | None = None  # None: every map of the layer
    epochs: int = 200
    step: float = 0.05
    starts: int = 1
    scale_weights: tuple[float, float, float, float] = DEFAULT_SCALE_WEIGHTS
    seed: int = 0
    objective: str = "map"  # "neuron" (one position of the map) or "negative" (minimise the map)
    neuron: tuple[int, int] | None = None
    diversity: float = 0.0  # > 0: the starts of a map push each other apart (needs starts ≥ 2 to matter)
    scale: float = 0.0  # ± relative zoom per epoch (transformation robustness; see ROBUST_TRANSFORMS)
    rotate: float = 0.0  # ± degrees per epoch
    param: str = "pixel"  # or "fourier": ascend a decorrelated parameterisation (coarse structure first)
    jitter: int = 0
    blur: float = 0.0
    l2_decay: float = 0.0
    tv_weight: float = 0.0

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r} is not one of {OBJECTIVES}")
        if self.objective == "neuron" and self.neuron is None:
            raise ValueError("objective 'neuron' needs neuron=(row, col)")
        check_range("epochs", self.epochs, 1, MAX_EPOCHS)
        check_range("step", self.step, 0, 100, open_low=True)
        check_range("starts", self.starts, 1, MAX_STARTS)
        check_scale_weights(self.scale_weights)
        check_diversity(self.diversity)
        check_transforms(self.scale, self.rotate)
        if self.param not in PARAMETERISATIONS:
            raise ValueError(f"param {self.param!r} is not one of {PARAMETERISATIONS}")
        if not 0 <= int(self.jitter) <= 4:
            raise ValueError(f"jitter={self.jitter} px is outside 0..4")
        if self.maps is not None:
            if len(self.maps) == 0:
                raise ValueError("maps is empty; give at least one map index or None for all maps")
            if len(set(self.maps)) != len(self.maps):
                raise ValueError(f"maps {list(self.maps)} contain duplicates")

    def key(self) -> str:
        """A stable text key of all settings (for caches and file metadata)."""
        return json.dumps(asdict(self), sort_keys=True)

    def with_(self, **changes) -> OipConfig:
        return OipConfig(**{**asdict(self), **changes})


def parse_maps(text: str | None, channels: int) -> tuple[int, ...] | None:
    """``"all"`` / None / "" → None; ``"1,5,7-9"`` → (1, 5, 7, 8, 9); checked against ``channels``."""
    if text is None or str(text).strip().lower() in ("", "all"):
        return None
    maps: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                maps.extend(range(lo, hi + 1))
            else:
                maps.append(int(part))
        except ValueError:
            raise ValueError(f"maps {text!r}: {part!r} is not a map index or a range like 3-7") from None
    bad = [m for m in maps if not 0 <= m < channels]
    if bad:
        raise ValueError(f"maps {bad} do not exist; the layer has maps 0..{channels - 1}")
    if not maps:
        raise ValueError(f"maps {text!r} names no map; use 'all' or indices like 0,3,7")
    return tuple(dict.fromkeys(maps))


def oip_layers(model: keras.Model) -> list[str]:
    """Layers whose maps (or units) an OIP can target: convs, pools, batch-norms, dense, and ``out``."""
    names = []
    for lyr in model.layers:
        if isinstance(
            lyr, (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.BatchNormalization, keras.layers.Dense)
        ):
            names.append(lyr.name)
    return names


@dataclass
class OipResult:
    """The OIPs of the selected maps of a layer.

    ``maps`` ``(M,)``; ``images`` and ``initial`` ``(M, S, 28, 28)`` model-input values (S starts per
    map); ``history`` ``(epochs, M, S)`` loss per epoch; ``final_loss`` ``(M, S)``.
    """

    config: OipConfig
    maps: np.ndarray
    images: np.ndarray
    initial: np.ndarray
    history: np.ndarray
    final_loss: np.ndarray
    seconds: float
    device: str
    stopped: bool = False
    # the layer's largest activation on every test digit (core.oip.analysis.DigitMaxima), scanned by the job where it
    # runs so the dashboard's server never scans the test set itself; None where the job could not read test digits
    maxima: Any = None

    @property
    def best_start(self) -> np.ndarray:
        """Index of the start with the highest final loss, per map ``(M,)``."""
        return np.argmax(self.final_loss, axis=1)

    @property
    def best_loss(self) -> np.ndarray:
        return self.final_loss[np.arange(len(self.maps)), self.best_start]

    @property
    def best_images(self) -> np.ndarray:
        """``(M, 28, 28)``: each map's OIP from its best start."""
        return self.images[np.arange(len(self.maps)), self.best_start]

    @property
    def has_oip(self) -> np.ndarray:
        """``(M,)`` bool: the map's loss ended above 0."""
        return self.best_loss > 0

    @property
    def failed_maps(self) -> list[int]:
        return [int(m) for m, ok in zip(self.maps, self.has_oip) if not ok]

    @property
    def similarity(self) -> np.ndarray:
        """``(M,)``: per map, the mean pairwise similarity of its starts' OIPs up to a shift
        (``core.oip.similarity``); NaN with one start. Near 1: the starts found the same pattern."""
        from core.oip.similarity import mean_pairwise, shift_similarity

        return np.array([mean_pairwise(shift_similarity(imgs)) for imgs in self.images], np.float64)

    def given_up_vs(self, plain: OipResult) -> np.ndarray:
        """``(M,)``: per map of this (diverse) run, the percent of ``plain``'s best objective for that map that it
        gave up (``objective_given_up``); NaN for a map ``plain`` lacks or where it found no OIP."""
        rows = {int(m): i for i, m in enumerate(plain.maps)}
        reference = np.array([plain.best_loss[rows[int(m)]] if int(m) in rows else np.nan for m in self.maps])
        return objective_given_up(reference, self.best_loss)

    def row(self, map_index: int) -> int:
        hits = np.flatnonzero(self.maps == map_index)
        if hits.size == 0:
            raise ValueError(f"map {map_index} is not in this result (maps {self.maps.tolist()})")
        return int(hits[0])

    def summary(self) -> dict:
        return {
            "layer": self.config.layer,
            "n_maps": int(len(self.maps)),
            "with_oip": int(self.has_oip.sum()),
            "failed_maps": self.failed_maps,
            "epochs": int(self.history.shape[0]),
            "starts": int(self.config.starts),
            "device": self.device,
            "stopped": self.stopped,
            "objective": self.config.objective,
            "diversity": self.config.diversity,
            "final_loss": {str(int(m)): round(float(v), 6) for m, v in zip(self.maps, self.best_loss)},
            **(
                {"similarity": {str(int(m)): round(float(v), 4) for m, v in zip(self.maps, self.similarity)}}
                if self.config.starts > 1
                else {}
            ),
            "run_seconds": round(self.seconds, 3),
        }

    def to_npz_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            maps=self.maps,
            images=self.images,
            initial=self.initial,
            best_images=self.best_images,
            final_loss=self.final_loss,
            best_loss=self.best_loss,
            has_oip=self.has_oip,
            history=self.history,
            config=np.array(self.config.key()),
        )
        return buf.getvalue()

    def save_npz(self, path: str | os.PathLike) -> Path:
        """Write atomically (temporary file, then rename)."""
        return atomic_write_bytes(path, self.to_npz_bytes())


def objective_given_up(plain_best, diverse_best) -> np.ndarray:
    """Percent of the plain run's best objective that the diverse run gave up, per map: ``100 · (1 − diverse /
    plain)`` (negative where the diverse run did better); NaN where the plain run found no OIP (best ≤ 0) or a
    value is missing. Arrays of the maps' best losses (or two numbers) → an array of that shape; above
    ``GIVEN_UP_NOTICE`` the page says how much the diversity cost."""
    plain = np.asarray(plain_best, np.float64)
    diverse = np.asarray(diverse_best, np.float64)
    ok = np.isfinite(plain) & np.isfinite(diverse) & (plain > 0)
    return np.where(ok, 100.0 * (1.0 - diverse / np.where(ok, plain, 1.0)), np.nan)


def run_oip(
    engine: AscentEngine,
    config: OipConfig,
    progress: ProgressCallback | None = None,
    batch_size: int | None = None,
    chunks: int = 20,
) -> OipResult:
    """OIPs for ``config.maps`` (all maps when None) of ``engine.layer``: all maps × starts in one batch.

    Returns an ``OipResult``; ``progress`` counts image-epochs over ``chunks`` updates.
    """
    config.validate()
    if config.layer != engine.layer:
        raise ValueError(f"config.layer {config.layer!r} differs from the engine's layer {engine.layer!r}")
    maps = np.arange(engine.channels) if config.maps is None else np.asarray(config.maps, np.int64)
    bad = maps[(maps < 0) | (maps >= engine.channels)]
    if bad.size:
        raise ValueError(
            f"map {int(bad[0])} does not exist in layer {engine.layer!r}, which has maps 0..{engine.channels - 1}"
        )
    if len(maps) * config.starts > MAX_IMAGES:
        raise ValueError(
            f"{len(maps)} maps × {config.starts} starts = {len(maps) * config.starts} images; "
            f"at most {MAX_IMAGES} per run"
        )
    epochs = capped_epochs(config.epochs)
    neuron = config.neuron if config.objective == "neuron" else None
    starts = random_starts(maps.tolist(), config.starts, config.seed, config.scale_weights)
    m, s = starts.shape[:2]
    if batch_size and config.diversity > 0:  # a map's starts must share a sub-batch to push each other apart
        batch_size = max(s, batch_size // s * s)
    res = engine.ascend(
        starts.reshape(m * s, SIDE, SIDE),
        np.repeat(maps, s),
        epochs,
        config.step,
        neuron=neuron,
        jitter=config.jitter,
        blur=config.blur,
        l2_decay=config.l2_decay,
        tv_weight=config.tv_weight,
        seed=config.seed,
        batch_size=batch_size,
        chunks=chunks,
        progress=progress,
        label=f"OIPs of {engine.layer}",
        sign=-1.0 if config.objective == "negative" else 1.0,
        diversity=config.diversity,
        scale=config.scale,
        rotate=config.rotate,
        param=config.param,
    )
    return OipResult(
        config=config,
        maps=maps,
        images=res.images[..., 0].reshape(m, s, SIDE, SIDE),
        initial=starts,
        history=res.history.reshape(-1, m, s),
        final_loss=res.final_loss.reshape(m, s),
        seconds=res.seconds,
        device=describe_device(),
        stopped=res.stopped,
    )
