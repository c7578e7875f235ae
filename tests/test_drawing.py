"""A canvas drawing that the network can only guess at is flagged (issue 25, defect 7): a single dot, a tiny
digit, a digit cut by the canvas's edge; a normal drawing is not."""

from __future__ import annotations

import numpy as np
import pytest

from core.images import drawing_doubts

SIDE = 280
PEN = 22


def _canvas(*boxes):
    gray = np.zeros((SIDE, SIDE), np.float32)
    for top, left, bottom, right in boxes:
        gray[top:bottom, left:right] = 255.0
    return gray


@pytest.mark.parametrize(
    "name, canvas, expected",
    [
        ("a one, tall and centred", _canvas((40, 130, 240, 130 + PEN)), []),
        ("a seven", _canvas((50, 70, 50 + PEN, 210), (50, 190, 240, 190 + PEN)), []),
        ("a single dot", _canvas((130, 130, 130 + PEN, 130 + PEN)), ["very little ink", "it is small"]),
        ("a tiny seven", _canvas((120, 120, 124, 160), (120, 156, 170, 160)), ["very little ink", "it is small"]),
        ("a one touching the bottom", _canvas((60, 130, 280, 130 + PEN)), ["touches the canvas's edge"]),
        ("a stroke at the left edge", _canvas((40, 0, 240, PEN)), ["touches the canvas's edge"]),
        ("nothing drawn", _canvas(), []),
    ],
)
def test_drawing_doubts(name, canvas, expected):
    doubts = drawing_doubts(canvas)
    assert len(doubts) == len(expected), (name, doubts)
    for doubt, words in zip(doubts, expected):
        assert words in doubt, (name, doubts)


def test_the_share_of_ink_is_given_in_words():
    (first, *_) = drawing_doubts(_canvas((130, 130, 130 + PEN, 130 + PEN)))
    assert first == "very little ink (0.6% of the canvas)"
