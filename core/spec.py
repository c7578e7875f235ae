"""Architecture specs for the MNIST CNN, presets, and the per-layer table computed from a spec.

Layer names are stable: conv1, pool1, conv2, pool2, conv3, ..., flatten, dense1, ..., out.
A max-pool (2×2, stride 2) follows every conv layer but the last. Optional batch-norm
layers (bn1, ...) follow each conv's activation; optional dropout layers (drop1, ...)
follow each hidden dense layer.

Imported models (``core.import_model``) may also have: convs with stride 2 (``ConvSpec.stride``), another
pooling layout (``pools``: 'max', 'avg' or 'none' after each conv: pool{i} is missing where 'none'), global
average pooling instead of Flatten (``head='gap'``, a layer named ``gap``), or no conv at all
(``dense_only``: input → flatten → dense1 … → out). Every such field is left out of the JSON at its default, so
the spec files of the blog's architectures stay as they were.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from core.checks import check_range

ACTIVATIONS = ("relu", "sigmoid", "elu", "tanh", "selu")
PADDINGS = ("valid", "same")
POOL_SIZE = 2
POOLS = ("max", "avg", "none")  # what follows a conv: 2×2 max-pooling, 2×2 average pooling, nothing
HEADS = ("flatten", "gap")  # from the maps to the dense layers: Flatten, or GlobalAveragePooling2D (layer 'gap')
POOL_KINDS = {"max": "MaxPooling2D", "avg": "AveragePooling2D"}
MAX_STRIDE = 4


@dataclass(frozen=True)
class ConvSpec:
    filters: int
    kernel: int = 3
    activation: str = "relu"
    padding: str = "valid"
    stride: int = 1  # imported models only (the Train page's convs have stride 1)


@dataclass(frozen=True)
class ArchitectureSpec:
    convs: tuple[ConvSpec, ...]
    dense: tuple[int, ...] = (70,)
    dense_activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False
    num_classes: int = 10
    input_side: int = 28
    final_pool: bool = False  # a 2×2 max-pool after the last conv too (Keras' own MNIST example has one)
    pools: tuple[str, ...] | None = None  # per conv, one of POOLS; None: max after every conv but the last
    head: str = "flatten"  # one of HEADS
    dense_only: bool = False  # no conv layer at all (an imported dense network)

    def pool_after(self, i: int) -> str:
        """What follows conv ``i`` (1-based): 'max', 'avg' or 'none'."""
        if self.pools is not None:
            return self.pools[i - 1]
        return "max" if i < len(self.convs) or self.final_pool else "none"

    def to_dict(self) -> dict:
        d = asdict(self)
        defaults = {"final_pool": False, "pools": None, "head": "flatten", "dense_only": False}
        for key, default in defaults.items():
            if d[key] == default:
                d.pop(key)  # spec files of the blog's architectures stay as they were
        if self.pools is not None:
            d["pools"] = list(self.pools)
        d["convs"] = [asdict(c) for c in self.convs]
        for c in d["convs"]:
            if c["stride"] == 1:
                c.pop("stride")
        d["dense"] = list(self.dense)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, d: dict) -> ArchitectureSpec:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown architecture fields {unknown}; allowed: {sorted(known)}")
        try:
            convs = tuple(ConvSpec(**c) for c in d["convs"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad 'convs' in architecture: {exc}") from exc
        rest = {k: v for k, v in d.items() if k != "convs"}
        if "dense" in rest:
            rest["dense"] = tuple(int(u) for u in rest["dense"])
        if rest.get("pools") is not None:
            rest["pools"] = tuple(str(p) for p in rest["pools"])
        return cls(convs=convs, **rest)

    @classmethod
    def from_json(cls, text: str) -> ArchitectureSpec:
        return cls.from_dict(json.loads(text))


def _convs(filters, padding="valid"):
    return tuple(ConvSpec(f, 3, "relu", padding) for f in filters)


PRESETS: dict[str, ArchitectureSpec] = {
    "article II": ArchitectureSpec(_convs((32, 64, 64))),
    "OIP series": ArchitectureSpec(_convs((32, 64, 128))),
    "same padding": ArchitectureSpec(_convs((32, 64, 64), "same")),
    "tiny filters": ArchitectureSpec(_convs((3, 6, 12))),
}
DEFAULT_PRESET = "article II"


def preset(name: str) -> ArchitectureSpec:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {list(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class LayerInfo:
    """One row of the layer table.

    ``output_shape`` is (H, W, C) or (units,); ``receptive_field`` is the side in input pixels
    that one neuron sees (None after flatten); ``jump`` the input-pixel distance between
    neighbouring neurons; ``start`` the input coordinate of the top-left pixel of neuron (0, 0)'s
    field (negative when it reaches into the padding).
    """

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    receptive_field: int | None = None
    jump: int | None = None
    start: int | None = None


def validate(spec: ArchitectureSpec) -> None:
    """Raise ValueError naming the first offending setting or layer; builds nothing."""
    if spec.dense_only:
        if spec.convs:
            raise ValueError(f"a dense_only architecture has no conv layer, got {len(spec.convs)}")
        if spec.head != "flatten" or spec.pools is not None or spec.final_pool:
            raise ValueError("a dense_only architecture has no pooling: head 'flatten', no pools, no final_pool")
    elif not spec.convs:
        raise ValueError("the architecture needs at least one conv layer")
    if spec.head not in HEADS:
        raise ValueError(f"head {spec.head!r} is not one of {HEADS}")
    if spec.pools is not None:
        if len(spec.pools) != len(spec.convs):
            raise ValueError(f"pools has {len(spec.pools)} entries for {len(spec.convs)} conv layers")
        bad = [p for p in spec.pools if p not in POOLS]
        if bad:
            raise ValueError(f"pools {bad} are not among {POOLS}")
        if spec.final_pool:
            raise ValueError("final_pool is for the classic layout; with pools, say 'max' after the last conv")
    for i, c in enumerate(spec.convs, 1):
        if not 1 <= c.filters <= 1024:
            raise ValueError(f"conv{i}: filters={c.filters} is outside 1..1024")
        if not 1 <= c.kernel <= 15:
            raise ValueError(f"conv{i}: kernel={c.kernel} is outside 1..15")
        if c.activation not in ACTIVATIONS:
            raise ValueError(f"conv{i}: activation {c.activation!r} is not one of {ACTIVATIONS}")
        if c.padding not in PADDINGS:
            raise ValueError(f"conv{i}: padding {c.padding!r} is not one of {PADDINGS}")
        if not 1 <= c.stride <= MAX_STRIDE:
            raise ValueError(f"conv{i}: stride={c.stride} is outside 1..{MAX_STRIDE}")
    for i, units in enumerate(spec.dense, 1):
        if not 1 <= units <= 4096:
            raise ValueError(f"dense{i}: units={units} is outside 1..4096")
    if spec.dense_activation not in ACTIVATIONS:
        raise ValueError(f"dense activation {spec.dense_activation!r} is not one of {ACTIVATIONS}")
    check_range("dropout", spec.dropout, 0.0, 1.0, open_high=True)
    layer_table(spec)  # raises for maps that shrink below 1×1


def layer_table(spec: ArchitectureSpec) -> list[LayerInfo]:
    """Every layer's output shape, parameter count and receptive field, from the spec alone.

    Receptive fields follow r_out = r_in + (k - 1)·j_in and j_out = j_in·s; 'same' padding with stride s pads
    ``max((⌈n/s⌉ − 1)·s + k − n, 0) // 2`` pixels before (as TensorFlow does).
    Raises ValueError naming the layer whose output would be smaller than 1×1.
    """
    rows: list[LayerInfo] = []
    side, channels = spec.input_side, 1
    rf, jump, start = 1, 1, 0
    for i, conv in enumerate(spec.convs, 1):
        k, s = conv.kernel, conv.stride
        new_side = -(-side // s) if conv.padding == "same" else (side - k) // s + 1
        if new_side < 1 or side < k and conv.padding == "valid":
            shown = min(new_side, side - k + 1)
            raise ValueError(
                f"conv{i} (kernel {k}×{k}, padding {conv.padding}) would shrink a "
                f"{side}×{side} map to {shown}×{shown}; maps must stay at least 1×1"
            )
        if conv.padding == "same":
            start -= (max((new_side - 1) * s + k - side, 0) // 2) * jump
        rf += (k - 1) * jump
        jump *= s
        side = new_side
        rows.append(
            LayerInfo(
                f"conv{i}", "Conv2D", (side, side, conv.filters), (k * k * channels + 1) * conv.filters, rf, jump, start
            )
        )
        channels = conv.filters
        if spec.batch_norm:
            rows.append(
                LayerInfo(f"bn{i}", "BatchNormalization", (side, side, channels), 4 * channels, rf, jump, start)
            )
        pool = spec.pool_after(i)
        if pool != "none":
            new_side = side // POOL_SIZE
            if new_side < 1:
                raise ValueError(
                    f"pool{i} would shrink a {side}×{side} map to 0×0; "
                    "maps must stay at least 1×1 (use fewer layers, smaller kernels or padding='same')"
                )
            rf += (POOL_SIZE - 1) * jump
            jump *= POOL_SIZE
            side = new_side
            rows.append(LayerInfo(f"pool{i}", POOL_KINDS[pool], (side, side, channels), 0, rf, jump, start))
    if spec.head == "gap":
        rows.append(LayerInfo("gap", "GlobalAveragePooling2D", (channels,), 0))
        width = channels
    else:
        width = side * side * channels
        rows.append(LayerInfo("flatten", "Flatten", (width,), 0))
    for i, units in enumerate(spec.dense, 1):
        rows.append(LayerInfo(f"dense{i}", "Dense", (units,), (width + 1) * units))
        if spec.dropout > 0:
            rows.append(LayerInfo(f"drop{i}", "Dropout", (units,), 0))
        width = units
    rows.append(LayerInfo("out", "Dense (softmax)", (spec.num_classes,), (width + 1) * spec.num_classes))
    return rows


def count_params(spec: ArchitectureSpec) -> int:
    return sum(row.params for row in layer_table(spec))


def receptive_box(info: LayerInfo, row: int, col: int, input_side: int = 28) -> tuple[int, int, int, int]:
    """Input rectangle (top, left, bottom, right; inclusive, clipped) seen by neuron (row, col)."""
    if info.receptive_field is None:
        raise ValueError(f"layer {info.name} has no spatial receptive field")
    side = info.output_shape[0]
    if not (0 <= row < side and 0 <= col < side):
        raise ValueError(f"neuron ({row}, {col}) is outside {info.name}'s {side}×{side} map")
    top, left = info.start + row * info.jump, info.start + col * info.jump
    last = input_side - 1
    return (
        max(top, 0),
        max(left, 0),
        min(top + info.receptive_field - 1, last),
        min(left + info.receptive_field - 1, last),
    )
