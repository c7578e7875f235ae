"""Transfer learning, frozen against from scratch (issue 29): new symbols built from MNIST test strokes.

Five symbols no MNIST class is: a 6 turned 90°, a 7 mirrored, two 1s side by side (shrunk), a 3 upside down and a
4 with a 0 beside it (shrunk); ``--per-symbol`` examples each (different writers), of which ``hold_out`` are
judged on only. The bundled article-II model's conv layers are frozen and a new head trained, beside a network of
the same shape trained from scratch (and, with ``--unfreeze``, the copy with trainable conv layers). Several seeds
(each a new draw of examples): the mean and the range of the held-out accuracy.

    MNIST_NPZ=../shared/data/mnist.npz python bench/bench_transfer.py --seeds 3 --unfreeze
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _shrink_pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two 28×28 digits side by side, shrunk to one 28×28 image (each 14 wide, 28 high → 2×1 pooling)."""
    wide = np.concatenate([a, b], axis=1).astype(float)  # (28, 56)
    return wide.reshape(28, 28, 2).max(axis=2).astype(np.uint8)


SYMBOLS = {
    "6 turned 90°": (6, lambda d, e: np.rot90(d)),
    "7 mirrored": (7, lambda d, e: d[:, ::-1]),
    "two 1s": (1, lambda d, e: _shrink_pair(d, e)),
    "3 upside down": (3, lambda d, e: np.rot90(d, 2)),
    "4 and 0": (4, lambda d, e: _shrink_pair(d, e)),
}
PARTNER = {"two 1s": 1, "4 and 0": 0}


def symbol_set(mnist, per_symbol: int, seed: int):
    """A SymbolSet of the five symbols, ``per_symbol`` examples each from distinct MNIST test digits."""
    from core.experiments.transfer import SymbolSet

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for k, (name, (digit, make)) in enumerate(SYMBOLS.items()):
        picks = rng.choice(np.flatnonzero(mnist.y_test == digit), per_symbol, replace=False)
        partners = rng.choice(np.flatnonzero(mnist.y_test == PARTNER.get(name, digit)), per_symbol, replace=False)
        for i, j in zip(picks, partners):
            images.append(np.ascontiguousarray(make(mnist.x_test[i], mnist.x_test[j])))
            labels.append(k)
    return SymbolSet(np.stack(images), np.array(labels), tuple(SYMBOLS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--per-symbol", type=int, default=20, help="examples per symbol (default 20)")
    parser.add_argument("--hold-out", type=float, default=0.5, help="share of each symbol judged on only")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--unfreeze", action="store_true")
    parser.add_argument("--save", default=None, help="also write the first seed's symbol set as this .npz")
    args = parser.parse_args()

    from core.data import load_mnist
    from core.device import describe_device
    from core.experiments.transfer import TransferConfig, run_transfer
    from core.runs import load_default

    mnist = load_mnist(os.environ.get("MNIST_NPZ"))
    bundle = load_default()
    rows = []
    for seed in range(args.seeds):
        symbols = symbol_set(mnist, args.per_symbol, seed)
        if args.save and seed == 0:
            Path(args.save).write_bytes(symbols.to_npz())
        config = TransferConfig(epochs=args.epochs, hold_out=args.hold_out, unfreeze=args.unfreeze, seed=seed)
        t0 = time.perf_counter()
        result = run_transfer(bundle, symbols, config)
        summary = result.summary()
        rows.append(summary)
        accs = "  ".join(
            f"{k} {v:6.1%} ({result.scores[k].seconds:.1f} s)" for k, v in summary["held_out_accuracy"].items()
        )
        print(
            f"seed {seed}: {summary['trained_on']} trained on, {summary['held_out']} held out  {accs}  "
            f"total {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
    networks = list(rows[0]["held_out_accuracy"])
    out = {
        "device": describe_device(),
        "symbols": list(SYMBOLS),
        "per_symbol": args.per_symbol,
        "hold_out": args.hold_out,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "held_out_accuracy": {
            k: {
                "mean": round(float(np.mean([r["held_out_accuracy"][k] for r in rows])), 4),
                "min": round(float(np.min([r["held_out_accuracy"][k] for r in rows])), 4),
                "max": round(float(np.max([r["held_out_accuracy"][k] for r in rows])), 4),
            }
            for k in networks
        },
        "seconds_per_transfer": round(float(np.mean([r["seconds"] for r in rows])), 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
