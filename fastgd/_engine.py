"""The Python layer of every compiled backend: validation, dispatch, epochs,
callbacks and errors, written once. Kernels only do arithmetic."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from fastgd import _checks, _registry
from fastgd._orders import epoch_orders, shuffle_block
from fastgd._result import Fit
from fastgd._state import OptimizerState
from fastgd.errors import DivergenceError, FitInterrupted


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
        from fastgd import _dask

        return _dask.train(X, y, w0=w0, b0=b0, fit_intercept=fit_intercept, backend=backend,
                           state=state, **hyperparameters)
    problem = _checks.prepare(X, y, w0, b0, fit_intercept)
    opts = _checks.options(**hyperparameters)
    return run(problem, opts, _registry.kernels(backend), state)


def _is_dask(a: Any) -> bool:
    """A dask collection, recognised without importing dask."""
    return type(a).__module__.split(".", 1)[0] == "dask"


def optimizer_arrays(params: np.ndarray, opts: _checks.Options, state: Optional[OptimizerState]):
    """What the kernels' SGD step works on, in the training dtype of ``params``:
    ``hyper = [lr, momentum, 1 - dampening, weight_decay]``, a gradient buffer,
    the momentum buffer and the step count (both from ``state`` when given)."""
    hyper = np.array([opts.lr, opts.momentum, 1 - opts.dampening, opts.weight_decay],
                     dtype=params.dtype)
    grad = np.zeros_like(params)
    velocity = np.zeros_like(params)
    steps = np.zeros(1, dtype=np.int64)
    start = None if state is None else state.initial_velocity(len(params))
    if start is not None:
        velocity[:] = start
        steps[0] = state.steps
    return hyper, grad, velocity, steps


def run(
    problem: _checks.Problem, opts: _checks.Options, kernels: Any,
    state: Optional[OptimizerState] = None,
) -> Fit:
    """The epoch loop over checked inputs."""
    X, y, params = problem.X, problem.y, problem.params
    n, d = X.shape
    full_batch = opts.batch_size is None or opts.batch_size >= n
    batch_size = n if full_batch else opts.batch_size
    hyper, grad, velocity, steps = optimizer_arrays(params, opts, state)
    previous = params.copy()
    costs = np.empty(opts.epochs + 1, dtype=np.float64)

    def result(at: np.ndarray, epochs_run: int) -> Fit:
        return Fit.from_params(
            at, n_features=d, scalar_model=problem.scalar_model, fit_intercept=problem.fit_intercept,
            losses=costs[:epochs_run], loss=costs[epochs_run], epochs_run=epochs_run,
            backend=kernels.NAME,
        )

    totals = kernels.sums(X, y, params, problem.fit_intercept, opts.exact, full_batch)
    costs[0] = totals[0] / n
    if not np.isfinite(costs[0]):
        raise DivergenceError(
            "the loss of the starting parameters is not finite", epoch=0, fit=result(params, 0)
        )
    if full_batch:
        grad[:] = totals[1:] / n
    # Memory-mapped data is shuffled block by block, so disk reads stay sequential.
    orders = epoch_orders(n, opts.shuffle and not full_batch, opts.seed, shuffle_block(X))
    # One kernel call runs every epoch, unless Python is needed between epochs
    # (a callback, or a fresh permutation).
    per_epoch = opts.callback is not None or (opts.shuffle and not full_batch)
    # NaN marks epochs not yet run, so that an interrupt can tell how far it got.
    costs[1:] = np.nan
    done = 0
    try:
        while done < opts.epochs:
            count = 1 if per_epoch else opts.epochs - done
            finite = kernels.run_epochs(
                X, y, params, grad, velocity, steps, previous, hyper, opts.nesterov,
                problem.fit_intercept, opts.exact, full_batch, batch_size, next(orders),
                costs[done + 1 : done + 1 + count],
            )
            if finite < count:
                broken = done + finite
                raise DivergenceError(
                    f"the loss became {costs[broken + 1]} during epoch {broken}; lower lr",
                    epoch=broken,
                    fit=result(previous, broken),
                )
            done += count
            if opts.callback is not None and opts.callback(done - 1, result(params, done)):
                break
    except KeyboardInterrupt as exc:
        # `previous` is the state after the last epoch whose cost was stored.
        not_run = np.flatnonzero(np.isnan(costs[1:]))
        completed = int(not_run[0]) if not_run.size else opts.epochs
        raise FitInterrupted(
            f"fit interrupted after {completed} epochs; .fit holds that state",
            fit=result(previous, completed),
        ) from exc
    if state is not None:
        state.save(velocity, steps[0])
    return result(params, done)


def _shape_output(values: np.ndarray, model: _checks.Model) -> Union[float, np.ndarray]:
    return float(values[0]) if model.one_sample else values


def _predictions(model: _checks.Model) -> np.ndarray:
    out = np.empty(model.X.shape[0], dtype=model.X.dtype)
    _registry.kernels().predict(model.X, model.params, model.has_intercept, out)
    return out


def forward(x: Any, w: Any, b: Optional[float] = None) -> Union[float, np.ndarray]:
    model = _checks.model_inputs(x, w, b)
    return _shape_output(_predictions(model), model)


def loss(x: Any, y: Any, w: Any, b: Optional[float] = None) -> Union[float, np.ndarray]:
    model = _checks.model_inputs(x, w, b)
    targets = _checks.targets(y, model)
    residuals = _predictions(model) - targets
    return _shape_output(residuals * residuals, model)


def _model_sums(xs: Any, ys: Any, w: Any, b: Any, want_gradient: bool):
    model = _checks.model_inputs(xs, w, b, x_name="xs")
    targets = _checks.targets(ys, model, "ys", "xs")
    totals = _registry.kernels().sums(model.X, targets, model.params, model.has_intercept, False,
                                      want_gradient)
    return model, totals / model.X.shape[0]


def cost(xs: Any, ys: Any, w: Any, b: Optional[float] = None) -> float:
    return float(_model_sums(xs, ys, w, b, False)[1][0])


def gradient(xs: Any, ys: Any, w: Any, b: Optional[float] = None) -> Any:
    model, means = _model_sums(xs, ys, w, b, True)
    d = model.X.shape[1]
    dw = float(means[1]) if model.scalar_model else means[1 : 1 + d].astype(model.X.dtype)
    return (dw, float(means[1 + d])) if model.has_intercept else dw
