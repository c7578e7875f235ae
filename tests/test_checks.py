"""The one range check (core/checks.py): the sentence names the setting, the value and what is allowed."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("epochs", 0, 1, 200), {}, "epochs=0 is outside 1..200"),
        (
            ("epochs", 21, 1, 20),
            {"note": "fine-tuning is short"},
            r"epochs=21 is outside 1..20 \(fine-tuning is short\)",
        ),
        (("learning_rate", 0.0, 0, 10), {"open_low": True}, r"learning_rate=0.0 is outside \(0, 10\]"),
        (("learning_rate", 20, 0, 10), {"open_low": True}, r"learning_rate=20 is outside \(0, 10\]"),
        (("momentum", 1.0, 0.0, 1.0), {"open_high": True}, r"momentum=1.0 is outside \[0, 1\)"),
        (("batch", 0, 1, None), {}, "batch=0 must be ≥ 1"),
        (("share", 2, None, 1), {}, "share=2 must be ≤ 1"),
        (("step", math.nan, 0, 10), {}, "step=nan must be a number from 0 to 10"),
        (("step", math.inf, 0, None), {}, "step=inf must be a number"),
        (("maps", "3", 1, 5), {}, "maps='3' must be a number from 1 to 5"),
        (("seed", 2.5, 0, 9), {"whole": True}, "seed=2.5 must be a whole number"),
        (("flag", True, 0, 1), {}, "flag=True must be a number from 0 to 1"),
    ],
)
def test_out_of_range_values_are_refused_with_a_sentence(args, kwargs, message):
    from core.checks import check_range

    with pytest.raises(ValueError, match=f"^{message}$"):
        check_range(*args, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("epochs", 1, 1, 200), {}),
        (("epochs", 200, 1, 200), {}),
        (("lr", 10, 0, 10), {"open_low": True}),
        (("momentum", 0, 0, 1), {"open_high": True}),
        (("batch", 10**9, 1, None), {}),
        (("seed", 3.0, 0, 9), {"whole": True}),
    ],
)
def test_values_in_range_pass(args, kwargs):
    from core.checks import check_range

    check_range(*args, **kwargs)
