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

# Rows per block of the squared norms: a memory-mapped X larger than memory
# is read once, in pieces, never as one float64 temporary of n norms.
_BLOCK_ROWS = 1 << 16


def auto_lr(X: Any, intercept_column: bool, full_batch: bool, weight_decay: Any) -> Any:
    """The "auto" learning rate for training on ``X``.

    Parameters
    ----------
    X : ndarray of shape (n,) or (n, d)
        The training matrix (1-D: one feature); memory-mapped arrays are read
        in blocks.
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
    rows = X.reshape(X.shape[0], -1)
    if rows.shape[0] <= _BLOCK_ROWS:
        norms = _squared_norms(rows, intercept_column)
        scale = float(norms.mean() if full_batch else norms.max())
    else:
        scale = _blocked_scale(rows, intercept_column, full_batch)
    curvature = 2.0 * scale + float(weight_decay)
    if not np.isfinite(curvature):
        raise ValueError(
            "lr='auto': the squared norms of X's rows overflow float64 (X's values are too "
            "large, above about 1e154): rescale X (e.g. sklearn's StandardScaler) or pass lr"
        )
    return 1.0 / curvature if curvature > 0 else 1.0  # all-zero data: every step is zero


def _squared_norms(rows: np.ndarray, intercept_column: bool) -> np.ndarray:
    with np.errstate(over="ignore"):  # an overflow is reported by auto_lr, by name
        return np.einsum("ij,ij->i", rows, rows, dtype=np.float64) + float(intercept_column)


def _blocked_scale(rows: np.ndarray, intercept_column: bool, full_batch: bool) -> float:
    """Mean (or max) of the squared norms, one block of rows at a time."""
    total, largest = 0.0, 0.0
    for start in range(0, rows.shape[0], _BLOCK_ROWS):
        norms = _squared_norms(rows[start:start + _BLOCK_ROWS], intercept_column)
        total += float(norms.sum())
        largest = max(largest, float(norms.max()))
    return total / rows.shape[0] if full_batch else largest
