"""Knock maps out: switch off (zero) maps of the conv layers and see what the network loses.

One compiled forward pass takes the digits and a *keep* vector with one entry per map of every conv layer
(1 keeps the map, 0 zeroes it after its layer), so any choice of maps is a new tensor, never a new trace.
The importance ranking of a layer's maps runs the network up to that layer once and only the layers after
it once per map.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from core.device import FORWARD_BATCH
from core.progress import ProgressCallback, progress_scope
from core.scores import N_CLASSES, TestScore, score

# Digits per call through the layers after a ranked layer: their inputs are small (3×3×64 floats a digit after
# conv3), so large batches mean fewer calls. Whole-network passes use FORWARD_BATCH: a conv layer's maps of
# 2,048 digits are 177 MB, fresh memory each call.
TAIL_BATCH = 2048


def parse_knockout(text: str) -> dict[str, list[int]]:
    """``"conv3:3,17"`` or ``"conv2:5;conv3:3,17"`` → ``{"conv3": [3, 17], ...}`` (ranges as ``3-7``)."""
    out: dict[str, list[int]] = {}
    for part in (p.strip() for p in str(text).split(";")):
        if not part:
            continue
        layer, sep, maps = part.partition(":")
        if not sep or not maps.strip():
            raise ValueError(f"{part!r} is not LAYER:MAPS (e.g. conv3:3,17 or conv3:0-7)")
        picked = out.setdefault(layer.strip(), [])
        for item in (m.strip() for m in maps.split(",") if m.strip()):
            lo, dash, hi = item.partition("-")
            try:
                values = range(int(lo), int(hi) + 1) if dash else [int(item)]
            except ValueError:
                raise ValueError(f"map {item!r} in {part!r} is not a number or a range like 3-7") from None
            picked.extend(v for v in values if v not in picked)
    if not out:
        raise ValueError(f"no maps to knock out in {text!r}; write them as LAYER:MAPS, e.g. conv3:3,17")
    return out


class Knockout:
    """A trained model with switchable maps. ``maps`` of ``mask_layers`` (every conv layer) can be zeroed."""

    def __init__(self, model: keras.Model) -> None:
        self._layers = [lyr for lyr in model.layers if not isinstance(lyr, keras.layers.InputLayer)]
        self.mask_layers = tuple(lyr.name for lyr in self._layers if isinstance(lyr, keras.layers.Conv2D))
        if not self.mask_layers:
            raise ValueError("this model has no conv layer whose maps could be knocked out")
        self.widths = {name: int(model.get_layer(name).output.shape[-1]) for name in self.mask_layers}
        offsets = np.cumsum([0] + [self.widths[n] for n in self.mask_layers])
        self._slices = {n: (int(offsets[i]), self.widths[n]) for i, n in enumerate(self.mask_layers)}
        self.size = int(offsets[-1])
        image = tf.TensorSpec([None] + [int(d) for d in model.input.shape[1:]], tf.float32)
        self._probs_fn = tf.function(
            self._probabilities, input_signature=[image, tf.TensorSpec([self.size], tf.float32)], autograph=False
        )
        self._head_fns: dict[str, object] = {}  # one compiled head (the layers up to it) per ranked layer
        self._tail_fns: dict[str, object] = {}  # one compiled tail per ranked layer

    # -- masks -------------------------------------------------------------------------------------------------
    def keep_vector(self, maps: Mapping[str, Sequence[int]] | None = None) -> np.ndarray:
        """``{"conv3": [3, 17]}`` → the keep vector ``(size,)`` with those maps at 0. Names the offending value
        for an unknown layer, a map out of range, or a layer with every map knocked out."""
        keep = np.ones(self.size, np.float32)
        for layer, picked in (maps or {}).items():
            if layer not in self._slices:
                raise ValueError(f"layer {layer!r} has no maps to knock out; allowed: {', '.join(self.mask_layers)}")
            offset, width = self._slices[layer]
            picked = [int(m) for m in picked]
            bad = [m for m in picked if not 0 <= m < width]
            if bad:
                raise ValueError(f"map(s) {bad} do not exist in {layer}, which has maps 0..{width - 1}")
            if len(set(picked)) >= width:
                raise ValueError(
                    f"knocking out all {width} maps of {layer} leaves nothing for the layers after it; "
                    "keep at least one"
                )
            keep[[offset + m for m in picked]] = 0.0
        return keep

    # -- forward -----------------------------------------------------------------------------------------------
    def _run(self, x, keep, layers):
        for lyr in layers:
            x = lyr(x, training=False)
            if lyr.name in self._slices:
                offset, width = self._slices[lyr.name]
                x = x * keep[offset : offset + width]
        return x

    def _probabilities(self, x, keep):
        return self._run(x, keep, self._layers)

    def probabilities(self, x: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """Model input ``(N, 28, 28, 1)`` → probabilities ``(N, 10)`` with the maps of ``keep`` switched off."""
        keep = np.ones(self.size, np.float32) if keep is None else np.asarray(keep, np.float32)
        if keep.shape != (self.size,):
            raise ValueError(f"keep has shape {keep.shape}; keep_vector() gives the right one ({self.size},)")
        x = np.asarray(x, np.float32)
        keep_t = tf.constant(keep)
        parts = [
            self._probs_fn(tf.constant(x[i : i + FORWARD_BATCH]), keep_t).numpy()
            for i in range(0, len(x), FORWARD_BATCH)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, N_CLASSES), np.float32)

    def layer_output(self, x: np.ndarray, layer: str) -> np.ndarray:
        """The intact network's output of ``layer`` for model input ``(N, 28, 28, 1)``, e.g. ``(N, H, W, C)``."""
        if layer not in self._slices:
            raise ValueError(f"layer {layer!r} has no maps to knock out; allowed: {', '.join(self.mask_layers)}")
        head, _ = self._split(layer)
        return self._run(tf.constant(np.asarray(x, np.float32)), tf.ones([self.size]), head).numpy()

    # -- the importance of each map of one layer ---------------------------------------------------------------
    def _split(self, layer: str):
        index = [lyr.name for lyr in self._layers].index(layer)
        return self._layers[: index + 1], self._layers[index + 1 :]

    def importance(
        self, x: np.ndarray, labels: np.ndarray, layer: str, progress: ProgressCallback | None = None
    ) -> Importance:
        """For each map of ``layer`` alone switched off: the accuracy on ``x`` ``(N, 28, 28, 1)`` with labels
        ``(N,)``, overall ``(C,)`` and per class ``(C, 10)``, beside the intact network's. The layers up to
        ``layer`` run once; the rest once per map."""
        if layer not in self._slices:
            raise ValueError(f"layer {layer!r} has no maps to rank; allowed: {', '.join(self.mask_layers)}")
        started = time.perf_counter()
        head, tail = self._split(layer)
        width = self.widths[layer]
        x = np.asarray(x, np.float32)
        if not len(x):
            raise ValueError("no digits to rank the maps on; give at least one")
        head_fn = self._head_fns.get(layer)
        if head_fn is None:
            head_fn = tf.function(
                lambda t: self._run(t, tf.ones([self.size]), head),
                input_signature=[tf.TensorSpec([None, *x.shape[1:]], tf.float32)],
                autograph=False,
            )
            self._head_fns[layer] = head_fn
        out = np.concatenate(
            [head_fn(tf.constant(x[i : i + FORWARD_BATCH])).numpy() for i in range(0, len(x), FORWARD_BATCH)]
        )
        acts = [tf.constant(out[i : i + TAIL_BATCH]) for i in range(0, len(out), TAIL_BATCH)]
        tail_fn = self._tail_fns.get(layer)
        if tail_fn is None:

            def tail_call(act, channel_keep):  # the layer's output with its maps switched, through the rest
                return self._run(act * channel_keep, tf.ones([self.size]), tail)

            tail_fn = tf.function(
                tail_call,
                input_signature=[
                    tf.TensorSpec([None, *out.shape[1:]], tf.float32),
                    tf.TensorSpec([width], tf.float32),
                ],
                autograph=False,
            )
            self._tail_fns[layer] = tail_fn
        base = score(np.concatenate([tail_fn(a, tf.ones([width])).numpy() for a in acts]), labels)
        overall = np.zeros(width)
        per_class = np.zeros((width, N_CLASSES))
        done = 0
        with progress_scope(progress, width, f"knocking out each map of {layer}") as prog:
            for m in range(width):
                keep = np.ones(width, np.float32)
                keep[m] = 0.0
                s = score(np.concatenate([tail_fn(a, tf.constant(keep)).numpy() for a in acts]), labels)
                overall[m], per_class[m] = s.overall, s.per_class
                done = m + 1
                prog.on_step(done, {"map": m})
                if prog.should_stop():
                    break
        return Importance(layer, base, overall[:done], per_class[:done], time.perf_counter() - started)


@dataclass
class Importance:
    """Accuracy with each map of ``layer`` alone switched off: ``overall`` ``(C,)``, ``per_class`` ``(C, 10)``,
    beside the intact network's ``base`` (C may be short of the layer's width when the ranking was stopped)."""

    layer: str
    base: TestScore
    overall: np.ndarray
    per_class: np.ndarray
    seconds: float

    def drop(self, digit_class: int | None = None) -> np.ndarray:
        """Accuracy lost per map ``(C,)``, overall or for one class."""
        if digit_class is None:
            return self.base.overall - self.overall
        if not 0 <= int(digit_class) < N_CLASSES:
            raise ValueError(f"class {digit_class} is outside 0..{N_CLASSES - 1}")
        return self.base.per_class[int(digit_class)] - self.per_class[:, int(digit_class)]

    def ranking(self, digit_class: int | None = None) -> np.ndarray:
        """Map indices, the most important (largest drop) first."""
        return np.argsort(-self.drop(digit_class), kind="stable")


@dataclass
class KnockoutOutcome:
    """The test set with and without the maps (``before``/``after``), and the ranking of ``importance.layer``'s
    maps when one was asked for."""

    maps: dict
    before: TestScore
    after: TestScore
    importance: Importance | None = None


def evaluate(
    knockout: Knockout,
    x: np.ndarray,
    labels: np.ndarray,
    maps: Mapping[str, Sequence[int]],
    rank_layer: str | None = None,
    progress: ProgressCallback | None = None,
) -> KnockoutOutcome:
    """Accuracy on model input ``x`` ``(N, 28, 28, 1)`` with labels ``(N,)`` before and after switching ``maps``
    off, and (``rank_layer``) every map of that layer ranked by the accuracy it alone costs."""
    keep = knockout.keep_vector(maps)
    with progress_scope(progress, 2, "test digits with the maps off") as prog:
        before = score(knockout.probabilities(x), labels)
        prog.on_step(1)
        after = score(knockout.probabilities(x, keep), labels)
        prog.on_step(2)
    importance = knockout.importance(x, labels, rank_layer, progress) if rank_layer else None
    return KnockoutOutcome({k: [int(m) for m in v] for k, v in maps.items()}, before, after, importance)


@dataclass
class OipRelation:
    """Does a map that looks meaningful matter? Per map of a layer found in both a ranking and an OIP run:
    ``maps`` ``(M,)``, ``drop`` ``(M,)`` (accuracy lost when that map alone is off), ``oip_loss`` ``(M,)`` (how
    strongly its OIP drives it) and ``has_oip`` ``(M,)``; ``spearman``: the rank correlation of the two (NaN
    with fewer than 3 maps or a constant column)."""

    layer: str
    maps: np.ndarray
    drop: np.ndarray
    oip_loss: np.ndarray
    has_oip: np.ndarray
    spearman: float

    def mean_drop(self, with_oip: bool) -> float:
        chosen = self.drop[self.has_oip == with_oip]
        return float(chosen.mean()) if len(chosen) else float("nan")

    def sentence(self) -> str:
        n_with = int(self.has_oip.sum())
        parts = [f"{n_with} of the {len(self.maps)} maps of {self.layer} have an OIP"]
        if 0 < n_with < len(self.maps):
            parts.append(
                f"switching one of them off costs {100 * self.mean_drop(True):.3f} points of accuracy on "
                f"average, one without an OIP {100 * self.mean_drop(False):.3f}"
            )
        if self.spearman == self.spearman:
            strength = "hardly" if abs(self.spearman) < 0.2 else "weakly" if abs(self.spearman) < 0.4 else "clearly"
            direction = "more" if self.spearman > 0 else "less"
            parts.append(
                f"a map whose OIP drives it harder is {strength} {direction} important "
                f"(rank correlation {self.spearman:+.2f})"
            )
        return "; ".join(parts) + "."


def relate_to_oips(importance: Importance, oip_maps, oip_loss, has_oip, digit_class: int | None = None) -> OipRelation:
    """Join a ranking (``Importance``) with an OIP run of the same layer (its ``maps`` ``(M,)``, best ``loss``
    ``(M,)`` and ``has_oip`` ``(M,)``), over the maps both cover."""
    from scipy.stats import spearmanr

    drop = importance.drop(digit_class)
    oip_maps = np.asarray(oip_maps, int)
    inside = oip_maps < len(drop)
    maps = oip_maps[inside]
    loss, has = np.asarray(oip_loss, float)[inside], np.asarray(has_oip, bool)[inside]
    d = drop[maps]
    rho = float("nan")
    if len(maps) >= 3 and np.ptp(d) > 0 and np.ptp(loss) > 0:
        rho = float(spearmanr(loss, d).statistic)
    return OipRelation(importance.layer, maps, d, loss, has, rho)


def most_active(activations: np.ndarray, k: int) -> list[int]:
    """The ``k`` maps with the largest mean response in one digit's layer output ``(H, W, C)``."""
    activations = np.asarray(activations)
    width = activations.shape[-1]
    if not 1 <= int(k) < width:
        raise ValueError(f"k={k} must be between 1 and {width - 1} (knocking out all {width} maps leaves nothing)")
    means = activations.reshape(-1, width).mean(axis=0)
    return [int(m) for m in np.argsort(-means, kind="stable")[: int(k)]]
