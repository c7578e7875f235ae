"""Transfer learning: teach a trained CNN new symbols (+, −, ×, letters, arrows) from a few examples of each.

A *copy* of the model keeps its conv layers frozen (their weights bit for bit) and gets a new head: ``dense1`` starts
from the original's weights and keeps learning, and a new ``out`` layer has one unit per symbol. The original is
only read. Beside it, to show what transfers:

* **scratch**: a network of the same shape, every weight random, trained on the same few examples;
* **unfrozen** (optional): the same copy with its conv layers trainable too, and how far their weights moved.

Each is judged on held-out examples of every symbol (never trained on). Which conv maps the new classes use: the
mean activation of each map of the last conv layer per symbol, and the maps whose activation on a symbol most
exceeds their mean over all symbols.

Why dense1 is kept rather than new: with ten examples a symbol, a 70-unit layer started from random weights has
little to learn from; the original's dense1 already combines the conv3 maps into stroke shapes. Every network
reads pixels through the original's scaler (a scaler fitted to a few dozen examples would be noise), so the three
differ only in where their weights start and which of them learn.

The symbol set is a value, like ``core.experiments.personal_set.PersonalSet`` (which checks its images): images
``(N, 28, 28)`` uint8, labels ``(N,)`` indexing ``names``; it travels as an ``.npz`` with ``images``, ``labels`` and
``names`` (unicode, nothing pickled).
"""

from __future__ import annotations

import io
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.checks import check_range
from core.experiments.personal_set import (
    MAX_DIGITS,
    PersonalSet,
    PersonalSetError,
    check_image,
)
from core.model import build_model, feature_model
from core.progress import PartProgress, ProgressCallback, progress_scope
from core.training import TrainConfig, TrainResult, fit_model

MIN_SYMBOLS, MAX_SYMBOLS = 2, 10
MIN_EXAMPLES = 2  # one to train on, one to judge on
MAX_NAME = 24
NAMES_KEY = "names"
NETWORKS = ("frozen", "scratch", "unfrozen")
TITLES = {
    "frozen": "conv layers frozen, new head",
    "scratch": "same shape, from scratch",
    "unfrozen": "conv layers unfrozen",
}
TOP_MAPS = 5


class SymbolSetError(PersonalSetError):
    """A symbol set (or a file meant to be one) that cannot be used; the message says why."""


def clean_name(name) -> str:
    """A symbol's name as kept: blanks around removed; SymbolSetError for an empty or over-long one."""
    text = str(name if name is not None else "").strip()
    if not text:
        raise SymbolSetError("a symbol needs a name (e.g. 'plus', '×', 'A'): it was empty")
    if len(text) > MAX_NAME:
        raise SymbolSetError(f"the symbol name {text[:40]!r} is {len(text)} characters long; at most {MAX_NAME}")
    return text


# --------------------------------------------------------------------------------------------- the symbol set
@dataclass(frozen=True)
class SymbolSet:
    """``images`` ``(N, 28, 28)`` uint8 (white on black), ``labels`` ``(N,)`` int64 indexing ``names`` (at most
    ``MAX_SYMBOLS``, unique ignoring case and surrounding blanks). Every symbol named has at least one example;
    ``check_trainable`` says whether there are enough to train on."""

    images: np.ndarray = field(default_factory=lambda: np.zeros((0, 28, 28), np.uint8))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = tuple(clean_name(n) for n in self.names)
        seen: dict[str, str] = {}
        for name in names:
            if name.casefold() in seen:
                raise SymbolSetError(
                    f"the symbol {name!r} is named twice (as {seen[name.casefold()]!r} too); each symbol needs its "
                    "own name (case and blanks around it do not count)"
                )
            seen[name.casefold()] = name
        if len(names) > MAX_SYMBOLS:
            raise SymbolSetError(f"{len(names)} symbols are more than a set holds: {MIN_SYMBOLS} to {MAX_SYMBOLS}")
        checked = PersonalSet(self.images, self.labels)  # shapes, grey levels, labels 0..9, at most MAX_DIGITS
        bad = np.flatnonzero(checked.labels >= len(names))
        if len(bad):
            raise SymbolSetError(
                f"label {int(checked.labels[bad[0]])} (example {int(bad[0])}) has no symbol: the set names "
                f"{len(names)} ({', '.join(names) or 'none'})"
            )
        empty = [names[k] for k in range(len(names)) if not np.any(checked.labels == k)]
        if empty:
            raise SymbolSetError(f"the symbol {empty[0]!r} has no example; add one or leave the symbol out")
        object.__setattr__(self, "images", checked.images)
        object.__setattr__(self, "labels", checked.labels)
        object.__setattr__(self, "names", names)

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> np.ndarray:
        """Examples per symbol ``(S,)``."""
        return np.bincount(self.labels, minlength=len(self.names))

    def index_of(self, name) -> int | None:
        """The index of the symbol called ``name`` (ignoring case and blanks around it), None when there is none."""
        key = clean_name(name).casefold()
        return next((k for k, n in enumerate(self.names) if n.casefold() == key), None)

    def add_many(self, images: np.ndarray, name) -> SymbolSet:
        """A new set with ``images`` ``(K, 28, 28)`` (0..255) as examples of ``name`` (a new symbol when unknown)."""
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if len(images) == 0:
            return self
        checked = np.stack([check_image(im) for im in images])
        index = self.index_of(name)
        names = self.names
        if index is None:
            if len(names) >= MAX_SYMBOLS:
                raise SymbolSetError(
                    f"{clean_name(name)!r} would be symbol {len(names) + 1}; a set holds {MIN_SYMBOLS} to "
                    f"{MAX_SYMBOLS} symbols"
                )
            names, index = names + (clean_name(name),), len(names)
        if len(self) + len(checked) > MAX_DIGITS:
            raise SymbolSetError(f"{len(self)} + {len(checked)} examples are more than a set holds ({MAX_DIGITS})")
        return SymbolSet(
            np.concatenate([self.images, checked]), np.append(self.labels, np.full(len(checked), index)), names
        )

    def without(self, indices) -> SymbolSet:
        """A new set without the examples at ``indices``; a symbol left without examples leaves the set."""
        try:
            kept = PersonalSet(self.images, self.labels).without(indices)  # the indices checked there
        except PersonalSetError as exc:
            raise SymbolSetError(str(exc).replace("digit", "example")) from None
        used = [k for k in range(len(self.names)) if np.any(kept.labels == k)]
        renumber = np.full(max(len(self.names), 1), -1)
        renumber[used] = np.arange(len(used))
        return SymbolSet(kept.images, renumber[kept.labels], tuple(self.names[k] for k in used))

    def check_trainable(self) -> None:
        """SymbolSetError naming what is missing unless the set has 2..10 symbols with at least 2 examples each."""
        if len(self.names) < MIN_SYMBOLS:
            have = f"only {self.names[0]!r}" if self.names else "none"
            raise SymbolSetError(
                f"the set has {len(self.names)} symbol{'s' if len(self.names) != 1 else ''} ({have}); "
                f"transfer learning needs {MIN_SYMBOLS} to {MAX_SYMBOLS}"
            )
        counts = self.counts()
        few = np.flatnonzero(counts < MIN_EXAMPLES)
        if len(few):
            k = int(few[0])
            raise SymbolSetError(
                f"the symbol {self.names[k]!r} has {counts[k]} example{'s' if counts[k] != 1 else ''}; each symbol "
                f"needs at least {MIN_EXAMPLES} (one to train on, one to judge on), 10 or so is better"
            )

    def to_npz(self) -> bytes:
        """The set as ``.npz`` bytes: ``images``, ``labels`` and ``names`` (unicode)."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, images=self.images, labels=self.labels.astype(np.uint8), names=np.array(self.names, dtype=str)
        )
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes, name: str = "the file") -> SymbolSet:
        """Read a set written by ``to_npz``; SymbolSetError naming the problem otherwise. Nothing is pickled."""
        try:
            base = PersonalSet.from_npz(data, name)  # size, zip, images and labels checked there
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                if NAMES_KEY not in npz.files:
                    raise SymbolSetError(
                        f"{name} has no 'names' array: a symbol set names its symbols (it holds {sorted(npz.files)})"
                    )
                names = npz[NAMES_KEY]
        except SymbolSetError:
            raise
        except PersonalSetError as exc:
            raise SymbolSetError(str(exc).replace("personal set", "symbol set")) from None
        except Exception as exc:  # an object array (pickle refused), a damaged member
            raise SymbolSetError(f"{name}: its 'names' could not be read ({type(exc).__name__}: {exc})") from None
        if not isinstance(names, np.ndarray) or names.ndim != 1 or names.dtype.kind != "U":
            raise SymbolSetError(f"{name}: 'names' must be a list of texts")
        return cls(base.images, base.labels, tuple(str(n) for n in names))


def load_symbols(path: str | os.PathLike) -> SymbolSet | None:
    """The set kept at ``path`` (written by ``core.experiments.personal_set.save_set``), None when there is none."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    return SymbolSet.from_npz(data, Path(path).name)


# --------------------------------------------------------------------------------------------- the training
@dataclass(frozen=True)
class TransferConfig:
    """Settings of a transfer: Adam on the few examples, each shown ``repeat`` times per epoch; ``hold_out`` of
    each symbol's examples (at least one, never all) judged on only; ``layer``: the conv layer whose maps are
    examined (None: the last)."""

    epochs: int = 20
    learning_rate: float = 1e-3
    repeat: int = 4
    batch_size: int = 16
    hold_out: float = 0.3
    unfreeze: bool = False
    layer: str | None = None
    seed: int = 0

    def validate(self) -> None:
        check_range("epochs", self.epochs, 1, 200)
        check_range("learning_rate", self.learning_rate, 0, 0.1, open_low=True)
        check_range("repeat", self.repeat, 1, 100)
        check_range("batch_size", self.batch_size, 1, 1024)
        check_range("hold_out", self.hold_out, 0, 0.9, open_low=True)

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            optimizer="adam",
            learning_rate=self.learning_rate,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
        )


def split_examples(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, held_out)``: ``share`` of each symbol's examples (rounded, at least one, never all) held
    out, chosen by ``seed``."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        n = min(max(1, round(len(members) * share)), len(members) - 1)
        held.extend(members[:n].tolist())
    held_out = np.array(sorted(held), dtype=np.int64)
    return np.setdiff1d(np.arange(len(labels)), held_out), held_out


@dataclass
class NetworkScore:
    """One network on the held-out examples: ``accuracy``, ``per_symbol`` ``(S,)`` (NaN where a symbol has none),
    ``confusion`` ``(S, S)`` (rows true), ``predicted`` ``(H,)``; ``train_accuracy`` on the examples it learned;
    ``trainable`` parameters; ``status`` of its training (completed, stopped, diverged)."""

    accuracy: float
    per_symbol: np.ndarray
    confusion: np.ndarray
    predicted: np.ndarray
    train_accuracy: float
    trainable: int
    seconds: float
    status: str


@dataclass
class TransferResult:
    """What a transfer found. ``names`` ``(S,)``; ``train``/``held_out`` example indices; ``scores``: network
    (``NETWORKS``) → NetworkScore; ``layer`` and ``map_means`` ``(S, M)``: the mean activation of each of its maps
    per symbol (all examples); ``top_maps`` ``(S, k)``: per symbol the maps whose mean most exceeds their mean over
    all symbols; ``conv_change``: conv layer → relative change of its weights in the unfrozen network
    (‖W − W₀‖ / ‖W₀‖; 0.0 in the frozen one, by construction); ``kept``: the frozen copy's TrainResult (with its Keras
    model; None once the result has travelled, see ``without_model``)."""

    names: tuple[str, ...]
    train: np.ndarray
    held_out: np.ndarray
    scores: dict[str, NetworkScore]
    layer: str
    map_means: np.ndarray
    top_maps: np.ndarray
    conv_change: dict[str, float]
    seconds: float
    kept: TrainResult | None = None

    @property
    def stopped(self) -> bool:
        return any(s.status == "stopped" for s in self.scores.values())

    def without_model(self) -> TransferResult:
        return replace(self, kept=None)

    def summary(self) -> dict:
        """The figures as plain numbers (for the CLI's JSON and the run's run.json)."""
        return {
            "symbols": list(self.names),
            "trained_on": int(len(self.train)),
            "held_out": int(len(self.held_out)),
            "held_out_accuracy": {k: round(s.accuracy, 4) for k, s in self.scores.items()},
            "per_symbol": {
                k: {n: None if np.isnan(a) else round(float(a), 4) for n, a in zip(self.names, s.per_symbol)}
                for k, s in self.scores.items()
            },
            "status": {k: s.status for k, s in self.scores.items()},
            "layer": self.layer,
            "top_maps": {n: [int(m) for m in row] for n, row in zip(self.names, self.top_maps)},
            "conv_change": {k: round(v, 5) for k, v in self.conv_change.items()},
            "seconds": round(self.seconds, 2),
        }


def conv_layers(model) -> list[str]:
    """The names of a model's conv layers, in order (conv1, conv2, ...)."""
    return [layer.name for layer in model.layers if layer.name.startswith("conv")]


def _frozen_names(spec) -> list[str]:
    """Conv layers and their batch norms: what the frozen copy does not train."""
    return [f"conv{i}" for i in range(1, len(spec.convs) + 1)] + (
        [f"bn{i}" for i in range(1, len(spec.convs) + 1)] if spec.batch_norm else []
    )


def transfer_copy(bundle, n_symbols: int, seed: int, freeze: bool):
    """A copy of ``bundle``'s model (only read) with an ``out`` layer of ``n_symbols`` units (new, seeded) and every
    other layer's weights copied; with ``freeze`` its conv layers (and batch norms) do not train."""
    spec = replace(bundle.spec, num_classes=n_symbols)
    copy = build_model(spec, seed=seed)
    for layer in copy.layers:
        if layer.name != "out" and layer.weights:
            layer.set_weights(bundle.model.get_layer(layer.name).get_weights())
    if freeze:
        for name in _frozen_names(spec):
            copy.get_layer(name).trainable = False
    return copy, spec


def _trainable_count(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def _score(result: TrainResult, x_held, y_held, x_train, y_train, n: int, seconds: float) -> NetworkScore:
    def probs(x):
        return np.asarray(result.model(result.scaler.transform(x), training=False))

    held = probs(x_held)
    predicted = held.argmax(axis=1)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (y_held, predicted), 1)
    per = np.array([(predicted[y_held == k] == k).mean() if np.any(y_held == k) else np.nan for k in range(n)])
    return NetworkScore(
        float((predicted == y_held).mean()),
        per,
        confusion,
        predicted,
        float((probs(x_train).argmax(axis=1) == y_train).mean()),
        _trainable_count(result.model),
        seconds,
        result.status,
    )


def map_usage(model, scaler, images: np.ndarray, labels: np.ndarray, n: int, layer: str, top: int = TOP_MAPS):
    """Mean activation of each map of ``layer`` per symbol ``(S, M)`` over ``images`` ``(N, 28, 28)`` with
    ``labels`` ``(N,)``, and per symbol the ``top`` maps whose mean most exceeds their mean over all symbols
    ``(S, top)``."""
    values = np.asarray(feature_model(model, [layer])(scaler.transform(images), training=False))
    per_image = values.mean(axis=(1, 2)) if values.ndim == 4 else values  # (N, M)
    means = np.stack([per_image[labels == k].mean(axis=0) for k in range(n)])
    lift = means - means.mean(axis=0, keepdims=True)
    return means, np.argsort(-lift, axis=1, kind="stable")[:, : min(top, means.shape[1])]


def _relative_change(before: list[np.ndarray], after: list[np.ndarray]) -> float:
    num = math.sqrt(sum(float(np.sum((a - b) ** 2)) for a, b in zip(after, before)))
    den = math.sqrt(sum(float(np.sum(b**2)) for b in before)) or 1.0
    return num / den


def run_transfer(
    bundle, symbols: SymbolSet, config: TransferConfig = TransferConfig(), progress: ProgressCallback | None = None
) -> TransferResult:
    """Train the frozen copy, the same shape from scratch and (with ``config.unfreeze``) the unfrozen copy on the
    examples of ``symbols`` not held out, each ``repeat`` times an epoch, and judge them on the held-out ones.
    ``bundle`` (core.runs.ModelBundle) is only read. A stop request ends the current training and skips the rest."""
    config.validate()
    symbols.check_trainable()
    if not bundle.spec.convs:
        raise ValueError(
            f"{bundle.name!r} has no conv layers (a dense network): transfer learning here keeps a CNN's conv "
            "layers and trains a new head; use a CNN such as the bundled one"
        )
    layer = config.layer or conv_layers(bundle.model)[-1]
    if layer not in conv_layers(bundle.model):
        raise ValueError(f"layer {layer!r} is not a conv layer of {bundle.name!r}: {conv_layers(bundle.model)}")
    started = time.perf_counter()
    n = len(symbols.names)
    train_idx, held_idx = split_examples(symbols.labels, config.hold_out, config.seed)
    x_train = np.repeat(symbols.images[train_idx], config.repeat, axis=0)
    y_train = np.repeat(symbols.labels[train_idx], config.repeat)
    x_held, y_held = symbols.images[held_idx], symbols.labels[held_idx]
    networks = [k for k in NETWORKS if k != "unfrozen" or config.unfreeze]
    steps = math.ceil(len(x_train) / config.batch_size) * config.epochs
    scores, conv_change, kept = {}, {}, None
    with progress_scope(progress, steps * len(networks), "transfer learning") as prog:
        for i, network in enumerate(networks):
            if prog.should_stop():
                break
            t0 = time.perf_counter()
            if network == "scratch":
                spec = replace(bundle.spec, num_classes=n)
                model = build_model(spec, seed=config.seed)
            else:
                model, spec = transfer_copy(bundle, n, config.seed, freeze=network == "frozen")
            part = PartProgress(prog, i * steps, {"network": TITLES[network]})
            part.on_step(0, {"phase": f"training: {TITLES[network]}"})
            result = fit_model(
                model, spec, bundle.scaler, config.train_config(), x_train, y_train, x_held, y_held, part
            )
            scores[network] = _score(
                result, x_held, y_held, symbols.images[train_idx], symbols.labels[train_idx], n,
                time.perf_counter() - t0,
            )  # fmt: skip
            if network == "frozen":
                kept = result
            if network == "unfrozen":
                conv_change = {
                    name: _relative_change(
                        bundle.model.get_layer(name).get_weights(), model.get_layer(name).get_weights()
                    )
                    for name in conv_layers(model)
                }
        prog.on_step(len(scores) * steps, {"phase": f"measuring the maps of {layer} per symbol"})
        means, top = map_usage(bundle.model, bundle.scaler, symbols.images, symbols.labels, n, layer)
    return TransferResult(
        symbols.names,
        train_idx,
        held_idx,
        scores,
        layer,
        means,
        top,
        conv_change,
        time.perf_counter() - started,
        kept,
    )


def run_meta(result: TransferResult, source_name: str, config: TransferConfig) -> dict:
    """What a transfer's new run records in run.json beside its training figures."""
    from dataclasses import asdict

    return {
        "preset": "transfer",
        "transfer_from": source_name,
        "class_names": list(result.names),
        "transfer": {**result.summary(), "config": asdict(config)},
        "note": f"transfer from {source_name}, symbols {list(result.names)}",
    }


__all__ = [
    "MAX_SYMBOLS",
    "MIN_EXAMPLES",
    "MIN_SYMBOLS",
    "NETWORKS",
    "TITLES",
    "NetworkScore",
    "SymbolSet",
    "SymbolSetError",
    "TransferConfig",
    "TransferResult",
    "clean_name",
    "load_symbols",
    "map_usage",
    "run_meta",
    "run_transfer",
    "split_examples",
    "transfer_copy",
]
