"""Sparse ``X`` (SPEC §10): scipy.sparse input as canonical CSR, and which kernels run it.

Every scipy.sparse matrix or array (CSR, CSC, COO, the ``*_array`` types, and
the other formats through COO) becomes one :class:`CSR`: rows in order, the
column indices of each row strictly increasing (duplicates summed), in the
data's float dtype (float32 stays float32) and the input's index dtype
(int32 or int64). Canonical CSR input is used as it is (read-only views, no
copy; memory-mapped arrays stay mapped); CSC, COO and non-canonical CSR are
converted once. Nothing here ever forms the dense matrix.

Why the sparse kernels can skip the zeros and still give the reference's bits
on ``X.toarray()`` (float64, finite values):

* a prediction ``x·w`` adds ``0·w_j = ±0`` for each unstored ``j``. Adding a
  signed zero to a non-zero partial sum returns that sum, and ``s + t = t``
  for a zero ``s``: the sum over the stored entries in column order is the
  dense sum, except possibly the sign of an exactly zero prediction;
* a zero prediction of either sign gives the same ``r²`` and the same
  gradient terms (``2·x·r = ±0``), and a gradient sum that starts from +0.0
  is never -0.0, so adding ``±0`` to it changes nothing: skipping the
  gradient terms of unstored entries is exact too;
* so are the steps that leave a weight without gradient alone
  (``w - lr·0 = w``). Weight decay and momentum do move every weight at every
  step: exact mode takes those steps over all ``p`` parameters, O(d) per
  step (the default mode runs plain weight decay as a scale factor, O(nnz)).

``forward`` restores the dense sign of an exactly zero prediction (it is -0.0
only when every one of the dense sum's terms is -0.0; see the kernels'
``_zero_sign``). A weight that is not finite makes the dense cost NaN
(``0·inf``) even where its column is empty; the sparse cost is then NaN as
well, so a fit diverges at the same epoch with the same state.

Duplicates are summed in their stored order, as ``toarray()`` sums them.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple, Tuple

import numpy as np

# The sparse kernels of each backend (the same interface as the dense ones,
# with ``X`` a CSR; see fastgd/kernels/__init__.py).
_SPARSE_MODULES = {
    "numba": "fastgd.kernels.numba_sparse",
    "cython": "fastgd.kernels.cython_sparse",
    "numpy": "fastgd.kernels.numpy_sparse",
}
# solver="gram" on sparse X forms the dense (p + 1)² statistics: at most this
# many bytes of them (p + 1 <= 5792 parameters).
GRAM_MAX_BYTES = 1 << 28


class CSR(NamedTuple):
    """Canonical CSR rows: the form sparse ``X`` takes from validation on.

    ``data`` (nnz,) float32 or float64, ``indices`` (nnz,) int32 or int64
    (strictly increasing within each row), ``indptr`` (n + 1,) of the same
    integer dtype; all C-contiguous and read-only.
    """

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    n_features: int

    @property
    def shape(self) -> Tuple[int, int]:
        return (self.indptr.shape[0] - 1, self.n_features)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def nnz(self) -> int:
        return self.data.shape[0]

    @property
    def size(self) -> int:
        """The values a pass reads (nnz): the engine's measure of work, as ``ndarray.size`` is."""
        return self.data.shape[0]

    @property
    def ndim(self) -> int:
        return 2

    def to_scipy(self) -> Any:
        """The same rows as a ``scipy.sparse.csr_matrix`` (no copy)."""
        from scipy import sparse

        return sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape, copy=False)


def is_sparse(value: Any) -> bool:
    """A scipy.sparse matrix or array (recognised without importing scipy), or a :class:`CSR`."""
    return isinstance(value, CSR) or (
        type(value).__module__.startswith("scipy.sparse") and hasattr(value, "tocoo")
    )


def is_csr(value: Any) -> bool:
    return isinstance(value, CSR)


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


def float_dtype(dtype: np.dtype, name: str) -> np.dtype:
    if dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric (real numbers), got dtype {dtype}")
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _index_dtype(dtype: np.dtype, nnz: int) -> np.dtype:
    """int32 or int64, as the input has it; int64 when int32 cannot count ``nnz``."""
    if dtype == np.int32 and nnz <= np.iinfo(np.int32).max:
        return np.dtype(np.int32)
    return np.dtype(np.int64)


def as_csr(value: Any, name: str = "X", dtype: Any = None) -> Tuple[CSR, bool]:
    """``value`` (scipy.sparse) as canonical :class:`CSR`, and whether it was 1-D.

    A 1-D sparse array of n values is the scalar-feature model: one column.
    ``dtype`` (optional): the float dtype of ``data``; else float32 or
    float64 as the input has it (integers become float64). The data must be
    finite and the matrix non-empty; errors name ``name``.
    """
    from fastgd._checks import check_finite

    if isinstance(value, CSR):  # checked before: only the dtype may change
        data = value.data if dtype is None else _readonly(value.data.astype(dtype, copy=False))
        return value._replace(data=data), False
    scalar_model = getattr(value, "ndim", 2) == 1
    if scalar_model:
        value = value.reshape((value.shape[0], 1))
    n, d = value.shape
    if n == 0:
        raise ValueError(f"{name} is empty: it needs at least one sample")
    if d == 0:
        raise ValueError(f"{name} has no features (shape ({n}, 0))")
    fmt = getattr(value, "format", None)
    target = float_dtype(np.dtype(value.dtype), name) if dtype is None else np.dtype(dtype)
    if fmt == "csr" and _canonical(value):
        index_dtype = _index_dtype(value.indices.dtype, value.nnz)
        data = np.ascontiguousarray(value.data).astype(target, copy=False)
        indices = np.ascontiguousarray(value.indices).astype(index_dtype, copy=False)
        indptr = np.ascontiguousarray(value.indptr).astype(index_dtype, copy=False)
        _check_structure(indices, indptr, n, d, data.shape[0], name)
    else:
        data, indices, indptr = _canonical_arrays(value, target)
    check_finite(data, name)
    return CSR(_readonly(data), _readonly(indices), _readonly(indptr), int(d)), scalar_model


def _canonical(value: Any) -> bool:
    """Rows with strictly increasing column indices (no duplicates)."""
    try:
        return bool(value.has_canonical_format)
    except Exception:  # a malformed indptr: let the conversion report it
        return False


def _check_structure(indices: np.ndarray, indptr: np.ndarray, n: int, d: int, nnz: int, name: str) -> None:
    """Index bounds: the kernels read ``w[indices[k]]`` unchecked. The rows of
    canonical CSR increase strictly, so their first and last entries bound
    them: O(n) reads, not O(nnz)."""
    if indptr.shape[0] != n + 1 or indptr[0] != 0 or indptr[-1] != nnz or indices.shape[0] != nnz:
        raise ValueError(f"{name} is not a valid CSR matrix: indptr does not match its {nnz} stored values")
    if nnz:
        starts, stops = indptr[:-1], indptr[1:]
        filled = stops > starts
        if int(indices[starts[filled]].min()) < 0 or int(indices[stops[filled] - 1].max()) >= d:
            raise ValueError(f"{name} is not a valid CSR matrix: a column index is outside 0..{d - 1}")


def _canonical_arrays(value: Any, target: np.dtype) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``data, indices, indptr`` of any sparse ``value``: entries sorted by
    (row, column), duplicates summed in their stored order (``toarray``'s)."""
    coo = value.tocoo(copy=False)
    n, d = coo.shape
    rows = np.asarray(coo.row)
    cols = np.asarray(coo.col)
    index_source = value.indices.dtype if hasattr(value, "indices") else cols.dtype
    values = np.asarray(coo.data).astype(target, copy=False)
    if rows.size and (rows.min() < 0 or rows.max() >= n or cols.min() < 0 or cols.max() >= d):
        raise ValueError("X is not a valid sparse matrix: an index is outside its shape")
    order = np.lexsort((cols, rows))  # stable: duplicates keep their stored order
    rows, cols, values = rows[order], cols[order], values[order]
    if rows.size:
        new = np.empty(rows.shape[0], dtype=bool)
        new[0] = True
        np.not_equal(rows[1:], rows[:-1], out=new[1:])
        new[1:] |= cols[1:] != cols[:-1]
    else:
        new = np.zeros(0, dtype=bool)
    firsts = np.flatnonzero(new)
    data = values[firsts].copy()
    if firsts.shape[0] != values.shape[0]:
        # Each duplicate adds into its entry, rank by rank: ((a + b) + c) ...
        group = np.cumsum(new) - 1
        rank = np.arange(values.shape[0]) - firsts[group]
        for k in range(1, int(rank.max()) + 1):
            at = rank == k
            data[group[at]] += values[at]
    nnz = data.shape[0]
    index_dtype = _index_dtype(np.dtype(index_source), nnz)
    indices = cols[firsts].astype(index_dtype)
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(np.bincount(rows[firsts], minlength=n), out=indptr[1:])
    return data, indices, indptr


def kernel_module_for(kernel_module: Any) -> Any:
    """The sparse kernels of the backend ``kernels`` (a dense kernel module).

    cuda has none: a ValueError naming ``X``.
    """
    module = _SPARSE_MODULES.get(kernel_module.NAME)
    if module is None:
        raise ValueError(
            f"X is sparse: the {kernel_module.NAME} backend does not train on sparse X; use a CPU backend "
            f"(numba, cython or numpy), or pass X.toarray()"
        )
    sparse_kernels = importlib.import_module(module)
    reason = getattr(sparse_kernels, "unavailable_reason", lambda: None)()
    if reason is not None:
        raise RuntimeError(
            f"X is sparse and the {kernel_module.NAME} backend's sparse kernels cannot run: {reason}"
        )
    return sparse_kernels


def gram_statistics(X: CSR, y: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``M = [A | y]ᵀ[A | y]`` (float64) of sparse ``X`` for solver="gram".

    The statistics are dense, ``(p + 1)²`` values: refused by name above
    :data:`GRAM_MAX_BYTES` (solver="auto" always streams sparse X).
    """
    from scipy import sparse

    n, d = X.shape
    p = d + int(fit_intercept)
    need = (p + 1) ** 2 * 8
    if need > GRAM_MAX_BYTES:
        raise ValueError(
            f"solver='gram' on sparse X forms the dense ({p + 1})² statistics ({need / 2**30:.1f} GiB) for "
            f"d={d}: use solver='stream' (solver='auto' streams sparse X)"
        )
    columns = [X.to_scipy().astype(np.float64)]
    if fit_intercept:
        columns.append(sparse.csr_matrix(np.ones((n, 1))))
    columns.append(sparse.csr_matrix(np.asarray(y, dtype=np.float64).reshape(n, 1)))
    A = sparse.hstack(columns, format="csr")
    return np.asarray((A.T @ A).toarray(), dtype=np.float64)


def squared_row_norms(X: CSR) -> np.ndarray:
    """``|x_i|²`` of every row (float64), for the "auto" learning rate."""
    squares = np.square(X.data, dtype=np.float64)
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    return np.bincount(rows, weights=squares, minlength=X.shape[0]).astype(np.float64, copy=False)


def take_rows(X: CSR, rows: np.ndarray) -> CSR:
    """The rows ``rows`` of ``X`` (in that order), as a new CSR."""
    starts = X.indptr[rows].astype(np.int64)
    counts = (X.indptr[rows + 1] - X.indptr[rows]).astype(np.int64)
    indptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    take = np.repeat(starts - indptr[:-1], counts) + np.arange(int(indptr[-1]))
    return CSR(
        _readonly(X.data[take]),
        _readonly(X.indices[take]),
        _readonly(indptr.astype(X.indptr.dtype)),
        X.n_features,
    )


def scale_rows(X: CSR, scale: np.ndarray) -> CSR:
    """Row ``i`` times ``scale[i]`` (in X's dtype): sample weights as scaled rows."""
    factors = np.repeat(np.asarray(scale, dtype=X.dtype), np.diff(X.indptr))
    return CSR(_readonly(X.data * factors), X.indices, X.indptr, X.n_features)


def with_column(X: CSR, column: np.ndarray) -> CSR:
    """``X`` with ``column`` appended as its last feature (every row gains one entry)."""
    n = X.shape[0]
    counts = np.diff(X.indptr).astype(np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts + 1, out=indptr[1:])
    index_dtype = _index_dtype(X.indices.dtype, int(indptr[-1]))
    last = indptr[1:] - 1
    keep = np.ones(int(indptr[-1]), dtype=bool)
    keep[last] = False
    data = np.empty(int(indptr[-1]), dtype=X.dtype)
    indices = np.empty(int(indptr[-1]), dtype=index_dtype)
    data[keep] = X.data
    indices[keep] = X.indices
    data[last] = np.asarray(column, dtype=X.dtype)
    indices[last] = X.n_features
    return CSR(_readonly(data), _readonly(indices), _readonly(indptr.astype(index_dtype)), X.n_features + 1)


def reference_rows(X: CSR) -> list:
    """The rows as ``(columns, values)`` pairs of Python lists, for fastgd.reference."""
    indptr = X.indptr.tolist()
    columns = X.indices.tolist()
    values = X.data.tolist()
    return [
        (columns[indptr[i] : indptr[i + 1]], values[indptr[i] : indptr[i + 1]]) for i in range(X.shape[0])
    ]
