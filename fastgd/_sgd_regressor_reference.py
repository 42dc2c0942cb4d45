"""``SGDRegressor``'s epochs in plain Python: the oracle of the compiled kernels.

One function with the kernels' signature (see
``fastgd/kernels/sgd_regressor_layout.py`` for the slots of ``config`` and
``state``), written for reading: per sample, in this order,

1. ``p = wscale * (x · coef) + intercept``; the step size ``eta`` of the
   schedule at step ``t``; the loss ``ℓ(y, p)`` is added to the epoch's sum,
   and ``ℓ + alpha * penalty`` to its objective (the penalty from the norms
   as tracked: see ``S_SQ_NORM`` in the layout);
2. ``update = -eta * clip(ℓ'(p), ±1e12) * sample_weight``;
3. L2 (and elastic net): ``wscale *= max(0, 1 - (1 - l1_ratio) * eta * alpha)``,
   folded into ``coef`` once it falls below ``wscale_min``;
4. ``coef += x * (update / wscale)``, ``intercept += update * intercept_decay``;
5. averaging (from step ``t = average`` on) by Bottou's representation
   ``mean = (average_coef + a * coef) / b``, so that a step costs O(nnz);
6. L1 (and elastic net): the truncated gradient of Tsuruoka et al. (2009),
   with ``u`` the penalty every weight could have received so far and ``q``
   what each received;
7. ``t += 1``.

After each epoch: parameters non-finite -> stop (``state[S_NONFINITE]``);
else ``previous`` takes them; the stopping rule (when the kernel applies it)
counts epochs whose mean objective is not below ``best - tol`` and, after
``patience`` of them, divides "adaptive"'s ``eta`` by 5 (while above 1e-6)
or ends the run. scikit-learn's ``SGDRegressor`` does the same arithmetic;
this module was written from its documentation and the math.
"""

from __future__ import annotations

import math
from typing import Any, List

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
)

MAX_DLOSS = 1e12  # the derivative is clipped to this, as scikit-learn does
MASK64 = (1 << 64) - 1


def loss_value(loss: int, epsilon: float, y: float, p: float) -> float:
    """``ℓ(y, p)``: half the squared residual, Huber, or the (squared) insensitive loss."""
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


def loss_derivative(loss: int, epsilon: float, y: float, p: float) -> float:
    """``dℓ/dp``."""
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


def next_random(rng: List[int]) -> int:
    """splitmix64: the next 64-bit value of the generator whose state is ``rng[0]``."""
    rng[0] = (rng[0] + 0x9E3779B97F4A7C15) & MASK64
    z = rng[0]
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def shuffle(order: List[int], rng: List[int]) -> None:
    """Fisher–Yates in place, drawing ``j`` uniformly from ``0..i`` as
    ``floor(u * (i + 1))`` with ``u`` the top 53 bits of a draw (in float64,
    so that every backend draws the same ``j``)."""
    for i in range(len(order) - 1, 0, -1):
        u = (next_random(rng) >> 11) * (1.0 / 9007199254740992.0)
        j = min(int(u * (i + 1)), i)
        order[i], order[j] = order[j], order[i]


def sgd_regressor_epochs(
    X: Any,
    data: Any,
    indices: Any,
    indptr: Any,
    sparse: bool,
    y: Any,
    sample_weight: Any,
    order: Any,
    coef: Any,
    average_coef: Any,
    q: Any,
    previous: Any,
    state: Any,
    config: Any,
    rng: Any,
    max_epochs: int,
    stop: Any,
) -> int:
    """Up to ``max_epochs`` epochs over the rows ``order``; returns how many ran."""
    d = len(coef)
    if sparse:
        rows = [
            (list(indices[indptr[i] : indptr[i + 1]]), list(data[indptr[i] : indptr[i + 1]]))
            for i in range(len(indptr) - 1)
        ]
    else:
        every = list(range(d))
        rows = [(every, [float(v) for v in row]) for row in X]
    ys = [float(v) for v in y]
    # An empty order visits 0..n-1; empty weights are all ones.
    sws = [float(v) for v in sample_weight] if len(sample_weight) else [1.0] * len(ys)
    visit = [int(i) for i in order] if len(order) else list(range(len(ys)))
    w = [float(v) for v in coef]
    aw = [float(v) for v in average_coef]
    qs = [float(v) for v in q]
    generator = [int(rng[0])]
    # Weights are stored in the training dtype: round to it after each write,
    # as the compiled kernels store into their arrays.
    store = coef.dtype.type
    # float32: scikit-learn's float32 kernel holds some values in a float.
    single = coef.dtype.itemsize == 4

    def narrow(value: float) -> float:
        return float(store(value)) if single else value

    loss, epsilon = int(config[C_LOSS]), float(config[C_EPSILON])
    penalty, alpha, l1_ratio = int(config[C_PENALTY]), float(config[C_ALPHA]), float(config[C_L1_RATIO])
    rate, eta0, power_t = int(config[C_RATE]), float(config[C_ETA0]), float(config[C_POWER_T])
    optimal_init = float(config[C_OPTIMAL_INIT])
    fit_intercept = config[C_FIT_INTERCEPT] != 0
    decay = float(config[C_INTERCEPT_DECAY])
    average = int(config[C_AVERAGE])
    tol, patience = float(config[C_TOL]), int(config[C_PATIENCE])
    rule, train_count = config[C_STOPPING_RULE] != 0, float(config[C_TRAIN_COUNT])
    wscale_min = float(config[C_WSCALE_MIN])
    shuffled = config[C_SHUFFLE] != 0

    intercept, wscale = float(state[S_INTERCEPT]), float(state[S_WSCALE])
    avg_a, avg_b = float(state[S_AVERAGE_A]), float(state[S_AVERAGE_B])
    avg_intercept, u = float(state[S_AVERAGE_INTERCEPT]), float(state[S_U])
    t, eta = float(state[S_T]), float(state[S_ETA])
    best, bad = float(state[S_BEST]), int(state[S_BAD_EPOCHS])
    sq_norm, l1_norm = float(state[S_SQ_NORM]), float(state[S_L1_NORM])
    penalised = penalty != 0

    def fold_scale() -> None:
        # BLAS axpy and scal in the weights' dtype.
        nonlocal wscale, avg_a, avg_b
        if average > 0:
            a, inv_b = narrow(avg_a), narrow(1.0 / avg_b)
            for j in range(d):
                aw[j] = float(store(narrow(aw[j] + narrow(a * w[j])) * inv_b))
            avg_a, avg_b = 0.0, 1.0
        scale = narrow(wscale)
        for j in range(d):
            w[j] = float(store(w[j] * scale))
        wscale = 1.0

    epochs = 0
    for _ in range(max_epochs):
        if stop[0]:
            break
        if shuffled:
            shuffle(visit, generator)
        sumloss = 0.0
        objective = 0.0
        for i in visit:
            idx, vals = rows[i]
            dot = 0.0
            for j, v in zip(idx, vals):
                dot += narrow(w[j] * v)
            p = narrow(dot * wscale) + intercept
            if rate == OPTIMAL:
                eta = 1.0 / (alpha * (optimal_init + t - 1.0))
            elif rate == INVSCALING:
                eta = eta0 / math.pow(t, power_t)
            value = loss_value(loss, epsilon, ys[i], p)
            sumloss += value
            objective += value
            if penalised:
                norm = math.sqrt(sq_norm)
                objective += alpha * ((1.0 - l1_ratio) * 0.5 * (norm * norm) + l1_ratio * l1_norm)
            dloss = min(max(loss_derivative(loss, epsilon, ys[i], p), -MAX_DLOSS), MAX_DLOSS)
            update = -eta * dloss
            update *= sws[i]
            if penalty == L2 or penalty == ELASTICNET:
                shrink = narrow(max(0.0, 1.0 - (1.0 - l1_ratio) * eta * alpha))
                wscale *= shrink
                sq_norm *= narrow(shrink * shrink)
                l1_norm *= shrink
                if wscale < wscale_min:
                    fold_scale()
            if update != 0.0:
                scale = narrow(wscale)
                step = narrow(narrow(update) / scale)
                squares = absolutes = 0.0
                for j, v in zip(idx, vals):
                    w[j] = float(store(w[j] + v * step))
                    squares += narrow(w[j] * w[j])
                    absolutes += abs(w[j])
                sq_norm = squares * narrow(scale * scale)
                l1_norm = absolutes * scale
                if fit_intercept:
                    intercept += update * decay
            if 0 < average <= t:
                k = t - average + 1.0
                shift = -narrow(update) / wscale
                for j, v in zip(idx, vals):
                    aw[j] = float(store(aw[j] + avg_a * v * shift))
                mu = 1.0 / narrow(k)
                if k > 1.0:
                    avg_b /= 1.0 - mu
                avg_a += mu * avg_b * wscale
                avg_intercept += (intercept - avg_intercept) / k
            if penalty == L1 or penalty == ELASTICNET:
                u += l1_ratio * eta * alpha
                for j in idx:
                    z = w[j]
                    if wscale * z > 0.0:
                        w[j] = float(store(max(0.0, w[j] - (u + qs[j]) / wscale)))
                    elif wscale * z < 0.0:
                        w[j] = float(store(min(0.0, w[j] + (u - qs[j]) / wscale)))
                    qs[j] = float(store(qs[j] + wscale * (w[j] - z)))
            t += 1.0
        epochs += 1
        state[S_SUMLOSS] = sumloss
        state[S_OBJECTIVE] = objective
        if not (math.isfinite(intercept) and all(math.isfinite(v) for v in w)):
            state[S_NONFINITE] = 1.0
            break
        for j in range(d):
            previous[j] = w[j] * wscale
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

    coef[:] = w
    average_coef[:] = aw
    q[:] = qs
    rng[0] = generator[0]
    state[S_INTERCEPT], state[S_WSCALE] = intercept, wscale
    state[S_AVERAGE_A], state[S_AVERAGE_B] = avg_a, avg_b
    state[S_AVERAGE_INTERCEPT], state[S_U] = avg_intercept, u
    state[S_T], state[S_ETA] = t, eta
    state[S_BEST], state[S_BAD_EPOCHS] = best, float(bad)
    state[S_SQ_NORM], state[S_L1_NORM] = sq_norm, l1_norm
    return epochs
