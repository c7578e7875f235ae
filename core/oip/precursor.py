"""Precursor search (blog article X): coarse start patterns that wake maps up where random starts fail.

Many conv3 maps never respond to fine-grained random starts, so the plain OIP ascent stays at 0 for
them. The precursor run covers the 28×28 input with a coarse ``g×g`` grid of squares (default 3×3
squares of about 9×9 px), gives every square one of ``N`` grey values (default 0.2, 0.5, 0.8), builds
every combination (``N**(g·g)``: 3⁹ = 19,683), upscales each bicubically to 28×28 and standardizes it
per image (``core.ascent.starts.standardize_pattern``). Then, per target map:

* **faithful** (the blog): a few ascent epochs (default 10) on every pattern, the best ``keep``
  (default 8) by loss are optimised fully (default 1,200 epochs);
* **fast** (beyond the blog): one forward pass ranks all patterns for *all* target maps at once, the
  best ``refine`` per map (default 128) get the test epochs, and the best ``keep`` of those are
  optimised fully. ``compare_maps`` sample maps also get a faithful screen, to report how many of the
  faithful top-``keep`` the fast screen picks too.

Both modes go through ``core.ascent.engine.AscentEngine.ascend`` (one compiled function, any batch of start
images with one target map each). A map is *rescued* when its best final loss ends above 0.

Patterns are indexed 0..N**(g·g)−1; the digits of the index in base N (most significant first) are
the value indices of the squares row by row, so pattern order is reproducible and any slice can be
generated on its own: memory stays bounded by the chunk size whatever the count.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.ascent.engine import SIDE, AscentEngine, capped_epochs
from core.ascent.starts import standardize_pattern, upscale_bicubic
from core.checks import check_range
from core.device import describe_device
from core.oip.search import OipConfig, run_oip
from core.progress import ProgressCallback, progress_scope

MODES = ("faithful", "fast")
DEFAULT_MODE = "fast"  # minutes less than faithful; the page, the CLI and docs/features.md default to it
GRIDS = (2, 3, 4, 5)
MAX_VALUES = 5
PATTERN_LIMIT = {"CPU": 300_000, "GPU": 2_000_000}  # refused above (5⁹ = 1,953,125 is over the CPU limit)
BLOG_RESCUE_RATE = 33 / 67  # the blog rescued 33 of its 67 failing conv3 maps


def pattern_count(grid: int, n_values: int) -> int:
    """``n_values ** (grid · grid)`` patterns."""
    return int(n_values) ** (int(grid) * int(grid))


def pattern_codes(start: int, stop: int, grid: int, n_values: int) -> np.ndarray:
    """Value indices of patterns ``start..stop−1``: ``(stop − start, grid·grid)`` int8, squares row by
    row, the first square the most significant base-``n_values`` digit of the pattern index."""
    count = pattern_count(grid, n_values)
    if not 0 <= start <= stop <= count:
        raise ValueError(f"pattern range {start}..{stop} is outside 0..{count}")
    return codes_of(np.arange(start, stop, dtype=np.int64), grid, n_values)


def codes_of(indices: Sequence[int], grid: int, n_values: int) -> np.ndarray:
    """Value indices ``(n, grid·grid)`` int8 of the given pattern indices (see ``pattern_codes``)."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    count = pattern_count(grid, n_values)
    if idx.size and (idx.min() < 0 or idx.max() >= count):
        raise ValueError(f"pattern indices must lie in 0..{count - 1}")
    powers = np.int64(n_values) ** np.arange(grid * grid - 1, -1, -1, dtype=np.int64)
    return ((idx[:, None] // powers[None, :]) % n_values).astype(np.int8)


def pattern_basis(grid: int) -> np.ndarray:
    """The bicubic upscale of each square's indicator: ``(grid·grid, 28, 28)`` float32. Bicubic
    interpolation is linear, so a pattern's image is ``Σ value_s · basis_s``."""
    eye = np.eye(grid * grid, dtype=np.float32).reshape(-1, grid, grid)
    return upscale_bicubic(eye)


def patterns_to_images(
    codes: np.ndarray, values: Sequence[float], grid: int, basis: np.ndarray | None = None
) -> np.ndarray:
    """Value-index codes ``(n, grid·grid)`` → standardized start images ``(n, 28, 28)`` float32
    (each square gets its grey value, the grid is upscaled bicubically, the image standardized)."""
    vals = np.asarray(values, np.float32)
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != grid * grid:
        raise ValueError(f"codes must have shape (n, {grid * grid}) for a {grid}×{grid} grid, got {codes.shape}")
    basis = pattern_basis(grid) if basis is None else basis
    images = vals[codes] @ basis.reshape(grid * grid, SIDE * SIDE)
    return standardize_pattern(images.reshape(-1, SIDE, SIDE))


def iter_pattern_chunks(
    grid: int, values: Sequence[float], chunk: int, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first index, images (n, 28, 28))`` for patterns ``start..stop−1`` in chunks of ``chunk``."""
    total = pattern_count(grid, len(values))
    stop = total if stop is None else stop
    basis = pattern_basis(grid)
    for a in range(start, stop, max(1, int(chunk))):
        b = min(stop, a + chunk)
        yield a, patterns_to_images(pattern_codes(a, b, grid, len(values)), values, grid, basis)


def pattern_grids(indices: Sequence[int], grid: int, values: Sequence[float]) -> np.ndarray:
    """The coarse grids of the given pattern indices: ``(n, grid, grid)`` grey values (for display)."""
    vals = np.asarray(values, np.float32)
    return vals[codes_of(indices, grid, len(values))].reshape(-1, grid, grid)


class TopK:
    """Streaming top-``k`` per row: the largest scores with their pattern indices, ties broken by the
    lower index (so any chunking gives the same ranking as one big batch).

    ``update(indices (n,) or (rows, n), scores (rows, n))`` with indices increasing from call to call
    (another TopK's ``indices`` and ``scores`` merge the same way)."""

    def __init__(self, rows: int, k: int) -> None:
        self.k = int(k)
        self.scores = np.full((rows, 0), -np.inf, np.float64)
        self.indices = np.zeros((rows, 0), np.int64)

    def update(self, indices: np.ndarray, scores: np.ndarray) -> None:
        scores = np.asarray(scores, np.float64).reshape(self.scores.shape[0], -1)
        idx = np.broadcast_to(np.asarray(indices, np.int64), scores.shape)
        all_scores = np.concatenate([self.scores, scores], axis=1)
        all_idx = np.concatenate([self.indices, idx], axis=1)
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, : self.k]  # earlier = lower index first
        self.scores = np.take_along_axis(all_scores, order, axis=1)
        self.indices = np.take_along_axis(all_idx, order, axis=1)


def topk_overlap(a: Sequence[int], b: Sequence[int]) -> int:
    """How many pattern indices two top-K lists share."""
    return len(set(int(x) for x in a) & set(int(x) for x in b))


@dataclass(frozen=True)
class PrecursorConfig:
    """Settings of a precursor run (defaults: the blog's)."""

    layer: str = "conv3"
    maps: tuple[int, ...] = ()
    grid: int = 3
    values: tuple[float, ...] = (0.2, 0.5, 0.8)
    test_epochs: int = 10
    keep: int = 8
    epochs: int = 1200
    mode: str = DEFAULT_MODE
    step: float = OipConfig.step
    refine: int = 128  # fast mode: candidates per map that get the test epochs (0: rank by the forward pass only)
    compare_maps: int = 0  # fast mode: sample maps that also get a faithful screen (overlap report)
    skip_dead: bool = True  # exact: a pattern whose map is all-zero gets a zero gradient and stays at loss 0

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not one of {MODES}")
        if self.grid not in GRIDS:
            raise ValueError(f"grid={self.grid} is outside {GRIDS[0]}..{GRIDS[-1]}")
        if not 2 <= len(self.values) <= MAX_VALUES:
            raise ValueError(f"{len(self.values)} grey values given; use 2 to {MAX_VALUES}")
        if any(not math.isfinite(v) or not 0 <= v <= 1 for v in self.values):
            raise ValueError(f"grey values {list(self.values)} must lie in [0, 1]")
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"grey values {list(self.values)} contain duplicates")
        check_range("test_epochs", self.test_epochs, 0, 200)
        check_range("keep", self.keep, 1, 64)
        check_range("epochs", self.epochs, 0, 20_000)
        check_range("step", self.step, 0, 100, open_low=True)
        check_range("refine", self.refine, 0, 4096)
        if self.mode == "fast" and 0 < self.refine < self.keep:
            raise ValueError(f"refine={self.refine} must be ≥ keep={self.keep} (or 0)")
        if self.compare_maps < 0:
            raise ValueError(f"compare_maps={self.compare_maps} must be ≥ 0")
        if not self.maps:
            raise ValueError("no target maps; choose at least one map")
        if len(set(self.maps)) != len(self.maps):
            raise ValueError(f"maps {list(self.maps)} contain duplicates")

    @property
    def n_patterns(self) -> int:
        return pattern_count(self.grid, len(self.values))

    def with_(self, **changes) -> PrecursorConfig:
        return PrecursorConfig(**{**asdict(self), **changes})


def parse_values(text: str) -> tuple[float, ...]:
    """``"0.2,0.5,0.8"`` → (0.2, 0.5, 0.8)."""
    try:
        vals = tuple(float(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        raise ValueError(
            f"grey values {text!r} must be numbers in [0, 1] separated by commas, e.g. 0.2,0.5,0.8"
        ) from None
    return vals


def pattern_limit(device: str | None = None, workers: int = 1) -> int:
    """The most patterns a run may screen: per worker by its device (CPU or GPU), times the workers
    that share the screen (a Ray cluster's; 1 on one machine)."""
    device = (device or describe_device()).split(" ")[0]
    return PATTERN_LIMIT.get(device, PATTERN_LIMIT["CPU"]) * max(1, int(workers))


def check_feasible(config: PrecursorConfig, device: str | None = None, workers: int = 1) -> None:
    """Raise ValueError explaining why a run is refused: too many patterns for this device (and the
    number of workers that would share the screen)."""
    where = (device or describe_device()).split(" ")[0]
    limit = pattern_limit(where, workers)
    n = config.n_patterns
    if n > limit:
        across = f" across {workers} workers" if workers > 1 else ""
        raise ValueError(
            f"{len(config.values)} values on a {config.grid}×{config.grid} grid give {n:,} patterns; this {where}"
            f"{across} allows at most {limit:,} per run. Every pattern needs {config.test_epochs} gradient epochs per "
            f"map (the blog's reason for using only 3 values on 3×3 squares). Use fewer grey values or a coarser "
            "grid, or run the dashboard on a Ray cluster with more workers."
        )


def work_units(config: PrecursorConfig, n_maps: int) -> int:
    """Image-epochs of a run (a forward pass counts as one)."""
    p, t, k, e = config.n_patterns, config.test_epochs, config.keep, capped_epochs(config.epochs)
    full = n_maps * k * e
    if config.mode == "faithful":
        return n_maps * p * max(t, 1) + full
    refine = n_maps * config.refine * t if config.refine else 0
    return p + refine + full + min(config.compare_maps, n_maps) * p * max(t, 1)


def estimate_seconds(
    config: PrecursorConfig,
    n_maps: int,
    throughput: float,
    forward_throughput: float | None = None,
    alive_fraction: float = 1.0,
    workers: int = 1,
) -> float:
    """Estimated run time from measured throughputs (image-epochs/s of the ascent; images/s forward).
    ``alive_fraction``: the share of patterns the faithful screen has to ascend (with ``skip_dead``).
    ``workers``: how many split the screens (a Ray cluster's, see ``run_precursor``); the full optimisation and
    the fast mode's comparison screens run in the job itself."""
    fwd = forward_throughput or 3 * throughput
    w = max(1, int(workers))
    p, t, k, e = config.n_patterns, config.test_epochs, config.keep, capped_epochs(config.epochs)
    full = n_maps * k * e / throughput
    faithful_one = p / fwd + p * alive_fraction * t / throughput
    if config.mode == "faithful":
        return n_maps * faithful_one / w + full
    refine = n_maps * config.refine * t / throughput if config.refine else 0.0
    return p / fwd / w + refine + full + min(config.compare_maps, n_maps) * faithful_one


def measure_throughput(engine: AscentEngine, batch: int | None = None, epochs: int = 10) -> tuple[float, float]:
    """(ascent image-epochs/s, forward images/s) of this engine on this machine, after a warm-up, at the
    screens' batch size (``default_batch``) unless told otherwise."""
    batch = batch or default_batch()
    rng = np.random.default_rng(0)
    x = standardize_pattern(rng.normal(size=(batch, SIDE, SIDE)))
    targets = np.zeros(batch, np.int64)
    engine.ascend(x[:8], targets[:8], 1, 0.05)
    engine.screen_scores(x[:8])
    t0 = time.perf_counter()
    engine.ascend(x, targets, epochs, 0.05)
    asc = batch * epochs / max(time.perf_counter() - t0, 1e-9)
    t0 = time.perf_counter()
    engine.screen_scores(x)
    fwd = batch / max(time.perf_counter() - t0, 1e-9)
    return asc, fwd


def default_batch() -> int:
    """Images per compiled call: on a 2-core CPU 512 (× 10 epochs) ran 11 % faster than 128 (median of 6 runs;
    bench/bench_precursor.py measures the shapes side by side), still a progress report every ~0.6 s; a GPU
    wants thousands."""
    return 4096 if describe_device().startswith("GPU") else 512


# --- screens ------------------------------------------------------------------------------------


@dataclass
class Screen:
    """A map's best ``keep`` patterns: pattern ``indices`` ``(K,)`` and their scores ``(K,)``
    (faithful: loss after the test epochs; fast: the screening score), plus how many patterns were
    ascended and how long it took."""

    map_index: int
    indices: np.ndarray
    scores: np.ndarray
    ascended: int
    seconds: float


class _Work:
    """Counts image-epochs across phases for one progress bar; raises _Stopped on a stop request."""

    def __init__(self, prog: ProgressCallback) -> None:
        self.prog, self.done = prog, 0

    def add(self, units: int, info: dict) -> None:
        self.done += int(units)
        self.prog.on_step(self.done, info)

    def check(self) -> None:
        if self.prog.should_stop():
            raise _Stopped


class _Stopped(Exception):
    pass


def screen_faithful(
    engine: AscentEngine,
    map_index: int,
    config: PrecursorConfig,
    keep: int | None = None,
    batch: int | None = None,
    work: _Work | None = None,
    patterns: Iterator | None = None,
    start: int = 0,
    stop: int | None = None,
) -> Screen:
    """The blog's screen for one map: ``test_epochs`` ascent epochs on every pattern, top ``keep`` by loss.

    With ``skip_dead`` the patterns whose map is all-zero are not ascended: their gradient is exactly
    0, so they would keep loss 0 anyway (same ranking, less work). ``patterns`` may replace the
    generated patterns by any iterator of ``(first index, images)`` (used by the tests)."""
    keep = keep or config.keep
    batch = batch or default_batch()
    started = time.perf_counter()
    top = TopK(1, keep)
    ascended = 0
    chunks = patterns if patterns is not None else iter_pattern_chunks(config.grid, config.values, batch, start, stop)
    for first, images in chunks:
        if work:
            work.check()
        n = len(images)
        idx = np.arange(first, first + n)
        targets = np.full(n, map_index)
        losses = np.zeros(n, np.float32)
        if config.skip_dead:
            alive = engine.loss(images, targets) > 0
        else:
            alive = np.ones(n, bool)
        if alive.any() and config.test_epochs > 0:
            res = engine.ascend(images[alive], targets[alive], config.test_epochs, config.step, batch_size=batch)
            losses[alive] = res.final_loss
        elif alive.any():
            losses[alive] = engine.loss(images[alive], targets[alive])
        ascended += int(alive.sum())
        top.update(idx, losses[None])
        if work:
            work.add(n * max(config.test_epochs, 1), {"map": int(map_index), "phase": "screen", "pattern": first + n})
    return Screen(
        int(map_index), top.indices[0], top.scores[0].astype(np.float32), ascended, time.perf_counter() - started
    )


def forward_batch(batch: int) -> int:
    """Patterns per forward-only call of the fast screen."""
    return max(batch, 1024)


def forward_top(
    engine: AscentEngine,
    maps: Sequence[int],
    config: PrecursorConfig,
    k: int,
    batch: int,
    start: int,
    stop: int,
    work: _Work | None = None,
) -> TopK:
    """The fast screen's forward pass over patterns ``start..stop−1``: the best ``k`` per map by the
    screening score (see ``AscentEngine.screen_scores``)."""
    maps = np.asarray(maps, np.int64)
    top = TopK(len(maps), k)
    for first, images in iter_pattern_chunks(config.grid, config.values, batch, start, stop):
        if work:
            work.check()
        scores = engine.screen_scores(images)[:, maps]  # (n, M)
        top.update(np.arange(first, first + len(images)), scores.T)
        if work:
            work.add(len(images), {"phase": "forward screen", "pattern": first + len(images)})
    return top


def screen_fast(
    engine: AscentEngine,
    maps: Sequence[int],
    config: PrecursorConfig,
    batch: int | None = None,
    work: _Work | None = None,
    split=None,
) -> list[Screen]:
    """All target maps at once: one forward pass over every pattern ranks them per map (mean
    activation, or the largest pre-activation for a map that stays at 0); the best ``refine`` per map
    then get ``test_epochs`` ascent epochs (all maps in one batch) and the best ``keep`` are returned."""
    batch = batch or default_batch()
    maps = np.asarray(maps, np.int64)
    started = time.perf_counter()
    first_k = config.refine if config.refine and config.test_epochs else config.keep
    if split is not None:
        top = split(first_k, forward_batch(batch))
    else:
        top = forward_top(engine, maps, config, first_k, forward_batch(batch), 0, config.n_patterns, work)
    if first_k == config.keep:
        secs = time.perf_counter() - started
        return [Screen(int(m), top.indices[i], top.scores[i].astype(np.float32), 0, secs) for i, m in enumerate(maps)]
    cand = top.indices  # (M, refine)
    images = _images_of(cand.reshape(-1), config)
    targets = np.repeat(maps, cand.shape[1])
    losses = np.zeros(len(images), np.float32)
    alive = engine.loss(images, targets) > 0 if config.skip_dead else np.ones(len(images), bool)
    for a in range(0, len(images), batch * 8):
        if work:
            work.check()
        sl = slice(a, min(len(images), a + batch * 8))
        sub_alive = alive[sl]
        if sub_alive.any():
            res = engine.ascend(
                images[sl][sub_alive], targets[sl][sub_alive], config.test_epochs, config.step, batch_size=batch
            )
            part = losses[sl]
            part[sub_alive] = res.final_loss
            losses[sl] = part
        if work:
            work.add((sl.stop - sl.start) * config.test_epochs, {"phase": "test epochs", "image": sl.stop})
    losses = losses.reshape(len(maps), -1)
    out = []
    secs = time.perf_counter() - started
    for i, m in enumerate(maps):
        order = np.lexsort((cand[i], -losses[i]))[: config.keep]  # loss desc, then pattern index
        out.append(Screen(int(m), cand[i][order], losses[i][order], int(alive.reshape(len(maps), -1)[i].sum()), secs))
    return out


def _images_of(indices: np.ndarray, config: PrecursorConfig) -> np.ndarray:
    """Standardized start images ``(n, 28, 28)`` of the given pattern indices."""
    return patterns_to_images(codes_of(indices, config.grid, len(config.values)), config.values, config.grid)


# --- whole runs ---------------------------------------------------------------------------------


@dataclass
class MapOutcome:
    """One target map: the ``keep`` best patterns ``candidates`` ``(K,)`` with their screening
    scores ``test_losses`` ``(K,)``, their coarse grids ``(K, g, g)``, the fully optimised ``oips``
    ``(K, 28, 28)`` with ``final_losses`` ``(K,)``."""

    map_index: int
    candidates: np.ndarray
    test_losses: np.ndarray
    grids: np.ndarray
    oips: np.ndarray
    final_losses: np.ndarray
    ascended: int

    @property
    def best(self) -> int:
        return int(np.argmax(self.final_losses)) if len(self.final_losses) else 0

    @property
    def best_loss(self) -> float:
        return float(self.final_losses[self.best]) if len(self.final_losses) else 0.0

    @property
    def rescued(self) -> bool:
        return self.best_loss > 0

    @property
    def best_oip(self) -> np.ndarray:
        return self.oips[self.best]


@dataclass
class PrecursorResult:
    config: PrecursorConfig
    outcomes: list[MapOutcome]
    seconds: float
    screen_seconds: float
    full_seconds: float
    device: str
    overlap: dict = field(default_factory=dict)  # map → (fast ∩ faithful, keep)
    stopped: bool = False
    # a split screen's parts: seconds each worked, measured where it ran (Ray's per-task cost is the rest)
    part_seconds: tuple[float, ...] = ()

    @property
    def maps(self) -> list[int]:
        return [o.map_index for o in self.outcomes]

    @property
    def rescued_maps(self) -> list[int]:
        return [o.map_index for o in self.outcomes if o.rescued]

    @property
    def rescue_rate(self) -> float:
        return len(self.rescued_maps) / len(self.outcomes) if self.outcomes else 0.0

    def outcome(self, map_index: int) -> MapOutcome:
        for o in self.outcomes:
            if o.map_index == map_index:
                return o
        raise ValueError(f"map {map_index} is not in this result (maps {self.maps})")

    def summary(self) -> dict:
        return {
            "layer": self.config.layer,
            "mode": self.config.mode,
            "grid": self.config.grid,
            "values": list(self.config.values),
            "patterns": self.config.n_patterns,
            "test_epochs": self.config.test_epochs,
            "keep": self.config.keep,
            "epochs": capped_epochs(self.config.epochs),
            "n_maps": len(self.outcomes),
            "rescued": len(self.rescued_maps),
            "rescued_maps": self.rescued_maps,
            "rescue_rate": round(self.rescue_rate, 4),
            "blog_rescue_rate": round(BLOG_RESCUE_RATE, 4),
            "maps": {
                str(o.map_index): {
                    "best_loss": round(o.best_loss, 6),
                    "rescued": o.rescued,
                    "candidates": [int(c) for c in o.candidates],
                    "test_losses": [round(float(v), 6) for v in o.test_losses],
                    "final_losses": [round(float(v), 6) for v in o.final_losses],
                }
                for o in self.outcomes
            },
            "overlap": {str(m): {"common": int(c), "keep": int(k)} for m, (c, k) in self.overlap.items()},
            "screen_seconds": round(self.screen_seconds, 3),
            "full_seconds": round(self.full_seconds, 3),
            "device": self.device,
            "stopped": self.stopped,
        }

    def to_npz_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            maps=np.array(self.maps),
            candidates=np.array([o.candidates for o in self.outcomes]),
            test_losses=np.array([o.test_losses for o in self.outcomes]),
            oips=np.array([o.oips for o in self.outcomes]),
            final_losses=np.array([o.final_losses for o in self.outcomes]),
            grids=np.array([o.grids for o in self.outcomes]),
            rescued=np.array([o.rescued for o in self.outcomes]),
            config=np.array(json.dumps(asdict(self.config))),
        )
        return buf.getvalue()

    def save_npz(self, path) -> Path:
        """Write atomically (temporary file, then rename)."""
        from core.files import atomic_write_bytes

        return atomic_write_bytes(path, self.to_npz_bytes())


def run_precursor(
    engine: AscentEngine,
    config: PrecursorConfig,
    progress: ProgressCallback | None = None,
    batch: int | None = None,
    device: str | None = None,
    context=None,
    model: str | None = None,
) -> PrecursorResult:
    """Screen, then fully optimise the best ``keep`` patterns of every target map.

    ``progress`` counts image-epochs (a forward pass counts 1) with ``info`` naming the phase and map;
    a stop request ends the run after the current chunk: the maps finished so far are returned
    (``stopped=True``). Raises ValueError for bad settings or a refused size (``check_feasible``).

    With a ``context`` whose parts run in parallel (a Ray cluster, see ``core.jobs.context.JobContext.map``)
    the screens are split into pattern ranges, each screened by a worker on the model in the run
    folder ``model``; the ranges start at multiples of the batch, so every compiled call sees the same
    images as in one process, and the per-range top-K lists merge exactly (ties to the lower index):
    the result is the same as a single-process run. The pattern limit scales with the workers."""
    config.validate()
    if config.layer != engine.layer:
        raise ValueError(f"config.layer {config.layer!r} differs from the engine's layer {engine.layer!r}")
    bad = [m for m in config.maps if not 0 <= m < engine.channels]
    if bad:
        raise ValueError(f"maps {bad} do not exist; layer {engine.layer!r} has maps 0..{engine.channels - 1}")
    if not engine.spatial:
        raise ValueError(f"layer {engine.layer!r} has no spatial maps; the precursor search needs a conv or pool layer")
    parallel = int(getattr(context, "parallelism", 1)) if context is not None else 1
    check_feasible(config, device, parallel)
    batch = batch or default_batch()
    maps = list(config.maps)
    splitter = _Splitter(context, model, engine.layer, config, batch) if parallel > 1 else None
    epochs = capped_epochs(config.epochs)
    started = time.perf_counter()
    screens: list[Screen] = []
    overlap: dict = {}
    outcomes: list[MapOutcome] = []
    stopped = False
    screen_s = full_s = 0.0
    with progress_scope(progress, work_units(config, len(maps)), f"Precursor search ({config.mode})") as prog:
        work = _Work(prog)
        try:
            t0 = time.perf_counter()
            if config.mode == "faithful":
                for m in maps:
                    t1 = time.perf_counter()
                    screens.append(
                        splitter.faithful(m, work)
                        if splitter
                        else screen_faithful(engine, m, config, batch=batch, work=work)
                    )
                    screen_s += time.perf_counter() - t1
                    t1 = time.perf_counter()
                    outcomes.append(_full(engine, [screens[-1]], config, epochs, batch, work)[0])
                    full_s += time.perf_counter() - t1
            else:
                screens = screen_fast(
                    engine,
                    maps,
                    config,
                    batch=batch,
                    work=work,
                    split=(lambda k, fb: splitter.forward(maps, k, fb, work)) if splitter else None,
                )
                sample = (
                    [
                        maps[int(i)]
                        for i in np.linspace(0, len(maps) - 1, min(config.compare_maps, len(maps))).round().astype(int)
                    ]
                    if config.compare_maps
                    else []
                )
                for m in dict.fromkeys(sample):
                    faithful = screen_faithful(engine, m, config, batch=batch, work=work)
                    fast = next(s for s in screens if s.map_index == m)
                    overlap[m] = (topk_overlap(faithful.indices, fast.indices), config.keep)
                screen_s = time.perf_counter() - t0
                t1 = time.perf_counter()
                outcomes = _full(engine, screens, config, epochs, batch, work)
                full_s = time.perf_counter() - t1
        except _Stopped:
            stopped = True
    return PrecursorResult(
        config,
        outcomes,
        time.perf_counter() - started,
        screen_s,
        full_s,
        describe_device(),
        overlap,
        stopped,
        tuple(splitter.part_seconds) if splitter else (),
    )


PART_PATTERNS = 16_384  # patterns per task of a split screen: seconds of work, so dispatch costs little


@dataclass(frozen=True)
class ScreenPart:
    """One pattern range of a split screen, run by a worker (``_screen_part``): the faithful screen of one
    map, or the fast screen's forward pass for all maps (``k`` best per map)."""

    model: str | None
    layer: str
    maps: tuple[int, ...]
    config: PrecursorConfig
    start: int
    stop: int
    batch: int
    k: int
    mode: str  # "faithful" or "forward"

    @property
    def units(self) -> int:
        n = self.stop - self.start
        return n * max(self.config.test_epochs, 1) if self.mode == "faithful" else n


def _screen_part(ctx, part: ScreenPart, progress: ProgressCallback):
    """Screen one pattern range where the worker runs (its engine comes from its own context)."""
    engine = ctx.engine(part.model, part.layer)
    work = _Work(progress)
    try:
        if part.mode == "faithful":
            return screen_faithful(
                engine,
                part.maps[0],
                part.config,
                keep=part.k,
                batch=part.batch,
                work=work,
                start=part.start,
                stop=part.stop,
            )
        return forward_top(engine, part.maps, part.config, part.k, part.batch, part.start, part.stop, work)
    except _Stopped:
        return None


class _Splitter:
    """Splits screens into pattern ranges run by ``context.map`` and merges their top-K lists."""

    def __init__(self, context, model: str | None, layer: str, config: PrecursorConfig, batch: int) -> None:
        self.context, self.model, self.layer, self.config, self.batch = context, model, layer, config, batch
        self.part_seconds: list[float] = []

    def _ranges(self, align: int) -> list[tuple[int, int]]:
        n = self.config.n_patterns
        per = max(1, math.ceil(n / max(1, self.context.parallelism)))
        size = min(PART_PATTERNS, per)
        size = max(align, math.ceil(size / align) * align)  # ranges start where one process's chunks start
        return [(a, min(n, a + size)) for a in range(0, n, size)]

    def _run(self, parts: list[ScreenPart], work: _Work, phase: dict) -> list:
        results = self.context.map(
            _screen_part, parts, work.prog, units=[p.units for p in parts], offset=work.done, info=phase
        )
        if len(results) < len(parts) or any(r is None for r in results):
            raise _Stopped
        work.done += sum(p.units for p in parts)
        return results

    def faithful(self, map_index: int, work: _Work) -> Screen:
        started = time.perf_counter()
        parts = [
            ScreenPart(
                self.model, self.layer, (int(map_index),), self.config, a, b, self.batch, self.config.keep, "faithful"
            )
            for a, b in self._ranges(self.batch)
        ]
        screens = self._run(parts, work, {"phase": "screen", "map": int(map_index)})
        self.part_seconds += [s.seconds for s in screens]
        top = TopK(1, self.config.keep)
        for screen in screens:  # in pattern order: ties keep the lower index, as in one process
            top.update(screen.indices, screen.scores[None])
        return Screen(
            int(map_index),
            top.indices[0],
            top.scores[0].astype(np.float32),
            sum(s.ascended for s in screens),
            time.perf_counter() - started,
        )

    def forward(self, maps: Sequence[int], k: int, batch: int, work: _Work) -> TopK:
        maps = tuple(int(m) for m in maps)
        parts = [
            ScreenPart(self.model, self.layer, maps, self.config, a, b, batch, k, "forward")
            for a, b in self._ranges(batch)
        ]
        top = TopK(len(maps), k)
        for part_top in self._run(parts, work, {"phase": "forward screen"}):
            top.update(part_top.indices, part_top.scores)  # in pattern order, as in one process
        return top


def _full(
    engine: AscentEngine, screens: list[Screen], config: PrecursorConfig, epochs: int, batch: int, work: _Work | None
) -> list[MapOutcome]:
    """Full optimisation of every screen's candidates, all maps in one batch."""
    images = np.concatenate([_images_of(s.indices, config) for s in screens])
    targets = np.concatenate([np.full(len(s.indices), s.map_index) for s in screens])
    if epochs > 0 and len(images):
        chunks = max(1, min(20, epochs // 50))

        class _Relay(ProgressCallback):  # forwards the ascent's steps into the run's progress
            last = 0

            def on_step(self, done, info=None):
                if work:
                    work.add(
                        done - self.last,
                        {
                            "phase": "full optimisation",
                            "epoch": int((info or {}).get("epoch", 0)),
                            "epochs": int(epochs),
                            "images": int(len(images)),
                        },
                    )
                self.last = done

            def should_stop(self):
                return bool(work and work.prog.should_stop())

        res = engine.ascend(
            images, targets, epochs, config.step, batch_size=max(batch, 256), chunks=chunks, progress=_Relay()
        )
        if res.stopped:
            raise _Stopped
        oips, finals = res.images[..., 0], res.final_loss
    else:
        oips, finals = images, engine.loss(images, targets) if len(images) else np.zeros(0, np.float32)
    out, a = [], 0
    for s in screens:
        k = len(s.indices)
        out.append(
            MapOutcome(
                s.map_index,
                s.indices,
                s.scores,
                pattern_grids(s.indices, config.grid, config.values),
                oips[a : a + k],
                finals[a : a + k],
                s.ascended,
            )
        )
        a += k
    return out


def failed_maps(engine: AscentEngine, oip_config: OipConfig | None = None) -> list[int]:
    """Maps of the engine's layer without an OIP after a plain OIP run (default OIP settings)."""
    cfg = (oip_config or OipConfig(layer=engine.layer)).with_(layer=engine.layer, maps=None)
    return run_oip(engine, cfg).failed_maps
