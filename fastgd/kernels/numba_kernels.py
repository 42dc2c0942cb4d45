"""Numba kernels (the primary backend). Mirrored by fastgd_ext/_kernels.pyx and
fastgd/kernels/cuda_kernels.py; the operation order is fastgd/reference.py's.

Exact mode sums samples one after another, as the reference does. The default
mode splits the samples into fixed blocks of ``BLOCK``, sums each block (in
parallel across blocks) and adds the block sums in block order, so the result
is the same for any number of threads. Inputs of at most one block take the
exact path in both modes. What the default mode does differently, precisely
(see benchmarks/NOTES.md for the measurements behind each choice):

* ``sums`` for one feature without intercept: inside a block, row ``start + k``
  goes to lane ``k % LANES``; each lane sums its rows in order starting from
  0.0, and the block's sum is the lanes' pairwise tree
  ``((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))``. Every other shape
  sums each block row by row, in row order; with at least
  ``LANES_MIN_FEATURES`` (8) features each row's prediction is the lane dot
  product described next, else the exact mode's left-to-right ``x·w``.
* per-sample SGD with more than one feature (or an intercept), no momentum
  or weight decay, more than one block of samples: the prediction ``x·w`` is
  split into ``LANES`` partial dot products (lane ``l`` takes the features
  ``j ≡ l (mod LANES)`` in increasing ``j``, starting from 0.0), combined by
  the same pairwise tree; then ``+ b``. The step itself is the exact mode's.
* per-sample SGD with one feature, no intercept, no momentum or weight decay,
  more than one block of samples: each sample is the affine map
  ``w ← a_i·w + b_i`` with ``c = 2·lr``, ``a_i = 1 − (c·x_i)·x_i`` and
  ``b_i = (c·x_i)·y_i`` (float64). The maps of the samples at visiting
  positions ``[k·BLOCK, (k+1)·BLOCK)`` compose, in order, into ``(A_k, B_k)``
  with ``A ← a_i·A`` and ``B ← a_i·B + b_i`` from ``(1, 0)`` (blocks in
  parallel); the epoch then applies ``w ← A_k·w + B_k`` for ``k = 0, 1, ...``
  in order (from ``w`` as float64), and stores ``w`` in the training dtype.
* mini-batch steps (any optimizer) with at least ``LANES_MIN_FEATURES`` (8)
  features and more than one block of samples: each row's prediction is the
  lane dot product above (then ``+ b``); everything else, the gradient's
  sums over the batch in batch order included, is the exact mode's.

The lane dot product is one vector of 8 lanes in LLVM IR (``_lane_tree``:
IEEE multiply and add, no FMA, no fast-math), the same bits as 8 scalar
lanes. Full-batch steps are the exact mode's; only the full-data cost and
gradient sums are blocked. Gradients always sum over samples in sample order,
vectorised over features.
"""

from __future__ import annotations

import contextlib
import threading

import numba
import numpy as np

from fastgd.kernels import AFFINE, BLOCK, FULL_BATCH, LANES, LANES_MIN_FEATURES, PER_SAMPLE  # noqa: F401
from fastgd.kernels._numba_jit import jit, prange  # first: a missing numba is reported as such
from fastgd.kernels._numba_lanes import (
    _gradient_block_lanes,
    _gram_chunk,
    _lane_tree,
    _lane_tree_ahead,
    _one_feature_lanes,
)
from fastgd.kernels.numba_sgd_regressor import sgd_regressor_epochs  # noqa: F401  (SGDRegressor's kernel)

NAME = "numba"
# Rows longer than this are read one after another even inside a group of
# four: four rows read side by side defeat the hardware prefetcher when each
# is this long (d = 64 float64 from memory: 66 ns/row side by side against 33
# one after another; from cache the reverse, 17 against 36). The same bits.
LONG_ROW_BYTES = 256
# Below this many elements of X the blocks run on one thread: waking the
# thread pool costs more than the work (and far more on a loaded machine).
# It changes the speed only, never the bits.
PARALLEL_MIN = 1 << 18


@jit
def _predict_row(X, i, params, d, fit_intercept):
    pred = X[i, 0] * params[0]
    for j in range(1, d):
        pred += X[i, j] * params[j]
    if fit_intercept:
        pred += params[d]
    return pred


@jit
def _predict_rows4(X, i0, i1, i2, i3, params, d, fit_intercept):
    """``_predict_row`` of four rows at once: four independent chains in the
    reference's order, so the out-of-order core overlaps their latencies."""
    w = params[0]
    p0 = X[i0, 0] * w
    p1 = X[i1, 0] * w
    p2 = X[i2, 0] * w
    p3 = X[i3, 0] * w
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
    return p0, p1, p2, p3


@jit
def _dot_lanes(X, i, params, d, fit_intercept):
    """Default-mode prediction: ``LANES`` partial dot products (lane ``l`` takes
    the features ``j ≡ l (mod 8)`` in increasing ``j``, from +0.0 in the
    training dtype), added as the pairwise tree; then ``+ b``."""
    pred = _lane_tree(X, i, params)
    if fit_intercept:
        pred += params[d]
    return pred


@jit
def _positions(X, order):
    """How many samples a pass over ``order`` visits: all rows for the natural order."""
    if order.shape[0] == 0:
        return X.shape[0]
    return order.shape[0]


@jit
def _row(order, k):
    """The row visited at position ``k``: ``order[k]``, or ``k`` for the natural order."""
    if order.shape[0] == 0:
        return k
    return order[k]


@jit
def _accumulate(X, y, params, fit_intercept, want_gradient, order, start, stop, lanes, out):
    """Add ``[Σ r², Σ 2 x_j r, (Σ 2 r)]`` over positions start..stop-1 of ``order``
    into ``out``, sample after sample (the reference's order). ``lanes``: the
    predictions are ``_dot_lanes`` (default mode), else the reference's."""
    d = X.shape[1]
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
    long_rows = d * X.itemsize > LONG_ROW_BYTES
    k = start
    # Four rows at a time: their predictions are independent; the sums still
    # take the rows one after another, vectorised over the features.
    while k + 4 <= stop:
        i0 = _row(order, k)
        i1 = _row(order, k + 1)
        i2 = _row(order, k + 2)
        i3 = _row(order, k + 3)
        if lanes:
            # _dot_lanes, with the intrinsic called here: LLVM does not inline
            # four calls of _dot_lanes, and a call costs more than the dot.
            # The prefetching variant: these passes stream the rows.
            p0 = _lane_tree_ahead(X, i0, params)
            p1 = _lane_tree_ahead(X, i1, params)
            p2 = _lane_tree_ahead(X, i2, params)
            p3 = _lane_tree_ahead(X, i3, params)
            if fit_intercept:
                b = params[d]
                p0 += b
                p1 += b
                p2 += b
                p3 += b
        elif long_rows:
            p0 = _predict_row(X, i0, params, d, fit_intercept)
            p1 = _predict_row(X, i1, params, d, fit_intercept)
            p2 = _predict_row(X, i2, params, d, fit_intercept)
            p3 = _predict_row(X, i3, params, d, fit_intercept)
        else:
            p0, p1, p2, p3 = _predict_rows4(X, i0, i1, i2, i3, params, d, fit_intercept)
        r0 = p0 - y[i0]
        r1 = p1 - y[i1]
        r2 = p2 - y[i2]
        r3 = p3 - y[i3]
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
            r = _dot_lanes(X, i, params, d, fit_intercept) - y[i]
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


@jit
def _loss_terms(r, loss_spec):
    """``(ℓ(r), ℓ'(r))`` of torch's ``HuberLoss(delta)`` (kind 1) or ``L1Loss``
    (kind 2) in the training dtype; ``loss_spec = [kind, delta, 0.5]``
    (fastgd/reference.py's ``_huber`` and ``_l1``)."""
    delta = loss_spec[1]
    half = loss_spec[2]
    a = abs(r)
    if int(loss_spec[0]) == 1:
        if a < delta:
            return half * (r * r), r
        if r > 0:
            return delta * (a - half * delta), delta
        return delta * (a - half * delta), -delta
    one = half + half
    if r > 0:
        return a, one
    if r < 0:
        return a, -one
    return a, r - r


@jit
def _accumulate_loss(X, y, params, fit_intercept, want_gradient, order, start, stop, lanes, loss_spec, out):
    """``_accumulate`` for the Huber and L1 losses: ``[Σ ℓ(r), Σ x_j ℓ'(r), (Σ ℓ'(r))]``,
    sample after sample (the reference's order); ``lanes`` as there."""
    d = X.shape[1]
    for k in range(start, stop):
        i = _row(order, k)
        if lanes:
            r = _dot_lanes(X, i, params, d, fit_intercept) - y[i]
        else:
            r = _predict_row(X, i, params, d, fit_intercept) - y[i]
        value, slope = _loss_terms(r, loss_spec)
        out[0] += value
        if want_gradient:
            for j in range(d):
                out[1 + j] += X[i, j] * slope
            if fit_intercept:
                out[1 + d] += slope


@jit
def _accumulate_any(X, y, params, fit_intercept, want_gradient, order, start, stop, lanes, loss_spec, out):
    """``_accumulate`` (mse) or ``_accumulate_loss`` (Huber, L1)."""
    if int(loss_spec[0]) == 0:
        _accumulate(X, y, params, fit_intercept, want_gradient, order, start, stop, lanes, out)
    else:
        _accumulate_loss(X, y, params, fit_intercept, want_gradient, order, start, stop, lanes, loss_spec, out)


@jit
def _accumulate_lanes(X, y, w, want_gradient, start, stop, out):
    """Default-mode block sums for one feature without intercept: row ``start + k``
    goes to lane ``k % 8``; the lanes are added as a pairwise tree into ``out``."""
    lanes = np.zeros(16)  # the cost lanes, then the gradient lanes
    groups = (stop - start) // 8
    _one_feature_lanes(X, y, w, start, groups, lanes)
    # The last (stop - start) % 8 rows go to lanes 0, 1, ... in order.
    lane = 0
    for i in range(start + 8 * groups, stop):
        x = X[i, 0]
        r = x * w - y[i]
        lanes[lane] += r * r
        lanes[8 + lane] += (x + x) * r
        lane += 1
    out[0] += ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    if want_gradient:
        out[1] += ((lanes[8] + lanes[9]) + (lanes[10] + lanes[11])) + ((lanes[12] + lanes[13])
                                                                       + (lanes[14] + lanes[15]))


@jit
def _block_sums(X, y, params, fit_intercept, want_gradient, loss_spec, blk, out):
    """The default-mode sums of block ``blk`` into ``out`` (zeros on entry).

    The mse gradient with at least ``LANES_MIN_FEATURES`` features is
    ``_gradient_block_lanes``: the cost and the predictions as the cost-only
    pass (``_accumulate`` with lanes), the gradient's terms of each 8 rows
    added as a pairwise tree before one add per feature (a fixed order, so
    the same bits for any thread count; not the mini-batch order)."""
    n, d = X.shape
    start = blk * BLOCK
    stop = min(n, start + BLOCK)
    if d == 1 and not fit_intercept and int(loss_spec[0]) == 0:
        _accumulate_lanes(X, y, params[0], want_gradient, start, stop, out)
    elif want_gradient and d >= LANES_MIN_FEATURES and int(loss_spec[0]) == 0:
        _gradient_block_lanes(X, y, params, fit_intercept, start, stop, out)
    else:
        _accumulate_any(X, y, params, fit_intercept, want_gradient, np.empty(0, dtype=np.int64), start, stop,
                        d >= LANES_MIN_FEATURES, loss_spec, out)


@jit(parallel=True)
def _blocked_sums_parallel(X, y, params, fit_intercept, want_gradient, loss_spec, partials):
    for blk in prange(partials.shape[0]):
        _block_sums(X, y, params, fit_intercept, want_gradient, loss_spec, blk, partials[blk])


@jit
def _blocked_sums(X, y, params, fit_intercept, want_gradient, loss_spec, partials):
    # Threads or not, every block is summed alone and the partials are added
    # in block order by the caller: the bits do not depend on this choice.
    if X.shape[0] * X.shape[1] >= PARALLEL_MIN:
        _blocked_sums_parallel(X, y, params, fit_intercept, want_gradient, loss_spec, partials)
    else:
        for blk in range(partials.shape[0]):
            _block_sums(X, y, params, fit_intercept, want_gradient, loss_spec, blk, partials[blk])


@jit
def _sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec):
    n = X.shape[0]
    width = 1 + params.shape[0]
    if exact or n <= BLOCK:
        out = np.zeros(width)
        _accumulate_any(X, y, params, fit_intercept, want_gradient, np.empty(0, dtype=np.int64), 0, n, False,
                        loss_spec, out)
        return out
    n_blocks = (n + BLOCK - 1) // BLOCK
    partials = np.zeros((n_blocks, width))
    _blocked_sums(X, y, params, fit_intercept, want_gradient, loss_spec, partials)
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
def _predict(X, params, fit_intercept, out):
    if X.shape[0] * X.shape[1] >= PARALLEL_MIN:
        _predict_parallel(X, params, fit_intercept, out)
        return
    d = X.shape[1]
    for i in range(X.shape[0]):
        out[i] = _predict_row(X, i, params, d, fit_intercept)


@jit
def _step(params, grad, velocity, steps, hyper, nesterov, decayed):
    """One torch.optim.SGD step with ``hyper = [lr, momentum, 1 - dampening, weight_decay]``;
    weight decay on the first ``decayed`` parameters."""
    lr = hyper[0]
    momentum = hyper[1]
    one_minus_dampening = hyper[2]
    weight_decay = hyper[3]
    first_step = steps[0] == 0
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


@jit
def _average(params, steps, average, averaged):
    """torch's ``AveragedModel.update_parameters`` after a step, from the global
    step ``averaged[2]`` on (0: no averaging). ``average[0]`` is the running
    mean, ``averaged[0]`` its number of updates."""
    if averaged[2] == 0 or steps[0] < averaged[2]:
        return
    count = averaged[0]
    if count == 0:
        average[0, :] = params
    else:
        for j in range(params.shape[0]):
            average[0, j] = average[0, j] + (params[j] - average[0, j]) / (count + 1)
    averaged[0] = count + 1


@jit
def _batch_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact, batch_size, order,
                 acc, stop, loss_spec, decayed, average, averaged):
    """Mini-batch steps over consecutive slices of ``order``; False when
    ``stop[0]`` was set before the pass ended (checked every ``BLOCK`` samples)."""
    d = X.shape[1]
    n = _positions(X, order)
    lanes = not exact and X.shape[0] > BLOCK and d >= LANES_MIN_FEATURES
    unchecked = 0
    for start in range(0, n, batch_size):
        end = min(n, start + batch_size)
        acc[:] = 0.0
        _accumulate_any(X, y, params, fit_intercept, True, order, start, end, lanes, loss_spec, acc)
        count = end - start
        for j in range(params.shape[0]):
            grad[j] = acc[1 + j] / count
        _step(params, grad, velocity, steps, hyper, nesterov, decayed)
        _average(params, steps, average, averaged)
        unchecked += count
        if unchecked >= BLOCK:
            unchecked = 0
            if stop[0] != 0:
                return False
    return True


@jit
def _sgd_range(X, y, params, lr, fit_intercept, exact, order, start, stop):
    """Plain per-sample SGD (no momentum, no weight decay) at positions start..stop-1.

    Per sample, as the reference: ``g_j = 0.0 + (x_j + x_j)·r`` (the batch sum
    of one term; ``/ 1`` is exact and omitted), ``w_j ← w_j − lr·g_j``.
    """
    n, d = X.shape
    zero = lr - lr  # +0.0 in the training dtype
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
        if exact or n <= BLOCK:
            r = _predict_row(X, i, params, d, fit_intercept) - y[i]
        else:
            r = _dot_lanes(X, i, params, d, fit_intercept) - y[i]
        for j in range(d):
            params[j] = params[j] - lr * ((X[i, j] + X[i, j]) * r + zero)
        if fit_intercept:
            params[d] = params[d] - lr * ((r + r) + zero)


@jit
def _sgd_steps(X, y, params, hyper, fit_intercept, exact, order, stop):
    """Plain per-sample SGD over ``order``, ``BLOCK`` positions at a time; False
    when ``stop[0]`` was set before the pass ended."""
    n = _positions(X, order)
    for start in range(0, n, BLOCK):
        if stop[0] != 0:
            return False
        _sgd_range(X, y, params, hyper[0], fit_intercept, exact, order, start, min(n, start + BLOCK))
    return True


@jit
def _compose_block(X, y, c, order, start, stop):
    """The affine map ``w ↦ A·w + B`` of the SGD steps at positions start..stop-1."""
    A = 1.0
    B = 0.0
    for k in range(start, stop):
        i = _row(order, k)
        cx = c * X[i, 0]
        a = 1.0 - cx * X[i, 0]
        A = a * A
        B = a * B + cx * y[i]
    return A, B


@jit
def _compose_blocks4(X, y, c, order, start):
    """``_compose_block`` of four consecutive full blocks, interleaved (the
    same arithmetic per block; four chains overlap their latencies)."""
    A0 = A1 = A2 = A3 = 1.0
    B0 = B1 = B2 = B3 = 0.0
    for t in range(start, start + BLOCK):
        i0 = _row(order, t)
        i1 = _row(order, t + BLOCK)
        i2 = _row(order, t + 2 * BLOCK)
        i3 = _row(order, t + 3 * BLOCK)
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
    return A0, B0, A1, B1, A2, B2, A3, B3


@jit
def _affine_group(X, y, c, order, group, maps):
    """``maps[k] = (A_k, B_k)`` for the blocks ``4·group .. 4·group + 3``."""
    n = _positions(X, order)
    n_blocks = maps.shape[0]
    first = 4 * group
    if (first + 4) * BLOCK <= n:
        A0, B0, A1, B1, A2, B2, A3, B3 = _compose_blocks4(X, y, c, order, first * BLOCK)
        maps[first, 0] = A0
        maps[first, 1] = B0
        maps[first + 1, 0] = A1
        maps[first + 1, 1] = B1
        maps[first + 2, 0] = A2
        maps[first + 2, 1] = B2
        maps[first + 3, 0] = A3
        maps[first + 3, 1] = B3
    else:
        for blk in range(first, min(n_blocks, first + 4)):
            A, B = _compose_block(X, y, c, order, blk * BLOCK, min(n, (blk + 1) * BLOCK))
            maps[blk, 0] = A
            maps[blk, 1] = B


@jit(parallel=True)
def _affine_maps_parallel(X, y, c, order, maps):
    for group in prange((maps.shape[0] + 3) // 4):
        _affine_group(X, y, c, order, group, maps)


@jit
def _affine_maps(X, y, lr, order, maps):
    """``maps[k] = (A_k, B_k)``, the composed SGD steps of block ``k`` (blocks in
    parallel when large enough; the same bits either way)."""
    c = 2.0 * lr
    if _positions(X, order) >= PARALLEL_MIN:
        _affine_maps_parallel(X, y, c, order, maps)
    else:
        for group in range((maps.shape[0] + 3) // 4):
            _affine_group(X, y, c, order, group, maps)


@jit
def _apply_maps(X, y, params, hyper, order, maps):
    """One epoch of affine one-feature SGD: ``w ← A_k·w + B_k`` block after block.

    A block whose map gives a non-finite ``w`` (a composition that overflowed,
    e.g. ``a_i`` of 1e300 and then ``inf·0``) is replayed sample by sample
    instead, in the training dtype, as the exact path steps.
    """
    n = _positions(X, order)
    w = np.float64(params[0])
    for blk in range(maps.shape[0]):
        moved = maps[blk, 0] * w + maps[blk, 1]
        if not np.isfinite(moved):
            params[0] = w
            _sgd_range(X, y, params, hyper[0], False, True, order, blk * BLOCK, min(n, (blk + 1) * BLOCK))
            moved = np.float64(params[0])
        w = moved
    params[0] = w


@jit
def _maps_pay(X, path):
    """Whether the plan's path (fastgd/_backend.py) runs as composed affine maps
    here: an AFFINE plan on data of one block takes per-sample steps instead."""
    return path == AFFINE and X.shape[0] > BLOCK


@jit
def _affine_setup(X, y, hyper, order, affine):
    """The block maps of a pass over ``order`` at rate ``hyper[0]`` (an empty
    array off the affine path)."""
    if not affine:
        return np.empty((0, 2))
    maps = np.empty(((_positions(X, order) + BLOCK - 1) // BLOCK, 2))
    _affine_maps(X, y, np.float64(hyper[0]), order, maps)
    return maps


@jit
def _steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact, path, batch_size, order,
           acc, maps, stop, loss_spec, decayed, average, averaged):
    """The SGD steps of one pass over ``order`` (batches, plain per-sample SGD or
    the affine maps ``maps``); False when ``stop[0]`` ended the pass early."""
    if maps.shape[0] != 0:
        _apply_maps(X, y, params, hyper, order, maps)
        steps[0] += _positions(X, order)
        return True
    if path == PER_SAMPLE or path == AFFINE:
        if not _sgd_steps(X, y, params, hyper, fit_intercept, exact, order, stop):
            return False
        steps[0] += _positions(X, order)
        return True
    return _batch_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact,
                        batch_size, order, acc, stop, loss_spec, decayed, average, averaged)


@jit(nogil=True)
def _run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept, exact,
                path, batch_size, order, costs, stop, rates, loss_spec, decayed, average, averaged):
    n = X.shape[0]
    p = params.shape[0]
    acc = np.zeros(1 + p)
    affine = _maps_pay(X, path)
    maps = np.empty((0, 2))
    maps_rate = np.nan
    for e in range(costs.shape[0]):
        if stop[0] != 0:
            return e
        hyper[0] = rates[e]
        if affine and not hyper[0] == maps_rate:
            # The maps depend on the data, the rate and the order only: the
            # same for every epoch of this call at the same rate.
            maps = _affine_setup(X, y, hyper, order, True)
            maps_rate = hyper[0]
        if path == FULL_BATCH:
            _step(params, grad, velocity, steps, hyper, nesterov, decayed)
            _average(params, steps, average, averaged)
            totals = _sums(X, y, params, fit_intercept, exact, True, loss_spec)
            for j in range(p):
                grad[j] = totals[1 + j] / n
        else:
            if not _steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact,
                          path, batch_size, order, acc, maps, stop, loss_spec, decayed, average, averaged):
                return e
            totals = _sums(X, y, params, fit_intercept, exact, False, loss_spec)
        costs[e] = totals[0] / n
        if not np.isfinite(costs[e]):
            return e
        previous[:] = params
        average[1, :] = average[0, :]
        averaged[1] = averaged[0]
    return costs.shape[0]


@jit(nogil=True)
def _run_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact, path, batch_size,
               order, stop, loss_spec, decayed, average, averaged):
    acc = np.zeros(1 + params.shape[0])
    maps = _affine_setup(X, y, hyper, order, _maps_pay(X, path))
    return _steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact, path, batch_size,
                  order, acc, maps, stop, loss_spec, decayed, average, averaged)


# Rows per chunk of the Gram sums: a chunk of the block, its values widened to
# float64, stays in the L1 cache (48 KiB) while every register tile of the
# output reads it (about 32 KiB: 4096 values of float64). A function of the
# feature count only, so the bits never depend on threads or timing.
GRAM_CHUNK_VALUES = 4096


@jit
def _gram_chunk_rows(width):
    return max(8, min(BLOCK, GRAM_CHUNK_VALUES // width))


@jit
def _gram_block(X, y, fit_intercept, start, stop, out):
    """Add the rows start..stop-1 of ``[X (1) | y]`` to ``out`` = its upper
    triangle of ``AᵀA`` (float64). The rows go in chunks of
    ``_gram_chunk_rows`` rows, in order; each chunk's sums (``_gram_chunk``:
    float64 products added row after row in registers from +0.0) are added to
    the block's, so every value has one fixed order of adds: the same bits on
    every run and for any thread count. ``X`` is read in place when its rows
    are float64 vectors of 8; else each chunk is first widened into a float64
    buffer padded with zeros to a multiple of 8 features."""
    d = X.shape[1]
    p = d + 1 if fit_intercept else d
    width = (d + 7) // 8 * 8
    direct = X.itemsize == 8 and d == width
    rows = _gram_chunk_rows(width)
    sums = np.zeros((width + 2, width + 2))
    buf = np.zeros((1 if direct else rows, width))
    ybuf = np.empty(1 if direct else rows)
    for first in range(start, stop, rows):
        count = min(rows, stop - first)
        if direct:
            _gram_chunk(X, first, y, first, count, d, sums)
        else:
            for r in range(count):
                for j in range(d):
                    buf[r, j] = X[first + r, j]
                ybuf[r] = y[first + r]
            _gram_chunk(buf, 0, ybuf, 0, count, d, sums)
    one = width
    t = width + 1
    for j in range(d):
        for k in range(j, d):
            out[j, k] += sums[j, k]
    if fit_intercept:
        for j in range(d):
            out[j, d] += sums[one, j]
            out[j, p] += sums[t, j]
        out[d, d] += np.float64(stop - start)
        out[d, p] += sums[one, t]
    else:
        for j in range(d):
            out[j, p] += sums[t, j]
    out[p, p] += sums[t, t]


@jit
def _gram_block_one_feature(X, y, fit_intercept, start, stop, out):
    """``_gram_block`` for one feature: the same float64 products, each sum
    added row after row in registers (six independent chains instead of a
    loop over ``out``: 4.9 -> see benchmarks/NOTES.md item 11 for the
    measured ns/sample)."""
    sxx = 0.0
    sx = 0.0
    sxy = 0.0
    sy = 0.0
    syy = 0.0
    for i in range(start, stop):
        x = np.float64(X[i, 0])
        t = np.float64(y[i])
        sxx += x * x
        sx += x
        sxy += x * t
        sy += t
        syy += t * t
    if fit_intercept:
        out[0, 0] += sxx
        out[0, 1] += sx
        out[0, 2] += sxy
        out[1, 1] += np.float64(stop - start)
        out[1, 2] += sy
        out[2, 2] += syy
    else:
        out[0, 0] += sxx
        out[0, 1] += sxy
        out[1, 1] += syy


@jit
def _gram_any_block(X, y, fit_intercept, start, stop, out):
    if X.shape[1] == 1:
        _gram_block_one_feature(X, y, fit_intercept, start, stop, out)
    else:
        _gram_block(X, y, fit_intercept, start, stop, out)


@jit(parallel=True)
def _gram_parallel(X, y, fit_intercept, partials):
    n = X.shape[0]
    for blk in prange(partials.shape[0]):
        _gram_any_block(X, y, fit_intercept, blk * BLOCK, min(n, (blk + 1) * BLOCK), partials[blk])


@jit(nogil=True)
def _gram(X, y, fit_intercept):
    n, d = X.shape
    p = d + 1 if fit_intercept else d
    n_blocks = (n + BLOCK - 1) // BLOCK
    partials = np.zeros((n_blocks, p + 1, p + 1))
    if X.size >= PARALLEL_MIN:
        _gram_parallel(X, y, fit_intercept, partials)
    else:
        for blk in range(n_blocks):
            _gram_any_block(X, y, fit_intercept, blk * BLOCK, min(n, (blk + 1) * BLOCK), partials[blk])
    out = partials[0].copy()
    for blk in range(1, n_blocks):
        out += partials[blk]
    for j in range(p + 1):  # the lower triangle from the upper
        for k in range(j):
            out[j, k] = out[k, j]
    return out


# numba's "workqueue" threading layer (used when neither OpenMP nor TBB can
# be loaded) aborts the process when two threads launch parallel regions at
# once; under it every kernel call takes this lock. The omp and tbb layers
# are thread-safe: no lock. Until a parallel region has run, numba cannot
# say which layer it will pick, so the first calls take the lock too.
_PARALLEL_LOCK = threading.Lock()
_NO_LOCK = contextlib.nullcontext()
_layer = None


def _parallel_guard():
    global _layer
    if _layer is None:
        try:
            _layer = numba.threading_layer()
        except ValueError:  # no parallel region has run yet
            return _PARALLEL_LOCK
        if _layer != "workqueue":
            _unguard()
    return _PARALLEL_LOCK if _layer == "workqueue" else _NO_LOCK


def _unguard():
    """A thread-safe layer: the entry points become the compiled functions
    themselves (the wrappers cost microseconds on the tutorial's tiny fits)."""
    module = globals()
    module.update(sums=_sums, predict=_predict, run_epochs=_run_epochs, run_steps=_run_steps, gram=_gram)


# Data below PARALLEL_MIN values never launches a parallel region (the
# thresholds in _blocked_sums, _predict and _affine_maps), so it needs no lock.


def sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec):
    if X.size < PARALLEL_MIN:
        return _sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec)
    with _parallel_guard():
        return _sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec)


def predict(X, params, fit_intercept, out):
    if X.size < PARALLEL_MIN:
        return _predict(X, params, fit_intercept, out)
    with _parallel_guard():
        _predict(X, params, fit_intercept, out)


def run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept, exact,
               path, batch_size, order, costs, stop, rates, loss_spec, decayed, average, averaged):
    args = (X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept, exact, path,
            batch_size, order, costs, stop, rates, loss_spec, decayed, average, averaged)
    if X.size < PARALLEL_MIN:
        return _run_epochs(*args)
    with _parallel_guard():
        return _run_epochs(*args)


def run_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact, path, batch_size,
              order, stop, loss_spec, decayed, average, averaged):
    args = (X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact, path, batch_size, order,
            stop, loss_spec, decayed, average, averaged)
    if X.size < PARALLEL_MIN:
        return _run_steps(*args)
    with _parallel_guard():
        return _run_steps(*args)


def gram(X, y, fit_intercept):
    """``M = [A | y]ᵀ[A | y]`` in float64, ``A = [X (1)]``: everything a
    full-batch least-squares epoch needs (fastgd/_gram.py). Blocks of rows
    summed alone (in parallel) and added in block order: the same bits for
    any thread count."""
    if X.size < PARALLEL_MIN:
        return _gram(X, y, fit_intercept)
    with _parallel_guard():
        return _gram(X, y, fit_intercept)


# run_epochs releases the GIL and stops when stop[0] is set: the engine may
# run long calls in a helper thread (see fastgd._engine._run_epochs).
RELEASES_GIL = True


def thread_setup():
    """What a helper thread runs first: numba's thread count is per thread, so
    the helper takes the caller's (``numba.set_num_threads`` in the caller)."""
    threads = numba.get_num_threads()
    return lambda: numba.set_num_threads(threads)


def unavailable_reason():
    """None when the kernels compile and run here; else why not."""
    try:
        X = np.ones((2, 1))
        sums(X, X[:, 0], np.ones(1), False, True, True, np.array([0.0, 1.0, 0.5]))
    except Exception as exc:  # a broken LLVM or numba install
        return f"numba failed to compile the kernels: {type(exc).__name__}: {exc}"
    return None
