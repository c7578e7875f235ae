"""LIME for one digit (Ribeiro et al. 2016): which superpixels of the image make the CNN say class ``k``.

LIME hides random halves of the image's superpixels, asks the network for the class probability of each
copy, and fits a linear model, weighted by closeness to the untouched digit (cosine distance of the on/off
vector, kernel width 0.25), from "which superpixels were shown" to that probability. A superpixel's
coefficient is its weight: how much showing it (rather than the fill) raises ``p(k)`` on average around
this digit; ``score`` is the weighted R² of that local fit (how linear the network looks there).

This uses the ``lime`` package (``lime_image.LimeImageExplainer``, pinned in requirements.txt): its
sampling (``random_state.randint``), kernel, distances, Ridge fit (alpha 1) and explanation object.
One method is replaced: ``data_labels`` builds all perturbed images with array indexing and hands them to
the network in batches of ``batch_size`` (``explain`` uses ONE batch of all samples), instead of lime's
per-sample Python loop with a tqdm bar on stderr. It draws the same on/off matrix from the same
``random_state``, so the weights equal stock lime's for the same seed (tests/test_lime.py checks this).

Superpixels suited to 28×28 (``superpixels``): lime's default quickshift/SLIC segmentations are made for
photos; on a 28×28 digit they give a handful of blobs that mix stroke and background. Here:

* ``grid``: square cells of ``size`` px (7×7 = 49 cells for 4 px): simple, the same for every digit.
* ``ink`` (default): the same cells, but in each cell the ink (raw > 64) is split from the background and
  into its connected pieces, so a segment is either a short piece of one stroke or empty paper. Hiding
  a stroke piece asks "does this bit of the digit matter"; hiding a background piece under the grey
  mean fill paints faint ink there and asks "would ink here change the answer" (with the black fill a
  background piece hides nothing and gets a weight near 0).

Images: ``raw`` ``(28, 28)`` with values 0..255. Stateless: nothing is kept between calls; randomness
comes only from ``seed``. The network is any ``core.activations.ActivationModel`` (it needs
``am.scaler``, ``am.predict`` and ``am.spec.num_classes``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.attribution.base import FILL_LABELS, Attribution, Method, Option

SIDE = 28
SEGMENTATIONS = ("ink", "grid")
HIDES = ("mean", "black")
SIZE_RANGE = (2, 14)
SAMPLES_RANGE = (10, 20000)
SEED_MAX = 2**32 - 1
INK_THRESHOLD = 64  # raw pixel value above which a pixel counts as ink (a quarter of full white)
KERNEL_WIDTH = 0.25  # lime_image's default for the cosine distance of the on/off vectors


# --------------------------------------------------------------------------- superpixels
def _check_raw(raw) -> np.ndarray:
    raw = np.asarray(raw)
    if raw.shape != (SIDE, SIDE):
        raise ValueError(f"LIME needs a raw ({SIDE}, {SIDE}) image, got shape {raw.shape}")
    raw = raw.astype(np.float32)
    if not np.all(np.isfinite(raw)) or raw.min() < 0 or raw.max() > 255:
        raise ValueError(f"raw pixel values must lie in 0..255, got {np.nanmin(raw):g}..{np.nanmax(raw):g}")
    return raw


def _check_size(size) -> int:
    if int(size) != size or not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
        raise ValueError(f"size={size} is outside {SIZE_RANGE[0]}..{SIZE_RANGE[1]} (whole pixels)")
    return int(size)


def _grid(size: int) -> np.ndarray:
    cell = np.arange(SIDE) // size
    return cell[:, None] * (-(-SIDE // size)) + cell[None, :]


def _in_reading_order(keys: np.ndarray) -> np.ndarray:
    """Any label map ``(28, 28)`` → labels 0..n-1, numbered by each segment's first pixel (row by row)."""
    _, first, inverse = np.unique(keys.ravel(), return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse].reshape(keys.shape)


def superpixels(raw: np.ndarray, kind: str = "ink", size: int = 4) -> np.ndarray:
    """Superpixels of a raw digit ``(28, 28)`` → label map ``(28, 28)`` int64 with labels 0..n-1 (every
    label used, numbered in reading order of each segment's first pixel).

    ``kind`` 'grid': square cells of ``size`` px (the last row/column of cells is narrower when ``size``
    does not divide 28); 'ink': the same cells with the ink (raw > 64) of each cell split off the
    background and into its 8-connected pieces.
    """
    if kind not in SEGMENTATIONS:
        raise ValueError(f"segmentation {kind!r} is not one of {SEGMENTATIONS}")
    raw, size = _check_raw(raw), _check_size(size)
    cells = _grid(size)
    if kind == "grid":
        return cells
    ink = raw > INK_THRESHOLD
    pieces = np.zeros((SIDE, SIDE), np.int64)  # 0: background; 1.. the ink pieces within each cell
    eight = np.ones((3, 3), bool)
    for top in range(0, SIDE, size):
        for left in range(0, SIDE, size):
            block = ink[top : top + size, left : left + size]
            if block.any():
                pieces[top : top + size, left : left + size] = ndimage.label(block, structure=eight)[0]
    return _in_reading_order(cells * (size * size + 1) + pieces)


def segment_boxes(segments: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding box (top, left, bottom, right), inclusive, of each segment 0..n-1 of a label map ``(28, 28)``."""
    boxes = ndimage.find_objects(np.asarray(segments) + 1)
    return [(s[0].start, s[1].start, s[0].stop - 1, s[1].stop - 1) for s in boxes]


# --------------------------------------------------------------------------- result
@dataclass(frozen=True)
class LimeResult:
    """LIME of one class for one digit.

    ``segments`` ``(28, 28)`` int labels 0..n-1; ``weights`` ``(n,)``: the local linear model's
    coefficient of each superpixel for p(``class_index``) (positive: showing it raises the probability);
    ``pixel_map`` ``(28, 28)`` float32: each pixel carries its segment's weight; ``score``: weighted R²
    of the local fit; ``intercept``: the fit's p with every superpixel hidden; ``probability``: the
    network's p(class) for the untouched digit; ``local_prediction``: the fit's value there;
    ``ink`` ``(n,)`` bool: the segment is mostly ink (its mean raw value > 64), not paper.
    """

    class_index: int
    segments: np.ndarray
    weights: np.ndarray
    pixel_map: np.ndarray
    score: float
    intercept: float
    probability: float
    local_prediction: float
    samples: int
    segmentation: str
    size: int
    hide: str
    seed: int
    ink: np.ndarray
    seconds: float = 0.0

    @property
    def n_segments(self) -> int:
        return len(self.weights)

    def top(self, n: int = 3, sign: int = 1) -> list[dict]:
        """The ``n`` superpixels with the largest weights (``sign`` +1) or most negative ones (−1) of that
        sign: dicts with segment, weight, box (top, left, bottom, right; inclusive), centre (row, col),
        pixels and ink (whether the segment is mostly ink)."""
        if sign not in (1, -1):
            raise ValueError(f"sign={sign} must be 1 or -1")
        order = np.argsort(-sign * self.weights, kind="stable")
        chosen = [int(i) for i in order if sign * self.weights[i] > 0][:n]
        boxes = segment_boxes(self.segments)
        centres = ndimage.center_of_mass(np.ones_like(self.segments), self.segments, chosen) if chosen else []
        return [
            {
                "segment": i,
                "weight": round(float(self.weights[i]), 5),
                "box": list(boxes[i]),
                "centre": [round(float(c), 1) for c in centre],
                "pixels": int((self.segments == i).sum()),
                "ink": bool(self.ink[i]),
            }
            for i, centre in zip(chosen, centres)
        ]


# --------------------------------------------------------------------------- LIME
def _batched_explainer(random_state: int, kernel_width: float = KERNEL_WIDTH):
    """A ``lime_image.LimeImageExplainer`` whose ``data_labels`` is vectorised (same draws, no tqdm)."""
    from lime import lime_image

    class BatchedLimeImageExplainer(lime_image.LimeImageExplainer):
        def data_labels(self, image, fudged_image, segments, classifier_fn, num_samples, batch_size=10):
            """As lime's: on/off matrix ``(num_samples, n)`` (row 0 all on) and the classifier's output for
            each perturbed image, built with indexing and classified ``batch_size`` at a time."""
            n_features = np.unique(segments).shape[0]
            data = self.random_state.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
            data[0, :] = 1
            shown, hidden = image[..., 0], fudged_image[..., 0]
            labels = []
            for start in range(0, num_samples, batch_size):
                on = data[start : start + batch_size][:, segments].astype(bool)  # (b, 28, 28)
                gray = np.where(on, shown, hidden).astype(np.float32)
                labels.append(classifier_fn(np.broadcast_to(gray[..., None], gray.shape + (3,))))
            return data, np.concatenate(labels)

    return BatchedLimeImageExplainer(kernel_width=kernel_width, feature_selection="none", random_state=random_state)


def classifier(am):
    """lime's ``classifier_fn`` for an ActivationModel: images ``(b, 28, 28, 3)`` (grey copied into RGB, raw
    0..255) → probabilities ``(b, C)``, all ``b`` in one call of the network."""

    def classify(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        return am.predict(am.scaler.transform(images[..., 0]), batch_size=max(1, len(images)))

    return classify


def fill_image(am, hide: str) -> np.ndarray:
    """What hidden superpixels show ``(28, 28)`` float32: 'mean' the training mean digit (neutral grey:
    0 after scaling), 'black' zeros (erased ink)."""
    if hide not in HIDES:
        raise ValueError(f"hide {hide!r} is not one of {HIDES}")
    if hide == "black":
        return np.zeros((SIDE, SIDE), np.float32)
    return np.asarray(am.scaler.mean, np.float32).reshape(SIDE, SIDE)


def check_arguments(class_index, samples, segmentation, hide, size=4, seed=0, num_classes: int = 10) -> None:
    """ValueError naming the offending value and the allowed range (before any work is done)."""
    if int(class_index) != class_index or not 0 <= class_index < num_classes:
        raise ValueError(f"class_index={class_index} is outside 0..{num_classes - 1}")
    if int(samples) != samples or not SAMPLES_RANGE[0] <= samples <= SAMPLES_RANGE[1]:
        raise ValueError(f"samples={samples} is outside {SAMPLES_RANGE[0]}..{SAMPLES_RANGE[1]}")
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"segmentation {segmentation!r} is not one of {SEGMENTATIONS}")
    if hide not in HIDES:
        raise ValueError(f"hide {hide!r} is not one of {HIDES}")
    _check_size(size)
    if int(seed) != seed or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed={seed} is outside 0..{SEED_MAX}")


def explain(
    am,
    raw: np.ndarray,
    class_index: int,
    samples: int = 1000,
    segmentation: str = "ink",
    size: int = 4,
    hide: str = "mean",
    seed: int = 0,
    batch_size: int | None = None,
) -> LimeResult:
    """LIME of class ``class_index`` for the raw digit ``raw`` ``(28, 28)`` (0..255).

    ``samples`` perturbed copies (10..20000; the first is the untouched digit), each showing a random
    half of the superpixels (``superpixels(raw, segmentation, size)``) and ``hide`` ('mean' or 'black',
    see ``fill_image``) elsewhere. All copies go through the network in ONE call unless ``batch_size``
    is given (lime's own default is 10). Same ``seed``, same result.
    """
    started = time.perf_counter()
    if am.scaler is None:
        raise ValueError("LIME needs the model's scaler (build ActivationModel with scaler=...)")
    check_arguments(class_index, samples, segmentation, hide, size, seed, am.spec.num_classes)
    class_index, samples, size, seed = int(class_index), int(samples), int(size), int(seed)
    if batch_size is not None and not 1 <= batch_size <= samples:
        raise ValueError(f"batch_size={batch_size} is outside 1..samples ({samples})")
    raw = _check_raw(raw)
    segments = superpixels(raw, segmentation, size)
    fill = fill_image(am, hide)
    classify = classifier(am)
    seen: list[float] = []

    def classify_and_keep_first(images):
        probs = classify(images)
        if not seen:
            seen.append(float(probs[0, class_index]))  # row 0 of lime's samples: the untouched digit
        return probs

    explanation = _batched_explainer(seed).explain_instance(
        raw,
        classify_and_keep_first,
        labels=(class_index,),
        hide_color=np.repeat(fill[..., None], 3, axis=-1),
        top_labels=None,
        num_features=int(segments.max()) + 1,
        num_samples=samples,
        batch_size=batch_size or samples,
        segmentation_fn=lambda _image: segments,
        random_seed=seed,
    )
    n = int(segments.max()) + 1
    weights = np.zeros(n, np.float64)
    for feature, coef in explanation.local_exp[class_index]:
        weights[int(feature)] = coef
    return LimeResult(
        class_index,
        segments,
        weights,
        weights[segments].astype(np.float32),
        float(explanation.score),
        float(explanation.intercept[class_index]),
        seen[0],
        float(np.ravel(explanation.local_pred)[0]),
        samples,
        segmentation,
        size,
        hide,
        seed,
        ndimage.mean(raw, segments, np.arange(n)) > INK_THRESHOLD,
        time.perf_counter() - started,
    )


def _attribution(activation_model, raw, class_index: int, segmentation="ink", samples=1000, hide="mean", size=4):
    result = explain(activation_model, raw, class_index, samples, segmentation, size, hide)
    return Attribution(
        "lime",
        class_index,
        result.pixel_map,
        True,
        f"LIME for class {class_index} (R² {result.score:.2f})",
        f"LIME: {samples} copies with a random half of the {result.n_segments} superpixels hidden under the same "
        f"colour, and a linear fit of p({class_index}) on which were shown; red = showing that superpixel raises "
        f"p({class_index}), blue = lowers it (fit R² {result.score:.2f}).",
        {"fit_r2": result.score, "probability": result.probability, "segments": float(result.n_segments)},
    )


METHOD = Method(
    "lime",
    "LIME",
    "Ribeiro, Singh & Guestrin 2016",
    (
        Option(
            "segmentation",
            "LIME superpixels",
            "ink",
            SEGMENTATIONS,
            choice_labels=(("ink", "ink pieces (4×4 cells)"), ("grid", "4×4 squares")),
            help="ink: in each cell, every piece of stroke and the paper around it is a superpixel of its own; "
            "grid: the plain cells",
        ),
        Option("samples", "LIME samples", 1000, low=250, high=5000, step=250, help="perturbed copies, one batch"),
        Option(
            "hide",
            "Hidden superpixels show",
            "mean",
            HIDES,
            choice_labels=FILL_LABELS,
        ),
        Option("size", "Cell side (px)", 4, low=SIZE_RANGE[0], high=SIZE_RANGE[1]),
    ),
    _attribution,
    "a local linear fit of the class probability on which superpixels are shown",
)
