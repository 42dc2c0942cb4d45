"""Data sets: the tutorial's three points, and synthetic linear data.

:func:`make_linear` draws its samples in fixed blocks of rows, each from its
own random stream keyed on ``(seed, block index)``. Blocks are independent, so
they are drawn in parallel by a pool of threads (numpy's generators release
the GIL) and the bytes are the same for any number of threads and any order
in which the blocks finish.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np

from fastgd import _checks

__all__ = ["tutorial", "make_linear", "make_sparse_linear"]

# Elements of X per block: a block has max(1, _BLOCK_ELEMENTS // n_features)
# rows. Part of the definition of the data (each block has its own stream):
# changing it changes the samples of a given seed.
_BLOCK_ELEMENTS = 1 << 20

# Spawn keys of the streams below SeedSequence(seed): one for the default
# coefficients, one per block for X, one per block for the noise. X and noise
# have separate streams so that the first rows of make_linear(n) are the first
# rows of make_linear(m) for m > n, whatever n.
_COEF_KEY, _X_KEY, _NOISE_KEY = 0, 1, 2
# make_sparse_linear's streams: one per block for the stored entries (their
# positions, then their values), one per block for the noise.
_SPARSE_KEY, _SPARSE_NOISE_KEY = 3, 4
# Expected stored values per block of make_sparse_linear: a block has
# max(1, _SPARSE_BLOCK_VALUES // ceil(density * n_features)) rows. Part of the
# definition of the data, as _BLOCK_ELEMENTS is.
_SPARSE_BLOCK_VALUES = 1 << 18


def tutorial() -> Tuple[List[float], List[float]]:
    """The tutorial's data: ``x = [1, 2, 3]``, ``y = 2x``.

    Examples
    --------
    >>> from fastgd import datasets
    >>> datasets.tutorial()
    ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    """
    return [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]


def make_linear(
    n_samples: int,
    n_features: int = 1,
    *,
    coef: Any = None,
    intercept: float = 0.0,
    noise: float = 0.0,
    seed: Optional[int] = 0,
    dtype: Any = "float64",
    out: Union[None, str, "os.PathLike[str]"] = None,
) -> Tuple[np.ndarray, np.ndarray, Union[float, np.ndarray]]:
    """Synthetic linear data ``y = X·coef + intercept + noise·ε``.

    ``X`` and ``ε`` are standard normal. The samples are drawn in parallel in
    fixed blocks of rows, each block from its own stream keyed on
    ``(seed, block)``: the result is identical for any number of threads.

    Parameters
    ----------
    n_samples : int
        Number of samples, >= 1.
    n_features : int
        Number of features, >= 1. With 1 feature ``X`` is 1-D, the tutorial's
        scalar-feature model (``fit`` then returns ``w`` as a float).
    coef : float or array-like of shape (n_features,), optional
        True weights; default: standard normal, drawn from ``seed``.
    intercept : float
        True intercept.
    noise : float
        Standard deviation of the Gaussian noise added to ``y`` (>= 0).
    seed : int or None
        Seed (>= 0) of every stream; None draws fresh entropy.
    dtype : {"float64", "float32"}
        dtype of ``X`` and ``y``. float32 features are drawn as float32 (not
        rounded from float64); ``y`` is computed in float64 and then rounded.
    out : path, optional
        A folder (created if missing). ``X.npy`` and ``y.npy`` are written
        into it block by block, without ever holding the whole arrays in
        memory, and the arrays returned are read-only memory maps of them.
        Existing files of those names are replaced.

    Returns
    -------
    X : ndarray of shape (n_samples,) if n_features == 1, else (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    coef : float if n_features == 1, else ndarray of shape (n_features,)
        The true weights (float64), in the form ``fit`` returns ``w``.

    Examples
    --------
    >>> from fastgd import datasets
    >>> X, y, coef = datasets.make_linear(1000, 3, intercept=0.5, seed=1)
    >>> X.shape, y.shape, coef.shape
    ((1000, 3), (1000,), (3,))
    >>> import numpy as np
    >>> bool(np.allclose(y, X @ coef + 0.5))
    True
    >>> X, y, coef = datasets.make_linear(10, coef=2.0)
    >>> X.shape, coef
    ((10,), 2.0)
    """
    return _make_linear(
        n_samples,
        n_features,
        coef=coef,
        intercept=intercept,
        noise=noise,
        seed=seed,
        dtype=dtype,
        out=out,
    )


def default_threads() -> int:
    """Threads make_linear uses: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def block_rows(n_features: int) -> int:
    """Rows per block (a function of ``n_features`` alone)."""
    return max(1, _BLOCK_ELEMENTS // n_features)


def _make_linear(
    n_samples: Any,
    n_features: Any = 1,
    *,
    coef: Any = None,
    intercept: Any = 0.0,
    noise: Any = 0.0,
    seed: Any = 0,
    dtype: Any = "float64",
    out: Any = None,
    threads: Optional[int] = None,
    progress: Optional[Callable[[int, int], Any]] = None,
) -> Tuple[np.ndarray, np.ndarray, Union[float, np.ndarray]]:
    """:func:`make_linear` with the thread count and a progress hook.

    ``progress(done_rows, n_samples)`` is called (from the calling thread)
    after each block.
    """
    n = _checks.check_int(n_samples, "n_samples", 1)
    d = _checks.check_int(n_features, "n_features", 1)
    dt = _dtype(dtype)
    intercept = _checks.finite_scalar(intercept, "intercept")
    noise = _checks.finite_scalar(noise, "noise")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    root = _seed_sequence(seed)
    weights = _coefficients(coef, d, root)
    if threads is None:
        threads = default_threads()
    elif isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path (str or os.PathLike), got {type(out).__name__}")

    shape = (n,) if d == 1 else (n, d)
    rows = block_rows(d)
    starts = range(0, n, rows)
    blocks = [(b, start, min(n, start + rows)) for b, start in enumerate(starts)]
    params = _Params(root, weights, intercept, noise, dt, d)

    if out is None:
        X = np.empty(shape, dtype=dt)
        y = np.empty(n, dtype=dt)
        X2 = X.reshape(n, d)

        def fill(block: Tuple[int, int, int]) -> int:
            b, start, stop = block
            _fill_block(params, b, X2[start:stop], y[start:stop])
            return stop - start

        _run(fill, blocks, threads, n, progress)
        coef_out = float(weights[0]) if d == 1 else weights
        return X, y, coef_out

    folder = os.fspath(out)
    os.makedirs(folder, exist_ok=True)
    writers = [_NpyWriter(folder, "X.npy", shape, dt), _NpyWriter(folder, "y.npy", (n,), dt)]
    # One pair of block buffers per thread, reused: a fresh buffer per block
    # would pay the page faults of a new allocation every time.
    buffers = threading.local()
    try:

        def write(block: Tuple[int, int, int]) -> int:
            b, start, stop = block
            if not hasattr(buffers, "X"):
                buffers.X = np.empty((rows, d), dtype=dt)
                buffers.y = np.empty(rows, dtype=dt)
            Xb, yb = buffers.X[: stop - start], buffers.y[: stop - start]
            _fill_block(params, b, Xb, yb)
            writers[0].write(Xb, start * d)
            writers[1].write(yb, start)
            return stop - start

        _run(write, blocks, threads, n, progress)
        for writer in writers:
            writer.commit()
    finally:
        for writer in writers:
            writer.discard()
    X = np.load(os.path.join(folder, "X.npy"), mmap_mode="r")
    y = np.load(os.path.join(folder, "y.npy"), mmap_mode="r")
    coef_out = float(weights[0]) if d == 1 else weights
    return X, y, coef_out


def make_sparse_linear(
    n_samples: int,
    n_features: int,
    density: float = 0.01,
    *,
    coef: Any = None,
    intercept: float = 0.0,
    noise: float = 0.0,
    seed: Optional[int] = 0,
    dtype: Any = "float64",
    index_dtype: Any = "int32",
    out: Union[None, str, "os.PathLike[str]"] = None,
) -> Tuple[Any, np.ndarray, np.ndarray]:
    """Synthetic sparse linear data ``y = X·coef + intercept + noise·ε``, as CSR.

    Each entry of ``X`` is stored with probability ``density``, independently
    (the gaps between stored entries, row after row, are geometric), with a
    standard normal value; ``ε`` is standard normal. The rows are drawn in
    parallel in fixed blocks, each from its own stream keyed on
    ``(seed, block)``: the result is identical for any number of threads.
    The dense matrix is never formed.

    Parameters
    ----------
    n_samples, n_features : int
        The shape of ``X``, both >= 1 (``n_samples · n_features < 2**63``).
    density : float
        The probability that an entry is stored, in [0, 1].
    coef : array-like of shape (n_features,), optional
        True weights; default: standard normal, drawn from ``seed``.
    intercept, noise : float
        True intercept; standard deviation of the noise added to ``y`` (>= 0).
    seed : int or None
        Seed (>= 0) of every stream; None draws fresh entropy.
    dtype : {"float64", "float32"}
        dtype of the stored values and of ``y`` (computed in float64, then rounded).
    index_dtype : {"int32", "int64"}
        dtype of ``X.indices`` and ``X.indptr``.
    out : path, optional
        A folder (created if missing). ``data.npy``, ``indices.npy`` and
        ``indptr.npy`` (the CSR arrays), ``shape.npy`` (``[n_samples,
        n_features]``) and ``y.npy`` are written into it block by block, and
        ``X`` and ``y`` are returned memory-mapped from them: fastgd trains on
        them out of core. Reopen them with::

            arrays = [np.load(f"{out}/{k}.npy", mmap_mode="r") for k in ("data", "indices", "indptr")]
            X = scipy.sparse.csr_matrix(tuple(arrays), shape=tuple(np.load(f"{out}/shape.npy")))

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_samples, n_features)
        Canonical: sorted column indices, no duplicates.
    y : ndarray of shape (n_samples,)
    coef : ndarray of shape (n_features,)
        The true weights (float64).

    Examples
    --------
    >>> from fastgd import datasets
    >>> X, y, coef = datasets.make_sparse_linear(1000, 50, density=0.1, seed=1)
    >>> X.shape, X.format, X.indices.dtype.name
    ((1000, 50), 'csr', 'int32')
    >>> 0.09 < X.nnz / (1000 * 50) < 0.11
    True
    >>> import numpy as np
    >>> bool(np.allclose(y, X @ coef))
    True
    """
    return _make_sparse_linear(
        n_samples,
        n_features,
        density,
        coef=coef,
        intercept=intercept,
        noise=noise,
        seed=seed,
        dtype=dtype,
        index_dtype=index_dtype,
        out=out,
    )


def _make_sparse_linear(
    n_samples: Any,
    n_features: Any,
    density: Any = 0.01,
    *,
    coef: Any = None,
    intercept: Any = 0.0,
    noise: Any = 0.0,
    seed: Any = 0,
    dtype: Any = "float64",
    index_dtype: Any = "int32",
    out: Any = None,
    threads: Optional[int] = None,
) -> Tuple[Any, np.ndarray, np.ndarray]:
    """:func:`make_sparse_linear` with the thread count."""
    try:
        import scipy.sparse  # noqa: F401  (X is a scipy.sparse matrix)
    except ImportError:
        raise ImportError("make_sparse_linear needs scipy: pip install scipy") from None
    n = _checks.check_int(n_samples, "n_samples", 1)
    d = _checks.check_int(n_features, "n_features", 1)
    if n * d >= 2**63:
        raise ValueError(f"n_samples * n_features must be below 2**63, got {n} * {d}")
    density = _checks.finite_scalar(density, "density")
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be in [0, 1], got {density}")
    dt = _dtype(dtype)
    idx = np.dtype(index_dtype) if isinstance(index_dtype, (str, type, np.dtype)) else None
    if idx not in (np.int32, np.int64):
        raise ValueError(f"index_dtype must be 'int32' or 'int64', got {index_dtype!r}")
    intercept = _checks.finite_scalar(intercept, "intercept")
    noise = _checks.finite_scalar(noise, "noise")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path (str or os.PathLike), got {type(out).__name__}")
    root = _seed_sequence(seed)
    weights = _coefficients(coef, d, root)
    if threads is None:
        threads = default_threads()
    per_row = max(1, math.ceil(density * d))
    rows = max(1, _SPARSE_BLOCK_VALUES // per_row)
    blocks = [(b, start, min(n, start + rows)) for b, start in enumerate(range(0, n, rows))]
    spec = _SparseSpec(root, weights, intercept, noise, dt, d, density)

    # Pass 1: the stored positions of each block give the row counts (indptr);
    # pass 2 draws them again, with the values, into their final places.
    counts = np.zeros(n, dtype=np.int64)

    def count(block: Tuple[int, int, int]) -> int:
        b, start, stop = block
        columns_rows = spec.positions(spec.stream(b), start, stop)[1]
        counts[start:stop] = np.bincount(columns_rows, minlength=stop - start)
        return stop - start

    _run(count, blocks, threads, n, None)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    if idx == np.int32 and max(nnz, d) > np.iinfo(np.int32).max:
        raise ValueError(f"index_dtype='int32' cannot index {nnz} stored values of {d} columns: use 'int64'")
    indptr = indptr.astype(idx, copy=False)

    if out is None:
        data = np.empty(nnz, dtype=dt)
        indices = np.empty(nnz, dtype=idx)
        y = np.empty(n, dtype=dt)

        def fill(block: Tuple[int, int, int]) -> int:
            b, start, stop = block
            a, z = int(indptr[start]), int(indptr[stop])
            spec.fill(b, start, stop, data[a:z], indices[a:z], y[start:stop])
            return stop - start

        _run(fill, blocks, threads, n, None)
        return _csr_matrix(data, indices, indptr, (n, d)), y, weights

    folder = os.fspath(out)
    os.makedirs(folder, exist_ok=True)
    writers = {
        name: _NpyWriter(folder, f"{name}.npy", shape, kind)
        for name, shape, kind in (
            ("data", (nnz,), dt),
            ("indices", (nnz,), idx),
            ("indptr", (n + 1,), idx),
            ("y", (n,), dt),
            ("shape", (2,), np.dtype(np.int64)),
        )
    }
    try:

        def write(block: Tuple[int, int, int]) -> int:
            b, start, stop = block
            a, z = int(indptr[start]), int(indptr[stop])
            data, indices, y = (
                np.empty(z - a, dtype=dt),
                np.empty(z - a, dtype=idx),
                np.empty(stop - start, dtype=dt),
            )
            spec.fill(b, start, stop, data, indices, y)
            writers["data"].write(data, a)
            writers["indices"].write(indices, a)
            writers["y"].write(y, start)
            return stop - start

        _run(write, blocks, threads, n, None)
        writers["indptr"].write(indptr, 0)
        writers["shape"].write(np.array([n, d], dtype=np.int64), 0)
        for writer in writers.values():
            writer.commit()
    finally:
        for writer in writers.values():
            writer.discard()
    arrays = [
        np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r") for name in ("data", "indices", "indptr")
    ]
    X = _csr_matrix(arrays[0], arrays[1], arrays[2], (n, d))
    return X, np.load(os.path.join(folder, "y.npy"), mmap_mode="r"), weights


def _csr_matrix(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: Tuple[int, int]) -> Any:
    """A csr_matrix on these very arrays: scipy's constructor would narrow int64
    indices that fit in int32 (a copy, of memory-mapped ones too)."""
    from scipy import sparse

    X = sparse.csr_matrix(shape, dtype=data.dtype)
    X.data, X.indices, X.indptr = data, indices, indptr
    X.has_canonical_format = True
    return X


class _SparseSpec:
    """How make_sparse_linear draws a block of rows."""

    def __init__(self, root, coef, intercept, noise, dtype, d, density):
        self.root, self.coef, self.intercept, self.noise = root, coef, intercept, noise
        self.dtype, self.d, self.density = dtype, d, density

    def stream(self, block: int) -> np.random.Generator:
        return _stream(self.root, _SPARSE_KEY, block)

    def positions(self, rng: np.random.Generator, start: int, stop: int) -> Tuple[np.ndarray, np.ndarray]:
        """The stored columns of rows start..stop-1, row after row, and the row (from 0) of each.

        A Bernoulli(density) process over the block's ``(stop - start)·d``
        entries in row-major order: the gaps between stored entries are
        geometric, drawn in chunks until they pass the block's end.
        """
        size = (stop - start) * self.d
        if self.density == 0.0:
            flat = np.zeros(0, dtype=np.int64)
        else:
            expected = size * self.density
            chunk = int(expected + 6.0 * math.sqrt(expected) + 16)
            pieces = []
            at = -1
            while at < size:
                gaps = rng.geometric(self.density, size=chunk)
                steps = np.cumsum(gaps)
                steps += at
                pieces.append(steps)
                at = int(steps[-1])
            flat = np.concatenate(pieces)
            flat = flat[: np.searchsorted(flat, size)]
        return flat % self.d, flat // self.d

    def fill(
        self, block: int, start: int, stop: int, data: np.ndarray, indices: np.ndarray, y: np.ndarray
    ) -> None:
        rng = self.stream(block)
        columns, row_of = self.positions(rng, start, stop)
        indices[:] = columns
        rng.standard_normal(out=data, dtype=self.dtype)
        # y in float64, each row's products added in column order (bincount
        # adds its weights one after another: no dependence on threads).
        products = data.astype(np.float64) * self.coef[columns]
        acc = np.bincount(row_of, weights=products, minlength=stop - start).astype(np.float64, copy=False)
        if self.intercept != 0.0:
            acc += self.intercept
        if self.noise != 0.0:
            acc += self.noise * _stream(self.root, _SPARSE_NOISE_KEY, block).standard_normal(stop - start)
        y[:] = acc


class _Params:
    __slots__ = ("root", "coef", "intercept", "noise", "dtype", "d")

    def __init__(self, root, coef, intercept, noise, dtype, d):
        self.root, self.coef, self.intercept = root, coef, intercept
        self.noise, self.dtype, self.d = noise, dtype, d


def _stream(root: np.random.SeedSequence, *key: int) -> np.random.Generator:
    child = np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + key)
    return np.random.Generator(np.random.PCG64(child))


_scratch = threading.local()


def _buffers(rows: int) -> Tuple[np.ndarray, np.ndarray]:
    """Two float64 work arrays of ``rows`` for this thread, reused from block to
    block: fresh temporaries would pay their page faults again every block."""
    held = getattr(_scratch, "arrays", None)
    if held is None or held[0].shape[0] < rows:
        held = _scratch.arrays = (np.empty(rows), np.empty(rows))
    return held[0][:rows], held[1][:rows]


def _fill_block(p: _Params, block: int, X: np.ndarray, y: np.ndarray) -> None:
    """Draw block ``block`` into ``X`` (rows, d) and ``y`` (rows,), both C-contiguous."""
    _stream(p.root, _X_KEY, block).standard_normal(out=X, dtype=p.dtype)
    # y in float64, features added left to right (no BLAS: its sums can
    # depend on the thread count).
    acc, term = _buffers(X.shape[0])
    np.multiply(X[:, 0], p.coef[0], out=acc, dtype=np.float64)
    for j in range(1, p.d):
        np.multiply(X[:, j], p.coef[j], out=term, dtype=np.float64)
        acc += term
    if p.intercept != 0.0:
        acc += p.intercept
    if p.noise != 0.0:
        _stream(p.root, _NOISE_KEY, block).standard_normal(out=term)
        term *= p.noise
        acc += term
    y[:] = acc


def _run(work, blocks, threads, n, progress) -> None:
    done = 0
    if threads == 1 or len(blocks) == 1:
        try:
            for block in blocks:
                done += work(block)
                if progress is not None:
                    progress(done, n)
        finally:
            _scratch.__dict__.pop("arrays", None)  # pool threads drop theirs as they end
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        # At most 2 blocks per thread in flight: bounded memory for the writer.
        window = 2 * threads
        pending = []
        it = iter(blocks)
        for block in it:
            pending.append(pool.submit(work, block))
            if len(pending) >= window:
                done += pending.pop(0).result()
                if progress is not None:
                    progress(done, n)
        for future in pending:
            done += future.result()
            if progress is not None:
                progress(done, n)


class _NpyWriter:
    """A ``.npy`` file written by offset from several threads, then renamed into place.

    The header comes from ``np.lib.format.open_memmap``; the data is written
    with ``os.pwrite`` (no memory map: written pages never count against this
    process's memory). The file is built under a temporary name and renamed
    over ``name`` at the end, so an existing file that someone has mapped is
    never truncated under them.
    """

    def __init__(self, folder: str, name: str, shape: Tuple[int, ...], dtype: np.dtype) -> None:
        self.path = os.path.join(folder, name)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        header = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=dtype, shape=shape)
        self.offset = header.offset
        del header
        self.fd: Optional[int] = os.open(self.tmp, os.O_WRONLY)
        self.itemsize = dtype.itemsize

    def write(self, block: np.ndarray, start_element: int) -> None:
        data = memoryview(np.ascontiguousarray(block)).cast("B")  # type: ignore[arg-type]
        position = self.offset + start_element * self.itemsize
        while len(data):
            written = os.pwrite(self.fd, data, position)
            data = data[written:]
            position += written

    def commit(self) -> None:
        os.close(self.fd)
        self.fd = None
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.path)
        self.tmp = None

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            try:
                os.remove(self.tmp)
            except FileNotFoundError:
                pass
            self.tmp = None


def _dtype(value: Any) -> np.dtype:
    try:
        dt = np.dtype(value)
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {value!r}") from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dt}")
    return dt


def _seed_sequence(seed: Any) -> np.random.SeedSequence:
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer or None, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.SeedSequence(int(seed))


def _coefficients(coef: Any, d: int, root: np.random.SeedSequence) -> np.ndarray:
    if coef is None:
        return _stream(root, _COEF_KEY).standard_normal(d)
    try:
        arr = np.asarray(coef, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"coef must be a number or an array of numbers: {exc}") from None
    if arr.ndim == 0:
        if d != 1:
            raise ValueError(f"coef must have shape ({d},) for n_features={d}, got a scalar")
        arr = arr.reshape(1)
    if arr.shape != (d,):
        raise ValueError(f"coef must have shape ({d},) for n_features={d}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("coef contains NaN or infinity")
    return arr.copy()
