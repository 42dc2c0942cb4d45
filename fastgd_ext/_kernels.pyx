# Mirrors fastgd/kernels/numba_kernels.py: same names, same loop order; the operation order is fastgd/reference.py's.
"""Cython kernels of fastgd (the backend used when numba is missing).

One source for float32 and float64 (the fused type ``floating``). As in the
numba kernels, per-sample terms are computed in the data dtype and added to
float64 accumulators. Exact mode sums samples one after another, as the
reference does. The default mode splits the samples into fixed blocks of
``BLOCK`` rows, sums each block in order (in parallel across blocks with
OpenMP when the build has it) and adds the block sums in block order, so the
result is the same for any number of threads and equal to numba's. Inputs of
at most one block take the exact path in both modes.

Compiler directives (boundscheck, wraparound, cdivision) are set once in
setup.py. The build passes ``-ffp-contract=off``: no FMA contraction.
"""

cimport cython
from cython cimport floating
from cython.parallel cimport prange
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport isfinite
from libc.stdint cimport int64_t

import numpy as np

cdef enum:
    _BLOCK = 4096  # numba_kernels.BLOCK: the same blocks give the same bits
    # run_epochs takes the GIL to check for Ctrl-C after epochs that together
    # read about this many values (a few milliseconds of work), not after each
    # epoch: tiny problems run many thousands of epochs per millisecond.
    _SIGNAL_CHECK_WORK = 1 << 22

BLOCK = _BLOCK

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fastgd_openmp(void) { return 1; }
    static int fastgd_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int fastgd_openmp(void) { return 0; }
    static int fastgd_max_threads(void) { return 1; }
    #endif
    """
    int fastgd_openmp() noexcept nogil
    int fastgd_max_threads() noexcept nogil

OPENMP = bool(fastgd_openmp())  # built with OpenMP: the prange loops run in parallel


def threads():
    """Threads the parallel loops use now (1 without OpenMP; else OMP_NUM_THREADS or the cores)."""
    return fastgd_max_threads()


cdef inline floating _predict_row(const floating[:, ::1] X, Py_ssize_t i, const floating[::1] params,
                                  Py_ssize_t d, bint fit_intercept) noexcept nogil:
    cdef floating pred = X[i, 0] * params[0]
    cdef Py_ssize_t j
    for j in range(1, d):
        pred += X[i, j] * params[j]
    if fit_intercept:
        pred += params[d]
    return pred


cdef void _accumulate(const floating[:, ::1] X, const floating[::1] y, const floating[::1] params,
                      bint fit_intercept, bint want_gradient, Py_ssize_t start, Py_ssize_t stop,
                      double* out) noexcept nogil:
    """Add ``[Σ r², Σ 2 x_j r, (Σ 2 r)]`` over rows start..stop-1 into ``out``."""
    cdef Py_ssize_t d = X.shape[1]
    cdef Py_ssize_t i, j
    cdef floating w, x, r
    cdef double cost_sum, grad_sum
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


cdef void _blocked_sums(const floating[:, ::1] X, const floating[::1] y, const floating[::1] params,
                        bint fit_intercept, bint want_gradient, double[:, ::1] partials) noexcept nogil:
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t blk, start
    for blk in prange(partials.shape[0], schedule="static"):
        start = blk * _BLOCK
        _accumulate(X, y, params, fit_intercept, want_gradient, start, min(n, start + _BLOCK),
                    &partials[blk, 0])


cdef inline Py_ssize_t _n_blocks(Py_ssize_t n, bint exact) noexcept nogil:
    """Rows of the block partials that ``_sums`` needs (0: the exact path)."""
    if exact or n <= _BLOCK:
        return 0
    return (n + _BLOCK - 1) // _BLOCK


cdef void _sums(const floating[:, ::1] X, const floating[::1] y, const floating[::1] params,
                bint fit_intercept, bint exact, bint want_gradient, double[:, ::1] partials,
                double[::1] out) noexcept nogil:
    """numba's ``sums`` into ``out``; ``partials`` has ``_n_blocks(n, exact)`` rows."""
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t width = 1 + params.shape[0]
    cdef Py_ssize_t n_blocks, blk, k
    for k in range(width):
        out[k] = 0.0
    if exact or n <= _BLOCK:
        _accumulate(X, y, params, fit_intercept, want_gradient, 0, n, &out[0])
        return
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for blk in range(n_blocks):
        for k in range(width):
            partials[blk, k] = 0.0
    _blocked_sums(X, y, params, fit_intercept, want_gradient, partials)
    for k in range(width):
        out[k] = partials[0, k]
    for blk in range(1, n_blocks):
        for k in range(width):
            out[k] += partials[blk, k]


def sums(const floating[:, ::1] X, const floating[::1] y, const floating[::1] params, bint fit_intercept,
         bint exact, bint want_gradient):
    """``[Σ r², Σ 2 x_j r, (Σ 2 r)]`` over all samples, as float64 (see fastgd.kernels)."""
    cdef Py_ssize_t width = 1 + params.shape[0]
    cdef double[::1] out = np.zeros(width)
    cdef double[:, ::1] partials = np.zeros((_n_blocks(X.shape[0], exact), width))
    with nogil:
        _sums(X, y, params, fit_intercept, exact, want_gradient, partials, out)
    return out.base


def predict(const floating[:, ::1] X, const floating[::1] params, bint fit_intercept, floating[::1] out):
    """``out[i] = X[i]·w (+ b)``."""
    cdef Py_ssize_t d = X.shape[1]
    cdef Py_ssize_t i
    with nogil:
        if X.shape[0] > _BLOCK:
            for i in prange(X.shape[0], schedule="static"):
                out[i] = _predict_row(X, i, params, d, fit_intercept)
        else:
            for i in range(X.shape[0]):
                out[i] = _predict_row(X, i, params, d, fit_intercept)


cdef void _step(floating[::1] params, const floating[::1] grad, floating[::1] velocity, int64_t[::1] steps,
                const floating[::1] hyper, bint nesterov) noexcept nogil:
    """One torch.optim.SGD step with ``hyper = [lr, momentum, 1 - dampening, weight_decay]``."""
    cdef floating lr = hyper[0]
    cdef floating momentum = hyper[1]
    cdef floating one_minus_dampening = hyper[2]
    cdef floating weight_decay = hyper[3]
    cdef bint first_step = steps[0] == 0
    cdef floating g
    cdef Py_ssize_t j
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


cdef void _batch_steps(const floating[:, ::1] X, const floating[::1] y, floating[::1] params,
                       floating[::1] grad, floating[::1] velocity, int64_t[::1] steps,
                       const floating[::1] hyper, bint nesterov, bint fit_intercept, Py_ssize_t batch_size,
                       const int64_t[::1] order, double[::1] acc) noexcept nogil:
    """One epoch of mini-batch steps over consecutive slices of ``order``."""
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t d = X.shape[1]
    cdef bint natural = order.shape[0] == 0
    cdef Py_ssize_t start, stop, k, i, j, count
    cdef floating r
    start = 0
    while start < n:  # numba's ``for start in range(0, n, batch_size)``
        stop = min(n, start + batch_size)
        for j in range(acc.shape[0]):
            acc[j] = 0.0
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
        start += batch_size


cdef Py_ssize_t _run_epochs(const floating[:, ::1] X, const floating[::1] y, floating[::1] params,
                            floating[::1] grad, floating[::1] velocity, int64_t[::1] steps,
                            floating[::1] previous, const floating[::1] hyper, bint nesterov,
                            bint fit_intercept, bint exact, bint full_batch, Py_ssize_t batch_size,
                            const int64_t[::1] order, double[::1] costs, double[::1] acc,
                            double[::1] totals, double[:, ::1] partials) except -1 nogil:
    """numba's ``run_epochs`` with its work arrays ``acc``, ``totals``, ``partials`` handed in.

    Unlike numba's, it also checks for signals between epochs, so Ctrl-C stops
    a long call with ``previous`` at the last finite epoch (the engine turns
    the KeyboardInterrupt into FitInterrupted).
    """
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t p = params.shape[0]
    cdef Py_ssize_t e, j
    cdef Py_ssize_t work = 0
    for e in range(costs.shape[0]):
        if full_batch:
            _step(params, grad, velocity, steps, hyper, nesterov)
            _sums(X, y, params, fit_intercept, exact, True, partials, totals)
            for j in range(p):
                grad[j] = totals[1 + j] / n
        else:
            _batch_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept,
                         batch_size, order, acc)
            _sums(X, y, params, fit_intercept, exact, False, partials, totals)
        costs[e] = totals[0] / n
        if not isfinite(costs[e]):
            return e
        for j in range(p):
            previous[j] = params[j]
        work += 2 * n * X.shape[1]
        if work >= _SIGNAL_CHECK_WORK and e + 1 < costs.shape[0]:
            work = 0
            with gil:
                PyErr_CheckSignals()  # raises KeyboardInterrupt here after Ctrl-C
    return costs.shape[0]


def run_epochs(const floating[:, ::1] X, const floating[::1] y, floating[::1] params, floating[::1] grad,
               floating[::1] velocity, int64_t[::1] steps, floating[::1] previous, const floating[::1] hyper,
               bint nesterov, bint fit_intercept, bint exact, bint full_batch, Py_ssize_t batch_size,
               const int64_t[::1] order, double[::1] costs):
    """Run ``len(costs)`` epochs in place; the number of epochs with a finite cost (see fastgd.kernels)."""
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t p = params.shape[0]
    cdef double[::1] acc = np.zeros(p)
    cdef double[::1] totals = np.zeros(1 + p)
    cdef double[:, ::1] partials = np.zeros((_n_blocks(n, exact), 1 + p))
    cdef Py_ssize_t finite
    if not full_batch and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if order.shape[0] != 0 and order.shape[0] != n:
        raise ValueError(f"order must be empty or have {n} entries, got {order.shape[0]}")
    with nogil:
        finite = _run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept,
                             exact, full_batch, batch_size, order, costs, acc, totals, partials)
    return finite
