"""What a fit runs: dask chunks, the Gram solver, or the epoch driver (internal).

The front of :func:`fastgd.fit` (and of the estimators): it checks the
inputs, then hands them to ``fastgd/_dask.py`` (dask collections), to
``fastgd/_gram.py`` (``solver="gram"``, or ``"auto"`` where the statistics
pay) or to the epoch driver ``fastgd/_engine.py``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from fastgd import _checks, _dask, _engine, _gram, _model, _sparse
from fastgd._backend import Handle, Plan
from fastgd._result import Fit
from fastgd._state import OptimizerState


def train(
    X: Any,
    y: Any,
    *,
    w0: Any = None,
    b0: Any = None,
    fit_intercept: bool = False,
    backend: Optional[str] = None,
    state: Optional[OptimizerState] = None,
    **hyperparameters: Any,
) -> Fit:
    """Run a fit on the selected backend (see :func:`fastgd.fit`).

    ``hyperparameters`` are every other keyword of :func:`fastgd.fit`
    (checked by :func:`fastgd._checks.options`). ``state`` (internal): start
    from this optimizer state and write the final one back into it (see
    :mod:`fastgd._state`).
    """
    if _is_dask(X) or _is_dask(y):  # dask arrays run chunk by chunk (fastgd/_dask.py)
        if _sparse.is_sparse(X):
            raise TypeError(
                "X is scipy.sparse and y a dask array: sparse X trains in memory or memory-mapped, "
                "not on dask; pass y as a numpy array (y.compute())"
            )
        return _dask.train(
            X, y, w0=w0, b0=b0, fit_intercept=fit_intercept, backend=backend, state=state, **hyperparameters
        )
    # X's NaN/inf check waits for the first pass over X that the fit makes
    # anyway (the starting cost, or the Gram statistics): NaN or inf in X
    # makes it non-finite for any finite parameters (0·inf is NaN), and only
    # then is X checked, with the same error. One read of X fewer: a third of
    # a 100-epoch Gram fit, half of a one-epoch fit.
    problem = _checks.prepare(X, y, w0, b0, fit_intercept, check_x=False)
    opts = _checks.options(**hyperparameters)
    kernel_module = _model.kernel_module_for(problem.X, backend)
    if _gram.chosen(opts, problem.X.shape[0], problem.n_features, kernel_module):
        _gram.check(opts, problem.X.shape[0])
        statistics = _gram.statistics(kernel_module, problem.X, problem.y, problem.fit_intercept)
        if isinstance(problem.X, np.ndarray) and not np.all(np.isfinite(statistics)):
            _checks.check_finite(problem.X, "X")
        mse = np.array([0, 1.0, 0.5], dtype=problem.X.dtype)
        handle = Handle(
            kernel_module, problem.X, problem.y, Plan.of(problem.X, problem.fit_intercept, opts), mse
        )

        def stream(at: np.ndarray) -> np.ndarray:
            return handle.sums(at, True, exact=False)

        return _gram.train(statistics, problem.X.shape[0], problem, opts, kernel_module.NAME, state, stream)
    if _gram.costs_from_statistics(opts, problem.X, kernel_module):
        # Per-sample or mini-batch epochs whose costs come from the statistics:
        # one read of X per epoch instead of two.
        statistics = _gram.statistics(kernel_module, problem.X, problem.y, problem.fit_intercept)
        if np.all(np.isfinite(statistics)):
            return _engine.run(problem, opts, kernel_module, state, statistics)
        _checks.check_finite(problem.X, "X")
        # Finite X whose statistics overflow: the streamed costs are finite or say where it broke.
    return _engine.run(problem, opts, kernel_module, state)


def _is_dask(a: Any) -> bool:
    """A dask collection, recognised without importing dask."""
    return type(a).__module__.split(".", 1)[0] == "dask"
