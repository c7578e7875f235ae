"""Architecture specs for the MNIST CNN, presets, and the per-layer table computed from a spec.

Layer names are stable: conv1, pool1, conv2, pool2, conv3, ..., flatten, dense1, ..., out.
A max-pool (2×2, stride 2) follows every conv layer but the last. Optional batch-norm
layers (bn1, ...) follow each conv's activation; optional dropout layers (drop1, ...)
follow each hidden dense layer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from core.checks import check_range

ACTIVATIONS = ("relu", "sigmoid", "elu", "tanh", "selu")
PADDINGS = ("valid", "same")
POOL_SIZE = 2


@dataclass(frozen=True)
class ConvSpec:
    filters: int
    kernel: int = 3
    activation: str = "relu"
    padding: str = "valid"


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

    def to_dict(self) -> dict:
        d = asdict(self)
        if not self.final_pool:
            d.pop("final_pool")  # spec files of the blog's architectures stay as they were
        d["convs"] = [asdict(c) for c in self.convs]
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
    if not spec.convs:
        raise ValueError("the architecture needs at least one conv layer")
    for i, c in enumerate(spec.convs, 1):
        if not 1 <= c.filters <= 1024:
            raise ValueError(f"conv{i}: filters={c.filters} is outside 1..1024")
        if not 1 <= c.kernel <= 15:
            raise ValueError(f"conv{i}: kernel={c.kernel} is outside 1..15")
        if c.activation not in ACTIVATIONS:
            raise ValueError(f"conv{i}: activation {c.activation!r} is not one of {ACTIVATIONS}")
        if c.padding not in PADDINGS:
            raise ValueError(f"conv{i}: padding {c.padding!r} is not one of {PADDINGS}")
    for i, units in enumerate(spec.dense, 1):
        if not 1 <= units <= 4096:
            raise ValueError(f"dense{i}: units={units} is outside 1..4096")
    if spec.dense_activation not in ACTIVATIONS:
        raise ValueError(f"dense activation {spec.dense_activation!r} is not one of {ACTIVATIONS}")
    check_range("dropout", spec.dropout, 0.0, 1.0, open_high=True)
    layer_table(spec)  # raises for maps that shrink below 1×1


def layer_table(spec: ArchitectureSpec) -> list[LayerInfo]:
    """Every layer's output shape, parameter count and receptive field, from the spec alone.

    Receptive fields follow r_out = r_in + (k - 1)·j_in and j_out = j_in·s.
    Raises ValueError naming the layer whose output would be smaller than 1×1.
    """
    rows: list[LayerInfo] = []
    side, channels = spec.input_side, 1
    rf, jump, start = 1, 1, 0
    n_conv = len(spec.convs)
    for i, conv in enumerate(spec.convs, 1):
        k = conv.kernel
        new_side = side if conv.padding == "same" else side - k + 1
        if new_side < 1:
            raise ValueError(
                f"conv{i} (kernel {k}×{k}, padding {conv.padding}) would shrink a "
                f"{side}×{side} map to {new_side}×{new_side}; maps must stay at least 1×1"
            )
        if conv.padding == "same":
            start -= ((k - 1) // 2) * jump
        rf += (k - 1) * jump
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
        if i < n_conv or spec.final_pool:
            new_side = side // POOL_SIZE
            if new_side < 1:
                raise ValueError(
                    f"pool{i} would shrink a {side}×{side} map to 0×0; "
                    "maps must stay at least 1×1 (use fewer layers, smaller kernels or padding='same')"
                )
            rf += (POOL_SIZE - 1) * jump
            jump *= POOL_SIZE
            side = new_side
            rows.append(LayerInfo(f"pool{i}", "MaxPooling2D", (side, side, channels), 0, rf, jump, start))
    flat = side * side * channels
    rows.append(LayerInfo("flatten", "Flatten", (flat,), 0))
    width = flat
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
