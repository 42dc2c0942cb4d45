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

import math
import mmap
from typing import Iterator, Optional

import numpy as np

from fastgd._sparse import CSR

NATURAL = np.empty(0, dtype=np.int64)  # an empty order means 0, 1, ..., n-1

# Rows per block of the block-shuffled order of memory-mapped data: 65,536
# rows are 256 KiB to 512 KiB per feature, large enough for sequential reads
# at full disk speed, small enough to stay in cache while they are visited.
SHUFFLE_BLOCK = 1 << 16
# Positions per kernel call when a block-shuffled epoch is fed in segments
# (32 MiB of int64 order, whatever the size of the data).
SEGMENT_ROWS = 1 << 22


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
    """The block size of the shuffled order for ``X``: SHUFFLE_BLOCK if memory-mapped, else None.

    Sparse ``X`` (a ``fastgd._sparse.CSR``) is memory-mapped when its values are.
    """
    values = X.data if isinstance(X, CSR) else X
    return SHUFFLE_BLOCK if is_memory_mapped(values) else None


def _block_orders(rng: np.random.Generator, n: int, block: int) -> Iterator[np.ndarray]:
    """The rows of one block-shuffled epoch, one block at a time (in visiting order)."""
    n_blocks = (n + block - 1) // block
    for b in rng.permutation(n_blocks).tolist():
        start = b * block
        size = min(n, start + block) - start
        rows = rng.permutation(size)
        rows += start
        yield rows


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
    while True:
        order = np.empty(n, dtype=np.int64)
        at = 0
        for rows in _block_orders(rng, n, block):
            order[at : at + rows.shape[0]] = rows
            at += rows.shape[0]
        yield order


def segment_rows(batch_size: int, kernel_block: int, target: Optional[int] = None) -> int:
    """Positions per segment of a segmented epoch: a multiple of ``batch_size``
    (no batch straddles two segments) and, where it stays near ``target``, of
    ``kernel_block`` (the blocks of the kernels' one-feature maps do not move)."""
    target = SEGMENT_ROWS if target is None else target
    unit = batch_size * kernel_block // math.gcd(batch_size, kernel_block)
    if unit > target:
        unit = batch_size
    return max(unit, unit * (target // unit))


def block_shuffled_segments(
    n: int, seed: Optional[int], block: int, rows_per_segment: int
) -> Iterator[Iterator[np.ndarray]]:
    """Yield, for each epoch, the block-shuffled order of :func:`epoch_orders`
    cut into consecutive segments of ``rows_per_segment`` positions (the last
    may be shorter). The same permutations, drawn lazily: an epoch holds at
    most one segment and one block of the order in memory, not ``8·n`` bytes."""
    rng = np.random.default_rng(seed)

    def one_epoch() -> Iterator[np.ndarray]:
        buffer = np.empty(min(n, rows_per_segment), dtype=np.int64)
        filled = 0
        for rows in _block_orders(rng, n, block):
            at = 0
            while at < rows.shape[0]:
                take = min(rows.shape[0] - at, buffer.shape[0] - filled)
                buffer[filled : filled + take] = rows[at : at + take]
                filled += take
                at += take
                if filled == buffer.shape[0]:
                    yield buffer
                    filled = 0
        if filled:
            yield buffer[:filled]

    while True:
        yield one_epoch()
