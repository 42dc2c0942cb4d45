"""The order in which an epoch visits the samples.

The permutations are a function of ``seed`` alone (and of the number of
samples and whether the data is memory-mapped), drawn in Python for every
backend, so all backends and the reference see the same batches.

In-memory data is visited in a uniform permutation of all samples. Data that
is memory-mapped from a file (``np.memmap``, ``np.load(mmap_mode="r")``) is
visited in a *block-shuffled* order instead, so that disk reads stay
sequential: the samples are cut into consecutive blocks of
``SHUFFLE_BLOCK`` rows (the last may be shorter), each epoch visits the
blocks in a fresh random order, and the rows of each block in a fresh random
order within it. Every sample is still visited once per epoch.
"""

from __future__ import annotations

import mmap
from typing import Iterator, Optional

import numpy as np

NATURAL = np.empty(0, dtype=np.int64)  # an empty order means 0, 1, ..., n-1

# Rows per block of the block-shuffled order of memory-mapped data: 65,536
# rows are 256 KiB to 512 KiB per feature, large enough for sequential reads
# at full disk speed, small enough to stay in cache while they are visited.
SHUFFLE_BLOCK = 1 << 16


def is_memory_mapped(a: object) -> bool:
    """True when ``a`` (or the array it is a view of) is backed by a file mapping."""
    seen = 0
    while a is not None and seen < 64:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None)
        seen += 1
    return False


def shuffle_block(X: object) -> Optional[int]:
    """The block size of the shuffled order for ``X``: SHUFFLE_BLOCK if memory-mapped, else None."""
    return SHUFFLE_BLOCK if is_memory_mapped(X) else None


def epoch_orders(
    n: int, shuffle: bool, seed: Optional[int], block: Optional[int] = None
) -> Iterator[np.ndarray]:
    """Yield the visiting order of each epoch.

    NATURAL when not ``shuffle``; else a fresh permutation of ``range(n)``
    each epoch, drawn from ``seed``: uniform when ``block`` is None, else
    block-shuffled (blocks of ``block`` rows in a random order, rows in a
    random order within each block).
    """
    if not shuffle:
        while True:
            yield NATURAL
    rng = np.random.default_rng(seed)
    if block is None or block >= n:
        while True:
            yield rng.permutation(n).astype(np.int64, copy=False)
    n_blocks = (n + block - 1) // block
    while True:
        order = np.empty(n, dtype=np.int64)
        at = 0
        for b in rng.permutation(n_blocks).tolist():
            start = b * block
            size = min(n, start + block) - start
            order[at : at + size] = rng.permutation(size)
            order[at : at + size] += start
            at += size
        yield order
