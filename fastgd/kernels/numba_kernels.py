"""Numba kernels (the primary backend). Mirrored by fastgd_ext/_kernels.pyx and
fastgd/kernels/cuda_kernels.py; the operation order is fastgd/reference.py's.

Exact mode sums samples one after another, as the reference does. The default
mode splits the samples into fixed blocks of ``BLOCK``, sums each block in
order (in parallel across blocks) and adds the block sums in block order, so
the result is the same for any number of threads. Inputs of at most one block
take the exact path in both modes.
"""

from __future__ import annotations


import numpy as np

from fastgd.kernels._numba_jit import jit, prange

NAME = "numba"
BLOCK = 4096


@jit
def _predict_row(X, i, params, d, fit_intercept):
    pred = X[i, 0] * params[0]
    for j in range(1, d):
        pred += X[i, j] * params[j]
    if fit_intercept:
        pred += params[d]
    return pred


@jit
def _accumulate(X, y, params, fit_intercept, want_gradient, start, stop, out):
    """Add ``[Σ r², Σ 2 x_j r, (Σ 2 r)]`` over rows start..stop-1 into ``out``."""
    d = X.shape[1]
    if d == 1 and not fit_intercept:
        # The tutorial's model: keep the running sums in registers.
        w = params[0]
        cost_sum = out[0]
        grad_sum = out[1]
        for i in range(start, stop):
            x = X[i, 0]
            r = x * w - y[i]
            cost_sum += r * r
            if want_gradient:
                grad_sum += (x + x) * r
        out[0] = cost_sum
        out[1] = grad_sum
        return
    for i in range(start, stop):
        r = _predict_row(X, i, params, d, fit_intercept) - y[i]
        out[0] += r * r
        if want_gradient:
            for j in range(d):
                out[1 + j] += (X[i, j] + X[i, j]) * r
            if fit_intercept:
                out[1 + d] += r + r


@jit(parallel=True)
def _blocked_sums(X, y, params, fit_intercept, want_gradient, partials):
    n = X.shape[0]
    for blk in prange(partials.shape[0]):
        start = blk * BLOCK
        _accumulate(X, y, params, fit_intercept, want_gradient, start, min(n, start + BLOCK), partials[blk])


@jit
def sums(X, y, params, fit_intercept, exact, want_gradient):
    n = X.shape[0]
    width = 1 + params.shape[0]
    if exact or n <= BLOCK:
        out = np.zeros(width)
        _accumulate(X, y, params, fit_intercept, want_gradient, 0, n, out)
        return out
    n_blocks = (n + BLOCK - 1) // BLOCK
    partials = np.zeros((n_blocks, width))
    _blocked_sums(X, y, params, fit_intercept, want_gradient, partials)
    out = partials[0].copy()
    for blk in range(1, n_blocks):
        for k in range(width):
            out[k] += partials[blk, k]
    return out


@jit(parallel=True)
def _predict_parallel(X, params, fit_intercept, out):
    d = X.shape[1]
    for i in prange(X.shape[0]):
        out[i] = _predict_row(X, i, params, d, fit_intercept)


@jit
def predict(X, params, fit_intercept, out):
    if X.shape[0] > BLOCK:
        _predict_parallel(X, params, fit_intercept, out)
        return
    d = X.shape[1]
    for i in range(X.shape[0]):
        out[i] = _predict_row(X, i, params, d, fit_intercept)


@jit
def _step(params, grad, velocity, steps, hyper, nesterov):
    """One torch.optim.SGD step with ``hyper = [lr, momentum, 1 - dampening, weight_decay]``."""
    lr = hyper[0]
    momentum = hyper[1]
    one_minus_dampening = hyper[2]
    weight_decay = hyper[3]
    first_step = steps[0] == 0
    for j in range(params.shape[0]):
        g = grad[j]
        if weight_decay != 0:
            g = g + weight_decay * params[j]
        if momentum != 0:
            if first_step:
                velocity[j] = g
            else:
                velocity[j] = momentum * velocity[j] + one_minus_dampening * g
            if nesterov:
                g = g + momentum * velocity[j]
            else:
                g = velocity[j]
        params[j] = params[j] - lr * g
    steps[0] += 1


@jit
def _batch_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, batch_size, order, acc):
    """One epoch of mini-batch steps over consecutive slices of ``order``."""
    n, d = X.shape
    natural = order.shape[0] == 0
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        acc[:] = 0.0
        for k in range(start, stop):
            i = k if natural else order[k]
            r = _predict_row(X, i, params, d, fit_intercept) - y[i]
            for j in range(d):
                acc[j] += (X[i, j] + X[i, j]) * r
            if fit_intercept:
                acc[d] += r + r
        count = stop - start
        for j in range(params.shape[0]):
            grad[j] = acc[j] / count
        _step(params, grad, velocity, steps, hyper, nesterov)


@jit
def run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept, exact,
               full_batch, batch_size, order, costs):
    n = X.shape[0]
    p = params.shape[0]
    acc = np.zeros(p)
    for e in range(costs.shape[0]):
        if full_batch:
            _step(params, grad, velocity, steps, hyper, nesterov)
            totals = sums(X, y, params, fit_intercept, exact, True)
            for j in range(p):
                grad[j] = totals[1 + j] / n
        else:
            _batch_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept,
                         batch_size, order, acc)
            totals = sums(X, y, params, fit_intercept, exact, False)
        costs[e] = totals[0] / n
        if not np.isfinite(costs[e]):
            return e
        previous[:] = params
    return costs.shape[0]


def unavailable_reason():
    """None when the kernels compile and run here; else why not."""
    try:
        X = np.ones((2, 1))
        sums(X, X[:, 0], np.ones(1), False, True, True)
    except Exception as exc:  # a broken LLVM or numba install
        return f"numba failed to compile the kernels: {type(exc).__name__}: {exc}"
    return None
