"""Data sets: the tutorial's three points, and synthetic linear data."""

from __future__ import annotations

from typing import List, Tuple


def tutorial() -> Tuple[List[float], List[float]]:
    """The tutorial's data: ``x = [1, 2, 3]``, ``y = 2x``.

    Examples
    --------
    >>> from fastgd import datasets
    >>> datasets.tutorial()
    ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    """
    return [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]
