"""Full-batch GD on the least-squares loss from one read of the data (SPEC §8).

Everything an epoch of full-batch GD on the mean squared error needs is in
``M = [A | y]ᵀ[A | y]`` (``A = [X (1)]``, float64): with ``G = AᵀA``,
``c = Aᵀy`` and ``yy = yᵀy``, the cost at ``p = [w, (b)]`` is
``(pᵀGp − 2cᵀp + yy) / n`` and its gradient ``2(Gp − c) / n``. One pass over
the data forms ``M`` (the kernels' ``gram``, blocks added in block order, or
numpy's einsum where a backend has none); then every epoch costs O(d²),
whatever ``n`` is. Memory-mapped data is read once; dask data takes one
round trip (fastgd/_dask.py).

The steps are ``torch.optim.SGD``'s (the numpy kernels' ``_step``, in
float64), with schedules, momentum, weight decay and averaging as in the
streaming path; the parameters are handed back in the training dtype.

Precision: the cost is a difference of large terms when it is far below
``mean(y²)``. Its absolute error is about ``1e-16 · mean(y²)``, so it agrees
with the streamed cost to 1e-9 relative while the cost stays above about
``1e-7 · mean(y²)`` (noisy data), not on a fit that converges to zero error
(such as the tutorial's): ``solver="auto"`` therefore streams, and "gram" is
used when asked for.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from fastgd import _checks
from fastgd._result import Fit
from fastgd._state import OptimizerState, Training
from fastgd.errors import DivergenceError, FitInterrupted, warn_if_runaway

# Rows per einsum call of the numpy statistics (a bounded float64 temporary).
_BLOCK_ROWS = 1 << 16


def statistics(kernels: Any, X: np.ndarray, y: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``M = [A | y]ᵀ[A | y]`` (float64, (p + 1) × (p + 1)) in one read of ``X`` and ``y``."""
    gram = getattr(kernels, "gram", None)
    if gram is not None:
        return np.asarray(gram(X, y, fit_intercept), dtype=np.float64)
    return numpy_statistics(X, y, fit_intercept)


def numpy_statistics(X: np.ndarray, y: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """:func:`statistics` with numpy's einsum (no BLAS: the same bits for any thread count)."""
    n, d = X.shape
    p = d + int(fit_intercept)
    total = np.zeros((p + 1, p + 1))
    for start in range(0, n, _BLOCK_ROWS):
        rows = slice(start, start + _BLOCK_ROWS)
        block = np.empty((X[rows].shape[0], p + 1))
        block[:, :d] = X[rows]
        if fit_intercept:
            block[:, d] = 1.0
        block[:, p] = y[rows]
        total += np.einsum("ij,ik->jk", block, block)
    return total


def train(
    M: np.ndarray, n: int, problem: _checks.Problem, opts: _checks.Options, backend: str,
    state: Optional[OptimizerState] = None,
) -> Fit:
    """The epochs of a full-batch fit on the statistics ``M`` of ``n`` samples."""
    from fastgd.kernels.numpy_kernels import _average, _step

    p = M.shape[0] - 1
    G, c, yy = M[:p, :p], M[:p, p], float(M[p, p])
    dtype = problem.params.dtype
    wide = _checks.Problem(problem.X, problem.y, problem.params.astype(np.float64), problem.scalar_model,
                           problem.fit_intercept)
    a = Training(wide, opts, state)
    params = a.params
    d = problem.n_features

    def cost_and_gradient(at: np.ndarray) -> tuple:
        q = np.einsum("ij,j->i", G, at)
        cost = (float(np.einsum("i,i->", at, q)) - 2.0 * float(np.einsum("i,i->", c, at)) + yy) / n
        # The exact cost is >= 0; rounding near a perfect fit may not be.
        return max(cost, 0.0) if np.isfinite(cost) else cost, 2.0 * (q - c) / n

    costs = [cost_and_gradient(params)[0]]

    def result(at_previous: bool, epochs_run: int) -> Fit:
        at = a.previous if at_previous else params
        mean = a.mean(at_previous)
        shown = at if mean is None else mean
        return Fit.from_params(
            shown.astype(dtype), n_features=d, scalar_model=problem.scalar_model,
            fit_intercept=problem.fit_intercept, losses=costs[:epochs_run],
            loss=costs[epochs_run] if mean is None else cost_and_gradient(mean)[0], epochs_run=epochs_run,
            backend=backend, last=None if mean is None else at.astype(dtype),
        )

    if not np.isfinite(costs[0]):
        raise DivergenceError("the loss of the starting parameters is not finite", epoch=0,
                              fit=result(False, 0))
    a.grad[:] = cost_and_gradient(params)[1]
    rates = opts.rates(0, opts.epochs) if opts.callback is None and opts.epochs <= 1 << 16 else None
    try:
        for epoch in range(opts.epochs):
            a.hyper[0] = rates[epoch] if rates is not None else opts.rate(epoch)
            _step(params, a.grad, a.velocity, a.steps, a.hyper, opts.nesterov, a.decayed)
            _average(params, a.steps, a.average, a.averaged)
            cost, a.grad[:] = cost_and_gradient(params)
            costs.append(cost)
            if not np.isfinite(cost):
                raise DivergenceError(f"the loss became {cost} during epoch {epoch}; lower lr", epoch=epoch,
                                      fit=result(True, epoch))
            a.previous[:] = params
            a.average[1] = a.average[0]
            a.averaged[1] = a.averaged[0]
            if opts.callback is not None and opts.callback(epoch, result(False, epoch + 1)):
                break
    except KeyboardInterrupt as exc:
        done = len(costs) - 1 if np.isfinite(costs[-1]) else len(costs) - 2
        raise FitInterrupted(f"fit interrupted after {done} epochs; .fit holds that state",
                             fit=result(True, done)) from exc
    if state is not None:
        state.save(a.velocity, a.steps[0])
    warn_if_runaway(costs)
    return result(False, len(costs) - 1)


def check(opts: _checks.Options, n: int) -> None:
    """``solver="gram"`` needs full-batch steps."""
    if opts.batch_size is not None and opts.batch_size < n:
        raise ValueError(f"solver='gram' runs full-batch GD: batch_size={opts.batch_size} < n={n}; "
                         "use batch_size=None or solver='stream'")
