"""Numba kernels over CSR rows (the numba backend's sparse path). Mirrored by
fastgd_ext/_sparse_kernels.pyx; the operation order is fastgd/reference.py's on
``X.toarray()`` (fastgd/_sparse.py says why skipping the zeros keeps its bits).

The same interface as fastgd/kernels/numba_kernels.py (fastgd/kernels/__init__.py),
with ``X`` a :class:`fastgd._sparse.CSR`; the optimizer's step, averaging and
loss terms are that module's own ``_step``, ``_average`` and ``_loss_terms``.
Every pass runs on one thread, rows in their visiting order: the results do
not depend on the thread count.

A step costs O(nnz of its rows) when it leaves the weights without gradient
alone: no momentum, no averaging and no weight decay — or weight decay in the
default mode, where the weights are held as ``w = scale · v``: a step
multiplies ``scale`` by ``1 − lr·weight_decay`` and moves only the ``v_j`` of
the stored features, by ``−(lr / scale)·g_j`` (``scale`` in float64; ``v`` is
scaled back into ``w`` when ``scale`` falls below ``SCALE_FLOOR`` and at the
end of every pass). Exact mode takes weight-decay steps over all ``p``
parameters (the reference's ``w − lr·(g + wd·w)`` cannot be had from a scale
factor bit for bit), as do momentum (every buffer entry moves) and averaging
(the mean of every weight), in both modes: O(nnz + d) per step.

The default mode differs from exact mode in these places only, each a fixed
order that depends on the data's shape, never on threads or timing:

* the lazy weight decay above;
* each row's prediction is four partial sums (stored entry ``start + k`` of
  the row goes to lane ``k % 4``, each lane from +0.0 in order) added as
  ``(l0 + l1) + (l2 + l3)`` (``_dot_lanes``: four independent chains
  instead of one);
* a per-sample step moves ``w_j`` by ``−(lr·ℓ')·x_j`` (mse: ``ℓ' = r + r``),
  one product per stored value, instead of the reference's
  ``−lr·(ℓ'·x_j + 0.0)`` (with ``2·x_j·r``);
* the full-data sums (the cost, and full-batch GD's gradient) of more than
  ``BLOCK`` rows are ``GRAD_CHUNKS`` consecutive ranges of rows, each summed
  alone row after row (in parallel from ``PARALLEL_MIN`` stored values on)
  and added in range order; one range when their partial gradients would
  exceed ``CHUNK_VALUES`` values.

Measured on the shared 2-core machine (d = 10^5, 10^7 stored values, float64):
a per-sample pass 17 ms (23 before the last item), the cost pass 8 ms on two
threads (15 on one), reading the arrays once 12-14 ms.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from fastgd.kernels import FULL_BATCH
from fastgd.kernels._numba_jit import jit, prange  # first: a missing numba is reported as such
from fastgd.kernels.numba_kernels import (
    BLOCK,
    _average,
    _loss_terms,
    _parallel_guard,
    _row,
    _step,
    thread_setup,
)

NAME = "numba"
# run_epochs releases the GIL and stops when stop[0] is set (checked every
# BLOCK samples): the engine may run long calls in its helper thread.
RELEASES_GIL = True
__all__ = ["NAME", "BLOCK", "RELEASES_GIL", "thread_setup", "sums", "predict", "run_epochs", "run_steps"]

# The default mode's weight decay folds ``scale`` back into the weights below
# this (float64 ``v = w / scale`` stays far from overflow; float32's range is
# narrower): amortised, a fold costs O(d) every ln(1/floor) / (lr·wd) steps.
SCALE_FLOOR = {np.dtype(np.float64): 1e-100, np.dtype(np.float32): 1e-12}
# The row-ranges of the default mode's full-data sums: GRAD_CHUNKS of them (one
# when the gradient's partial sums, CHUNK_VALUES values in all, would not fit),
# each summed alone (in parallel from PARALLEL_MIN stored values on) and added
# in order: the bits depend on n and p only, never on the thread count.
GRAD_CHUNKS = 8
CHUNK_VALUES = 1 << 23
# Stored values from which the chunks run in parallel (speed only, never the bits).
PARALLEL_MIN = 1 << 18
# Indices are read as unsigned: numba then drops its negative-index
# wrap-around test, a third of a gather's cost (cost pass, d = 10^5, 10^7
# stored values: 23 -> 16 ms in order, 12 ms in lanes).
_NO_LOCK = contextlib.nullcontext()
_ONE = np.uintp(1)
_TWO = np.uintp(2)
_THREE = np.uintp(3)


@jit
def _dot(data, indices, start, stop, params, zero):
    """``Σ data[k]·params[indices[k]]`` over ``start..stop-1`` in order, from +0.0
    (the reference's dense sum without its zero terms)."""
    pred = zero
    for k in range(start, stop):
        u = np.uintp(k)
        pred += data[u] * params[np.uintp(indices[u])]
    return pred


@jit
def _dot_lanes(data, indices, start, stop, params, zero):
    """Default-mode ``_dot``: entry ``start + k`` goes to lane ``k % 4`` (each lane
    in order from +0.0), then ``(l0 + l1) + (l2 + l3)``."""
    l0 = zero
    l1 = zero
    l2 = zero
    l3 = zero
    k = np.intp(start)
    end = np.intp(stop)
    while k + 4 <= end:
        u = np.uintp(k)
        l0 += data[u] * params[np.uintp(indices[u])]
        l1 += data[u + _ONE] * params[np.uintp(indices[u + _ONE])]
        l2 += data[u + _TWO] * params[np.uintp(indices[u + _TWO])]
        l3 += data[u + _THREE] * params[np.uintp(indices[u + _THREE])]
        k += 4
    # The last (stop - start) % 4 entries go to lanes 0, 1, 2 in order.
    u = np.uintp(k)
    if k < end:
        l0 += data[u] * params[np.uintp(indices[u])]
    if k + 1 < end:
        l1 += data[u + _ONE] * params[np.uintp(indices[u + _ONE])]
    if k + 2 < end:
        l2 += data[u + _TWO] * params[np.uintp(indices[u + _TWO])]
    return (l0 + l1) + (l2 + l3)


@jit
def _predict_row(data, indices, indptr, i, params, d, fit_intercept, lanes, zero):
    """Row ``i``'s ``x·w (+ b)``: ``_dot`` (exact) or ``_dot_lanes`` (default mode)."""
    start = indptr[i]
    stop = indptr[i + 1]
    if lanes:
        pred = _dot_lanes(data, indices, start, stop, params, zero)
    else:
        pred = _dot(data, indices, start, stop, params, zero)
    if fit_intercept:
        pred += params[d]
    return pred


@jit
def _zero_sign(data, indices, start, stop, params, d, fit_intercept, negatives, zero):
    """The dense sum's sign for a row whose prediction is zero: -0.0 exactly when
    every term of the dense ``x·w (+ b)`` is -0.0 (a sum is -0.0 only if all
    its terms are), i.e. every stored ``x_j·w_j`` is -0.0, every unstored
    ``w_j`` has its sign bit set (``+0·w_j``), and so has ``b``.
    ``negatives``: how many of ``w_0 .. w_{d-1}`` have their sign bit set."""
    stored_negative = 0
    for k in range(start, stop):
        w = params[indices[k]]
        if math.copysign(1.0, w) < 0:
            stored_negative += 1
        term = (data[k] + zero) * w  # a stored -0.0 is +0.0 in toarray()
        if term != 0 or math.copysign(1.0, term) > 0:
            return zero
    if negatives - stored_negative != d - (stop - start):
        return zero
    if fit_intercept and math.copysign(1.0, params[d]) > 0:
        return zero
    return -zero


@jit
def _predict_rows(data, indices, indptr, params, d, fit_intercept, out, zero):
    negatives = 0
    for j in range(d):
        if math.copysign(1.0, params[j]) < 0:
            negatives += 1
    for i in range(indptr.shape[0] - 1):
        pred = _predict_row(data, indices, indptr, i, params, d, fit_intercept, False, zero)
        if pred == 0:
            pred = _zero_sign(data, indices, indptr[i], indptr[i + 1], params, d, fit_intercept, negatives, zero)
        out[i] = pred


@jit
def _accumulate(data, indices, indptr, y, params, d, fit_intercept, want_gradient, lanes, loss_spec, first, last,
                out):
    """Add ``[Σ ℓ(r), Σ ℓ'(r)·x_j, (Σ ℓ'(r))]`` over rows first..last-1 into ``out``,
    row after row (mse: ``r²``, ``2·x_j·r``, ``2·r``), only the stored ``x_j``."""
    zero = loss_spec[2] - loss_spec[2]
    mse = int(loss_spec[0]) == 0
    cost_sum = out[0]
    for i in range(first, last):
        r = _predict_row(data, indices, indptr, i, params, d, fit_intercept, lanes, zero) - y[i]
        if mse:
            cost_sum += r * r
            if want_gradient:
                for k in range(indptr[i], indptr[i + 1]):
                    u = np.uintp(k)
                    x = data[u]
                    out[np.uintp(indices[u]) + _ONE] += (x + x) * r
                if fit_intercept:
                    out[1 + d] += r + r
        else:
            value, slope = _loss_terms(r, loss_spec)
            cost_sum += value
            if want_gradient:
                for k in range(indptr[i], indptr[i + 1]):
                    u = np.uintp(k)
                    out[np.uintp(indices[u]) + _ONE] += data[u] * slope
                if fit_intercept:
                    out[1 + d] += slope
    out[0] = cost_sum


@jit
def _finite(params):
    for j in range(params.shape[0]):
        if not np.isfinite(params[j]):
            return False
    return True


@jit
def _n_chunks(n, p, exact, want_gradient):
    """The row-ranges of the full-data sums: one (the reference's order) in
    exact mode and up to ``BLOCK`` rows; else ``GRAD_CHUNKS`` while their
    partial gradients fit in ``CHUNK_VALUES`` values."""
    if exact or n <= BLOCK:
        return 1
    if want_gradient and GRAD_CHUNKS * (1 + p) > CHUNK_VALUES:
        return 1
    return GRAD_CHUNKS


@jit
def _chunk(data, indices, indptr, y, params, d, fit_intercept, want_gradient, loss_spec, c, partials):
    n = indptr.shape[0] - 1
    chunks = partials.shape[0]
    _accumulate(data, indices, indptr, y, params, d, fit_intercept, want_gradient, True, loss_spec,
                c * n // chunks, (c + 1) * n // chunks, partials[c])


@jit(parallel=True)
def _chunks_parallel(data, indices, indptr, y, params, d, fit_intercept, want_gradient, loss_spec, partials):
    for c in prange(partials.shape[0]):
        _chunk(data, indices, indptr, y, params, d, fit_intercept, want_gradient, loss_spec, c, partials)


@jit
def _sums(data, indices, indptr, y, params, d, fit_intercept, exact, want_gradient, loss_spec):
    n = indptr.shape[0] - 1
    p = params.shape[0]
    chunks = _n_chunks(n, p, exact, want_gradient)
    if chunks == 1:
        out = np.zeros(1 + p)
        _accumulate(data, indices, indptr, y, params, d, fit_intercept, want_gradient, not exact, loss_spec, 0, n,
                    out)
    else:
        partials = np.zeros((chunks, 1 + p if want_gradient else 1))
        if data.shape[0] >= PARALLEL_MIN:
            _chunks_parallel(data, indices, indptr, y, params, d, fit_intercept, want_gradient, loss_spec, partials)
        else:
            for c in range(chunks):
                _chunk(data, indices, indptr, y, params, d, fit_intercept, want_gradient, loss_spec, c, partials)
        out = np.zeros(1 + p)
        for c in range(chunks):
            for k in range(partials.shape[1]):
                out[k] += partials[c, k]
    if not _finite(params):
        out[0] = np.nan  # the dense cost is NaN (0·inf), even where a weight's column is empty
    return out


@jit
def _positions(indptr, order):
    if order.shape[0] == 0:
        return indptr.shape[0] - 1
    return order.shape[0]


@jit
def _unscale(params, d, scale):
    """``w = scale · v`` back into ``params`` (the default mode's weight decay)."""
    if scale != 1.0:
        for j in range(d):
            params[j] = params[j] * scale


@jit
def _sample_steps(data, indices, indptr, y, params, steps, hyper, fit_intercept, exact, order, stop, loss_spec,
                  decayed, d, scaled, floor, holder):
    """Per-sample steps that touch only the sample's stored weights (and ``b``):
    as the dense ``_sgd_range``, ``w_j ← w_j − lr·(ℓ'·x_j + 0.0)`` (mse:
    ``(x_j + x_j)·r``); with ``scaled``, the default mode's weight decay."""
    n = _positions(indptr, order)
    lr = hyper[0]
    weight_decay = hyper[3]
    zero = loss_spec[2] - loss_spec[2]
    mse = int(loss_spec[0]) == 0
    lanes = not exact
    shrink = 1.0 - np.float64(lr) * np.float64(weight_decay)
    scale = 1.0
    holder[0] = 1.0  # scale in the training dtype
    for at in range(n):
        if at % BLOCK == 0 and stop[0] != 0:
            _unscale(params, d, holder[0])
            return False
        i = _row(order, at)
        start = indptr[i]
        end = indptr[i + 1]
        if lanes:
            pred = _dot_lanes(data, indices, start, end, params, zero)
        else:
            pred = _dot(data, indices, start, end, params, zero)
        if scaled:
            pred = pred * holder[0]
        if fit_intercept:
            pred += params[d]
        r = pred - y[i]
        if mse:
            q = r
        else:
            value, q = _loss_terms(r, loss_spec)
        if scaled:
            scale *= shrink
            holder[0] = scale
            step = lr / holder[0]
        else:
            step = lr
        if exact:
            for k in range(start, end):
                u = np.uintp(k)
                x = data[u]
                j = np.uintp(indices[u])
                if mse:
                    params[j] = params[j] - step * ((x + x) * q + zero)
                else:
                    params[j] = params[j] - step * (x * q + zero)
        else:
            c = step * (q + q) if mse else step * q  # one product per stored value
            for k in range(start, end):
                u = np.uintp(k)
                j = np.uintp(indices[u])
                params[j] = params[j] - c * data[u]
        if fit_intercept:
            if mse:
                g = (q + q) + zero
            else:
                g = q + zero
            if weight_decay != 0 and d < decayed:
                g = g + weight_decay * params[d]
            params[d] = params[d] - lr * g
        if scaled and scale < floor:
            _unscale(params, d, holder[0])
            scale = 1.0
            holder[0] = 1.0
    _unscale(params, d, holder[0])
    steps[0] += n
    return True


@jit
def _batch_steps(data, indices, indptr, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact,
                 batch_size, order, stop, loss_spec, decayed, average, averaged, d, lazy, scaled, floor, holder):
    """Steps over consecutive slices of ``order``: each batch's residuals at the
    parameters of its start, then its gradient sums in batch order over the
    stored entries only (``acc``, with the features it touched listed in
    ``touched``), then the step: over the touched weights (``lazy``; with
    ``scaled``, the default mode's weight decay) or over all ``p``."""
    n = _positions(indptr, order)
    lr = hyper[0]
    weight_decay = hyper[3]
    zero = loss_spec[2] - loss_spec[2]
    mse = int(loss_spec[0]) == 0
    lanes = not exact
    shrink = 1.0 - np.float64(lr) * np.float64(weight_decay)
    scale = 1.0
    holder[0] = 1.0
    acc = np.zeros(d)
    mark = np.full(d, -1, dtype=np.int64)
    touched = np.empty(d, dtype=np.int64)
    terms = np.empty(min(batch_size, n), dtype=params.dtype)
    unchecked = 0
    batch = 0
    for first in range(0, n, batch_size):
        last = min(n, first + batch_size)
        count = last - first
        for t in range(count):
            i = _row(order, first + t)
            if lanes:
                pred = _dot_lanes(data, indices, indptr[i], indptr[i + 1], params, zero)
            else:
                pred = _dot(data, indices, indptr[i], indptr[i + 1], params, zero)
            if scaled:
                pred = pred * holder[0]
            if fit_intercept:
                pred += params[d]
            r = pred - y[i]
            if mse:
                terms[t] = r
            else:
                value, slope = _loss_terms(r, loss_spec)
                terms[t] = slope
        n_touched = 0
        acc_b = 0.0
        for t in range(count):
            i = _row(order, first + t)
            q = terms[t]
            for k in range(indptr[i], indptr[i + 1]):
                u = np.uintp(k)
                j = np.uintp(indices[u])
                if mark[j] != batch:
                    mark[j] = batch
                    touched[n_touched] = j
                    n_touched += 1
                x = data[u]
                if mse:
                    acc[j] += (x + x) * q
                else:
                    acc[j] += x * q
            if fit_intercept:
                if mse:
                    acc_b += q + q
                else:
                    acc_b += q
        if lazy:
            if scaled:
                scale *= shrink
                holder[0] = scale
                step = lr / holder[0]
            else:
                step = lr
            for u in range(n_touched):
                j = touched[u]
                grad[j] = acc[j] / count
                acc[j] = 0.0
                params[j] = params[j] - step * grad[j]
            if fit_intercept:
                grad[d] = acc_b / count
                g = grad[d]
                if weight_decay != 0 and d < decayed:
                    g = g + weight_decay * params[d]
                params[d] = params[d] - lr * g
            steps[0] += 1
            if scaled and scale < floor:
                _unscale(params, d, holder[0])
                scale = 1.0
                holder[0] = 1.0
        else:
            for j in range(d):
                grad[j] = acc[j] / count
            if fit_intercept:
                grad[d] = acc_b / count
            for u in range(n_touched):
                acc[touched[u]] = 0.0
            _step(params, grad, velocity, steps, hyper, nesterov, decayed)
            _average(params, steps, average, averaged)
        batch += 1
        unchecked += count
        if unchecked >= BLOCK:
            unchecked = 0
            if stop[0] != 0:
                _unscale(params, d, holder[0])
                return False
    _unscale(params, d, holder[0])
    return True


@jit
def _steps(data, indices, indptr, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact,
           batch_size, order, stop, loss_spec, decayed, average, averaged, d, floor):
    """The SGD steps of one pass over ``order``; False when ``stop[0]`` ended it early."""
    weight_decay = hyper[3]
    lazy = hyper[1] == 0 and averaged[2] == 0 and (
        weight_decay == 0 or (not exact and 1.0 - np.float64(hyper[0]) * np.float64(weight_decay) > 0))
    scaled = lazy and weight_decay != 0
    holder = np.ones(1, dtype=params.dtype)
    if lazy and batch_size == 1:
        return _sample_steps(data, indices, indptr, y, params, steps, hyper, fit_intercept, exact, order, stop,
                             loss_spec, decayed, d, scaled, floor, holder)
    return _batch_steps(data, indices, indptr, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept,
                        exact, batch_size, order, stop, loss_spec, decayed, average, averaged, d, lazy, scaled,
                        floor, holder)


@jit(nogil=True)
def _run_epochs(data, indices, indptr, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept,
                exact, path, batch_size, order, costs, stop, rates, loss_spec, decayed, average, averaged,
                d, floor):
    n = indptr.shape[0] - 1
    p = params.shape[0]
    for e in range(costs.shape[0]):
        if stop[0] != 0:
            return e
        hyper[0] = rates[e]
        if path == FULL_BATCH:
            _step(params, grad, velocity, steps, hyper, nesterov, decayed)
            _average(params, steps, average, averaged)
            totals = _sums(data, indices, indptr, y, params, d, fit_intercept, exact, True, loss_spec)
            for j in range(p):
                grad[j] = totals[1 + j] / n
        else:
            if not _steps(data, indices, indptr, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept,
                          exact, batch_size, order, stop, loss_spec, decayed, average, averaged, d, floor):
                return e
            totals = _sums(data, indices, indptr, y, params, d, fit_intercept, exact, False, loss_spec)
        costs[e] = totals[0] / n
        if not np.isfinite(costs[e]):
            return e
        previous[:] = params
        average[1, :] = average[0, :]
        averaged[1] = averaged[0]
    return costs.shape[0]


@jit(nogil=True)
def _run_steps(data, indices, indptr, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact,
               batch_size, order, stop, loss_spec, decayed, average, averaged, d, floor):
    return _steps(data, indices, indptr, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact,
                  batch_size, order, stop, loss_spec, decayed, average, averaged, d, floor)


def _guard(X):
    """numba_kernels' lock for its "workqueue" threading layer, when a parallel region may run."""
    return _parallel_guard() if X.nnz >= PARALLEL_MIN else _NO_LOCK


def sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec):
    """``[Σ ℓ(r), Σ ℓ'(r)·x_j, (Σ ℓ'(r))]`` over all rows of the CSR ``X``, float64 (see fastgd.kernels)."""
    with _guard(X):
        return _sums(X.data, X.indices, X.indptr, y, params, X.n_features, fit_intercept, exact, want_gradient,
                     loss_spec)


def predict(X, params, fit_intercept, out):
    """``out[i] = X[i]·w (+ b)``, with the dense sum's sign of a zero (see fastgd.kernels)."""
    zero = out.dtype.type(0.0)
    _predict_rows(X.data, X.indices, X.indptr, params, X.n_features, fit_intercept, out, zero)


def run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept, exact,
               path, batch_size, order, costs, stop, rates, loss_spec, decayed, average, averaged):
    """Run ``len(costs)`` epochs in place; the epochs with a finite cost (see fastgd.kernels)."""
    with _guard(X):
        return _run_epochs(X.data, X.indices, X.indptr, y, params, grad, velocity, steps, previous, hyper, nesterov,
                           fit_intercept, exact, path, batch_size, order, costs, stop, rates, loss_spec,
                           decayed, average, averaged, X.n_features, SCALE_FLOOR[params.dtype])


def run_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact, path, batch_size, order,
              stop, loss_spec, decayed, average, averaged):
    """The SGD steps of one pass over ``order``; False when ``stop`` ended it (see fastgd.kernels)."""
    return _run_steps(X.data, X.indices, X.indptr, y, params, grad, velocity, steps, hyper, nesterov,
                      fit_intercept, exact, batch_size, order, stop, loss_spec, decayed, average, averaged,
                      X.n_features, SCALE_FLOOR[params.dtype])
