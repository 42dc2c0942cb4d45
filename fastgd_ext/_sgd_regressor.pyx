# Mirrors fastgd/kernels/numba_sgd_regressor.py (the same operation order, the norms' lanes included); the slots are fastgd/kernels/sgd_regressor_layout.py's.
"""Cython kernel of ``fastgd.SGDRegressor``: one sequential chain of
per-sample steps over dense rows or CSR rows, without the GIL. See the numba
kernel's docstring for what it computes; ``fastgd/_sgd_regressor_reference.py``
is the oracle written for reading.
"""

from cython cimport floating
from libc.math cimport fabs, isfinite, pow, sqrt, INFINITY
from libc.stdint cimport int32_t, int64_t, uint64_t

import numpy as np

ctypedef fused index_t:
    int32_t
    int64_t

# sgd_regressor_layout.py, slot by slot (tests/test_sgd_regressor.py compares them).
cdef enum:
    C_LOSS = 0
    C_EPSILON = 1
    C_PENALTY = 2
    C_ALPHA = 3
    C_L1_RATIO = 4
    C_RATE = 5
    C_ETA0 = 6
    C_POWER_T = 7
    C_OPTIMAL_INIT = 8
    C_FIT_INTERCEPT = 9
    C_INTERCEPT_DECAY = 10
    C_AVERAGE = 11
    C_TOL = 12
    C_PATIENCE = 13
    C_STOPPING_RULE = 14
    C_TRAIN_COUNT = 15
    C_WSCALE_MIN = 16
    C_SHUFFLE = 17
    S_INTERCEPT = 0
    S_WSCALE = 1
    S_AVERAGE_A = 2
    S_AVERAGE_B = 3
    S_AVERAGE_INTERCEPT = 4
    S_U = 5
    S_T = 6
    S_ETA = 7
    S_BEST = 8
    S_BAD_EPOCHS = 9
    S_SUMLOSS = 10
    S_NONFINITE = 11
    S_CONVERGED = 12
    S_SQ_NORM = 13
    S_L1_NORM = 14
    S_OBJECTIVE = 15
    HUBER = 1
    EPSILON_INSENSITIVE = 2
    SQUARED_EPSILON_INSENSITIVE = 3
    L1 = 1
    L2 = 2
    ELASTICNET = 3
    OPTIMAL = 2
    INVSCALING = 3
    ADAPTIVE = 4
    CHECK_EVERY = 4096
    LANES_MIN_FEATURES = 8

LAYOUT = {
    "C_LOSS": C_LOSS, "C_EPSILON": C_EPSILON, "C_PENALTY": C_PENALTY, "C_ALPHA": C_ALPHA,
    "C_L1_RATIO": C_L1_RATIO, "C_RATE": C_RATE, "C_ETA0": C_ETA0, "C_POWER_T": C_POWER_T,
    "C_OPTIMAL_INIT": C_OPTIMAL_INIT, "C_FIT_INTERCEPT": C_FIT_INTERCEPT,
    "C_INTERCEPT_DECAY": C_INTERCEPT_DECAY, "C_AVERAGE": C_AVERAGE, "C_TOL": C_TOL,
    "C_PATIENCE": C_PATIENCE, "C_STOPPING_RULE": C_STOPPING_RULE, "C_TRAIN_COUNT": C_TRAIN_COUNT,
    "C_WSCALE_MIN": C_WSCALE_MIN, "C_SHUFFLE": C_SHUFFLE,
    "S_INTERCEPT": S_INTERCEPT, "S_WSCALE": S_WSCALE, "S_AVERAGE_A": S_AVERAGE_A,
    "S_AVERAGE_B": S_AVERAGE_B, "S_AVERAGE_INTERCEPT": S_AVERAGE_INTERCEPT, "S_U": S_U, "S_T": S_T,
    "S_ETA": S_ETA, "S_BEST": S_BEST, "S_BAD_EPOCHS": S_BAD_EPOCHS, "S_SUMLOSS": S_SUMLOSS,
    "S_NONFINITE": S_NONFINITE, "S_CONVERGED": S_CONVERGED, "S_SQ_NORM": S_SQ_NORM,
    "S_L1_NORM": S_L1_NORM, "S_OBJECTIVE": S_OBJECTIVE,
}

cdef double MAX_DLOSS = 1e12


cdef inline double _narrow(double x, bint single) noexcept nogil:
    # x rounded to float32 where scikit-learn's float32 kernel holds it in a float.
    return <double>(<float>x) if single else x

cdef double MAX_AFFINE_LOSS = 0.5 * 1e12 * 1e12
cdef enum:
    SQUARED_ERROR = 0
    NO_PENALTY = 0
    AFFINE_BLOCK = 4096
    AFFINE_MIN_SAMPLES = 2 * 4096


cdef inline double _rate(int rate, double eta, double eta0, double power_t, double alpha, double optimal_init,
                         double t) noexcept nogil:
    if rate == OPTIMAL:
        return 1.0 / (alpha * (optimal_init + t - 1.0))
    if rate == INVSCALING:
        if power_t == 0.25:
            return eta0 / sqrt(sqrt(t))
        if power_t == 0.5:
            return eta0 / sqrt(t)
        return eta0 / pow(t, power_t)
    return eta


cdef void _compose_block(const floating[:, ::1] X, const floating[::1] y, const floating[::1] sample_weight,
                         bint weighted, int64_t[::1] order, bint visits, Py_ssize_t n, Py_ssize_t k, double t0,
                         double eta, int rate, double eta0, double power_t, double alpha, double optimal_init,
                         bint shrinks, bint fit_intercept, double decay, bint penalised, double[:, ::1] maps,
                         double[:, ::1] stats) noexcept nogil:
    cdef double a00 = 1.0, a01 = 0.0, a10 = 0.0, a11 = 1.0, v0 = 0.0, v1 = 0.0
    cdef double s_aa00 = 0.0, s_aa01 = 0.0, s_aa11 = 0.0, s_ae0 = 0.0, s_ae1 = 0.0, s_ee = 0.0
    cdef double s_gg00 = 0.0, s_gg01 = 0.0, s_gg11 = 0.0, s_gh0 = 0.0, s_gh1 = 0.0, s_hh = 0.0
    cdef double x, yi, r0, r1, e, eta_i, step, c, kx, kd, ww, wb, wy, bw, bb, by, n00, n01, n0, n10, n11, n1
    cdef Py_ssize_t pos, i
    cdef Py_ssize_t start = k * AFFINE_BLOCK
    cdef Py_ssize_t end = min(n, start + AFFINE_BLOCK)
    cdef double rates[AFFINE_BLOCK]
    for pos in range(start, end):
        rates[pos - start] = _rate(rate, eta, eta0, power_t, alpha, optimal_init, t0 + pos)
    for pos in range(start, end):
        i = order[pos] if visits else pos
        x = X[i, 0]
        yi = y[i]
        r0 = x * a00 + a10
        r1 = x * a01 + a11
        e = x * v0 + v1 - yi
        s_aa00 += r0 * r0
        s_aa01 += r0 * r1
        s_aa11 += r1 * r1
        s_ae0 += r0 * e
        s_ae1 += r1 * e
        s_ee += e * e
        if penalised:
            s_gg00 += a00 * a00
            s_gg01 += a00 * a01
            s_gg11 += a01 * a01
            s_gh0 += a00 * v0
            s_gh1 += a01 * v0
            s_hh += v0 * v0
        eta_i = rates[pos - start]
        step = eta_i * sample_weight[i] if weighted else eta_i
        c = 1.0
        if shrinks:
            c = 1.0 - eta_i * alpha
            if not c > 0.0:
                c = 0.0
        kx = step * x
        ww = c - kx * x
        wb = -kx
        wy = kx * yi
        n00 = ww * a00 + wb * a10
        n01 = ww * a01 + wb * a11
        n0 = ww * v0 + wb * v1 + wy
        if fit_intercept:
            kd = step * decay
            bw = -kd * x
            bb = 1.0 - kd
            by = kd * yi
            n10 = bw * a00 + bb * a10
            n11 = bw * a01 + bb * a11
            n1 = bw * v0 + bb * v1 + by
            a10 = n10
            a11 = n11
            v1 = n1
        a00 = n00
        a01 = n01
        v0 = n0
    maps[k, 0] = a00
    maps[k, 1] = a01
    maps[k, 2] = a10
    maps[k, 3] = a11
    maps[k, 4] = v0
    maps[k, 5] = v1
    stats[k, 0] = s_aa00
    stats[k, 1] = s_aa01
    stats[k, 2] = s_aa11
    stats[k, 3] = s_ae0
    stats[k, 4] = s_ae1
    stats[k, 5] = s_ee
    stats[k, 6] = s_gg00
    stats[k, 7] = s_gg01
    stats[k, 8] = s_gg11
    stats[k, 9] = s_gh0
    stats[k, 10] = s_gh1
    stats[k, 11] = s_hh


cdef bint _affine_epoch(const floating[:, ::1] X, const floating[::1] y, const floating[::1] sample_weight,
                        bint weighted, int64_t[::1] order, bint visits, Py_ssize_t n, double t0, double eta,
                        int rate, double eta0, double power_t, double alpha, double optimal_init, bint shrinks,
                        bint fit_intercept, double decay, bint penalised, double *w, double *b,
                        double *objective, double *sumloss, double[:, ::1] maps,
                        double[:, ::1] stats) noexcept nogil:
    # The blocks one after another: the numba kernel runs them in parallel, with the same bits.
    cdef Py_ssize_t k
    cdef double loss, ww = w[0], bb = b[0], nw
    for k in range(maps.shape[0]):
        _compose_block(X, y, sample_weight, weighted, order, visits, n, k, t0, eta, rate, eta0, power_t, alpha,
                       optimal_init, shrinks, fit_intercept, decay, penalised, maps, stats)
    objective[0] = 0.0
    sumloss[0] = 0.0
    for k in range(maps.shape[0]):
        loss = 0.5 * ((stats[k, 0] * ww * ww + 2.0 * stats[k, 1] * ww * bb + stats[k, 2] * bb * bb)
                      + 2.0 * (stats[k, 3] * ww + stats[k, 4] * bb) + stats[k, 5])
        if not loss < MAX_AFFINE_LOSS:
            return False
        sumloss[0] += loss
        objective[0] += loss
        if penalised:
            objective[0] += 0.5 * alpha * ((stats[k, 6] * ww * ww + 2.0 * stats[k, 7] * ww * bb
                                            + stats[k, 8] * bb * bb)
                                           + 2.0 * (stats[k, 9] * ww + stats[k, 10] * bb) + stats[k, 11])
        if fabs(maps[k, 0]) + fabs(maps[k, 1]) > 1.0 or fabs(maps[k, 2]) + fabs(maps[k, 3]) > 1.0:
            return False
        nw = maps[k, 0] * ww + maps[k, 1] * bb + maps[k, 4]
        bb = maps[k, 2] * ww + maps[k, 3] * bb + maps[k, 5]
        ww = nw
    w[0] = ww
    b[0] = bb
    return True


cdef inline double _loss(int loss, double epsilon, double y, double p) noexcept nogil:
    cdef double r, gap
    if loss == HUBER:
        r = fabs(y - p)
        if r <= epsilon:
            return 0.5 * (r * r)
        return epsilon * (r - 0.5 * epsilon)
    if loss == EPSILON_INSENSITIVE:
        gap = fabs(y - p) - epsilon
        return gap if gap > 0 else 0.0
    if loss == SQUARED_EPSILON_INSENSITIVE:
        gap = fabs(y - p) - epsilon
        return gap * gap if gap > 0 else 0.0
    return 0.5 * (p - y) * (p - y)


cdef inline double _dloss(int loss, double epsilon, double y, double p) noexcept nogil:
    cdef double r, z
    if loss == HUBER:
        r = p - y
        if fabs(r) <= epsilon:
            return r
        return epsilon if r >= 0.0 else -epsilon
    if loss == EPSILON_INSENSITIVE:
        if y - p > epsilon:
            return -1.0
        if p - y > epsilon:
            return 1.0
        return 0.0
    if loss == SQUARED_EPSILON_INSENSITIVE:
        z = y - p
        if z > epsilon:
            return -2.0 * (z - epsilon)
        if z < -epsilon:
            return 2.0 * (-z - epsilon)
        return 0.0
    return p - y


cdef inline uint64_t _next_random(uint64_t *rng) noexcept nogil:
    cdef uint64_t z
    rng[0] += 0x9E3779B97F4A7C15ULL
    z = rng[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef void _shuffle(int64_t[::1] order, uint64_t *rng) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef int64_t tmp
    cdef double u
    for i in range(order.shape[0] - 1, 0, -1):
        u = <double>(_next_random(rng) >> 11) * (1.0 / 9007199254740992.0)
        j = <Py_ssize_t>(u * (i + 1))
        if j > i:
            j = i
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp


cdef inline double _tree(double *s) noexcept nogil:
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


cdef inline double _tree16(double *s) noexcept nogil:
    cdef double t[8]
    cdef int l
    for l in range(8):
        t[l] = s[l] + s[l + 8]
    return _tree(t)


cdef inline double _axpy_squares(floating[::1] coef, const floating[:, ::1] X, Py_ssize_t i,
                                 double step) noexcept nogil:
    # numba's _axpy_squares16: coef += step * X[i]; the new coef's squares in the same lanes.
    cdef Py_ssize_t d = coef.shape[0], j
    cdef double s[16]
    cdef double c
    for j in range(16):
        s[j] = 0.0
    for j in range(d):
        coef[j] = coef[j] + X[i, j] * step
        c = coef[j]
        s[j & 15] += c * c
    return _tree16(s)


cdef inline void _add_lanes(floating[::1] coef, const floating[:, ::1] X, Py_ssize_t i, double step,
                            bint track, double *squares, double *absolutes) noexcept nogil:
    cdef Py_ssize_t d = coef.shape[0], j = 0
    cdef double q0 = 0.0, q1 = 0.0, q2 = 0.0, q3 = 0.0
    cdef double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
    cdef double c0, c1, c2, c3
    if not track:
        for j in range(d):
            coef[j] = coef[j] + X[i, j] * step
        squares[0] = 0.0
        absolutes[0] = 0.0
        return
    while j + 4 <= d:
        coef[j] = coef[j] + X[i, j] * step
        coef[j + 1] = coef[j + 1] + X[i, j + 1] * step
        coef[j + 2] = coef[j + 2] + X[i, j + 2] * step
        coef[j + 3] = coef[j + 3] + X[i, j + 3] * step
        c0 = coef[j]
        c1 = coef[j + 1]
        c2 = coef[j + 2]
        c3 = coef[j + 3]
        q0 += c0 * c0
        q1 += c1 * c1
        q2 += c2 * c2
        q3 += c3 * c3
        a0 += fabs(c0)
        a1 += fabs(c1)
        a2 += fabs(c2)
        a3 += fabs(c3)
        j += 4
    while j < d:
        coef[j] = coef[j] + X[i, j] * step
        c0 = coef[j]
        q0 += c0 * c0
        a0 += fabs(c0)
        j += 1
    squares[0] = (q0 + q1) + (q2 + q3)
    absolutes[0] = (a0 + a1) + (a2 + a3)


def sgd_regressor_epochs(const floating[:, ::1] X, const floating[::1] data, const index_t[::1] indices,
                         const index_t[::1] indptr, bint sparse, const floating[::1] y,
                         const floating[::1] sample_weight, int64_t[::1] order, floating[::1] coef,
                         floating[::1] average_coef, floating[::1] q, double[::1] previous,
                         double[::1] state, const double[::1] config, uint64_t[::1] rng, Py_ssize_t max_epochs,
                         const int64_t[::1] stop):
    """Up to ``max_epochs`` epochs over the rows ``order``; returns how many ran."""
    cdef Py_ssize_t d = coef.shape[0]
    cdef bint visits = order.shape[0] > 0
    cdef Py_ssize_t n = order.shape[0] if visits else y.shape[0]
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef int loss = <int>config[C_LOSS]
    cdef double epsilon = config[C_EPSILON]
    cdef int penalty = <int>config[C_PENALTY]
    cdef double alpha = config[C_ALPHA], l1_ratio = config[C_L1_RATIO]
    cdef int rate = <int>config[C_RATE]
    cdef double eta0 = config[C_ETA0], power_t = config[C_POWER_T]
    cdef double optimal_init = config[C_OPTIMAL_INIT]
    cdef bint fit_intercept = config[C_FIT_INTERCEPT] != 0
    cdef double decay = config[C_INTERCEPT_DECAY]
    cdef long average = <long>config[C_AVERAGE]
    cdef double tol = config[C_TOL]
    cdef long patience = <long>config[C_PATIENCE]
    cdef bint rule = config[C_STOPPING_RULE] != 0
    cdef double train_count = config[C_TRAIN_COUNT]
    cdef double wscale_min = config[C_WSCALE_MIN]
    cdef bint shuffled = config[C_SHUFFLE] != 0
    cdef bint shrinks = penalty == L2 or penalty == ELASTICNET
    cdef bint truncates = penalty == L1 or penalty == ELASTICNET
    cdef bint penalised = penalty != 0
    cdef bint single = floating is float
    cdef bint lanes = (not sparse) and d >= LANES_MIN_FEATURES and not single
    cdef bint affine = ((not sparse) and not single and d == 1 and loss == SQUARED_ERROR
                        and (penalty == NO_PENALTY or penalty == L2) and average == 0 and n >= AFFINE_MIN_SAMPLES)
    cdef Py_ssize_t blocks = (n + AFFINE_BLOCK - 1) // AFFINE_BLOCK if affine else 0
    cdef double[:, ::1] maps = np.empty((blocks, 6))
    cdef double[:, ::1] stats = np.empty((blocks, 12))
    cdef double w_end, b_end
    cdef bint done

    cdef double intercept = state[S_INTERCEPT], wscale = state[S_WSCALE]
    cdef double avg_a = state[S_AVERAGE_A], avg_b = state[S_AVERAGE_B]
    cdef double avg_intercept = state[S_AVERAGE_INTERCEPT], u = state[S_U]
    cdef double t = state[S_T], eta = state[S_ETA], best = state[S_BEST]
    cdef long bad = <long>state[S_BAD_EPOCHS]
    cdef double sq_norm = state[S_SQ_NORM], l1_norm = state[S_L1_NORM]
    cdef uint64_t generator = rng[0]

    cdef Py_ssize_t epochs = 0, epoch, k, i, j, m, lo, hi
    cdef double sumloss, objective, dot, yi, p, value, norm, dloss, update, shrink, step
    cdef double squares, absolutes, kk, shift, z, mean, scale, mu, fold_a, fold_b
    cdef bint interrupted, finite

    with nogil:
        for epoch in range(max_epochs):
            if stop[0]:
                break
            if shuffled:
                _shuffle(order, &generator)
            sumloss = 0.0
            objective = 0.0
            interrupted = False
            done = False
            if affine:
                w_end = coef[0] * wscale
                b_end = intercept
                done = _affine_epoch(X, y, sample_weight, weighted, order, visits, n, t, eta, rate, eta0, power_t,
                                     alpha, optimal_init, shrinks, fit_intercept, decay, penalised, &w_end, &b_end,
                                     &objective, &sumloss, maps, stats)
                if done:
                    coef[0] = w_end
                    wscale = 1.0
                    if fit_intercept:
                        intercept = b_end
                    sq_norm = <double>coef[0] * coef[0]
                    l1_norm = fabs(<double>coef[0])
                    t += n
                    eta = _rate(rate, eta, eta0, power_t, alpha, optimal_init, t - 1.0)
                else:
                    sumloss = 0.0
                    objective = 0.0
            for k in range(0 if done else n):
                if k % CHECK_EVERY == CHECK_EVERY - 1 and stop[0]:
                    interrupted = True
                    break
                i = order[k] if visits else k
                if sparse:
                    lo = indptr[i]
                    hi = indptr[i + 1]
                else:
                    lo = 0
                    hi = d
                dot = 0.0
                if sparse:
                    for m in range(lo, hi):
                        dot += coef[indices[m]] * data[m]
                else:
                    for j in range(d):
                        dot += coef[j] * X[i, j]
                yi = y[i]
                p = _narrow(dot * wscale, single) + intercept
                if rate == OPTIMAL:
                    eta = 1.0 / (alpha * (optimal_init + t - 1.0))
                elif rate == INVSCALING:
                    eta = eta0 / pow(t, power_t)
                value = _loss(loss, epsilon, yi, p)
                sumloss += value
                objective += value
                if penalised:
                    norm = sqrt(sq_norm)
                    objective += alpha * ((1.0 - l1_ratio) * 0.5 * (norm * norm) + l1_ratio * l1_norm)
                dloss = _dloss(loss, epsilon, yi, p)
                if dloss < -MAX_DLOSS:
                    dloss = -MAX_DLOSS
                elif dloss > MAX_DLOSS:
                    dloss = MAX_DLOSS
                update = -eta * dloss
                if weighted:
                    update *= sample_weight[i]
                if shrinks:
                    shrink = 1.0 - (1.0 - l1_ratio) * eta * alpha
                    if not shrink > 0.0:
                        shrink = 0.0
                    shrink = _narrow(shrink, single)
                    wscale *= shrink
                    sq_norm *= _narrow(shrink * shrink, single)
                    l1_norm *= shrink
                    if wscale < wscale_min:
                        if average > 0:
                            fold_a = _narrow(avg_a, single)
                            fold_b = _narrow(1.0 / avg_b, single)
                            for j in range(d):
                                average_coef[j] = _narrow(average_coef[j] + _narrow(fold_a * coef[j], single),
                                                          single) * fold_b
                            avg_a = 0.0
                            avg_b = 1.0
                        scale = _narrow(wscale, single)
                        for j in range(d):
                            coef[j] = coef[j] * scale
                        wscale = 1.0
                if update != 0.0:
                    scale = _narrow(wscale, single)
                    step = _narrow(_narrow(update, single) / scale, single)
                    squares = 0.0
                    absolutes = 0.0
                    if sparse:
                        for m in range(lo, hi):
                            j = indices[m]
                            coef[j] = coef[j] + data[m] * step
                            squares += <double>(coef[j] * coef[j])
                            absolutes += fabs(<double>coef[j])
                    elif lanes and penalised and l1_ratio == 0.0:
                        squares = _axpy_squares(coef, X, i, step)
                    elif lanes:
                        _add_lanes(coef, X, i, step, penalised, &squares, &absolutes)
                    else:
                        for j in range(d):
                            coef[j] = coef[j] + X[i, j] * step
                            squares += <double>(coef[j] * coef[j])
                            absolutes += fabs(<double>coef[j])
                    sq_norm = squares * _narrow(scale * scale, single)
                    l1_norm = absolutes * scale
                    if fit_intercept:
                        intercept += update * decay
                if 0 < average <= t:
                    kk = t - average + 1.0
                    shift = -_narrow(update, single) / wscale
                    if sparse:
                        for m in range(lo, hi):
                            j = indices[m]
                            average_coef[j] = average_coef[j] + avg_a * data[m] * shift
                    else:
                        for j in range(d):
                            average_coef[j] = average_coef[j] + avg_a * X[i, j] * shift
                    mu = 1.0 / _narrow(kk, single)
                    if kk > 1.0:
                        avg_b /= 1.0 - mu
                    avg_a += mu * avg_b * wscale
                    avg_intercept += (intercept - avg_intercept) / kk
                if truncates:
                    u += l1_ratio * eta * alpha
                    for m in range(lo, hi):
                        j = indices[m] if sparse else m
                        z = coef[j]
                        if wscale * z > 0.0:
                            coef[j] = max(0.0, z - (u + q[j]) / wscale)
                        elif wscale * z < 0.0:
                            coef[j] = min(0.0, z + (u - q[j]) / wscale)
                        q[j] = q[j] + wscale * (coef[j] - z)
                t += 1.0
            if interrupted:
                break
            epochs += 1
            state[S_SUMLOSS] = sumloss
            state[S_OBJECTIVE] = objective
            finite = isfinite(intercept)
            for j in range(d):
                if not isfinite(coef[j]):
                    finite = False
            if not finite:
                state[S_NONFINITE] = 1.0
                break
            for j in range(d):
                previous[j] = coef[j] * wscale
            previous[d] = intercept
            if rule:
                mean = objective / train_count
                if tol > -INFINITY and mean > best - tol:
                    bad += 1
                else:
                    bad = 0
                if mean < best:
                    best = mean
                if bad >= patience:
                    if rate == ADAPTIVE and eta > 1e-6:
                        eta = eta / 5.0
                        bad = 0
                    else:
                        state[S_CONVERGED] = 1.0
                        break

    rng[0] = generator
    state[S_INTERCEPT] = intercept
    state[S_WSCALE] = wscale
    state[S_AVERAGE_A] = avg_a
    state[S_AVERAGE_B] = avg_b
    state[S_AVERAGE_INTERCEPT] = avg_intercept
    state[S_U] = u
    state[S_T] = t
    state[S_ETA] = eta
    state[S_BEST] = best
    state[S_BAD_EPOCHS] = bad
    state[S_SQ_NORM] = sq_norm
    state[S_L1_NORM] = l1_norm
    return epochs
