"""Benchmark: the precursor search on the bundled article-II model's conv3 (3×3 squares, 3 grey values:
19,683 patterns, 10 test epochs), measured side by side in one run:

1. faithful screen for one failing conv3 map, every pattern through the 10-epoch ascent
   (``skip_dead=False``) — target ≤ 30 s on 2 CPU cores (the blog: < 5 min on a GTX 960), and its throughput
   ≥ 0.85× the engine's best warm throughput (image-epochs/s of the batch shape with the highest median
   rate, measured 5 times between the screen's quarters so both see the same machine load);
2. the same screen with ``skip_dead=True`` (the default; exact: a pattern whose map stays at zero has a zero
   gradient, so it keeps loss 0 without being ascended) — same ranking, checked;
3. fast screen for all 64 conv3 maps (one forward pass ranks every pattern for every map, the best 128 per
   map get the 10 test epochs) — target ≤ 60 s;
4. how many of the faithful top 8 the fast screen also picks, for ``--overlap-maps`` failing maps;
5. peak memory (max RSS of this process) after a forward screen of the largest grid a CPU allows
   (4 values on 3×3 squares = 262,144 patterns) — target < 4 GB.

Usage: ``python bench/bench_precursor.py [--overlap-maps 2] [--skip-memory]``. Prints the figures and ratios,
and as the last line one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from core.ascent import engine as ascent  # noqa: E402
from core.device import describe_device
from core.oip import precursor as pc  # noqa: E402
from core.runs import load_default  # noqa: E402


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: kB


SHAPES = ((128, 10), (256, 10), (512, 10), (128, 100))  # (images, epochs) per call tried for the engine's best


def engine_rates(engine, map_index: int) -> dict:
    """The engine's warm ascent throughput (image-epochs/s) on random starts for one map, per batch shape."""
    rng = np.random.default_rng(0)
    rates = {}
    for batch, epochs in SHAPES:
        x = pc.standardize_pattern(rng.normal(size=(batch, 28, 28)))
        targets = np.full(batch, map_index)
        engine.ascend(x, targets, 1, 0.05)
        t0 = time.perf_counter()
        engine.ascend(x, targets, epochs, 0.05)
        rates[(batch, epochs)] = batch * epochs / (time.perf_counter() - t0)
    return rates


def faithful_beside_engine(engine, map_index: int, config, parts: int = 4):
    """The faithful screen (every pattern) in ``parts`` consecutive slices, the engine's throughput measured
    before each slice and after the last, so both see the same machine load. Returns the merged screen, its
    seconds, the share of them spent inside the engine's compiled ascent, the engine's best shape (highest
    median rate) with that median, and the single fastest measurement of any shape (the luckiest sample)."""
    ascend, inside = engine.ascend, [0.0]

    def timed_ascend(*args, **kwargs):  # what the screen spends inside the engine's compiled calls
        t0 = time.perf_counter()
        try:
            return ascend(*args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - t0

    bounds = np.linspace(0, config.n_patterns, parts + 1).astype(int)
    top, ascended, seconds, rates = pc.TopK(1, config.keep), 0, 0.0, {}
    for i in range(parts + 1):
        for shape, rate in engine_rates(engine, map_index).items():
            rates.setdefault(shape, []).append(rate)
        if i == parts:
            break
        engine.ascend = timed_ascend
        try:
            t0 = time.perf_counter()
            part = pc.screen_faithful(engine, map_index, config, start=int(bounds[i]), stop=int(bounds[i + 1]))
            seconds += time.perf_counter() - t0
        finally:
            del engine.ascend  # the bound method again
        top.update(part.indices, part.scores[None])
        ascended += part.ascended
    screen = pc.Screen(int(map_index), top.indices[0], top.scores[0].astype(np.float32), ascended, seconds)
    median = {k: float(np.median(v)) for k, v in rates.items()}
    shape = max(median, key=median.get)  # the best shape by its typical rate, not by its luckiest sample
    return screen, seconds, inside[0] / seconds, median[shape], shape, max(max(v) for v in rates.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--overlap-maps", type=int, default=2, help="failing maps for the fast-vs-faithful overlap")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 262,144-pattern memory check")
    args = parser.parse_args(argv)

    engine = ascent.AscentEngine(load_default().model, "conv3")
    print(
        f"device: {describe_device()} · {os.cpu_count()} CPU cores · load average {os.getloadavg()[0]:.1f} · "
        f"batch {pc.default_batch()} images per compiled call",
        file=sys.stderr,
    )
    failed = pc.failed_maps(engine)  # plain OIP run with the default settings
    print(
        f"plain OIP run (200 epochs, 1 start): {len(failed)} of {engine.channels} conv3 maps without an OIP: {failed}",
        file=sys.stderr,
    )
    target = failed[0]
    cfg = pc.PrecursorConfig(maps=(target,))
    pc.measure_throughput(engine)  # warm-up: traces the compiled functions
    every, every_s, in_engine, best_rate, best_shape, luckiest = faithful_beside_engine(
        engine, target, cfg.with_(skip_dead=False)
    )
    screen_rate = every.ascended * cfg.test_epochs / every_s
    print(
        f"1. faithful screen, map {target}, all {cfg.n_patterns:,} patterns × {cfg.test_epochs} epochs: "
        f"{every_s:.1f} s "
        f"({screen_rate:,.0f} image-epochs/s; {in_engine:.1%} of it inside the engine's compiled ascent); the "
        f"engine's best warm throughput between its quarters: {best_rate:,.0f} image-epochs/s ({best_shape[0]} "
        f"images × {best_shape[1]} epochs per call, median of 5) → {screen_rate / best_rate:.2f}× (its single "
        f"fastest measurement: {luckiest:,.0f} → {screen_rate / luckiest:.2f}×)",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    skipped = pc.screen_faithful(engine, target, cfg)
    skip_s = time.perf_counter() - t0
    same = bool(np.array_equal(skipped.indices, every.indices))
    print(
        f"2. the same with skip_dead: {skip_s:.1f} s, {skipped.ascended:,} of {cfg.n_patterns:,} patterns ascended; "
        f"same top 8: {same}",
        file=sys.stderr,
    )

    t0 = time.perf_counter()
    fast = pc.screen_fast(
        engine, list(range(engine.channels)), cfg.with_(maps=tuple(range(engine.channels)), mode="fast")
    )
    fast_s = time.perf_counter() - t0
    print(
        f"3. fast screen, all {engine.channels} maps (forward pass + 10 epochs on the best "
        f"{cfg.refine} per map): {fast_s:.1f} s",
        file=sys.stderr,
    )

    overlaps = {}
    faithful_by_map = {target: every}
    for m in failed[: max(0, args.overlap_maps)]:
        if m not in faithful_by_map:
            faithful_by_map[m] = pc.screen_faithful(engine, m, cfg.with_(maps=(m,)))
        overlaps[m] = pc.topk_overlap(faithful_by_map[m].indices, fast[m].indices)
    if overlaps:
        print(
            "4. fast screen's top 8 ∩ faithful top 8: " + ", ".join(f"map {m}: {c} of 8" for m, c in overlaps.items()),
            file=sys.stderr,
        )

    mem = {"after_3x3x3": round(rss_gb(), 3)}
    if not args.skip_memory:
        big = pc.PrecursorConfig(maps=tuple(range(engine.channels)), values=(0.2, 0.4, 0.6, 0.8), mode="fast", refine=0)
        pc.check_feasible(big, "CPU")
        t0 = time.perf_counter()
        pc.screen_fast(engine, list(range(engine.channels)), big)
        mem["after_4_values_3x3"] = round(rss_gb(), 3)
        print(
            f"5. forward screen of {big.n_patterns:,} patterns (4 values, 3×3) for 64 maps: "
            f"{time.perf_counter() - t0:.1f} s; peak RSS {mem['after_4_values_3x3']:.2f} GB",
            file=sys.stderr,
        )
    peak = max(mem.values())

    per_map_fast = fast_s / engine.channels
    print(
        f"\nfaithful screen (one map, every pattern): {every_s:.1f} s (target ≤ 30 s; ×{300 / every_s:.0f} faster than "
        f"the blog's ~5 min on a GTX 960)"
    )
    print(
        f"faithful screen throughput: {screen_rate / best_rate:.2f}× the engine's best warm throughput in this run "
        f"(target ≥ 0.85); {in_engine:.1%} of the screen's time is the engine's compiled ascent"
    )
    print(f"skip_dead: ×{every_s / skip_s:.2f} faster than ascending every pattern, same ranking: {same}")
    print(
        f"fast screen (all 64 maps): {fast_s:.1f} s (target ≤ 60 s); per map ×{every_s / per_map_fast:.0f} cheaper "
        f"than a faithful screen"
    )
    print(f"peak memory {peak:.2f} GB (target < 4 GB)")
    print(
        json.dumps(
            {
                "benchmark": "precursor",
                "device": describe_device(),
                "patterns": cfg.n_patterns,
                "map": int(target),
                "failed_maps": len(failed),
                "faithful_screen_all_s": round(every_s, 2),
                "engine_best_image_epochs_per_s": round(best_rate),
                "faithful_image_epochs_per_s": round(screen_rate),
                "ratio_faithful_vs_engine_best": round(screen_rate / best_rate, 3),
                "faithful_share_inside_engine": round(in_engine, 4),
                "engine_fastest_sample_image_epochs_per_s": round(luckiest),
                "engine_best_shape": list(best_shape),
                "faithful_screen_skip_dead_s": round(skip_s, 2),
                "skip_dead_ascended": int(skipped.ascended),
                "skip_dead_same_ranking": same,
                "fast_screen_64_maps_s": round(fast_s, 2),
                "ratio_faithful_per_map_vs_fast_per_map": round(every_s / per_map_fast, 1),
                "overlap_fast_vs_faithful": {str(m): c for m, c in overlaps.items()},
                "keep": cfg.keep,
                "peak_rss_gb": round(peak, 3),
                "load_average": round(os.getloadavg()[0], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
