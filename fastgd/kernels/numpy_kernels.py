"""Numpy kernels: the vectorised backend, used when neither numba nor the
Cython extension is available. Same kernel interface and the same blocks as
fastgd/kernels/numba_kernels.py. Exact mode has the reference's bits. The
default mode shares numba's block boundaries but none of its lanes (the
one-feature sums, the dot products from 8 features) nor the affine maps, so
there its bits differ from numba's (e.g. gd with d = 1, mini-batch with
d >= 8), within SPEC's 1e-9 of the reference like every backend's.

Sums over samples use ``np.cumsum``, which adds strictly left to right: the
exact mode continues one running total over all rows (the reference's order);
the default mode starts each block of ``BLOCK`` rows from zero and adds the
block totals in block order, as the numba kernels do. BLAS is avoided: a
threaded BLAS makes sums depend on the thread count.
"""

from __future__ import annotations

import functools

import numpy as np

# SGDRegressor's per-sample chain has nothing to vectorise: the reference's loop.
from fastgd._sgd_regressor_reference import sgd_regressor_epochs  # noqa: F401
from fastgd.kernels import BLOCK, FULL_BATCH

NAME = "numpy"


def _quiet(kernel):
    """Overflow is the engine's to report (as DivergenceError), not numpy's to warn about."""

    @functools.wraps(kernel)
    def wrapper(*args):
        with np.errstate(over="ignore", invalid="ignore"):
            return kernel(*args)

    return wrapper


def _predictions(X: np.ndarray, params: np.ndarray, fit_intercept: bool) -> np.ndarray:
    d = X.shape[1]
    # Features are added left to right, vectorised over samples: the reference's order.
    pred = X[:, 0] * params[0]
    for j in range(1, d):
        pred = pred + X[:, j] * params[j]
    if fit_intercept:
        pred = pred + params[d]
    return pred


def _loss_terms(r, loss_spec):
    """``(ℓ(r), ℓ'(r))`` of torch's ``HuberLoss(delta)`` (kind 1) or ``L1Loss``
    (kind 2), element-wise in the training dtype (numba's ``_loss_terms``)."""
    kind, delta, half = int(loss_spec[0]), loss_spec[1], loss_spec[2]
    size = np.abs(r)
    if kind == 1:
        inside = size < delta
        value = np.where(inside, half * (r * r), delta * (size - half * delta))
        slope = np.where(inside, r, np.where(r > 0, delta, -delta))
        return value, slope
    one = half + half
    return size, np.where(r > 0, one, np.where(r < 0, -one, r - r))


def _block_terms(X, y, params, fit_intercept, want_gradient, loss_spec):
    """Per-sample terms ``[r², 2 x_j r, (2 r)]`` (or ``[ℓ, x_j ℓ', (ℓ')]``) as columns of one array."""
    r = _predictions(X, params, fit_intercept) - y
    if int(loss_spec[0]) == 0:
        columns = [r * r]
        if want_gradient:
            columns.append((X + X) * r[:, None])
            if fit_intercept:
                columns.append(r + r)
    else:
        value, slope = _loss_terms(r, loss_spec)
        columns = [value]
        if want_gradient:
            columns.append(X * slope[:, None])
            if fit_intercept:
                columns.append(slope)
    return np.column_stack(columns).astype(np.float64, copy=False)


@_quiet
def sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec):
    n = X.shape[0]
    width = 1 + params.shape[0] if want_gradient else 1
    sequential = exact or n <= BLOCK
    total = np.zeros(1 + params.shape[0])
    for start in range(0, n, BLOCK):
        terms = _block_terms(X[start : start + BLOCK], y[start : start + BLOCK], params,
                             fit_intercept, want_gradient, loss_spec)
        if sequential:
            # The running total leads the block so that cumsum continues it in order.
            terms = np.vstack([total[:width], terms])
            total[:width] = np.cumsum(terms, axis=0)[-1]
        else:
            total[:width] += np.cumsum(terms, axis=0)[-1]
    return total


@_quiet
def predict(X, params, fit_intercept, out):
    out[:] = _predictions(X, params, fit_intercept)


def _step(params, grad, velocity, steps, hyper, nesterov, decayed):
    lr, momentum, one_minus_dampening, weight_decay = hyper
    g = grad.copy()
    if weight_decay != 0:
        g[:decayed] = g[:decayed] + weight_decay * params[:decayed]
    if momentum != 0:
        if steps[0] == 0:
            velocity[:] = g
        else:
            velocity[:] = momentum * velocity + one_minus_dampening * g
        g = g + momentum * velocity if nesterov else velocity
    params[:] = params - lr * g
    steps[0] += 1


def _average(params, steps, average, averaged):
    """torch's ``AveragedModel.update_parameters`` (numba's ``_average``)."""
    if averaged[2] == 0 or steps[0] < averaged[2]:
        return
    count = averaged[0]
    if count == 0:
        average[0] = params
    else:
        average[0] = average[0] + (params - average[0]) / (count + 1)
    averaged[0] = count + 1


def _steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, batch_size, order, loss_spec,
           decayed, average, averaged):
    """The SGD steps of one pass over ``order`` (all rows when it is empty)."""
    positions = order.shape[0] if order.shape[0] else X.shape[0]
    for start in range(0, positions, batch_size):
        if order.shape[0]:
            rows = order[start : start + batch_size]
            Xb, yb = X[rows], y[rows]
        else:
            Xb, yb = X[start : start + batch_size], y[start : start + batch_size]
        # Within a batch the reference sums in batch order: always exact here.
        totals = sums(Xb, yb, params, fit_intercept, True, True, loss_spec)
        grad[:] = totals[1:] / Xb.shape[0]
        _step(params, grad, velocity, steps, hyper, nesterov, decayed)
        _average(params, steps, average, averaged)


def epoch_functions(sums, steps):
    """``run_epochs`` and ``run_steps`` of the kernel interface over a module's
    ``sums`` and its ``_steps`` (one pass of SGD steps): numpy_sparse.py
    builds its own from the same loop."""

    @_quiet
    def run_epochs(X, y, params, grad, velocity, steps_taken, previous, hyper, nesterov, fit_intercept, exact,
                   path, batch_size, order, costs, stop, rates, loss_spec, decayed, average, averaged):
        """Run ``len(costs)`` epochs in place; the epochs with a finite cost (see fastgd.kernels)."""
        # numpy returns to Python between operations, so Ctrl-C arrives on its
        # own; ``stop`` is part of the interface (and honoured between epochs).
        n = X.shape[0]
        for e in range(costs.shape[0]):
            if stop[0] != 0:
                return e
            hyper[0] = rates[e]
            if path == FULL_BATCH:
                _step(params, grad, velocity, steps_taken, hyper, nesterov, decayed)
                _average(params, steps_taken, average, averaged)
                totals = sums(X, y, params, fit_intercept, exact, True, loss_spec)
                grad[:] = totals[1:] / n
            else:
                steps(X, y, params, grad, velocity, steps_taken, hyper, nesterov, fit_intercept, batch_size, order,
                      loss_spec, decayed, average, averaged)
                totals = sums(X, y, params, fit_intercept, exact, False, loss_spec)
            costs[e] = totals[0] / n
            if not np.isfinite(costs[e]):
                return e
            previous[:] = params
            average[1] = average[0]
            averaged[1] = averaged[0]
        return costs.shape[0]

    @_quiet
    def run_steps(X, y, params, grad, velocity, steps_taken, hyper, nesterov, fit_intercept, exact, path,
                  batch_size, order, stop, loss_spec, decayed, average, averaged):
        """The SGD steps of one pass over ``order``; True (see fastgd.kernels)."""
        steps(X, y, params, grad, velocity, steps_taken, hyper, nesterov, fit_intercept, batch_size, order,
              loss_spec, decayed, average, averaged)
        return True

    return run_epochs, run_steps


run_epochs, run_steps = epoch_functions(sums, _steps)
