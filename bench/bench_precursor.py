"""Benchmark: the precursor search on the bundled article-II model's conv3 (3×3 squares, 3 grey values:
19,683 patterns, 10 test epochs), measured side by side in one run:

1. faithful screen for one failing conv3 map, every pattern through the 10-epoch ascent
   (``skip_dead=False``) — target ≤ 30 s on 2 CPU cores (the blog: < 5 min on a GTX 960);
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

from core import ascent  # noqa: E402
from core import precursor as pc  # noqa: E402
from core.runs import load_default  # noqa: E402


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # Linux: kB


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--overlap-maps", type=int, default=2, help="failing maps for the fast-vs-faithful overlap")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 262,144-pattern memory check")
    args = parser.parse_args(argv)

    engine = ascent.AscentEngine(load_default().model, "conv3")
    print(f"device: {ascent.device_name()} · {os.cpu_count()} CPU cores · load average {os.getloadavg()[0]:.1f} · "
          f"batch {pc.default_batch()} images per compiled call", file=sys.stderr)
    failed = pc.failed_maps(engine)  # plain OIP run with the default settings
    print(f"plain OIP run (200 epochs, 1 start): {len(failed)} of {engine.channels} conv3 maps without an OIP: "
          f"{failed}", file=sys.stderr)
    target = failed[0]
    cfg = pc.PrecursorConfig(maps=(target,))
    pc.measure_throughput(engine)  # warm-up: traces the compiled functions

    t0 = time.perf_counter()
    every = pc.screen_faithful(engine, target, cfg.with_(skip_dead=False))
    every_s = time.perf_counter() - t0
    print(f"1. faithful screen, map {target}, all {cfg.n_patterns:,} patterns × 10 epochs: {every_s:.1f} s "
          f"({every.ascended * 10 / every_s:,.0f} image-epochs/s)", file=sys.stderr)
    t0 = time.perf_counter()
    skipped = pc.screen_faithful(engine, target, cfg)
    skip_s = time.perf_counter() - t0
    same = bool(np.array_equal(skipped.indices, every.indices))
    print(f"2. the same with skip_dead: {skip_s:.1f} s, {skipped.ascended:,} of {cfg.n_patterns:,} patterns ascended; "
          f"same top 8: {same}", file=sys.stderr)

    t0 = time.perf_counter()
    fast = pc.screen_fast(engine, list(range(engine.channels)), cfg.with_(maps=tuple(range(engine.channels)),
                                                                          mode="fast"))
    fast_s = time.perf_counter() - t0
    print(f"3. fast screen, all {engine.channels} maps (forward pass + 10 epochs on the best "
          f"{cfg.refine} per map): {fast_s:.1f} s", file=sys.stderr)

    overlaps = {}
    faithful_by_map = {target: every}
    for m in failed[: max(0, args.overlap_maps)]:
        if m not in faithful_by_map:
            faithful_by_map[m] = pc.screen_faithful(engine, m, cfg.with_(maps=(m,)))
        overlaps[m] = pc.topk_overlap(faithful_by_map[m].indices, fast[m].indices)
    if overlaps:
        print("4. fast screen's top 8 ∩ faithful top 8: " + ", ".join(f"map {m}: {c} of 8" for m, c in overlaps.items()),
              file=sys.stderr)

    mem = {"after_3x3x3": round(rss_gb(), 3)}
    if not args.skip_memory:
        big = pc.PrecursorConfig(maps=tuple(range(engine.channels)), values=(0.2, 0.4, 0.6, 0.8), mode="fast", refine=0)
        pc.check_feasible(big, "CPU")
        t0 = time.perf_counter()
        pc.screen_fast(engine, list(range(engine.channels)), big)
        mem["after_4_values_3x3"] = round(rss_gb(), 3)
        print(f"5. forward screen of {big.n_patterns:,} patterns (4 values, 3×3) for 64 maps: "
              f"{time.perf_counter() - t0:.1f} s; peak RSS {mem['after_4_values_3x3']:.2f} GB", file=sys.stderr)
    peak = max(mem.values())

    per_map_fast = fast_s / engine.channels
    print(f"\nfaithful screen (one map, every pattern): {every_s:.1f} s (target ≤ 30 s; ×{300 / every_s:.0f} faster than "
          f"the blog's ~5 min on a GTX 960)")
    print(f"skip_dead: ×{every_s / skip_s:.2f} faster than ascending every pattern, same ranking: {same}")
    print(f"fast screen (all 64 maps): {fast_s:.1f} s (target ≤ 60 s); per map ×{every_s / per_map_fast:.0f} cheaper "
          f"than a faithful screen")
    print(f"peak memory {peak:.2f} GB (target < 4 GB)")
    print(json.dumps({
        "benchmark": "precursor", "device": ascent.device_name(), "patterns": cfg.n_patterns, "map": int(target),
        "failed_maps": len(failed), "faithful_screen_all_s": round(every_s, 2), "faithful_screen_skip_dead_s": round(skip_s, 2),
        "skip_dead_ascended": int(skipped.ascended), "skip_dead_same_ranking": same,
        "fast_screen_64_maps_s": round(fast_s, 2), "ratio_faithful_per_map_vs_fast_per_map": round(every_s / per_map_fast, 1),
        "overlap_fast_vs_faithful": {str(m): c for m, c in overlaps.items()}, "keep": cfg.keep,
        "peak_rss_gb": round(peak, 3), "load_average": round(os.getloadavg()[0], 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
