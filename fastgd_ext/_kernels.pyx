# Mirrors fastgd/kernels/numba_kernels.py: same names, same loop order; the operation order is fastgd/reference.py's.
"""Cython kernels of fastgd (the backend used when numba is missing).

One source for float32 and float64 (the fused type ``floating``). As in the
numba kernels, per-sample terms are computed in the data dtype and added to
float64 accumulators. Exact mode sums samples one after another, as the
reference does. The default mode does what numba_kernels.py's docstring
describes, operation for operation (fixed blocks of ``BLOCK`` rows summed in
parallel across blocks with OpenMP when the build has it and added in block
order; ``LANES`` lanes for one feature; the affine maps of plain one-feature
SGD), so results are the same for any number of threads and equal to numba's
bit for bit. Inputs of at most one block take the exact path in both modes.

Compiler directives (boundscheck, wraparound, cdivision) are set once in
setup.py. The build passes ``-ffp-contract=off``: no FMA contraction.
"""

from cython cimport floating
from cython.parallel cimport prange
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport fabs, isfinite
from libc.stdint cimport int64_t

import numpy as np

cdef enum:
    _BLOCK = 4096  # numba_kernels.BLOCK: the same blocks give the same bits
    # run_epochs takes the GIL to check for Ctrl-C after epochs that together
    # read about this many values (a few milliseconds of work), not after each
    # epoch: tiny problems run many thousands of epochs per millisecond.
    _SIGNAL_CHECK_WORK = 1 << 22

BLOCK = _BLOCK
# The paths of fastgd/kernels/__init__.py (fastgd._backend.Plan.path): run_epochs
# and run_steps take the fit's path instead of deriving it from the options.
cdef enum:
    FULL_BATCH = 0
    PER_SAMPLE = 1
    AFFINE = 2
PATHS = {"FULL_BATCH": FULL_BATCH, "PER_SAMPLE": PER_SAMPLE, "AFFINE": AFFINE}
LANES = 8  # as in numba_kernels.py, spelled out in _accumulate_lanes and _dot_lanes
# numba_kernels.LANES_MIN_FEATURES: the default-mode blocked sums and mini-batch
# steps predict with _dot_lanes from this many features on.
cdef enum:
    _LANES_MIN_FEATURES = 8
LANES_MIN_FEATURES = _LANES_MIN_FEATURES

# The performance choices (lanes, 4-row interleave, affine maps) are numba_kernels.py's
# and justified there; this file reproduces their bits. Measured here, one thread
# each on a shared, loaded 2-core machine (medians of 3): per epoch, cython vs numba,
# gd 10^7 x 1: 10.4 vs 14.1 ms; sgd 10^6 x 1: 1.1 vs 1.4 ms; sgd 10^6 x 64: 142 vs 160 ms.

# The natural order 0..n-1 (an empty order), for the full-data sums.
cdef const int64_t[::1] _NATURAL = np.empty(0, dtype=np.int64)

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


cdef inline void _predict_rows4(const floating[:, ::1] X, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t i2,
                                Py_ssize_t i3, const floating[::1] params, Py_ssize_t d, bint fit_intercept,
                                floating* p) noexcept nogil:
    """``_predict_row`` of four rows at once into ``p[0..3]``: four independent
    chains in the reference's order, so the out-of-order core overlaps them."""
    cdef floating w = params[0]
    cdef floating p0 = X[i0, 0] * w
    cdef floating p1 = X[i1, 0] * w
    cdef floating p2 = X[i2, 0] * w
    cdef floating p3 = X[i3, 0] * w
    cdef floating b
    cdef Py_ssize_t j
    for j in range(1, d):
        w = params[j]
        p0 += X[i0, j] * w
        p1 += X[i1, j] * w
        p2 += X[i2, j] * w
        p3 += X[i3, j] * w
    if fit_intercept:
        b = params[d]
        p0 += b
        p1 += b
        p2 += b
        p3 += b
    p[0] = p0
    p[1] = p1
    p[2] = p2
    p[3] = p3


cdef inline floating _dot_lanes(const floating[:, ::1] X, Py_ssize_t i, const floating[::1] params,
                                Py_ssize_t d, bint fit_intercept, floating zero) noexcept nogil:
    """Default-mode prediction: ``LANES`` partial dot products, pairwise tree.
    ``zero`` is +0.0 in the training dtype."""
    cdef floating l0 = zero, l1 = zero, l2 = zero, l3 = zero, l4 = zero, l5 = zero, l6 = zero, l7 = zero
    cdef floating pred
    cdef Py_ssize_t j = 0
    while j + 8 <= d:
        l0 += X[i, j] * params[j]
        l1 += X[i, j + 1] * params[j + 1]
        l2 += X[i, j + 2] * params[j + 2]
        l3 += X[i, j + 3] * params[j + 3]
        l4 += X[i, j + 4] * params[j + 4]
        l5 += X[i, j + 5] * params[j + 5]
        l6 += X[i, j + 6] * params[j + 6]
        l7 += X[i, j + 7] * params[j + 7]
        j += 8
    # The last d % 8 features go to lanes 0, 1, ... in order.
    if j < d:
        l0 += X[i, j] * params[j]
    if j + 1 < d:
        l1 += X[i, j + 1] * params[j + 1]
    if j + 2 < d:
        l2 += X[i, j + 2] * params[j + 2]
    if j + 3 < d:
        l3 += X[i, j + 3] * params[j + 3]
    if j + 4 < d:
        l4 += X[i, j + 4] * params[j + 4]
    if j + 5 < d:
        l5 += X[i, j + 5] * params[j + 5]
    if j + 6 < d:
        l6 += X[i, j + 6] * params[j + 6]
    pred = ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))
    if fit_intercept:
        pred += params[d]
    return pred


cdef inline Py_ssize_t _positions(const floating[:, ::1] X, const int64_t[::1] order) noexcept nogil:
    """How many samples a pass over ``order`` visits: all rows for the natural order."""
    if order.shape[0] == 0:
        return X.shape[0]
    return order.shape[0]


cdef inline Py_ssize_t _row(const int64_t[::1] order, Py_ssize_t k) noexcept nogil:
    """The row visited at position ``k``: ``order[k]``, or ``k`` for the natural order."""
    if order.shape[0] == 0:
        return k
    return <Py_ssize_t>order[k]


cdef void _accumulate(const floating[:, ::1] X, const floating[::1] y, const floating[::1] params,
                      bint fit_intercept, bint want_gradient, const int64_t[::1] order, Py_ssize_t start,
                      Py_ssize_t stop, bint lanes, double* out) noexcept nogil:
    """Add ``[Σ r², Σ 2 x_j r, (Σ 2 r)]`` over positions start..stop-1 of ``order``
    into ``out``, sample after sample (the reference's order). ``lanes``: the
    predictions are ``_dot_lanes`` (default mode), else the reference's."""
    cdef Py_ssize_t d = X.shape[1]
    cdef Py_ssize_t i, i0, i1, i2, i3, j, k
    cdef floating w, x, r, r0, r1, r2, r3
    cdef floating zero = 0.0
    cdef floating p[4]
    cdef double cost_sum, grad_sum
    if d == 1 and not fit_intercept:
        # The tutorial's model: keep the running sums in registers.
        w = params[0]
        cost_sum = out[0]
        grad_sum = out[1]
        for k in range(start, stop):
            i = _row(order, k)
            x = X[i, 0]
            r = x * w - y[i]
            cost_sum += r * r
            if want_gradient:
                grad_sum += (x + x) * r
        out[0] = cost_sum
        out[1] = grad_sum
        return
    cost_sum = out[0]
    k = start
    # Four rows at a time: their predictions are independent; the sums still
    # take the rows one after another.
    while k + 4 <= stop:
        i0 = _row(order, k)
        i1 = _row(order, k + 1)
        i2 = _row(order, k + 2)
        i3 = _row(order, k + 3)
        if lanes:
            p[0] = _dot_lanes(X, i0, params, d, fit_intercept, zero)
            p[1] = _dot_lanes(X, i1, params, d, fit_intercept, zero)
            p[2] = _dot_lanes(X, i2, params, d, fit_intercept, zero)
            p[3] = _dot_lanes(X, i3, params, d, fit_intercept, zero)
        else:
            _predict_rows4(X, i0, i1, i2, i3, params, d, fit_intercept, p)
        r0 = p[0] - y[i0]
        r1 = p[1] - y[i1]
        r2 = p[2] - y[i2]
        r3 = p[3] - y[i3]
        cost_sum += r0 * r0
        cost_sum += r1 * r1
        cost_sum += r2 * r2
        cost_sum += r3 * r3
        if want_gradient:
            for j in range(d):
                out[1 + j] = ((((out[1 + j] + (X[i0, j] + X[i0, j]) * r0) + (X[i1, j] + X[i1, j]) * r1)
                               + (X[i2, j] + X[i2, j]) * r2) + (X[i3, j] + X[i3, j]) * r3)
            if fit_intercept:
                out[1 + d] = (((out[1 + d] + (r0 + r0)) + (r1 + r1)) + (r2 + r2)) + (r3 + r3)
        k += 4
    while k < stop:
        i = _row(order, k)
        if lanes:
            r = _dot_lanes(X, i, params, d, fit_intercept, zero) - y[i]
        else:
            r = _predict_row(X, i, params, d, fit_intercept) - y[i]
        cost_sum += r * r
        if want_gradient:
            for j in range(d):
                out[1 + j] += (X[i, j] + X[i, j]) * r
            if fit_intercept:
                out[1 + d] += r + r
        k += 1
    out[0] = cost_sum


cdef inline void _loss_terms(floating r, const floating[::1] loss_spec, floating* value,
                             floating* slope) noexcept nogil:
    """``ℓ(r)`` and ``ℓ'(r)`` of torch's ``HuberLoss(delta)`` (kind 1) or
    ``L1Loss`` (kind 2); ``loss_spec = [kind, delta, 0.5]`` (numba's ``_loss_terms``)."""
    cdef floating delta = loss_spec[1]
    cdef floating half = loss_spec[2]
    cdef floating a = fabs(r)
    cdef floating one
    if <int>loss_spec[0] == 1:
        if a < delta:
            value[0] = half * (r * r)
            slope[0] = r
        else:
            value[0] = delta * (a - half * delta)
            slope[0] = delta if r > 0 else -delta
        return
    one = half + half
    value[0] = a
    if r > 0:
        slope[0] = one
    elif r < 0:
        slope[0] = -one
    else:
        slope[0] = r - r


cdef void _accumulate_loss(const floating[:, ::1] X, const floating[::1] y, const floating[::1] params,
                           bint fit_intercept, bint want_gradient, const int64_t[::1] order, Py_ssize_t start,
                           Py_ssize_t stop, bint lanes, const floating[::1] loss_spec,
                           double* out) noexcept nogil:
    """``_accumulate`` for the Huber and L1 losses (numba's ``_accumulate_loss``)."""
    cdef Py_ssize_t d = X.shape[1]
    cdef Py_ssize_t i, j, k
    cdef floating r, value, slope
    cdef floating zero = 0.0
    for k in range(start, stop):
        i = _row(order, k)
        if lanes:
            r = _dot_lanes(X, i, params, d, fit_intercept, zero) - y[i]
        else:
            r = _predict_row(X, i, params, d, fit_intercept) - y[i]
        _loss_terms(r, loss_spec, &value, &slope)
        out[0] += value
        if want_gradient:
            for j in range(d):
                out[1 + j] += X[i, j] * slope
            if fit_intercept:
                out[1 + d] += slope


cdef inline void _accumulate_any(const floating[:, ::1] X, const floating[::1] y, const floating[::1] params,
                                 bint fit_intercept, bint want_gradient, const int64_t[::1] order,
                                 Py_ssize_t start, Py_ssize_t stop, bint lanes,
                                 const floating[::1] loss_spec, double* out) noexcept nogil:
    if <int>loss_spec[0] == 0:
        _accumulate(X, y, params, fit_intercept, want_gradient, order, start, stop, lanes, out)
    else:
        _accumulate_loss(X, y, params, fit_intercept, want_gradient, order, start, stop, lanes, loss_spec, out)


cdef void _accumulate_lanes(const floating[:, ::1] X, const floating[::1] y, floating w, bint want_gradient,
                            Py_ssize_t start, Py_ssize_t stop, double* out) noexcept nogil:
    """Default-mode block sums for one feature without intercept: row ``start + k``
    goes to lane ``k % 8``; the lanes are added as a pairwise tree into ``out``."""
    cdef double c0 = 0.0, c1 = 0.0, c2 = 0.0, c3 = 0.0, c4 = 0.0, c5 = 0.0, c6 = 0.0, c7 = 0.0
    cdef double g0 = 0.0, g1 = 0.0, g2 = 0.0, g3 = 0.0, g4 = 0.0, g5 = 0.0, g6 = 0.0, g7 = 0.0
    cdef floating x0, x1, x2, x3, x4, x5, x6, x7, r0, r1, r2, r3, r4, r5, r6, r7, x, r, t, g
    cdef Py_ssize_t i = start
    cdef int lane
    while i + 8 <= stop:
        x0 = X[i, 0]
        x1 = X[i + 1, 0]
        x2 = X[i + 2, 0]
        x3 = X[i + 3, 0]
        x4 = X[i + 4, 0]
        x5 = X[i + 5, 0]
        x6 = X[i + 6, 0]
        x7 = X[i + 7, 0]
        r0 = x0 * w - y[i]
        r1 = x1 * w - y[i + 1]
        r2 = x2 * w - y[i + 2]
        r3 = x3 * w - y[i + 3]
        r4 = x4 * w - y[i + 4]
        r5 = x5 * w - y[i + 5]
        r6 = x6 * w - y[i + 6]
        r7 = x7 * w - y[i + 7]
        c0 += r0 * r0
        c1 += r1 * r1
        c2 += r2 * r2
        c3 += r3 * r3
        c4 += r4 * r4
        c5 += r5 * r5
        c6 += r6 * r6
        c7 += r7 * r7
        if want_gradient:
            g0 += (x0 + x0) * r0
            g1 += (x1 + x1) * r1
            g2 += (x2 + x2) * r2
            g3 += (x3 + x3) * r3
            g4 += (x4 + x4) * r4
            g5 += (x5 + x5) * r5
            g6 += (x6 + x6) * r6
            g7 += (x7 + x7) * r7
        i += 8
    # The last (stop - start) % 8 rows go to lanes 0, 1, ... in order.
    lane = 0
    while i < stop:
        x = X[i, 0]
        r = x * w - y[i]
        t = r * r
        g = (x + x) * r
        if lane == 0:
            c0 += t
            g0 += g
        elif lane == 1:
            c1 += t
            g1 += g
        elif lane == 2:
            c2 += t
            g2 += g
        elif lane == 3:
            c3 += t
            g3 += g
        elif lane == 4:
            c4 += t
            g4 += g
        elif lane == 5:
            c5 += t
            g5 += g
        else:
            c6 += t
            g6 += g
        lane += 1
        i += 1
    out[0] += ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7))
    if want_gradient:
        out[1] += ((g0 + g1) + (g2 + g3)) + ((g4 + g5) + (g6 + g7))


cdef void _blocked_sums(const floating[:, ::1] X, const floating[::1] y, const floating[::1] params,
                        bint fit_intercept, bint want_gradient, const floating[::1] loss_spec,
                        double[:, ::1] partials) noexcept nogil:
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t d = X.shape[1]
    cdef bint lanes = d == 1 and not fit_intercept and <int>loss_spec[0] == 0
    cdef bint dot_lanes = d >= _LANES_MIN_FEATURES
    cdef Py_ssize_t blk, start, stop
    for blk in prange(partials.shape[0], schedule="static"):
        start = blk * _BLOCK
        stop = min(n, start + _BLOCK)
        if lanes:
            _accumulate_lanes(X, y, params[0], want_gradient, start, stop, &partials[blk, 0])
        else:
            _accumulate_any(X, y, params, fit_intercept, want_gradient, _NATURAL, start, stop, dot_lanes,
                            loss_spec, &partials[blk, 0])


cdef inline Py_ssize_t _n_blocks(Py_ssize_t n, bint exact) noexcept nogil:
    """Rows of the block partials that ``_sums`` needs (0: the exact path)."""
    if exact or n <= _BLOCK:
        return 0
    return (n + _BLOCK - 1) // _BLOCK


cdef void _sums(const floating[:, ::1] X, const floating[::1] y, const floating[::1] params,
                bint fit_intercept, bint exact, bint want_gradient, const floating[::1] loss_spec,
                double[:, ::1] partials, double[::1] out) noexcept nogil:
    """numba's ``sums`` into ``out``; ``partials`` has ``_n_blocks(n, exact)`` rows."""
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t width = 1 + params.shape[0]
    cdef Py_ssize_t n_blocks, blk, k
    for k in range(width):
        out[k] = 0.0
    if exact or n <= _BLOCK:
        _accumulate_any(X, y, params, fit_intercept, want_gradient, _NATURAL, 0, n, False, loss_spec, &out[0])
        return
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for blk in range(n_blocks):
        for k in range(width):
            partials[blk, k] = 0.0
    _blocked_sums(X, y, params, fit_intercept, want_gradient, loss_spec, partials)
    for k in range(width):
        out[k] = partials[0, k]
    for blk in range(1, n_blocks):
        for k in range(width):
            out[k] += partials[blk, k]


def sums(const floating[:, ::1] X, const floating[::1] y, const floating[::1] params, bint fit_intercept,
         bint exact, bint want_gradient, const floating[::1] loss_spec):
    """``[Σ r², Σ 2 x_j r, (Σ 2 r)]`` over all samples, as float64 (see fastgd.kernels)."""
    cdef Py_ssize_t width = 1 + params.shape[0]
    cdef double[::1] out = np.zeros(width)
    cdef double[:, ::1] partials = np.zeros((_n_blocks(X.shape[0], exact), width))
    with nogil:
        _sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec, partials, out)
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
                const floating[::1] hyper, bint nesterov, Py_ssize_t decayed) noexcept nogil:
    """One torch.optim.SGD step with ``hyper = [lr, momentum, 1 - dampening, weight_decay]``;
    weight decay on the first ``decayed`` parameters."""
    cdef floating lr = hyper[0]
    cdef floating momentum = hyper[1]
    cdef floating one_minus_dampening = hyper[2]
    cdef floating weight_decay = hyper[3]
    cdef bint first_step = steps[0] == 0
    cdef floating g
    cdef Py_ssize_t j
    for j in range(params.shape[0]):
        g = grad[j]
        if weight_decay != 0 and j < decayed:
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


cdef void _average(const floating[::1] params, const int64_t[::1] steps, floating[:, ::1] average,
                   int64_t[::1] averaged) noexcept nogil:
    """torch's ``AveragedModel.update_parameters`` after a step (numba's ``_average``)."""
    cdef int64_t count = averaged[0]
    cdef Py_ssize_t j
    if averaged[2] == 0 or steps[0] < averaged[2]:
        return
    for j in range(params.shape[0]):
        if count == 0:
            average[0, j] = params[j]
        else:
            average[0, j] = average[0, j] + (params[j] - average[0, j]) / <double>(count + 1)
    averaged[0] = count + 1


cdef void _batch_steps(const floating[:, ::1] X, const floating[::1] y, floating[::1] params,
                       floating[::1] grad, floating[::1] velocity, int64_t[::1] steps,
                       const floating[::1] hyper, bint nesterov, bint fit_intercept, bint exact,
                       Py_ssize_t batch_size, const int64_t[::1] order, double[::1] acc,
                       const floating[::1] loss_spec, Py_ssize_t decayed, floating[:, ::1] average,
                       int64_t[::1] averaged) noexcept nogil:
    """Mini-batch steps over consecutive slices of ``order``."""
    cdef Py_ssize_t n = _positions(X, order)
    cdef bint lanes = not exact and X.shape[0] > _BLOCK and X.shape[1] >= _LANES_MIN_FEATURES
    cdef Py_ssize_t start, stop, j, count
    start = 0
    while start < n:  # numba's ``for start in range(0, n, batch_size)``
        stop = min(n, start + batch_size)
        for j in range(acc.shape[0]):
            acc[j] = 0.0
        _accumulate_any(X, y, params, fit_intercept, True, order, start, stop, lanes, loss_spec, &acc[0])
        count = stop - start
        for j in range(params.shape[0]):
            grad[j] = acc[1 + j] / count
        _step(params, grad, velocity, steps, hyper, nesterov, decayed)
        _average(params, steps, average, averaged)
        start += batch_size


cdef void _sgd_steps(const floating[:, ::1] X, const floating[::1] y, floating[::1] params,
                     const floating[::1] hyper, bint fit_intercept, bint exact,
                     const int64_t[::1] order) noexcept nogil:
    """Plain per-sample SGD (no momentum, no weight decay) over ``order``."""
    _sgd_range(X, y, params, hyper[0], fit_intercept, exact, order, 0, _positions(X, order))


cdef void _sgd_range(const floating[:, ::1] X, const floating[::1] y, floating[::1] params,
                     floating lr, bint fit_intercept, bint exact, const int64_t[::1] order,
                     Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Plain per-sample SGD at positions start..stop-1.

    Per sample, as the reference: ``g_j = 0.0 + (x_j + x_j)·r`` (the batch sum
    of one term; ``/ 1`` is exact and omitted), ``w_j ← w_j − lr·g_j``.
    """
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t d = X.shape[1]
    cdef floating zero = lr - lr  # +0.0 in the training dtype
    cdef floating w, x, r
    cdef Py_ssize_t i, j, k
    if d == 1 and not fit_intercept:
        w = params[0]
        for k in range(start, stop):
            i = _row(order, k)
            x = X[i, 0]
            w = w - lr * ((x + x) * (x * w - y[i]) + zero)
        params[0] = w
        return
    for k in range(start, stop):
        i = _row(order, k)
        if exact or n <= _BLOCK:
            r = _predict_row(X, i, params, d, fit_intercept) - y[i]
        else:
            r = _dot_lanes(X, i, params, d, fit_intercept, zero) - y[i]
        for j in range(d):
            params[j] = params[j] - lr * ((X[i, j] + X[i, j]) * r + zero)
        if fit_intercept:
            params[d] = params[d] - lr * ((r + r) + zero)


cdef void _compose_block(const floating[:, ::1] X, const floating[::1] y, double c, const int64_t[::1] order,
                         Py_ssize_t start, Py_ssize_t stop, double* AB) noexcept nogil:
    """The affine map ``w ↦ A·w + B`` of the SGD steps at positions start..stop-1, into ``AB``."""
    cdef double A = 1.0
    cdef double B = 0.0
    cdef double cx, a
    cdef Py_ssize_t i, k
    for k in range(start, stop):
        i = _row(order, k)
        cx = c * X[i, 0]
        a = 1.0 - cx * X[i, 0]
        A = a * A
        B = a * B + cx * y[i]
    AB[0] = A
    AB[1] = B


cdef void _compose_blocks4(const floating[:, ::1] X, const floating[::1] y, double c, const int64_t[::1] order,
                           Py_ssize_t start, double* AB) noexcept nogil:
    """``_compose_block`` of four consecutive full blocks into ``AB[0..7]``,
    interleaved (the same arithmetic per block; four chains overlap their latencies)."""
    cdef double A0 = 1.0, A1 = 1.0, A2 = 1.0, A3 = 1.0
    cdef double B0 = 0.0, B1 = 0.0, B2 = 0.0, B3 = 0.0
    cdef double cx0, cx1, cx2, cx3, a0, a1, a2, a3
    cdef Py_ssize_t t, i0, i1, i2, i3
    for t in range(start, start + _BLOCK):
        i0 = _row(order, t)
        i1 = _row(order, t + _BLOCK)
        i2 = _row(order, t + 2 * _BLOCK)
        i3 = _row(order, t + 3 * _BLOCK)
        cx0 = c * X[i0, 0]
        cx1 = c * X[i1, 0]
        cx2 = c * X[i2, 0]
        cx3 = c * X[i3, 0]
        a0 = 1.0 - cx0 * X[i0, 0]
        a1 = 1.0 - cx1 * X[i1, 0]
        a2 = 1.0 - cx2 * X[i2, 0]
        a3 = 1.0 - cx3 * X[i3, 0]
        A0 = a0 * A0
        A1 = a1 * A1
        A2 = a2 * A2
        A3 = a3 * A3
        B0 = a0 * B0 + cx0 * y[i0]
        B1 = a1 * B1 + cx1 * y[i1]
        B2 = a2 * B2 + cx2 * y[i2]
        B3 = a3 * B3 + cx3 * y[i3]
    AB[0] = A0
    AB[1] = B0
    AB[2] = A1
    AB[3] = B1
    AB[4] = A2
    AB[5] = B2
    AB[6] = A3
    AB[7] = B3


cdef void _affine_maps(const floating[:, ::1] X, const floating[::1] y, double lr, const int64_t[::1] order,
                       double[:, ::1] maps) noexcept nogil:
    """``maps[k] = (A_k, B_k)``, the composed SGD steps of block ``k``, in parallel."""
    cdef Py_ssize_t n = _positions(X, order)
    cdef Py_ssize_t n_blocks = maps.shape[0]
    cdef double c = 2.0 * lr
    cdef Py_ssize_t group, first, blk
    for group in prange((n_blocks + 3) // 4, schedule="static"):
        first = 4 * group
        if (first + 4) * _BLOCK <= n:
            _compose_blocks4(X, y, c, order, first * _BLOCK, &maps[first, 0])  # maps rows are contiguous
        else:
            for blk in range(first, min(n_blocks, first + 4)):
                _compose_block(X, y, c, order, blk * _BLOCK, min(n, (blk + 1) * _BLOCK), &maps[blk, 0])


cdef void _apply_maps(const floating[:, ::1] X, const floating[::1] y, floating[::1] params,
                      const floating[::1] hyper, const int64_t[::1] order, double[:, ::1] maps) noexcept nogil:
    """One epoch of affine one-feature SGD, block after block; a block whose map
    gives a non-finite ``w`` (an overflowed composition) is replayed sample by
    sample in the training dtype (numba's ``_apply_maps``)."""
    cdef Py_ssize_t n = _positions(X, order)
    cdef Py_ssize_t blk
    cdef double w = <double>params[0]
    cdef double moved
    for blk in range(maps.shape[0]):
        moved = maps[blk, 0] * w + maps[blk, 1]
        if not isfinite(moved):
            params[0] = <floating>w
            _sgd_range(X, y, params, hyper[0], False, True, order, blk * _BLOCK, min(n, (blk + 1) * _BLOCK))
            moved = <double>params[0]
        w = moved
    params[0] = <floating>w


cdef void _steps(const floating[:, ::1] X, const floating[::1] y, floating[::1] params,
                 floating[::1] grad, floating[::1] velocity, int64_t[::1] steps, const floating[::1] hyper,
                 bint nesterov, bint fit_intercept, bint exact, Py_ssize_t batch_size,
                 const int64_t[::1] order, double[::1] acc, bint plain_sgd, bint affine,
                 double[:, ::1] maps, const floating[::1] loss_spec, Py_ssize_t decayed,
                 floating[:, ::1] average, int64_t[::1] averaged) noexcept nogil:
    """The SGD steps of one pass over ``order`` (numba's ``_steps``)."""
    if affine:
        _apply_maps(X, y, params, hyper, order, maps)
        steps[0] += _positions(X, order)
    elif plain_sgd:
        _sgd_steps(X, y, params, hyper, fit_intercept, exact, order)
        steps[0] += _positions(X, order)
    else:
        _batch_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact,
                     batch_size, order, acc, loss_spec, decayed, average, averaged)


cdef Py_ssize_t _run_epochs(const floating[:, ::1] X, const floating[::1] y, floating[::1] params,
                            floating[::1] grad, floating[::1] velocity, int64_t[::1] steps,
                            floating[::1] previous, floating[::1] hyper, bint nesterov,
                            bint fit_intercept, bint exact, bint full_batch, Py_ssize_t batch_size,
                            const int64_t[::1] order, double[::1] costs, double[::1] acc,
                            double[::1] totals, double[:, ::1] partials, bint plain_sgd, bint affine,
                            double[:, ::1] maps, const int64_t[::1] stop, const double[::1] rates,
                            const floating[::1] loss_spec, Py_ssize_t decayed, floating[:, ::1] average,
                            int64_t[::1] averaged) except -1 nogil:
    """numba's ``run_epochs`` with its work arrays (``acc``, ``totals``, ``partials``, ``maps``) handed in.

    Unlike numba's, it also checks for signals between epochs, so Ctrl-C stops
    a long call with ``previous`` at the last finite epoch (the engine turns
    the KeyboardInterrupt into FitInterrupted).
    """
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t p = params.shape[0]
    cdef Py_ssize_t e, j
    cdef Py_ssize_t work = 0
    cdef bint mapped = False
    cdef floating maps_rate = 0
    for e in range(costs.shape[0]):
        if stop[0] != 0:
            return e
        hyper[0] = <floating>rates[e]
        if affine and not (mapped and hyper[0] == maps_rate):
            # The maps depend on the data, the rate and the order only: the
            # same for every epoch of this call at the same rate.
            _affine_maps(X, y, <double>hyper[0], order, maps)
            mapped = True
            maps_rate = hyper[0]
        if full_batch:
            _step(params, grad, velocity, steps, hyper, nesterov, decayed)
            _average(params, steps, average, averaged)
            _sums(X, y, params, fit_intercept, exact, True, loss_spec, partials, totals)
            for j in range(p):
                grad[j] = totals[1 + j] / n
        else:
            _steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact, batch_size,
                   order, acc, plain_sgd, affine, maps, loss_spec, decayed, average, averaged)
            _sums(X, y, params, fit_intercept, exact, False, loss_spec, partials, totals)
        costs[e] = totals[0] / n
        if not isfinite(costs[e]):
            return e
        for j in range(p):
            previous[j] = params[j]
            average[1, j] = average[0, j]
        averaged[1] = averaged[0]
        work += 2 * n * X.shape[1]
        if work >= _SIGNAL_CHECK_WORK and e + 1 < costs.shape[0]:
            work = 0
            with gil:
                PyErr_CheckSignals()  # raises KeyboardInterrupt here after Ctrl-C
    return costs.shape[0]


def run_epochs(const floating[:, ::1] X, const floating[::1] y, floating[::1] params, floating[::1] grad,
               floating[::1] velocity, int64_t[::1] steps, floating[::1] previous, floating[::1] hyper,
               bint nesterov, bint fit_intercept, bint exact, int path, Py_ssize_t batch_size,
               const int64_t[::1] order, double[::1] costs, const int64_t[::1] stop, const double[::1] rates,
               const floating[::1] loss_spec, Py_ssize_t decayed, floating[:, ::1] average,
               int64_t[::1] averaged):
    """Run ``len(costs)`` epochs in place; the number of epochs with a finite cost (see fastgd.kernels)."""
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t d = X.shape[1]
    cdef Py_ssize_t p = params.shape[0]
    cdef double[::1] acc = np.zeros(1 + p)
    cdef double[::1] totals = np.zeros(1 + p)
    cdef double[:, ::1] partials = np.zeros((_n_blocks(n, exact), 1 + p))
    cdef bint full_batch = path == FULL_BATCH
    cdef bint plain_sgd = path == PER_SAMPLE or path == AFFINE
    cdef bint affine = path == AFFINE and n > _BLOCK  # the maps pay from two blocks
    cdef double[:, ::1] maps = np.empty(((n + _BLOCK - 1) // _BLOCK if affine else 0, 2))
    cdef Py_ssize_t finite
    if rates.shape[0] < costs.shape[0]:
        raise ValueError(f"rates must have {costs.shape[0]} entries, got {rates.shape[0]}")
    if not full_batch and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if order.shape[0] != 0 and order.shape[0] != n:
        raise ValueError(f"order must be empty or have {n} entries, got {order.shape[0]}")
    with nogil:
        finite = _run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept,
                             exact, full_batch, batch_size, order, costs, acc, totals, partials, plain_sgd,
                             affine, maps, stop, rates, loss_spec, decayed, average, averaged)
    return finite


def run_steps(const floating[:, ::1] X, const floating[::1] y, floating[::1] params, floating[::1] grad,
              floating[::1] velocity, int64_t[::1] steps, const floating[::1] hyper, bint nesterov,
              bint fit_intercept, bint exact, int path, Py_ssize_t batch_size, const int64_t[::1] order,
              const int64_t[::1] stop, const floating[::1] loss_spec, Py_ssize_t decayed,
              floating[:, ::1] average, int64_t[::1] averaged):
    """The SGD steps of one pass over the positions ``order`` (see fastgd.kernels); True."""
    cdef Py_ssize_t d = X.shape[1]
    cdef Py_ssize_t p = params.shape[0]
    cdef double[::1] acc = np.zeros(1 + p)
    cdef bint plain_sgd = path == PER_SAMPLE or path == AFFINE
    cdef bint affine = path == AFFINE and X.shape[0] > _BLOCK
    cdef Py_ssize_t positions = X.shape[0] if order.shape[0] == 0 else order.shape[0]
    cdef double[:, ::1] maps = np.empty(((positions + _BLOCK - 1) // _BLOCK if affine else 0, 2))
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    with nogil:
        if affine:
            _affine_maps(X, y, <double>hyper[0], order, maps)
        _steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact, batch_size, order,
               acc, plain_sgd, affine, maps, loss_spec, decayed, average, averaged)
    return True
