"""The order in which an epoch visits the samples.

The permutations are a function of ``seed`` alone, drawn in Python for every
backend, so all backends see the same batches.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

NATURAL = np.empty(0, dtype=np.int64)  # an empty order means 0, 1, ..., n-1


def epoch_orders(n: int, shuffle: bool, seed: Optional[int]) -> Iterator[np.ndarray]:
    """Yield the visiting order of each epoch: NATURAL, or a fresh permutation."""
    if not shuffle:
        while True:
            yield NATURAL
    rng = np.random.default_rng(seed)
    while True:
        yield rng.permutation(n).astype(np.int64, copy=False)
