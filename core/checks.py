"""The one range check: a setting outside what is allowed is refused with a ValueError that names the setting,
the value given and what is allowed, e.g. ``epochs=0 is outside 1..200`` or ``learning_rate=20 is outside (0, 10]``.
The pages show the same sentence beside the field."""

from __future__ import annotations

import math
from numbers import Real


def check_range(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    *,
    whole: bool = False,
    open_low: bool = False,
    open_high: bool = False,
    note: str = "",
) -> None:
    """ValueError unless ``low <= value <= high`` (``<`` at an open end; ``None``: no bound), a finite number, and
    a whole number when ``whole``. The message: ``name=value is outside low..high`` (``(low, high]`` with an open
    end; ``must be ≥ low`` or ``must be ≤ high`` with one bound), then `` (note)`` when given."""
    suffix = f" ({note})" if note else ""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(
            f"{name}={value!r} must be a {'whole ' if whole else ''}number"
            + (f" from {_num(low)} to {_num(high)}" if low is not None and high is not None else "")
            + suffix
        )
    if whole and float(value) != int(value):
        raise ValueError(f"{name}={value!r} must be a whole number{suffix}")
    below = low is not None and (value <= low if open_low else value < low)
    above = high is not None and (value >= high if open_high else value > high)
    if not (below or above):
        return
    if low is not None and high is not None:
        if open_low or open_high:
            span = f"{'(' if open_low else '['}{_num(low)}, {_num(high)}{')' if open_high else ']'}"
        else:
            span = f"{_num(low)}..{_num(high)}"
        raise ValueError(f"{name}={value} is outside {span}{suffix}")
    if low is not None:
        raise ValueError(f"{name}={value} must be {'>' if open_low else '≥'} {_num(low)}{suffix}")
    raise ValueError(f"{name}={value} must be {'<' if open_high else '≤'} {_num(high)}{suffix}")


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)
