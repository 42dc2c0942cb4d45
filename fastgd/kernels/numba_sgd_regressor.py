"""Numba kernel of ``fastgd.SGDRegressor``; mirrors fastgd/_sgd_regressor_reference.py
(the operation order, the slots of sgd_regressor_layout.py) and is mirrored by
fastgd_ext/_sgd_regressor.pyx.

One sequential chain of per-sample steps (each step reads the weights the
previous one wrote), so one thread, without the GIL. Dense rows visit every
feature; CSR rows only their stored entries (``sparse``), as scikit-learn
does (its L1 penalty, too, touches only the row's features).

What differs from the reference's operation order (within rounding, never
more): with at least ``LANES_MIN_FEATURES`` dense float64 features, the
tracked norms of the objective (for L2 the squared norm in 16 lanes, two
SIMD vectors: ``_numba_lanes._axpy_squares16``; with an L1 share both norms
in four scalar partial sums). The parameters stay scikit-learn's bits: the
dot product and every update keep its order (a fit that grows chaotically,
"optimal" at the default alpha on unscaled data, turns any other order's
last ulp into differences of order 1); only the stopping rule's objective
may differ in its last bits. And one-feature
squared-error SGD with L2 or no penalty and no averaging, from
``AFFINE_MIN_SAMPLES`` rows, by affine maps: a step is linear in the true
``(w, b)`` (``w ← c·w − k·x·r``, ``b ← b − decay·k·r`` with ``r = x·w + b − y``,
``k = eta·sample_weight``, ``c`` the L2 shrink), so each block of
``AFFINE_BLOCK`` steps composes into one map of its start (blocks in
parallel), and the block's summed loss and penalty are quadratic forms of
that start, summed alongside; the epoch then applies the maps in order. A
block whose loss could hold a clipped derivative (``MAX_AFFINE_LOSS``), or
whose map is not a contraction in the max norm, sends the epoch back to the
step-by-step loop. Everything else is the
reference's order, so that below that the results are scikit-learn's bit for
bit: a fit that grows chaotically (a large "optimal" step, say) turns a
one-ulp difference into more than 1e-9, and a square root for ``t ** 0.25``
or a reciprocal for ``/ wscale`` were measured to do so.
"""

from __future__ import annotations

import math

import numpy as np

from fastgd.kernels._numba_jit import jit, prange
from fastgd.kernels._numba_lanes import _axpy_squares16
from fastgd.kernels.sgd_regressor_layout import (
    ADAPTIVE,
    C_ALPHA,
    C_AVERAGE,
    C_EPSILON,
    C_ETA0,
    C_FIT_INTERCEPT,
    C_INTERCEPT_DECAY,
    C_L1_RATIO,
    C_LOSS,
    C_OPTIMAL_INIT,
    C_PATIENCE,
    C_PENALTY,
    C_POWER_T,
    C_RATE,
    C_SHUFFLE,
    C_STOPPING_RULE,
    C_TOL,
    C_TRAIN_COUNT,
    C_WSCALE_MIN,
    ELASTICNET,
    EPSILON_INSENSITIVE,
    HUBER,
    INVSCALING,
    L1,
    L2,
    NO_PENALTY,
    OPTIMAL,
    S_AVERAGE_A,
    S_AVERAGE_B,
    S_AVERAGE_INTERCEPT,
    S_BAD_EPOCHS,
    S_BEST,
    S_CONVERGED,
    S_ETA,
    S_INTERCEPT,
    S_L1_NORM,
    S_NONFINITE,
    S_OBJECTIVE,
    S_SQ_NORM,
    S_SUMLOSS,
    S_T,
    S_U,
    S_WSCALE,
    SQUARED_EPSILON_INSENSITIVE,
    SQUARED_ERROR,
)

MAX_DLOSS = 1e12
# One-feature squared-error SGD (L2 or no penalty, no averaging) on at least
# AFFINE_MIN_SAMPLES rows composes each block of AFFINE_BLOCK steps into one
# affine map of the true (w, b), blocks in parallel from PARALLEL_SAMPLES rows
# on; the epoch's losses come from quadratic forms summed with the maps.
AFFINE_BLOCK = 4096
AFFINE_MIN_SAMPLES = 2 * AFFINE_BLOCK
PARALLEL_SAMPLES = 1 << 18
# 0.5 * MAX_DLOSS**2: a block whose loss is below this had no clipped step.
MAX_AFFINE_LOSS = 0.5 * MAX_DLOSS * MAX_DLOSS
# From this many features a dense row's dot product and the tracked norms sum
# in four interleaved partial sums (within rounding of scikit-learn's one
# sum; below it, its order exactly).
LANES_MIN_FEATURES = 8
# The stop flag is read every this many samples.
CHECK_EVERY = 4096


@jit(inline="always")
def _add_lanes(coef, X, i, step, track):
    """``coef += step * X[i]``; with ``track``, also the squared and absolute
    sums of the new ``coef`` (the tracked norms), each in four interleaved
    partial sums (without, the loop has no chain at all)."""
    d = coef.shape[0]
    if not track:
        for j in range(d):
            coef[j] += X[i, j] * step
        return 0.0, 0.0
    q0 = q1 = q2 = q3 = 0.0
    a0 = a1 = a2 = a3 = 0.0
    j = 0
    while j + 4 <= d:
        coef[j] += X[i, j] * step
        coef[j + 1] += X[i, j + 1] * step
        coef[j + 2] += X[i, j + 2] * step
        coef[j + 3] += X[i, j + 3] * step
        c0 = float(coef[j])  # as stored (float32 rounds)
        c1 = float(coef[j + 1])
        c2 = float(coef[j + 2])
        c3 = float(coef[j + 3])
        q0 += c0 * c0
        q1 += c1 * c1
        q2 += c2 * c2
        q3 += c3 * c3
        a0 += abs(c0)
        a1 += abs(c1)
        a2 += abs(c2)
        a3 += abs(c3)
        j += 4
    while j < d:
        coef[j] += X[i, j] * step
        c0 = float(coef[j])
        q0 += c0 * c0
        a0 += abs(c0)
        j += 1
    return (q0 + q1) + (q2 + q3), (a0 + a1) + (a2 + a3)


@jit(inline="always")
def _loss(loss, epsilon, y, p):
    if loss == HUBER:
        r = abs(y - p)
        if r <= epsilon:
            return 0.5 * (r * r)
        return epsilon * (r - 0.5 * epsilon)
    if loss == EPSILON_INSENSITIVE:
        gap = abs(y - p) - epsilon
        return gap if gap > 0 else 0.0
    if loss == SQUARED_EPSILON_INSENSITIVE:
        gap = abs(y - p) - epsilon
        return gap * gap if gap > 0 else 0.0
    return 0.5 * (p - y) * (p - y)


@jit(inline="always")
def _dloss(loss, epsilon, y, p):
    if loss == HUBER:
        r = p - y
        if abs(r) <= epsilon:
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


@jit(inline="always")
def _next_random(rng):
    rng[0] += np.uint64(0x9E3779B97F4A7C15)
    z = rng[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@jit
def _shuffle(order, rng):
    for i in range(order.shape[0] - 1, 0, -1):
        u = float(_next_random(rng) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
        j = min(int(u * (i + 1)), i)
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp


@jit(inline="always")
def _narrow(x, single):
    """``x`` rounded to float32 where scikit-learn's float32 kernel holds it in a float."""
    return float(np.float32(x)) if single else x


@jit
def _fold_scale(coef, average_coef, averaging, avg_a, avg_b, wscale, single):
    # BLAS axpy and scal in the weights' dtype, as scikit-learn's reset_wscale.
    if averaging:
        a = _narrow(avg_a, single)
        inv_b = _narrow(1.0 / avg_b, single)
        for j in range(coef.shape[0]):
            average_coef[j] = _narrow(average_coef[j] + _narrow(a * coef[j], single), single) * inv_b
    scale = _narrow(wscale, single)
    for j in range(coef.shape[0]):
        coef[j] = coef[j] * scale


@jit(inline="always")
def _rate(rate, eta, eta0, power_t, alpha, optimal_init, t):
    if rate == OPTIMAL:
        return 1.0 / (alpha * (optimal_init + t - 1.0))
    if rate == INVSCALING:
        # In the affine path only (its results are within rounding anyway):
        # two square roots cost a third of pow.
        if power_t == 0.25:
            return eta0 / math.sqrt(math.sqrt(t))
        if power_t == 0.5:
            return eta0 / math.sqrt(t)
        return eta0 / math.pow(t, power_t)
    return eta


@jit(inline="always")
def _compose_block(X, y, sample_weight, weighted, order, visits, n, k, t0, eta, rate, eta0, power_t, alpha,
                   optimal_init, shrinks, fit_intercept, decay, penalised, maps, stats):
    """Block ``k``'s steps as one affine map of the true ``(w, b)`` at its start
    (``maps[k]``: ``A`` row by row, then the offset), and the sums that give its
    loss and penalty as quadratic forms of that start (``stats[k]``).

    Step ``i`` with ``s = eta_i·sw_i``, ``c`` the shrink and ``r = x·w + b − y``:
    ``w ← (c − s·x²)·w − s·x·b + s·x·y`` and ``b ← −d·s·x·w + (1 − d·s)·b + d·s·y``
    (``d`` the intercept decay): the prefix map's rows update by these
    coefficients, computed off the chain, so that each step adds one multiply
    and one add of latency to it."""
    start = k * AFFINE_BLOCK
    end = min(n, start + AFFINE_BLOCK)
    # The block's step sizes first, in a loop without a chain (the square
    # roots and divisions vectorise), then the composition.
    rates = np.empty(end - start)
    for pos in range(start, end):
        rates[pos - start] = _rate(rate, eta, eta0, power_t, alpha, optimal_init, t0 + pos)
    a00 = 1.0
    a01 = 0.0
    a10 = 0.0
    a11 = 1.0
    v0 = 0.0
    v1 = 0.0
    s_aa00 = s_aa01 = s_aa11 = s_ae0 = s_ae1 = s_ee = 0.0
    s_gg00 = s_gg01 = s_gg11 = s_gh0 = s_gh1 = s_hh = 0.0
    for pos in range(start, end):
        i = order[pos] if visits else pos
        x = float(X[i, 0])
        yi = float(y[i])
        # The residual before the step as a function of the block's start s0:
        # p − y = r0·w0 + r1·b0 + e.
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
        c = max(0.0, 1.0 - eta_i * alpha) if shrinks else 1.0  # the weight scales the step, not the shrink
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
            a10, a11, v1 = bw * a00 + bb * a10, bw * a01 + bb * a11, bw * v0 + bb * v1 + by
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


@jit(nogil=True, parallel=True)
def _compose_parallel(X, y, sample_weight, weighted, order, visits, n, t0, eta, rate, eta0, power_t, alpha,
                      optimal_init, shrinks, fit_intercept, decay, penalised, maps, stats):
    for k in prange(maps.shape[0]):
        _compose_block(X, y, sample_weight, weighted, order, visits, n, k, t0, eta, rate, eta0, power_t, alpha,
                       optimal_init, shrinks, fit_intercept, decay, penalised, maps, stats)


@jit(nogil=True)
def _affine_epoch(X, y, sample_weight, weighted, order, visits, n, t0, eta, rate, eta0, power_t, alpha,
                  optimal_init, shrinks, fit_intercept, decay, penalised, w, b, maps, stats):
    """One epoch of one-feature squared-error SGD (L2 or no penalty, no
    averaging) by affine block maps: ``(w, b, objective, sumloss, done)``;
    ``done`` is False where a residual may have reached the derivative's clip
    (the caller then takes the epoch step by step)."""
    if n >= PARALLEL_SAMPLES:
        _compose_parallel(X, y, sample_weight, weighted, order, visits, n, t0, eta, rate, eta0, power_t, alpha,
                          optimal_init, shrinks, fit_intercept, decay, penalised, maps, stats)
    else:
        for k in range(maps.shape[0]):
            _compose_block(X, y, sample_weight, weighted, order, visits, n, k, t0, eta, rate, eta0, power_t,
                           alpha, optimal_init, shrinks, fit_intercept, decay, penalised, maps, stats)
    objective = 0.0
    sumloss = 0.0
    half_penalty = 0.5 * alpha
    for k in range(maps.shape[0]):
        st = stats[k]
        loss = 0.5 * ((st[0] * w * w + 2.0 * st[1] * w * b + st[2] * b * b)
                      + 2.0 * (st[3] * w + st[4] * b) + st[5])
        # Every residual of the block is below the clip when their squares' sum is.
        if not loss < MAX_AFFINE_LOSS:
            return w, b, objective, sumloss, False
        sumloss += loss
        objective += loss
        if penalised:
            objective += half_penalty * ((st[6] * w * w + 2.0 * st[7] * w * b + st[8] * b * b)
                                         + 2.0 * (st[9] * w + st[10] * b) + st[11])
        m = maps[k]
        # A block that can stretch (w, b) would stretch the maps' rounding
        # too (the early epochs of a large "optimal" step): scikit-learn's
        # bits matter there, so the epoch goes step by step.
        if abs(m[0]) + abs(m[1]) > 1.0 or abs(m[2]) + abs(m[3]) > 1.0:
            return w, b, objective, sumloss, False
        w, b = m[0] * w + m[1] * b + m[4], m[2] * w + m[3] * b + m[5]
    return w, b, objective, sumloss, True


@jit(nogil=True)
def sgd_regressor_epochs(X, data, indices, indptr, sparse, y, sample_weight, order, coef, average_coef, q,
                         previous, state, config, rng, max_epochs, stop):
    d = coef.shape[0]
    # An empty order visits 0..n-1; empty weights are all ones (neither is
    # then allocated: for 10^6 one-feature rows they cost a third of an epoch).
    visits = order.shape[0] > 0
    n = order.shape[0] if visits else y.shape[0]
    weighted = sample_weight.shape[0] > 0
    loss = int(config[C_LOSS])
    epsilon = config[C_EPSILON]
    penalty = int(config[C_PENALTY])
    alpha = config[C_ALPHA]
    l1_ratio = config[C_L1_RATIO]
    rate = int(config[C_RATE])
    eta0 = config[C_ETA0]
    power_t = config[C_POWER_T]
    optimal_init = config[C_OPTIMAL_INIT]
    fit_intercept = config[C_FIT_INTERCEPT] != 0
    decay = config[C_INTERCEPT_DECAY]
    average = int(config[C_AVERAGE])
    tol = config[C_TOL]
    patience = int(config[C_PATIENCE])
    rule = config[C_STOPPING_RULE] != 0
    train_count = config[C_TRAIN_COUNT]
    wscale_min = config[C_WSCALE_MIN]
    shuffled = config[C_SHUFFLE] != 0
    shrinks = penalty == L2 or penalty == ELASTICNET
    truncates = penalty == L1 or penalty == ELASTICNET

    intercept = state[S_INTERCEPT]
    wscale = state[S_WSCALE]
    avg_a = state[S_AVERAGE_A]
    avg_b = state[S_AVERAGE_B]
    avg_intercept = state[S_AVERAGE_INTERCEPT]
    u = state[S_U]
    t = state[S_T]
    eta = state[S_ETA]
    best = state[S_BEST]
    bad = int(state[S_BAD_EPOCHS])
    sq_norm = state[S_SQ_NORM]
    l1_norm = state[S_L1_NORM]
    penalised = penalty != 0
    # float32: scikit-learn's float32 kernel rounds some values to float (see
    # _narrow); the lanes and the affine maps are float64 paths only.
    single = coef.itemsize == 4
    lanes = not sparse and d >= LANES_MIN_FEATURES and not single

    affine = (not sparse and not single and d == 1 and loss == SQUARED_ERROR and (penalty == NO_PENALTY or penalty == L2)
              and average == 0 and n >= AFFINE_MIN_SAMPLES)
    blocks = (n + AFFINE_BLOCK - 1) // AFFINE_BLOCK if affine else 0
    maps = np.empty((blocks, 6))
    stats = np.empty((blocks, 12))

    epochs = 0
    for _ in range(max_epochs):
        if stop[0]:
            break
        if shuffled:
            _shuffle(order, rng)
        sumloss = 0.0
        objective = 0.0
        interrupted = False
        done = False
        if affine:
            w_end, b_end, objective, sumloss, done = _affine_epoch(
                X, y, sample_weight, weighted, order, visits, n, t, eta, rate, eta0, power_t, alpha, optimal_init,
                shrinks, fit_intercept, decay, penalised, float(coef[0]) * wscale, intercept, maps, stats)
            if done:
                coef[0] = w_end
                wscale = 1.0
                intercept = b_end if fit_intercept else intercept
                stored = float(coef[0])
                sq_norm = stored * stored
                l1_norm = abs(stored)
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
            yi = float(y[i])
            p = _narrow(dot * wscale, single) + intercept
            if rate == OPTIMAL:
                eta = 1.0 / (alpha * (optimal_init + t - 1.0))
            elif rate == INVSCALING:
                eta = eta0 / math.pow(t, power_t)
            value = _loss(loss, epsilon, yi, p)
            sumloss += value
            objective += value
            if penalised:
                norm = math.sqrt(sq_norm)
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
                shrink = _narrow(max(0.0, 1.0 - (1.0 - l1_ratio) * eta * alpha), single)
                wscale *= shrink
                sq_norm *= _narrow(shrink * shrink, single)
                l1_norm *= shrink
                if wscale < wscale_min:
                    _fold_scale(coef, average_coef, average > 0, avg_a, avg_b, wscale, single)
                    if average > 0:
                        avg_a = 0.0
                        avg_b = 1.0
                    wscale = 1.0
            if update != 0.0:
                scale = _narrow(wscale, single)
                step = _narrow(_narrow(update, single) / scale, single)
                squares = 0.0
                absolutes = 0.0
                if sparse:
                    for m in range(lo, hi):
                        j = indices[m]
                        coef[j] += data[m] * step
                        squares += coef[j] * coef[j]
                        absolutes += abs(float(coef[j]))
                elif lanes:
                    if penalised and l1_ratio == 0.0:  # L2: the absolute sum is multiplied by 0
                        squares = float(_axpy_squares16(X, i, coef, step))
                    else:
                        squares, absolutes = _add_lanes(coef, X, i, step, penalised)
                else:
                    for j in range(d):
                        coef[j] += X[i, j] * step
                        squares += coef[j] * coef[j]
                        absolutes += abs(float(coef[j]))
                sq_norm = squares * _narrow(scale * scale, single)
                l1_norm = absolutes * scale
                if fit_intercept:
                    intercept += update * decay
            if 0 < average <= t:
                kk = t - average + 1.0
                shift = -_narrow(update, single) / wscale
                if sparse:
                    for m in range(lo, hi):
                        average_coef[indices[m]] += avg_a * data[m] * shift
                else:
                    for j in range(d):
                        average_coef[j] += avg_a * X[i, j] * shift
                mu = 1.0 / _narrow(kk, single)
                if kk > 1.0:
                    avg_b /= 1.0 - mu
                avg_a += mu * avg_b * wscale
                avg_intercept += (intercept - avg_intercept) / kk
            if truncates:
                u += l1_ratio * eta * alpha
                for m in range(lo, hi):
                    j = indices[m] if sparse else m
                    z = float(coef[j])
                    if wscale * z > 0.0:
                        coef[j] = max(0.0, z - (u + q[j]) / wscale)
                    elif wscale * z < 0.0:
                        coef[j] = min(0.0, z + (u - q[j]) / wscale)
                    q[j] += wscale * (coef[j] - z)
            t += 1.0
        if interrupted:
            break
        epochs += 1
        state[S_SUMLOSS] = sumloss
        state[S_OBJECTIVE] = objective
        finite = math.isfinite(intercept)
        for j in range(d):
            if not math.isfinite(coef[j]):
                finite = False
        if not finite:
            state[S_NONFINITE] = 1.0
            break
        for j in range(d):
            previous[j] = coef[j] * wscale
        previous[d] = intercept
        if rule:
            mean = objective / train_count
            if tol > -math.inf and mean > best - tol:
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
