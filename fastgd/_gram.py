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

Precision: ``pᵀGp − 2cᵀp + yy`` cancels as the cost falls far below
``yy/n`` (near a perfect fit, or with an ill-conditioned ``G``). The form is
therefore taken around an anchor whose cost and gradient are exact (the start,
then a streaming pass each time the cost has fallen by ``ANCHOR_FALL``): its
error stays near ``1e-16 · ANCHOR_FALL`` of the cost, so costs and parameters
agree with the streamed ones to 1e-9 also for noise-free targets, at the price
of one extra read per factor 10^4 of fall (none on noisy data once the cost
has settled at the noise level).

The same statistics give the costs of per-sample and mini-batch SGD epochs
(SPEC §4's ``losses``): an epoch then reads ``X`` once, for its steps, and
its cost is :class:`QuadraticCost`'s O(d²) form instead of a second pass
(:func:`costs_from_statistics` says when; fastgd/_engine.py runs it).
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

import numpy as np

from fastgd import _checks, _sparse
from fastgd._backend import is_full_batch
from fastgd._result import Fit
from fastgd._state import OptimizerState, Training
from fastgd.errors import DivergenceError, FitInterrupted, warn_if_runaway

# Rows per einsum call of the numpy statistics (a bounded float64 temporary).
_ROWS_AT_ONCE = 1 << 16
# A streaming pass re-anchors the quadratic form when the magnitude of its
# terms exceeds the cost by this factor (the cost has fallen by about this
# much since the last anchor): the form's relative error stays near
# 1e-16 · ANCHOR_FALL (1e-12, against SPEC's 1e-9); a fall of 10^15 costs
# four extra reads.
ANCHOR_FALL = 1e4
# ... until the anchor's cost is below ANCHOR_FLOOR · yy/n: from there on the
# residuals themselves are rounding (about 1e-16 of y), in any solver.
ANCHOR_FLOOR = 1e-24
# The epochs of the last fit after which a streaming pass re-anchored.
LAST_ANCHORS: List[int] = []


def statistics(kernel_module: Any, X: Any, y: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``M = [A | y]ᵀ[A | y]`` (float64, (p + 1) × (p + 1)) in one read of ``X`` and ``y``."""
    if _sparse.is_csr(X):
        return _sparse.gram_statistics(X, y, fit_intercept)
    gram = getattr(kernel_module, "gram", None)
    if gram is not None:
        return np.asarray(gram(X, y, fit_intercept), dtype=np.float64)
    return numpy_statistics(X, y, fit_intercept)


def numpy_statistics(X: np.ndarray, y: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """:func:`statistics` with numpy's einsum (no BLAS: the same bits for any thread count)."""
    n, d = X.shape
    p = d + int(fit_intercept)
    total = np.zeros((p + 1, p + 1))
    for start in range(0, n, _ROWS_AT_ONCE):
        rows = slice(start, start + _ROWS_AT_ONCE)
        a = np.empty((X[rows].shape[0], p + 1))
        a[:, :d] = X[rows]
        if fit_intercept:
            a[:, d] = 1.0
        a[:, p] = y[rows]
        total += np.einsum("ij,ik->jk", a, a)
    return total


class QuadraticCost:
    """The mean squared error of parameters from the statistics ``M``, kept
    within about 1e-12 of a streaming pass by re-anchoring.

    With ``G = AᵀA``, ``c = Aᵀy``, ``yy = yᵀy`` (``M``'s blocks), the cost
    around an anchor ``p_a`` of known cost ``L_a`` and gradient ``g_a`` is
    ``L(p) = L_a + g_aᵀδ + δᵀGδ / n`` (``δ = p − p_a``): its rounding error is
    about 1e-16 of the magnitude ``|L_a| + |g_a|ᵀ|δ| + |δ|ᵀ|G||δ| / n``, not
    of ``yy/n``. Whenever that magnitude exceeds ``ANCHOR_FALL`` times the
    cost (the cost has fallen by that factor since the anchor, or the
    parameters have moved far along directions that cancel), ``stream(p)``
    (the kernels' exact sums ``[Σ r², Σ 2 x̃_j r]``) moves the anchor to
    ``p``, until the anchor's cost is below ``ANCHOR_FLOOR · yy/n``.

    The first anchor is ``start``: from ``M`` (``yy/n`` at ``p = 0``, exact
    to rounding) unless ``start_totals`` (a streaming pass at ``start``) is
    given.
    """

    def __init__(
        self,
        M: np.ndarray,
        n: int,
        start: np.ndarray,
        stream: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        start_totals: Optional[np.ndarray] = None,
    ) -> None:
        p = M.shape[0] - 1
        self.G, self.c, self.yy = M[:p, :p], M[:p, p], float(M[p, p])
        self.G_size = np.abs(self.G)
        self.n = n
        self.stream = stream
        self.anchors: List[int] = []  # the epochs after which a streaming pass re-anchored
        if start_totals is not None:
            self._anchor_at(start, start_totals)
        else:
            anchor = np.asarray(start, dtype=np.float64).copy()
            q = np.einsum("ij,j->i", self.G, anchor)
            cost = (
                float(np.einsum("i,i->", anchor, q))
                - 2.0 * float(np.einsum("i,i->", self.c, anchor))
                + self.yy
            ) / n
            self.anchor, self.anchor_grad = anchor, 2.0 * (q - self.c) / n
            self.anchor_cost = max(cost, 0.0) if np.isfinite(cost) else cost

    def _anchor_at(self, at: np.ndarray, totals: np.ndarray) -> None:
        self.anchor = np.asarray(at, dtype=np.float64).copy()
        self.anchor_cost = float(totals[0]) / self.n
        self.anchor_grad = np.asarray(totals[1:], dtype=np.float64) / self.n

    def estimate(self, at: np.ndarray) -> tuple:
        """``(cost, gradient, magnitude)`` of the form around the anchor."""
        delta = np.asarray(at, dtype=np.float64) - self.anchor
        q = np.einsum("ij,j->i", self.G, delta)
        cost = (
            self.anchor_cost
            + float(np.einsum("i,i->", self.anchor_grad, delta))
            + float(np.einsum("i,i->", delta, q)) / self.n
        )
        size = np.abs(delta)
        magnitude = (
            abs(self.anchor_cost)
            + float(np.einsum("i,i->", np.abs(self.anchor_grad), size))
            + float(np.einsum("i,i->", size, np.einsum("ij,j->i", self.G_size, size))) / self.n
        )
        # The exact cost is >= 0; rounding near a perfect fit may not be.
        return max(cost, 0.0) if np.isfinite(cost) else cost, self.anchor_grad + 2.0 * q / self.n, magnitude

    def cost_and_gradient(self, at: np.ndarray, epoch: int = -1) -> tuple:
        """``(cost, gradient)`` at ``at``, re-anchored there when the form would lose accuracy."""
        cost, grad, magnitude = self.estimate(at)
        if (
            self.stream is not None
            and np.isfinite(cost)
            and magnitude > ANCHOR_FALL * cost
            and self.anchor_cost > ANCHOR_FLOOR * self.yy / self.n
        ):
            self._anchor_at(at, self.stream(at))
            self.anchors.append(epoch)
            return self.anchor_cost, self.anchor_grad.copy()
        return cost, grad

    def cost(self, at: np.ndarray, epoch: int = -1) -> float:
        return float(self.cost_and_gradient(at, epoch)[0])


def train(
    M: np.ndarray,
    n: int,
    problem: _checks.Problem,
    opts: _checks.Options,
    backend: str,
    state: Optional[OptimizerState] = None,
    stream: Optional[Callable[[np.ndarray], np.ndarray]] = None,
) -> Fit:
    """The epochs of a full-batch fit on the statistics ``M`` of ``n`` samples.

    ``stream(params)``: the exact sums ``[Σ r², Σ 2 x̃_j r]`` of a streaming
    pass (the kernels' ``sums``), used to re-anchor (see the module docstring);
    None: never re-anchor.
    """
    from fastgd.kernels.numpy_kernels import _average, _step

    dtype = problem.params.dtype
    wide = _checks.Problem(
        problem.X, problem.y, problem.params.astype(np.float64), problem.scalar_model, problem.fit_intercept
    )
    a = Training(wide, opts, state)
    params = a.params
    d = problem.n_features

    def stream_wide(at: np.ndarray) -> np.ndarray:
        assert stream is not None
        return stream(at.astype(dtype))

    form = QuadraticCost(M, n, params, None if stream is None else stream_wide)
    cost_and_gradient = form.cost_and_gradient
    costs = [form.anchor_cost]

    def result(at_previous: bool, epochs_run: int) -> Fit:
        at = a.previous if at_previous else params
        mean = a.mean(at_previous)
        shown = at if mean is None else mean
        return Fit.from_params(
            shown.astype(dtype),
            n_features=d,
            scalar_model=problem.scalar_model,
            fit_intercept=problem.fit_intercept,
            losses=costs[:epochs_run],
            loss=costs[epochs_run] if mean is None else form.estimate(mean)[0],
            epochs_run=epochs_run,
            backend=backend,
            last=None if mean is None else at.astype(dtype),
        )

    if not np.isfinite(costs[0]):
        raise DivergenceError(
            "the loss of the starting parameters is not finite", epoch=0, fit=result(False, 0)
        )
    a.grad[:] = cost_and_gradient(params)[1]
    rates = opts.rates(0, opts.epochs) if opts.callback is None and opts.epochs <= 1 << 16 else None
    try:
        for epoch in range(opts.epochs):
            a.hyper[0] = rates[epoch] if rates is not None else opts.rate(epoch)
            _step(params, a.grad, a.velocity, a.steps, a.hyper, opts.nesterov, a.decayed)
            _average(params, a.steps, a.average, a.averaged)
            cost, a.grad[:] = cost_and_gradient(params, epoch)
            costs.append(cost)
            if not np.isfinite(cost):
                raise DivergenceError(
                    f"the loss became {cost} during epoch {epoch}; lower lr",
                    epoch=epoch,
                    fit=result(True, epoch),
                )
            a.commit_epoch()
            if opts.callback is not None and opts.callback(epoch, result(False, epoch + 1)):
                break
    except KeyboardInterrupt as exc:
        done = len(costs) - 1 if np.isfinite(costs[-1]) else len(costs) - 2
        raise FitInterrupted(
            f"fit interrupted after {done} epochs; .fit holds that state", fit=result(True, done)
        ) from exc
    if state is not None:
        state.save(a.velocity, a.steps[0])
    warn_if_runaway(costs)
    LAST_ANCHORS[:] = form.anchors
    return result(False, len(costs) - 1)


# solver="auto" takes the Gram path for full-batch mse fits of at least this
# many samples and ``AUTO_EPOCHS + AUTO_EPOCHS_PER_FEATURE · d`` epochs, on a
# backend with a compiled ``gram`` (benchmarks/NOTES.md item 14: since the
# register-tiled kernel the pass costs 0.2 streaming epochs at d = 1, about
# 1 at d = 8 and 2 at d = 64; 4 + d/16 keeps a margin of 2x or more).
AUTO_MIN_SAMPLES = 1 << 16
AUTO_EPOCHS = 4
AUTO_EPOCHS_PER_FEATURE = 1 / 16


def chosen(opts: _checks.Options, n: int, d: int, kernel_module: Any) -> bool:
    """Whether this fit runs on the Gram statistics (``solver`` and the auto rule).

    Sparse kernels have no ``gram``: "auto" streams sparse X (its statistics
    would be dense, d² values).
    """
    if opts.solver != "auto":
        return opts.solver == "gram"
    return (
        is_full_batch(opts.batch_size, n)
        and opts.loss == "mse"
        and not opts.exact
        and n >= AUTO_MIN_SAMPLES
        and opts.epochs >= AUTO_EPOCHS + AUTO_EPOCHS_PER_FEATURE * d
        and hasattr(kernel_module, "gram")
    )


def check(opts: _checks.Options, n: int) -> None:
    """``solver="gram"`` needs full-batch steps."""
    if opts.batch_size is not None and opts.batch_size < n:
        raise ValueError(
            f"solver='gram' runs full-batch GD: batch_size={opts.batch_size} < n={n}; "
            "use batch_size=None or solver='stream'"
        )


# Per-sample and mini-batch fits take their costs from the statistics (one
# read of X per epoch instead of two) for float64 mse fits of at least
# AUTO_MIN_SAMPLES samples and COST_EPOCHS + COST_EPOCHS_PER_FEATURE · d
# epochs: the statistics' pass must be repaid by the cost passes it saves
# (benchmarks/NOTES.md item 14: repaid after 0.4-0.7 epochs at d <= 8 and
# 1.8-5 at d = 64, per-sample and batch 64). float32 streams: its costs are sums of
# float32 residuals, which the float64 form does not round like.
COST_EPOCHS = 4
COST_EPOCHS_PER_FEATURE = 1 / 16


def costs_from_statistics(opts: _checks.Options, X: Any, kernel_module: Any) -> bool:
    """Whether a per-sample or mini-batch fit takes its epochs' costs from the statistics."""
    n, d = X.shape
    return (
        opts.solver == "auto"
        and opts.batch_size is not None
        and opts.batch_size < n
        and opts.loss == "mse"
        and not opts.exact
        and isinstance(X, np.ndarray)
        and X.dtype == np.float64
        and n >= AUTO_MIN_SAMPLES
        and opts.epochs >= COST_EPOCHS + COST_EPOCHS_PER_FEATURE * d
        and hasattr(kernel_module, "gram")
    )
