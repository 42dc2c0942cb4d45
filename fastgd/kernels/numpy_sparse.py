"""Numpy kernels over CSR rows (the numpy backend's sparse path): simple and
exact, the reference's order on ``X.toarray()`` in both modes.

A prediction is scipy's CSR mat-vec (``csr_matvec`` adds each row's stored
products in order to a running sum from zero, in the training dtype: the
reference's dense sum without its zero terms, fastgd/_sparse.py); each
gradient sum is ``np.bincount`` over the stored entries in sample order
(float64, one term after another); every step is numpy_kernels' ``_step``
over all ``p`` parameters. So the results equal the numba and Cython kernels'
exact mode, bit for bit, at the cost of O(d) per step and a Python loop over
the batches.
"""

from __future__ import annotations

import numpy as np

from fastgd.kernels import BLOCK  # noqa: F401  (the interface: segments are cut at its multiples)
from fastgd.kernels.numpy_kernels import _average, _loss_terms, _quiet, _step, epoch_functions

NAME = "numpy"


def _csr(X, data=None):
    from scipy import sparse

    values = X.data if data is None else data
    return sparse.csr_matrix((values, X.indices, X.indptr), shape=X.shape, copy=False)


def _rows(X, positions):
    """The CSR rows at ``positions`` (a slice of rows, or an array of row numbers), in that order."""
    from scipy import sparse

    if isinstance(positions, slice):
        start, stop = positions.start, positions.stop
        a, b = int(X.indptr[start]), int(X.indptr[stop])
        indptr = np.asarray(X.indptr[start : stop + 1]) - a
        return sparse.csr_matrix((X.data[a:b], X.indices[a:b], indptr), shape=(stop - start, X.shape[1]))
    return _csr(X)[positions]


def _running_sum(values):
    """``0.0 + v_0 + v_1 + ...`` in float64, strictly left to right (the reference's sum)."""
    return np.cumsum(np.concatenate([np.zeros(1), values.astype(np.float64)]))[-1]


def _terms(A, y, params, d, fit_intercept, want_gradient, loss_spec):
    """Per-sample ``ℓ(r)`` (float64) and, with ``want_gradient``, the gradient sums
    over the rows of ``A`` in row order (float64, ``p`` of them)."""
    pred = A @ params[:d]
    if fit_intercept:
        pred = pred + params[d]
    r = pred - y
    if int(loss_spec[0]) == 0:
        value, slope = r * r, r
    else:
        value, slope = _loss_terms(r, loss_spec)
    if not want_gradient:
        return value.astype(np.float64), None
    counts = np.diff(A.indptr)
    per_entry = np.repeat(slope, counts)
    x = A.data
    terms = (x + x) * per_entry if int(loss_spec[0]) == 0 else x * per_entry
    grad = np.zeros(params.shape[0])
    grad[:d] = np.bincount(A.indices, weights=terms.astype(np.float64), minlength=d)
    if fit_intercept:
        column = (slope + slope) if int(loss_spec[0]) == 0 else slope
        grad[d] = _running_sum(column)
    return value.astype(np.float64), grad


@_quiet
def sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec):
    """``[Σ ℓ(r), Σ ℓ'(r)·x_j, (Σ ℓ'(r))]`` over all rows of the CSR ``X``, float64 (see fastgd.kernels)."""
    d = X.shape[1]
    value, grad = _terms(_csr(X), y, params, d, fit_intercept, want_gradient, loss_spec)
    out = np.zeros(1 + params.shape[0])
    out[0] = _running_sum(value)
    if grad is not None:
        out[1:] = grad
    if not np.isfinite(params).all():
        out[0] = np.nan  # the dense cost is NaN (0·inf), even where a weight's column is empty
    return out


@_quiet
def predict(X, params, fit_intercept, out):
    """``out[i] = X[i]·w (+ b)``, with the dense sum's sign of a zero (see fastgd.kernels)."""
    d = X.shape[1]
    pred = _csr(X) @ params[:d]
    if fit_intercept:
        pred = pred + params[d]
    out[:] = pred
    zeros = np.flatnonzero(out == 0)
    if zeros.size:
        # -0.0 exactly when every term of the dense sum is -0.0 (numba_sparse's _zero_sign).
        negatives = int(np.signbit(params[:d]).sum())
        for i in zeros.tolist():
            a, b = int(X.indptr[i]), int(X.indptr[i + 1])
            w = params[X.indices[a:b]]
            terms = (X.data[a:b] + out.dtype.type(0.0)) * w
            negative = (bool(np.all((terms == 0) & np.signbit(terms)))
                        and negatives - int(np.signbit(w).sum()) == d - (b - a)
                        and (not fit_intercept or bool(np.signbit(params[d]))))
            out[i] = -out.dtype.type(0.0) if negative else out.dtype.type(0.0)


def _steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, batch_size, order, loss_spec,
           decayed, average, averaged):
    """The SGD steps of one pass over ``order`` (all rows when it is empty)."""
    d = X.shape[1]
    positions = order.shape[0] if order.shape[0] else X.shape[0]
    for start in range(0, positions, batch_size):
        stop = min(positions, start + batch_size)
        if order.shape[0]:
            rows = order[start:stop]
            A, yb = _rows(X, rows), y[rows]
        else:
            A, yb = _rows(X, slice(start, stop)), y[start:stop]
        grad[:] = _terms(A, yb, params, d, fit_intercept, True, loss_spec)[1] / A.shape[0]
        _step(params, grad, velocity, steps, hyper, nesterov, decayed)
        _average(params, steps, average, averaged)


run_epochs, run_steps = epoch_functions(sums, _steps)
