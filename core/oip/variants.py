"""The questions a learner asks next about one map's OIP: is it unique, and what does the map hate?

For one map: the blog's OIP (one start, the OIP run's settings), a **negative** OIP (the map minimised, on its
pre-activation where the layer is a relu conv) and **N diverse OIPs** (N starts that push each other apart
with a penalty on their similarity up to a shift), all through the one ascent engine
(``core.ascent.engine.AscentEngine``: the same compiled function, no retracing), with the pairwise similarity of
the diverse OIPs up to a shift (``core.oip.similarity``) and the objective they gave up for it (``given_up``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.ascent.engine import DEFAULT_DIVERSITY, AscentEngine, capped_epochs, check_diversity
from core.oip.search import MAX_STARTS, OipConfig, objective_given_up, run_oip
from core.oip.similarity import mean_pairwise, shift_similarity
from core.progress import ProgressCallback, progress_scope

DEFAULT_DIVERSE = 4
# DEFAULT_DIVERSITY (imported above) is the one default weight: the page's and the CLI's bare --diversity


@dataclass(frozen=True)
class VariantsConfig:
    """One map of ``base.layer``; ``base`` holds the OIP run's settings (epochs, step, seed, scales, ...)."""

    base: OipConfig
    map_index: int
    diverse: int = DEFAULT_DIVERSE
    diversity: float = DEFAULT_DIVERSITY

    @property
    def seed(self) -> int:
        return self.base.seed

    def validate(self) -> None:
        self.base.validate()
        if not 2 <= self.diverse <= MAX_STARTS:
            raise ValueError(f"diverse={self.diverse} OIPs is outside 2..{MAX_STARTS}")
        check_diversity(self.diversity)
        if self.diversity == 0:
            raise ValueError(
                f"diversity=0 would give N independent starts; use a weight > 0 (e.g. {DEFAULT_DIVERSITY:g})"
            )
        if self.map_index < 0:
            raise ValueError(f"map {self.map_index} does not exist; maps are numbered from 0")


@dataclass
class MapVariants:
    """``blog`` ``(28, 28)`` and its loss; ``negative`` ``(28, 28)`` and its loss (−objective: > 0 when the map
    is held below 0); ``diverse`` ``(N, 28, 28)``, ``diverse_loss`` ``(N,)`` and their pairwise similarity up
    to a shift ``similarity`` ``(N, N)``; ``plain_similarity`` and ``plain_loss`` ``(N,)``: the same for N plain
    starts (no penalty), for comparison."""

    config: VariantsConfig
    blog: np.ndarray
    blog_loss: float
    negative: np.ndarray
    negative_loss: float
    diverse: np.ndarray
    diverse_loss: np.ndarray
    similarity: np.ndarray
    plain_similarity: np.ndarray
    seconds: float
    stopped: bool = False
    plain_loss: np.ndarray | None = None

    @property
    def mean_similarity(self) -> float:
        return mean_pairwise(self.similarity)

    @property
    def given_up(self) -> float:
        """Percent of the objective the diverse OIPs gave up: their best loss against the best of as many plain
        starts (``core.oip.search.objective_given_up``; NaN where the plain starts found no OIP)."""
        if self.plain_loss is None:
            return float("nan")
        best = [
            float(np.max(v)) if np.isfinite(v).all() else float("nan") for v in (self.plain_loss, self.diverse_loss)
        ]
        return float(objective_given_up(*best))

    @property
    def plain_mean_similarity(self) -> float:
        return mean_pairwise(self.plain_similarity)


def run_variants(engine: AscentEngine, config: VariantsConfig, progress: ProgressCallback | None = None) -> MapVariants:
    """Blog, negative and diverse OIPs of one map (see the module doc); ``progress`` counts image-epochs."""
    config.validate()
    if config.map_index >= engine.channels:
        raise ValueError(
            f"map {config.map_index} does not exist in layer {engine.layer!r}, which has maps 0..{engine.channels - 1}"
        )
    base = config.base.with_(maps=(int(config.map_index),), layer=engine.layer)
    epochs = capped_epochs(base.epochs)
    n = config.diverse
    runs = [
        ("blog", base.with_(starts=1, objective="map" if base.objective == "negative" else base.objective)),
        ("negative", base.with_(starts=1, objective="negative", neuron=None)),
        ("plain starts", base.with_(starts=n, diversity=0.0)),
        ("diverse", base.with_(starts=n, diversity=config.diversity)),
    ]
    total = sum(r.starts for _, r in runs) * epochs
    results = {}
    seconds = 0.0
    stopped = False
    with progress_scope(progress, total, f"Variants of {engine.layer} map {config.map_index}") as prog:
        done = 0

        class _Relay(ProgressCallback):  # one bar over the four runs
            def on_step(self, d, info=None):
                prog.on_step(done + d, {**(info or {}), "variant": name})

            def should_stop(self):
                return prog.should_stop()

        for name, cfg in runs:
            res = run_oip(engine, cfg, progress=_Relay())
            results[name] = res
            seconds += res.seconds
            done += cfg.starts * epochs
            if res.stopped:
                stopped = True
                break

    def images(name: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The run's images (k, 28, 28) and losses (k,); NaN for a run a stop request left out."""
        if name not in results:
            return np.full((k, 28, 28), np.nan, np.float32), np.full(k, np.nan, np.float32)
        return results[name].images[0], results[name].final_loss[0]

    blog, blog_loss = images("blog", 1)
    negative, negative_loss = images("negative", 1)
    plain, plain_loss = images("plain starts", n)
    diverse, diverse_loss = images("diverse", n)
    return MapVariants(
        config,
        blog[0],
        float(blog_loss[0]),
        negative[0],
        float(negative_loss[0]),
        diverse,
        diverse_loss,
        shift_similarity(np.nan_to_num(diverse)),
        shift_similarity(np.nan_to_num(plain)),
        seconds,
        stopped,
        plain_loss,
    )


def similarity_summary(values: np.ndarray) -> str:
    """'median 0.62 (0.31–0.95)' of per-map similarities (NaNs left out; '–' when none)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return f"median {np.median(v):.2f} ({v.min():.2f}–{v.max():.2f})" if len(v) else "–"
