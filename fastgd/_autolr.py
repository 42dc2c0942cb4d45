"""The "auto" learning rate: a step that cannot diverge on the data it is given.

Pure numpy, so that both ``GDRegressor(lr="auto")`` (which needs
scikit-learn) and ``fastgd train --lr auto`` (which must not) use the same
rule. See GDRegressor's ``lr`` for the derivation::

    full-batch GD:  1 / (2 * mean_i |x~_i|^2 + weight_decay)
    (mini-)batches: 1 / (2 * max_i  |x~_i|^2 + weight_decay)

where ``x~_i`` is sample ``i`` with a 1 appended for the intercept.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from fastgd import _sparse

# Rows per pass of the squared norms: a memory-mapped X larger than memory
# is read once, in pieces, never as one float64 temporary of n norms.
_ROWS_AT_ONCE = 1 << 16
# Squares per cumsum call of the dense norms (an 8 MiB float64 temporary).
_CUMSUM_VALUES = 1 << 20


def auto_lr(X: Any, intercept_column: bool, full_batch: bool, weight_decay: Any) -> Any:
    """The "auto" learning rate for training on ``X``.

    Parameters
    ----------
    X : ndarray of shape (n,) or (n, d), or sparse
        The training matrix (1-D: one feature); memory-mapped arrays are read
        in passes of rows; scipy.sparse matrices (or a ``fastgd._sparse.CSR``) by
        their stored values.
    intercept_column : bool
        Count the intercept as a feature of constant 1.
    full_batch : bool
        Full-batch GD (the mean squared norm bounds the curvature), else
        batches (the largest squared norm does).
    weight_decay : float
        Added to the curvature.

    Returns
    -------
    float, or the string "auto" when ``weight_decay`` is not a real number
    (so that :func:`fastgd.fit` rejects it with its own message).
    """
    if isinstance(weight_decay, (bool, np.bool_)) or not isinstance(weight_decay, numbers.Real):
        return "auto"
    rows = _sparse.as_csr(X, "X")[0] if _sparse.is_sparse(X) else X.reshape(X.shape[0], -1)
    if rows.shape[0] <= _ROWS_AT_ONCE:
        norms = _squared_norms(rows, intercept_column)
        scale = float(norms.mean() if full_batch else norms.max())
    else:
        scale = _scale_in_passes(rows, intercept_column, full_batch)
    return _rate(scale, weight_decay)


def _rate(scale: float, weight_decay: Any) -> float:
    """``1 / (2 * scale + weight_decay)`` (1.0 for all-zero data), or a named overflow."""
    curvature = 2.0 * scale + float(weight_decay)
    if not np.isfinite(curvature):
        raise ValueError(
            "lr='auto': the squared norms of X's rows overflow float64 (X's values are too "
            "large, above about 1e154): rescale X (e.g. sklearn's StandardScaler) or pass lr"
        )
    return 1.0 / curvature if curvature > 0 else 1.0  # all-zero data: every step is zero


def _squared_norms(rows: Any, intercept_column: bool) -> np.ndarray:
    """``|x_i|² (+ 1)`` of each row in float64, the squares added strictly left
    to right: zeros add nothing, so sparse rows (their stored values in column
    order) give the same bits as their dense form, and so the same rate."""
    with np.errstate(over="ignore"):  # an overflow is reported by auto_lr, by name
        if _sparse.is_csr(rows):
            norms = _sparse.squared_row_norms(rows)
        else:
            norms = np.empty(rows.shape[0])
            # cumsum adds in order; a bounded temporary of _CUMSUM_VALUES squares.
            step = max(1, _CUMSUM_VALUES // max(1, rows.shape[1]))
            for start in range(0, rows.shape[0], step):
                squares = np.square(rows[start : start + step], dtype=np.float64)
                norms[start : start + step] = np.cumsum(squares, axis=1)[:, -1]
        return norms + float(intercept_column)


def _scale_in_passes(rows: Any, intercept_column: bool, full_batch: bool) -> float:
    """Mean (or max) of the squared norms, _ROWS_AT_ONCE rows at a time."""
    total, largest = 0.0, 0.0
    for start in range(0, rows.shape[0], _ROWS_AT_ONCE):
        part = (
            _sparse.take_rows(rows, np.arange(start, min(rows.shape[0], start + _ROWS_AT_ONCE)))
            if _sparse.is_csr(rows)
            else rows[start : start + _ROWS_AT_ONCE]
        )
        norms = _squared_norms(part, intercept_column)
        total += float(norms.sum())
        largest = max(largest, float(norms.max()))
    return total / rows.shape[0] if full_batch else largest
