"""Do two trainings learn the same maps? Map alignment between two runs of one architecture.

For each conv layer, every map of run A is correlated with every map of run B over the same digits: a map's
responses at all positions of all digits form one long vector, and two maps are alike when these vectors
go up and down together (Pearson correlation). An optimal one-to-one matching
(``scipy.optimize.linear_sum_assignment`` on the correlations) then pairs the maps; a pair counts as *the same
map learnt twice* when its correlation reaches ``threshold``.

The statistics stream: each batch of digits goes through both models once, its centred cross-products are
merged into running sums in float64 (Chan et al.'s pairwise update), so 10,000 test digits never sit in
memory as conv1 activations (865 MB per model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
from scipy.optimize import linear_sum_assignment

from core.device import FORWARD_BATCH
from core.model import feature_model
from core.oip.analysis import DigitMaxima, top_patches
from core.progress import ProgressCallback, progress_scope
from core.spec import layer_table

DEFAULT_THRESHOLD = 0.5
# digits per compiled call: 128 took 0.75x the time of 500 on 10,000 digits (2 cores; fresh memory is slow to touch)
DEFAULT_BATCH = FORWARD_BATCH


@dataclass
class _Moments:
    """Running count, means and centred (cross-)products of two sets of channels."""

    n: float = 0.0
    mean_a: np.ndarray | None = None  # (Ca,)
    mean_b: np.ndarray | None = None  # (Cb,)
    ss_a: np.ndarray | None = None  # (Ca,) Σ (a − mean)²
    ss_b: np.ndarray | None = None  # (Cb,)
    cross: np.ndarray | None = None  # (Ca, Cb) Σ (a − mean_a)(b − mean_b)

    def merge(self, n, mean_a, mean_b, ss_a, ss_b, cross) -> None:
        mean_a, mean_b = np.float64(mean_a), np.float64(mean_b)
        if self.n == 0:
            self.n, self.mean_a, self.mean_b = float(n), mean_a, mean_b
            self.ss_a, self.ss_b, self.cross = np.float64(ss_a), np.float64(ss_b), np.float64(cross)
            return
        total = self.n + n
        da, db = mean_a - self.mean_a, mean_b - self.mean_b
        w = self.n * n / total
        self.ss_a = self.ss_a + ss_a + da * da * w
        self.ss_b = self.ss_b + ss_b + db * db * w
        self.cross = self.cross + cross + np.outer(da, db) * w
        self.mean_a = self.mean_a + da * n / total
        self.mean_b = self.mean_b + db * n / total
        self.n = total

    def correlation(self) -> np.ndarray:
        """``(Ca, Cb)`` Pearson correlations; 0 where a map never varies (a dead map correlates with nothing)."""
        norm = np.sqrt(np.outer(self.ss_a, self.ss_b))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.where(norm > 0, self.cross / np.where(norm > 0, norm, 1.0), 0.0)
        return np.clip(corr, -1.0, 1.0)


@dataclass
class LayerAlignment:
    """One layer's answer. ``correlation`` ``(Ca, Cb)``; ``pairs`` ``(K, 2)`` the matched (map in A, map in B),
    K = min(Ca, Cb), sorted by falling correlation; ``matched`` ``(K,)`` their correlations; ``dead_a``/``dead_b``
    the maps that never vary over the digits (they match nothing)."""

    layer: str
    correlation: np.ndarray
    pairs: np.ndarray
    matched: np.ndarray
    threshold: float
    dead_a: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    dead_b: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    # where each map peaks on each digit, and (receptive field, jump, start) of the layer, per run: for the
    # matched pairs' best test patches (None when the alignment was made from a correlation matrix alone)
    maxima_a: DigitMaxima | None = None
    maxima_b: DigitMaxima | None = None
    field_a: tuple[int, int, int] | None = None
    field_b: tuple[int, int, int] | None = None

    @property
    def maps(self) -> tuple[int, int]:
        return self.correlation.shape

    @property
    def n_matched(self) -> int:
        """Pairs at or above the threshold."""
        return int(np.sum(self.matched >= self.threshold))

    @property
    def share(self) -> float:
        """Matched pairs above the threshold ÷ the maps of the smaller layer."""
        return self.n_matched / max(1, min(self.maps))

    @property
    def mean_matched(self) -> float:
        """Mean correlation of all K matched pairs (above the threshold or not)."""
        return float(np.mean(self.matched)) if len(self.matched) else float("nan")

    @property
    def unmatched_a(self) -> list[int]:
        """Maps of A without a partner at or above the threshold."""
        good = set(int(a) for a, _ in self.pairs[self.matched >= self.threshold])
        return [m for m in range(self.maps[0]) if m not in good]

    @property
    def unmatched_b(self) -> list[int]:
        good = set(int(b) for _, b in self.pairs[self.matched >= self.threshold])
        return [m for m in range(self.maps[1]) if m not in good]

    def sentence(self, name_a: str = "run A", name_b: str = "run B") -> str:
        """The layer's answer in words a learner can read."""
        ca, cb = self.maps
        share = self.share
        verdict = (
            "nearly all of its maps were learnt again"
            if share >= 0.9
            else "most of its maps were learnt again"
            if share >= 0.6
            else "about half of its maps were learnt again"
            if share >= 0.4
            else "few of its maps were learnt again"
        )
        dead = ""
        if len(self.dead_a) or len(self.dead_b):
            dead = f" Maps that never respond: {len(self.dead_a)} in {name_a}, {len(self.dead_b)} in {name_b}."
        return (
            f"{self.layer}: {verdict}: {self.n_matched} of {min(ca, cb)} maps ({share:.0%}) of {name_a} have a "
            f"partner in {name_b} with correlation ≥ {self.threshold:g} (mean correlation of the one-to-one "
            f"pairs {self.mean_matched:.2f}).{dead}"
        )

    def pair_patches(self, raw_images: np.ndarray, pairs: int = 8) -> tuple[np.ndarray, list[str]]:
        """The best test patch of each map of the ``pairs`` best-matched pairs, A's then B's side by side:
        crops ``(2·pairs, rf, rf)`` (receptive-field crops of ``raw_images`` ``(N, 28, 28)``, the digits the
        alignment saw) and a title per crop."""
        if self.maxima_a is None or self.maxima_b is None:
            raise ValueError("this alignment kept no activation maxima; align() keeps them")
        crops, titles = [], []
        for (a, b), corr in zip(self.pairs[:pairs], self.matched[:pairs]):
            for label, m, maxima, fld in (("A", a, self.maxima_a, self.field_a), ("B", b, self.maxima_b, self.field_b)):
                crop, _, _ = top_patches(maxima, raw_images, int(m), *fld, k=1)
                crops.append(crop[0])
                titles.append(f"{label} {int(m)}" + (f" · r {corr:.2f}" if label == "A" else ""))
        side = max(c.shape[0] for c in crops) if crops else 1
        padded = np.zeros((len(crops), side, side), np.float32)
        for i, c in enumerate(crops):
            padded[i, : c.shape[0], : c.shape[1]] = c
        return padded, titles

    def summary(self) -> dict:
        return {
            "maps": list(self.maps),
            "matched": self.n_matched,
            "share": round(self.share, 4),
            "mean_correlation": round(self.mean_matched, 4),
            "threshold": self.threshold,
            "unmatched_a": self.unmatched_a,
            "unmatched_b": self.unmatched_b,
            "dead_a": [int(m) for m in self.dead_a],
            "dead_b": [int(m) for m in self.dead_b],
        }


@dataclass
class Alignment:
    """The per-layer answers for ``n_digits`` digits."""

    layers: dict[str, LayerAlignment]
    n_digits: int
    seconds: float = 0.0

    def summary(self) -> dict:
        return {"digits": self.n_digits, "layers": {n: a.summary() for n, a in self.layers.items()}}


def match(
    correlation: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    layer: str = "",
    dead_a: np.ndarray | None = None,
    dead_b: np.ndarray | None = None,
) -> LayerAlignment:
    """The optimal one-to-one matching of a ``(Ca, Cb)`` correlation matrix (highest total correlation)."""
    correlation = np.asarray(correlation, np.float64)
    if correlation.ndim != 2 or min(correlation.shape) == 0:
        raise ValueError(f"a correlation matrix (maps of A, maps of B) is needed, got shape {correlation.shape}")
    check_threshold(threshold)
    rows, cols = linear_sum_assignment(correlation, maximize=True)
    matched = correlation[rows, cols]
    order = np.argsort(-matched, kind="stable")
    return LayerAlignment(
        layer,
        correlation,
        np.stack([rows, cols], axis=1)[order],
        matched[order],
        float(threshold),
        np.zeros(0, int) if dead_a is None else dead_a,
        np.zeros(0, int) if dead_b is None else dead_b,
    )


def check_threshold(threshold: float) -> float:
    if not (isinstance(threshold, (int, float)) and -1.0 <= float(threshold) <= 1.0):
        raise ValueError(f"threshold={threshold!r} must be a correlation between -1 and 1")
    return float(threshold)


def check_comparable(model_a, model_b, layers: Sequence[str]) -> None:
    """Both models must have each layer, with maps of the same spatial size (maps are compared position by
    position) or as dense units (a unit is a map of one position: compared over the digits)."""
    if not layers:
        raise ValueError("no layers to compare; name at least one conv or dense layer, e.g. conv1")
    for name in layers:
        shapes = []
        for label, model in (("A", model_a), ("B", model_b)):
            try:
                layer = model.get_layer(name)
            except ValueError:
                names = [lyr.name for lyr in model.layers]
                raise ValueError(f"run {label} has no layer {name!r}; it has {names}") from None
            shape = tuple(int(d) for d in layer.output.shape[1:])
            units = len(shape) == 1 and type(layer).__name__ == "Dense"
            if len(shape) != 3 and not units:
                raise ValueError(
                    f"layer {name!r} of run {label} has neither maps nor units (output {shape}); compare conv, pool "
                    "or dense layers"
                )
            shapes.append(shape)
        if len(shapes[0]) != len(shapes[1]):
            raise ValueError(
                f"layer {name!r} has output {shapes[0]} in run A and {shapes[1]} in run B: maps in one, units in "
                "the other"
            )
        if len(shapes[0]) == 3 and shapes[0][:2] != shapes[1][:2]:
            raise ValueError(
                f"layer {name!r} has maps of {shapes[0][0]}×{shapes[0][1]} in run A and "
                f"{shapes[1][0]}×{shapes[1][1]} in run B; maps are compared position by position, so "
                "the two architectures must give them the same size"
            )


class _PairStats:
    """One compiled call per batch: both models' layer outputs → per layer the batch's moments."""

    def __init__(self, model_a, model_b, layers: Sequence[str]) -> None:
        self.layers = tuple(layers)
        self._fa = feature_model(model_a, list(self.layers))
        self._fb = feature_model(model_b, list(self.layers))
        spec = tf.TensorSpec([None, 28, 28, 1], tf.float32)
        self._fn = tf.function(self._call, input_signature=[spec, spec])

    def _call(self, xa, xb):
        outs_a, outs_b = self._fa(xa, training=False), self._fb(xb, training=False)
        outs_a = outs_a if isinstance(outs_a, (list, tuple)) else [outs_a]
        outs_b = outs_b if isinstance(outs_b, (list, tuple)) else [outs_b]
        result = []
        for a4, b4 in zip(outs_a, outs_b):
            peaks = []
            for t in (a4, b4):  # where each map peaks on each digit: (N, C) values and flat positions
                per_digit = tf.reshape(t, [tf.shape(t)[0], -1, tf.shape(t)[-1]])
                peaks += [tf.reduce_max(per_digit, axis=1), tf.argmax(per_digit, axis=1, output_type=tf.int32)]
            a = tf.reshape(a4, [-1, tf.shape(a4)[-1]])  # (digits × positions, Ca)
            b = tf.reshape(b4, [-1, tf.shape(b4)[-1]])
            mean_a, mean_b = tf.reduce_mean(a, axis=0), tf.reduce_mean(b, axis=0)
            ca, cb = a - mean_a, b - mean_b
            result.append(
                (
                    (
                        tf.cast(tf.shape(a)[0], tf.float32),
                        mean_a,
                        mean_b,
                        tf.reduce_sum(ca * ca, axis=0),
                        tf.reduce_sum(cb * cb, axis=0),
                        tf.matmul(ca, cb, transpose_a=True),
                    ),
                    tuple(peaks),
                )
            )
        return result

    def __call__(self, xa: np.ndarray, xb: np.ndarray):
        """Per layer: (the batch's moments, (peak values A, positions A, peak values B, positions B))."""
        return [
            ([t.numpy() for t in moments], [t.numpy() for t in peaks])
            for moments, peaks in self._fn(tf.constant(xa), tf.constant(xb))
        ]


def _map_side(model, layer: str) -> int:
    """The side of a layer's square maps; 1 for dense units (a map of one position)."""
    shape = model.get_layer(layer).output.shape
    return int(shape[2]) if len(shape) == 4 else 1


def _field(bundle, layer: str) -> tuple[int, int, int]:
    """(receptive field, jump, start) of ``layer`` in input pixels, from the run's spec."""
    spec = getattr(bundle, "spec", None)
    if spec is not None:
        for row in layer_table(spec):
            if row.name == layer and row.receptive_field:
                return int(row.receptive_field), int(row.jump), int(row.start)
    return 28, 1, 0  # unknown architecture: the whole digit


def align(
    bundle_a,
    bundle_b,
    raw_images: np.ndarray,
    layers: Sequence[str] = ("conv1", "conv2", "conv3"),
    threshold: float = DEFAULT_THRESHOLD,
    batch: int = DEFAULT_BATCH,
    progress: ProgressCallback | None = None,
) -> Alignment:
    """Align the maps of two runs (``core.runs.ModelBundle``: model and scaler each) over ``raw_images``
    ``(N, 28, 28)`` 0..255 (e.g. the 10,000 MNIST test digits); each run sees them through its own scaler.
    Returns per layer the correlations, the optimal one-to-one pairs and the share matched at ``threshold``."""
    import time

    started = time.perf_counter()
    check_threshold(threshold)
    layers = tuple(layers)
    check_comparable(bundle_a.model, bundle_b.model, layers)
    raw_images = np.asarray(raw_images)
    if raw_images.ndim != 3 or raw_images.shape[1:] != (28, 28) or len(raw_images) < 2:
        raise ValueError(f"digits must be (N ≥ 2, 28, 28), got shape {raw_images.shape}")
    if batch < 1:
        raise ValueError(f"batch={batch} must be ≥ 1")
    stats = _PairStats(bundle_a.model, bundle_b.model, layers)
    moments = {name: _Moments() for name in layers}
    peaks: dict[str, list[list[np.ndarray]]] = {name: [[], [], [], []] for name in layers}
    n_batches = -(-len(raw_images) // batch)
    done = 0
    with progress_scope(progress, n_batches, "correlating maps") as prog:
        for i in range(n_batches):
            chunk = raw_images[i * batch : (i + 1) * batch]
            for name, (part, peak) in zip(
                layers, stats(bundle_a.scaler.transform(chunk), bundle_b.scaler.transform(chunk))
            ):
                moments[name].merge(*part)
                for kept, new in zip(peaks[name], peak):
                    kept.append(new)
            done += len(chunk)
            prog.on_step(i + 1, {"digits": done})
            if prog.should_stop():
                break
    result = {}
    for name in layers:
        m = moments[name]
        tiny = 1e-12 * max(1.0, m.n)
        layer = match(m.correlation(), threshold, name, np.flatnonzero(m.ss_a <= tiny), np.flatnonzero(m.ss_b <= tiny))
        va, pa, vb, pb = (np.concatenate(p) for p in peaks[name])
        layer.maxima_a = DigitMaxima(va, pa, _map_side(bundle_a.model, name))
        layer.maxima_b = DigitMaxima(vb, pb, _map_side(bundle_b.model, name))
        layer.field_a, layer.field_b = _field(bundle_a, name), _field(bundle_b, name)
        result[name] = layer
    return Alignment(result, done, time.perf_counter() - started)
