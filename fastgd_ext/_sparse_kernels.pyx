# Mirrors fastgd/kernels/numba_sparse.py: same names, same loop order; the operation order is fastgd/reference.py's.
"""Cython kernels over CSR rows (the cython backend's sparse path).

One source for float32/float64 data (``floating``) and int32/int64 indices
(``index_t``). What each function does, and why the results equal the
reference on ``X.toarray()``, is numba_sparse.py's docstring; the step,
averaging and loss terms below are fastgd_ext/_kernels.pyx's (kept here as
copies so that this extension builds alone). Every pass runs on one thread.

Compiler directives (boundscheck, wraparound, cdivision) are set once in
setup.py, which also passes ``-ffp-contract=off``: no FMA contraction.
"""

from cython cimport floating
from cython.parallel cimport prange
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport fabs, isfinite, copysign, NAN
from libc.stdint cimport int32_t, int64_t

import numpy as np

ctypedef fused index_t:
    int32_t
    int64_t

cdef enum:
    _BLOCK = 4096  # numba_kernels.BLOCK: the stop flag is read every BLOCK samples
    # numba_sparse's GRAD_CHUNKS, CHUNK_VALUES and PARALLEL_MIN: the same chunks give the same bits.
    _GRAD_CHUNKS = 8
    _CHUNK_VALUES = 1 << 23
    _PARALLEL_MIN = 1 << 18
    # run_epochs takes the GIL to check for Ctrl-C after epochs that together
    # read about this many stored values.
    _SIGNAL_CHECK_WORK = 1 << 22

BLOCK = _BLOCK
# The full-batch path code of fastgd/kernels/__init__.py (the only path these
# kernels branch on; tests/test_plan.py holds it equal).
cdef enum:
    FULL_BATCH = 0
PATHS = {"FULL_BATCH": FULL_BATCH}
# numba_sparse.SCALE_FLOOR: the default mode's weight decay folds its scale
# back into the weights below it.
SCALE_FLOOR = {np.dtype(np.float64): 1e-100, np.dtype(np.float32): 1e-12}


cdef inline floating _dot(const floating[::1] data, const index_t[::1] indices, Py_ssize_t start,
                          Py_ssize_t stop, const floating[::1] params, floating zero) noexcept nogil:
    """``Σ data[k]·params[indices[k]]`` over ``start..stop-1`` in order, from +0.0."""
    cdef floating pred = zero
    cdef Py_ssize_t k
    for k in range(start, stop):
        pred += data[k] * params[indices[k]]
    return pred


cdef inline floating _dot_lanes(const floating[::1] data, const index_t[::1] indices, Py_ssize_t start,
                                Py_ssize_t stop, const floating[::1] params, floating zero) noexcept nogil:
    """Default-mode ``_dot``: entry ``start + k`` goes to lane ``k % 4``, then ``(l0 + l1) + (l2 + l3)``."""
    cdef floating l0 = zero, l1 = zero, l2 = zero, l3 = zero
    cdef Py_ssize_t k = start
    while k + 4 <= stop:
        l0 += data[k] * params[indices[k]]
        l1 += data[k + 1] * params[indices[k + 1]]
        l2 += data[k + 2] * params[indices[k + 2]]
        l3 += data[k + 3] * params[indices[k + 3]]
        k += 4
    # The last (stop - start) % 4 entries go to lanes 0, 1, 2 in order.
    if k < stop:
        l0 += data[k] * params[indices[k]]
    if k + 1 < stop:
        l1 += data[k + 1] * params[indices[k + 1]]
    if k + 2 < stop:
        l2 += data[k + 2] * params[indices[k + 2]]
    return (l0 + l1) + (l2 + l3)


cdef inline floating _predict_row(const floating[::1] data, const index_t[::1] indices,
                                  const index_t[::1] indptr, Py_ssize_t i, const floating[::1] params,
                                  Py_ssize_t d, bint fit_intercept, bint lanes, floating zero) noexcept nogil:
    """Row ``i``'s ``x·w (+ b)``: ``_dot`` (exact) or ``_dot_lanes`` (default mode)."""
    cdef floating pred
    if lanes:
        pred = _dot_lanes(data, indices, indptr[i], indptr[i + 1], params, zero)
    else:
        pred = _dot(data, indices, indptr[i], indptr[i + 1], params, zero)
    if fit_intercept:
        pred += params[d]
    return pred


cdef floating _zero_sign(const floating[::1] data, const index_t[::1] indices, Py_ssize_t start,
                         Py_ssize_t stop, const floating[::1] params, Py_ssize_t d, bint fit_intercept,
                         Py_ssize_t negatives, floating zero) noexcept nogil:
    """The dense sum's sign for a row whose prediction is zero (numba_sparse's ``_zero_sign``)."""
    cdef Py_ssize_t stored_negative = 0
    cdef Py_ssize_t k
    cdef floating w, term
    for k in range(start, stop):
        w = params[indices[k]]
        if copysign(1.0, w) < 0:
            stored_negative += 1
        term = (data[k] + zero) * w  # a stored -0.0 is +0.0 in toarray()
        if term != 0 or copysign(1.0, term) > 0:
            return zero
    if negatives - stored_negative != d - (stop - start):
        return zero
    if fit_intercept and copysign(1.0, params[d]) > 0:
        return zero
    return -zero


cdef inline void _loss_terms(floating r, const floating[::1] loss_spec, floating* value,
                             floating* slope) noexcept nogil:
    """``ℓ(r)`` and ``ℓ'(r)`` of torch's ``HuberLoss(delta)`` (kind 1) or
    ``L1Loss`` (kind 2) (_kernels.pyx's ``_loss_terms``)."""
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


cdef void _step(floating[::1] params, const floating[::1] grad, floating[::1] velocity, int64_t[::1] steps,
                const floating[::1] hyper, bint nesterov, Py_ssize_t decayed) noexcept nogil:
    """One torch.optim.SGD step (_kernels.pyx's ``_step``)."""
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
    """torch's ``AveragedModel.update_parameters`` after a step (_kernels.pyx's ``_average``)."""
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


cdef inline Py_ssize_t _row(const int64_t[::1] order, Py_ssize_t k) noexcept nogil:
    if order.shape[0] == 0:
        return k
    return order[k]


cdef inline Py_ssize_t _positions(const index_t[::1] indptr, const int64_t[::1] order) noexcept nogil:
    if order.shape[0] == 0:
        return indptr.shape[0] - 1
    return order.shape[0]


cdef void _accumulate(const floating[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
                      const floating[::1] y, const floating[::1] params, Py_ssize_t d, bint fit_intercept,
                      bint want_gradient, bint lanes, const floating[::1] loss_spec, Py_ssize_t first,
                      Py_ssize_t last, double* out) noexcept nogil:
    """Add ``[Σ ℓ(r), Σ ℓ'(r)·x_j, (Σ ℓ'(r))]`` over rows first..last-1 into ``out``, row after row."""
    cdef floating zero = loss_spec[2] - loss_spec[2]
    cdef bint mse = <int>loss_spec[0] == 0
    cdef double cost_sum = out[0]
    cdef floating r, x, value, slope
    cdef Py_ssize_t i, k
    for i in range(first, last):
        r = _predict_row(data, indices, indptr, i, params, d, fit_intercept, lanes, zero) - y[i]
        if mse:
            cost_sum += r * r
            if want_gradient:
                for k in range(indptr[i], indptr[i + 1]):
                    x = data[k]
                    out[1 + indices[k]] += (x + x) * r
                if fit_intercept:
                    out[1 + d] += r + r
        else:
            _loss_terms(r, loss_spec, &value, &slope)
            cost_sum += value
            if want_gradient:
                for k in range(indptr[i], indptr[i + 1]):
                    out[1 + indices[k]] += data[k] * slope
                if fit_intercept:
                    out[1 + d] += slope
    out[0] = cost_sum


cdef inline Py_ssize_t _n_chunks(Py_ssize_t n, Py_ssize_t p, bint exact, bint want_gradient) noexcept nogil:
    """numba_sparse's ``_n_chunks``: the row-ranges of the full-data sums."""
    if exact or n <= _BLOCK:
        return 1
    if want_gradient and _GRAD_CHUNKS * (1 + p) > _CHUNK_VALUES:
        return 1
    return _GRAD_CHUNKS


cdef void _sums(const floating[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
                const floating[::1] y, const floating[::1] params, Py_ssize_t d, bint fit_intercept, bint exact,
                bint want_gradient, const floating[::1] loss_spec, double[::1] out,
                double[:, ::1] partials) noexcept nogil:
    """``out`` = the full-data sums: one range of rows, or ``partials.shape[0]``
    chunks summed alone (in parallel with OpenMP from ``_PARALLEL_MIN`` stored
    values) and added in order (numba_sparse's ``_sums``)."""
    cdef Py_ssize_t n = indptr.shape[0] - 1
    cdef Py_ssize_t chunks = partials.shape[0]
    cdef Py_ssize_t width = partials.shape[1]
    cdef Py_ssize_t j, c
    for j in range(out.shape[0]):
        out[j] = 0.0
    if chunks == 1:
        _accumulate(data, indices, indptr, y, params, d, fit_intercept, want_gradient, not exact, loss_spec, 0, n,
                    &out[0])
    else:
        for c in range(chunks):
            for j in range(width):
                partials[c, j] = 0.0
        if data.shape[0] >= _PARALLEL_MIN:
            for c in prange(chunks, schedule="static"):
                _accumulate(data, indices, indptr, y, params, d, fit_intercept, want_gradient, True, loss_spec,
                            c * n // chunks, (c + 1) * n // chunks, &partials[c, 0])
        else:
            for c in range(chunks):
                _accumulate(data, indices, indptr, y, params, d, fit_intercept, want_gradient, True, loss_spec,
                            c * n // chunks, (c + 1) * n // chunks, &partials[c, 0])
        for c in range(chunks):
            for j in range(width):
                out[j] += partials[c, j]
    for j in range(params.shape[0]):
        if not isfinite(params[j]):
            out[0] = NAN  # the dense cost is NaN (0·inf), even where a weight's column is empty
            break


def sums(const floating[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
         const floating[::1] y, const floating[::1] params, Py_ssize_t d, bint fit_intercept, bint exact,
         bint want_gradient, const floating[::1] loss_spec):
    """``[Σ ℓ(r), Σ ℓ'(r)·x_j, (Σ ℓ'(r))]`` over all rows, float64 (see fastgd.kernels)."""
    cdef double[::1] out = np.zeros(1 + params.shape[0])
    cdef double[:, ::1] partials = _partials(indptr.shape[0] - 1, params.shape[0], exact, want_gradient)
    with nogil:
        _sums(data, indices, indptr, y, params, d, fit_intercept, exact, want_gradient, loss_spec, out, partials)
    return np.asarray(out)


def _partials(Py_ssize_t n, Py_ssize_t p, bint exact, bint want_gradient):
    """The chunks' partial sums of ``_sums`` (one row: no chunks)."""
    return np.zeros((_n_chunks(n, p, exact, want_gradient), 1 + p if want_gradient else 1))


def predict(const floating[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
            const floating[::1] params, Py_ssize_t d, bint fit_intercept, floating[::1] out):
    """``out[i] = X[i]·w (+ b)``, with the dense sum's sign of a zero."""
    cdef floating zero = 0.0
    cdef floating pred
    cdef Py_ssize_t negatives = 0
    cdef Py_ssize_t i, j
    with nogil:
        for j in range(d):
            if copysign(1.0, params[j]) < 0:
                negatives += 1
        for i in range(indptr.shape[0] - 1):
            pred = _predict_row(data, indices, indptr, i, params, d, fit_intercept, False, zero)
            if pred == 0:
                pred = _zero_sign(data, indices, indptr[i], indptr[i + 1], params, d, fit_intercept, negatives,
                                  zero)
            out[i] = pred


cdef inline void _unscale(floating[::1] params, Py_ssize_t d, floating scale) noexcept nogil:
    """``w = scale · v`` back into ``params`` (the default mode's weight decay)."""
    cdef Py_ssize_t j
    if scale != 1.0:
        for j in range(d):
            params[j] = params[j] * scale


cdef bint _sample_steps(const floating[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
                        const floating[::1] y, floating[::1] params, int64_t[::1] steps,
                        const floating[::1] hyper, bint fit_intercept, bint exact, const int64_t[::1] order,
                        const int64_t[::1] stop, const floating[::1] loss_spec, Py_ssize_t decayed,
                        Py_ssize_t d, bint scaled, double floor) noexcept nogil:
    """Per-sample steps that touch only the sample's stored weights (numba_sparse's ``_sample_steps``)."""
    cdef Py_ssize_t n = _positions(indptr, order)
    cdef floating lr = hyper[0]
    cdef floating weight_decay = hyper[3]
    cdef floating zero = loss_spec[2] - loss_spec[2]
    cdef bint mse = <int>loss_spec[0] == 0
    cdef bint lanes = not exact
    cdef double shrink = 1.0 - <double>lr * <double>weight_decay
    cdef double scale = 1.0
    cdef floating held = 1.0  # scale in the training dtype
    cdef floating pred, r, q, value, step, x, g, c
    cdef Py_ssize_t at, i, start, end, k, j
    for at in range(n):
        if at % _BLOCK == 0 and stop[0] != 0:
            _unscale(params, d, held)
            return False
        i = _row(order, at)
        start = indptr[i]
        end = indptr[i + 1]
        if lanes:
            pred = _dot_lanes(data, indices, start, end, params, zero)
        else:
            pred = _dot(data, indices, start, end, params, zero)
        if scaled:
            pred = pred * held
        if fit_intercept:
            pred += params[d]
        r = pred - y[i]
        if mse:
            q = r
        else:
            _loss_terms(r, loss_spec, &value, &q)
        if scaled:
            scale *= shrink
            held = <floating>scale
            step = lr / held
        else:
            step = lr
        if exact:
            for k in range(start, end):
                x = data[k]
                j = indices[k]
                if mse:
                    params[j] = params[j] - step * ((x + x) * q + zero)
                else:
                    params[j] = params[j] - step * (x * q + zero)
        else:
            c = step * (q + q) if mse else step * q  # one product per stored value
            for k in range(start, end):
                j = indices[k]
                params[j] = params[j] - c * data[k]
        if fit_intercept:
            if mse:
                g = (q + q) + zero
            else:
                g = q + zero
            if weight_decay != 0 and d < decayed:
                g = g + weight_decay * params[d]
            params[d] = params[d] - lr * g
        if scaled and scale < floor:
            _unscale(params, d, held)
            scale = 1.0
            held = 1.0
    _unscale(params, d, held)
    steps[0] += n
    return True


cdef bint _batch_steps(const floating[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
                       const floating[::1] y, floating[::1] params, floating[::1] grad, floating[::1] velocity,
                       int64_t[::1] steps, const floating[::1] hyper, bint nesterov, bint fit_intercept,
                       bint exact, Py_ssize_t batch_size, const int64_t[::1] order, const int64_t[::1] stop,
                       const floating[::1] loss_spec, Py_ssize_t decayed, floating[:, ::1] average,
                       int64_t[::1] averaged, Py_ssize_t d, bint lazy, bint scaled, double floor,
                       double[::1] acc, int64_t[::1] mark, int64_t[::1] touched,
                       floating[::1] terms) noexcept nogil:
    """Steps over consecutive slices of ``order`` (numba_sparse's ``_batch_steps``;
    its work arrays handed in: ``acc`` zeros, ``mark`` -1)."""
    cdef Py_ssize_t n = _positions(indptr, order)
    cdef floating lr = hyper[0]
    cdef floating weight_decay = hyper[3]
    cdef floating zero = loss_spec[2] - loss_spec[2]
    cdef bint mse = <int>loss_spec[0] == 0
    cdef bint lanes = not exact
    cdef double shrink = 1.0 - <double>lr * <double>weight_decay
    cdef double scale = 1.0
    cdef floating held = 1.0
    cdef floating pred, r, q, value, slope, x, g, step
    cdef double acc_b
    cdef Py_ssize_t first = 0, last, count, t, i, k, j, u, n_touched
    cdef Py_ssize_t unchecked = 0
    cdef int64_t batch = 0
    while first < n:  # numba's ``for first in range(0, n, batch_size)``
        last = min(n, first + batch_size)
        count = last - first
        for t in range(count):
            i = _row(order, first + t)
            if lanes:
                pred = _dot_lanes(data, indices, indptr[i], indptr[i + 1], params, zero)
            else:
                pred = _dot(data, indices, indptr[i], indptr[i + 1], params, zero)
            if scaled:
                pred = pred * held
            if fit_intercept:
                pred += params[d]
            r = pred - y[i]
            if mse:
                terms[t] = r
            else:
                _loss_terms(r, loss_spec, &value, &slope)
                terms[t] = slope
        n_touched = 0
        acc_b = 0.0
        for t in range(count):
            i = _row(order, first + t)
            q = terms[t]
            for k in range(indptr[i], indptr[i + 1]):
                j = indices[k]
                if mark[j] != batch:
                    mark[j] = batch
                    touched[n_touched] = j
                    n_touched += 1
                x = data[k]
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
                held = <floating>scale
                step = lr / held
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
                _unscale(params, d, held)
                scale = 1.0
                held = 1.0
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
        if unchecked >= _BLOCK:
            unchecked = 0
            if stop[0] != 0:
                _unscale(params, d, held)
                return False
        first += batch_size
    _unscale(params, d, held)
    return True


cdef bint _steps(const floating[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
                 const floating[::1] y, floating[::1] params, floating[::1] grad, floating[::1] velocity,
                 int64_t[::1] steps, const floating[::1] hyper, bint nesterov, bint fit_intercept, bint exact,
                 Py_ssize_t batch_size, const int64_t[::1] order, const int64_t[::1] stop,
                 const floating[::1] loss_spec, Py_ssize_t decayed, floating[:, ::1] average,
                 int64_t[::1] averaged, Py_ssize_t d, double floor, double[::1] acc, int64_t[::1] mark,
                 int64_t[::1] touched, floating[::1] terms) noexcept nogil:
    """The SGD steps of one pass over ``order``; False when ``stop[0]`` ended it early."""
    cdef floating weight_decay = hyper[3]
    cdef bint lazy = hyper[1] == 0 and averaged[2] == 0 and (
        weight_decay == 0 or (not exact and 1.0 - <double>hyper[0] * <double>weight_decay > 0))
    cdef bint scaled = lazy and weight_decay != 0
    cdef Py_ssize_t j
    if lazy and batch_size == 1:
        return _sample_steps(data, indices, indptr, y, params, steps, hyper, fit_intercept, exact, order, stop,
                             loss_spec, decayed, d, scaled, floor)
    for j in range(mark.shape[0]):
        mark[j] = -1  # batch ids count from 0 in every pass
    return _batch_steps(data, indices, indptr, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept,
                        exact, batch_size, order, stop, loss_spec, decayed, average, averaged, d, lazy, scaled,
                        floor, acc, mark, touched, terms)


cdef Py_ssize_t _run_epochs(const floating[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
                            const floating[::1] y, floating[::1] params, floating[::1] grad,
                            floating[::1] velocity, int64_t[::1] steps, floating[::1] previous,
                            floating[::1] hyper, bint nesterov, bint fit_intercept, bint exact, bint full_batch,
                            Py_ssize_t batch_size, const int64_t[::1] order, double[::1] costs,
                            const int64_t[::1] stop, const double[::1] rates, const floating[::1] loss_spec,
                            Py_ssize_t decayed, floating[:, ::1] average, int64_t[::1] averaged, Py_ssize_t d,
                            double floor, double[::1] totals, double[:, ::1] partials, double[::1] acc,
                            int64_t[::1] mark, int64_t[::1] touched, floating[::1] terms) except -1 nogil:
    """numba_sparse's ``_run_epochs`` with its work arrays handed in; it also
    checks for signals between epochs, as _kernels.pyx's ``_run_epochs`` does."""
    cdef Py_ssize_t n = indptr.shape[0] - 1
    cdef Py_ssize_t p = params.shape[0]
    cdef Py_ssize_t e, j
    cdef Py_ssize_t work = 0
    for e in range(costs.shape[0]):
        if stop[0] != 0:
            return e
        hyper[0] = <floating>rates[e]
        if full_batch:
            _step(params, grad, velocity, steps, hyper, nesterov, decayed)
            _average(params, steps, average, averaged)
            _sums(data, indices, indptr, y, params, d, fit_intercept, exact, True, loss_spec, totals, partials)
            for j in range(p):
                grad[j] = totals[1 + j] / n
        else:
            if not _steps(data, indices, indptr, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept,
                          exact, batch_size, order, stop, loss_spec, decayed, average, averaged, d, floor, acc,
                          mark, touched, terms):
                return e
            _sums(data, indices, indptr, y, params, d, fit_intercept, exact, False, loss_spec, totals, partials)
        costs[e] = totals[0] / n
        if not isfinite(costs[e]):
            return e
        for j in range(p):
            previous[j] = params[j]
            average[1, j] = average[0, j]
        averaged[1] = averaged[0]
        work += 2 * data.shape[0] + n
        if work >= _SIGNAL_CHECK_WORK and e + 1 < costs.shape[0]:
            work = 0
            with gil:
                PyErr_CheckSignals()  # raises KeyboardInterrupt here after Ctrl-C
    return costs.shape[0]


def run_epochs(const floating[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
               const floating[::1] y, floating[::1] params, floating[::1] grad, floating[::1] velocity,
               int64_t[::1] steps, floating[::1] previous, floating[::1] hyper, bint nesterov, bint fit_intercept,
               bint exact, int path, Py_ssize_t batch_size, const int64_t[::1] order, double[::1] costs,
               const int64_t[::1] stop, const double[::1] rates, const floating[::1] loss_spec,
               Py_ssize_t decayed, floating[:, ::1] average, int64_t[::1] averaged, Py_ssize_t d, double floor):
    """Run ``len(costs)`` epochs in place; the number of epochs with a finite cost (see fastgd.kernels)."""
    cdef bint full_batch = path == FULL_BATCH
    cdef Py_ssize_t n = indptr.shape[0] - 1
    cdef Py_ssize_t positions = n if order.shape[0] == 0 else order.shape[0]
    cdef double[::1] totals = np.zeros(1 + params.shape[0])
    cdef double[:, ::1] partials = _partials(n, params.shape[0], exact, full_batch)
    cdef double[::1] acc = np.zeros(d)
    cdef int64_t[::1] mark = np.full(d, -1, dtype=np.int64)
    cdef int64_t[::1] touched = np.empty(d, dtype=np.int64)
    cdef floating[::1] terms = np.empty(max(1, min(batch_size, positions)), dtype=np.asarray(params).dtype)
    cdef Py_ssize_t finite
    if rates.shape[0] < costs.shape[0]:
        raise ValueError(f"rates must have {costs.shape[0]} entries, got {rates.shape[0]}")
    if not full_batch and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if order.shape[0] != 0 and order.shape[0] != n:
        raise ValueError(f"order must be empty or have {n} entries, got {order.shape[0]}")
    with nogil:
        finite = _run_epochs(data, indices, indptr, y, params, grad, velocity, steps, previous, hyper, nesterov,
                             fit_intercept, exact, full_batch, batch_size, order, costs, stop, rates, loss_spec,
                             decayed, average, averaged, d, floor, totals, partials, acc, mark, touched, terms)
    return finite


def run_steps(const floating[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
              const floating[::1] y, floating[::1] params, floating[::1] grad, floating[::1] velocity,
              int64_t[::1] steps, const floating[::1] hyper, bint nesterov, bint fit_intercept, bint exact,
              Py_ssize_t batch_size, const int64_t[::1] order, const int64_t[::1] stop,
              const floating[::1] loss_spec, Py_ssize_t decayed, floating[:, ::1] average,
              int64_t[::1] averaged, Py_ssize_t d, double floor):
    """The SGD steps of one pass over the positions ``order``; False when ``stop`` ended it."""
    cdef Py_ssize_t positions = indptr.shape[0] - 1 if order.shape[0] == 0 else order.shape[0]
    cdef double[::1] acc = np.zeros(d)
    cdef int64_t[::1] mark = np.full(d, -1, dtype=np.int64)
    cdef int64_t[::1] touched = np.empty(d, dtype=np.int64)
    cdef floating[::1] terms = np.empty(max(1, min(batch_size, positions)), dtype=np.asarray(params).dtype)
    cdef bint done
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    with nogil:
        done = _steps(data, indices, indptr, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept,
                      exact, batch_size, order, stop, loss_spec, decayed, average, averaged, d, floor, acc, mark,
                      touched, terms)
    return done
