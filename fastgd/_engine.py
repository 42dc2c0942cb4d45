"""The Python layer of every compiled backend: validation, dispatch, epochs,
callbacks and errors, written once. Kernels only do arithmetic."""

from __future__ import annotations

import queue
import threading
from typing import Any, Optional, Union

import numpy as np

from fastgd import _checks, _registry, _sparse
from fastgd._orders import block_shuffled_segments, epoch_orders, segment_rows, shuffle_block
from fastgd._result import Fit
from fastgd._state import OptimizerState, Training
from fastgd.errors import DivergenceError, FitInterrupted, warn_if_runaway


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
        from fastgd import _dask

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
    kernels = _kernels_for(problem.X, backend)
    from fastgd import _gram

    if _gram.chosen(opts, problem.X.shape[0], problem.n_features, kernels):
        _gram.check(opts, problem.X.shape[0])
        statistics = _gram.statistics(kernels, problem.X, problem.y, problem.fit_intercept)
        if isinstance(problem.X, np.ndarray) and not np.all(np.isfinite(statistics)):
            _checks.check_finite(problem.X, "X")
        loss_spec = np.array([0, 1.0, 0.5], dtype=problem.X.dtype)

        def stream(at: np.ndarray) -> np.ndarray:
            return kernels.sums(problem.X, problem.y, at, problem.fit_intercept, False, True, loss_spec)

        return _gram.train(statistics, problem.X.shape[0], problem, opts, kernels.NAME, state, stream)
    if _gram.costs_from_statistics(opts, problem.X, kernels):
        # Per-sample or mini-batch epochs whose costs come from the statistics:
        # one read of X per epoch instead of two.
        statistics = _gram.statistics(kernels, problem.X, problem.y, problem.fit_intercept)
        if np.all(np.isfinite(statistics)):
            return run(problem, opts, kernels, state, statistics)
        _checks.check_finite(problem.X, "X")
        # Finite X whose statistics overflow: the streamed costs are finite or say where it broke.
    return run(problem, opts, kernels, state)


def _kernels_for(X: Any, backend: Optional[str] = None) -> Any:
    """The kernel module that runs on ``X``: the backend's sparse kernels for sparse X."""
    kernels = _registry.kernels(backend)
    return _sparse.kernels_for(kernels) if _sparse.is_csr(X) else kernels


def _is_dask(a: Any) -> bool:
    """A dask collection, recognised without importing dask."""
    return type(a).__module__.split(".", 1)[0] == "dask"


# Epochs one kernel call runs at most (without a callback): bounds the loss
# history written ahead of the epochs actually run (512 KiB), so a fit asked
# for 10**12 epochs allocates only for the epochs it reaches.
EPOCHS_PER_CALL = 1 << 16
# A kernel call that touches more than this many values of X (epochs × n × d)
# may run past a second; on a backend whose kernels release the GIL it runs
# in a helper thread while the main thread waits for Ctrl-C (see _run_epochs).
# Below it the direct call costs nothing extra (the tutorial's fit).
BACKGROUND_MIN_WORK = 1 << 24


class LossHistory:
    """The costs of a fit, grown as epochs run: ``values[0]`` is the cost of
    the starting parameters, ``values[k]`` the cost after epoch ``k - 1``."""

    def __init__(self, first: float) -> None:
        self._values = np.empty(64, dtype=np.float64)
        self._values[0] = first
        self.epochs = 0

    def reserve(self, count: int) -> np.ndarray:
        """The slots of the next ``count`` epochs (NaN: not run yet)."""
        need = self.epochs + 1 + count
        if need > self._values.shape[0]:
            grown = np.empty(max(need, 2 * self._values.shape[0]), dtype=np.float64)
            grown[: self.epochs + 1] = self._values[: self.epochs + 1]
            self._values = grown
        slots = self._values[self.epochs + 1 : need]
        slots[:] = np.nan
        return slots

    def completed(self, slots: np.ndarray) -> int:
        """Epochs of ``slots`` that stored a cost (the leading non-NaN ones)."""
        not_run = np.flatnonzero(np.isnan(slots))
        return int(not_run[0]) if not_run.size else slots.shape[0]

    def losses(self, epochs_run: int) -> np.ndarray:
        return self._values[:epochs_run]

    def loss(self, epochs_run: int) -> float:
        return float(self._values[epochs_run])


_jobs: Optional["queue.SimpleQueue"] = None
_jobs_lock = threading.Lock()


def _helper_jobs() -> "queue.SimpleQueue":
    """The job queue of the one long-lived helper thread (started on first use).

    One thread for the whole process, reused: numba's OpenMP team belongs to
    the thread that launches parallel regions, and a fresh thread per call
    would build a new team (and lose warm caches) every time. Only the main
    thread hands it work, one call at a time.
    """
    global _jobs
    with _jobs_lock:
        if _jobs is None:
            jobs: "queue.SimpleQueue" = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(jobs,), name="fastgd-kernel", daemon=True).start()
            _jobs = jobs
    return _jobs


def _serve(jobs: "queue.SimpleQueue") -> None:
    while True:
        prepare, function, args, outcome, finished = jobs.get()
        try:
            prepare()
            outcome["value"] = function(*args)
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc
        finally:
            finished.set()


def _interruptible(kernels: Any, work: float, stop: np.ndarray, function: Any, *args: Any) -> Any:
    """``function(*args)`` (``kernels.run_epochs`` or ``run_steps``), interruptible
    by Ctrl-C within a fraction of a second.

    A compiled call that holds the main thread cannot see a signal until it
    returns. Long calls on kernels that release the GIL and accept a stop
    flag (``stop``, among their arguments) therefore run in a helper thread (one, kept
    for the process: :func:`_helper_jobs`); the main
    thread waits in short, interruptible joins, and on Ctrl-C sets the flag
    (the kernel checks it between blocks of samples), waits for the kernel to
    stop, and re-raises. Only the main thread receives signals: other
    threads call directly.
    """
    if (
        work < BACKGROUND_MIN_WORK
        or not getattr(kernels, "RELEASES_GIL", False)
        or threading.current_thread() is not threading.main_thread()
    ):
        return function(*args)
    outcome: dict = {}
    finished = threading.Event()
    _helper_jobs().put((kernels.thread_setup(), function, args, outcome, finished))
    try:
        # An Event rather than Thread.join: a join interrupted by a signal can
        # report a thread as finished while it still runs (CPython bpo-45274).
        while not finished.wait(0.05):
            pass
    except KeyboardInterrupt:
        stop[0] = 1
        finished.wait()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _stepped_epoch(
    kernels: Any,
    problem: _checks.Problem,
    opts: _checks.Options,
    batch_size: int,
    arrays: Training,
    rate: float,
    segments: Any,
    costs: np.ndarray,
    cost_of: Any,
) -> int:
    """One epoch fed to ``kernels.run_steps`` segment by segment (``segments``:
    the epoch's order in pieces), then its cost ``cost_of(params)``:
    ``run_epochs``' contract for one epoch (``costs[0]``, ``previous``, the
    number of finite epochs)."""
    X, y, a = problem.X, problem.y, arrays
    a.hyper[0] = rate
    for segment in segments:
        rows = segment.shape[0] or X.shape[0]  # an empty segment: the natural order, every row
        if not _interruptible(
            kernels,
            float(rows) * X.size / X.shape[0],
            a.stop,
            kernels.run_steps,
            X,
            y,
            a.params,
            a.grad,
            a.velocity,
            a.steps,
            a.hyper,
            opts.nesterov,
            problem.fit_intercept,
            opts.exact,
            batch_size,
            segment,
            a.stop,
            a.loss_spec,
            a.decayed,
            a.average,
            a.averaged,
        ):
            return 0
    costs[0] = cost_of(a.params)
    if not np.isfinite(costs[0]):
        return 0
    a.commit_epoch()
    return 1


def run(
    problem: _checks.Problem,
    opts: _checks.Options,
    kernels: Any,
    state: Optional[OptimizerState] = None,
    statistics: Optional[np.ndarray] = None,
) -> Fit:
    """The epoch loop over checked inputs.

    ``statistics``: the Gram statistics of the data (fastgd/_gram.py); the
    costs of per-sample and mini-batch epochs then come from them
    (:class:`fastgd._gram.QuadraticCost`), each epoch reading ``X`` once.
    """
    X, y, params = problem.X, problem.y, problem.params
    n, d = X.shape
    full_batch = opts.batch_size is None or opts.batch_size >= n
    batch_size = n if full_batch else opts.batch_size
    check = getattr(kernels, "check_options", None)
    if check is not None:
        check(opts, full_batch)
    arrays = Training(problem, opts, state)

    def result(at_previous: bool, epochs_run: int) -> Fit:
        at = arrays.previous if at_previous else params
        mean = arrays.mean(at_previous)
        loss = history.loss(epochs_run)
        if mean is not None:
            loss = kernels.sums(X, y, mean, problem.fit_intercept, opts.exact, False, arrays.loss_spec)[0] / n
        return Fit.from_params(
            at if mean is None else mean,
            n_features=d,
            scalar_model=problem.scalar_model,
            fit_intercept=problem.fit_intercept,
            losses=history.losses(epochs_run),
            loss=loss,
            epochs_run=epochs_run,
            backend=kernels.NAME,
            last=None if mean is None else at,
        )

    def streamed_cost(at: np.ndarray) -> float:
        return kernels.sums(X, y, at, problem.fit_intercept, opts.exact, False, arrays.loss_spec)[0] / n

    cost_of = streamed_cost
    if statistics is not None:
        from fastgd import _gram

        def stream(at: np.ndarray) -> np.ndarray:
            return kernels.sums(
                X, y, at.astype(X.dtype), problem.fit_intercept, False, True, arrays.loss_spec
            )

        # At p = 0 the form's anchor is exact from the statistics (cost yy/n);
        # elsewhere (w0, b0, a warm start) it starts from a streaming pass.
        form = _gram.QuadraticCost(
            statistics, n, params, stream, None if not params.any() else stream(params)
        )
        history = LossHistory(form.anchor_cost)

        def cost_of(at: np.ndarray) -> float:
            return form.cost(at, history.epochs)
    else:
        totals = kernels.sums(X, y, params, problem.fit_intercept, opts.exact, full_batch, arrays.loss_spec)
        history = LossHistory(totals[0] / n)
    if not np.isfinite(history.loss(0)):
        if isinstance(X, np.ndarray):
            _checks.check_finite(X, "X")  # NaN/inf in X (see train): the input's error first
        raise DivergenceError(
            "the loss of the starting parameters is not finite", epoch=0, fit=result(False, 0)
        )
    if full_batch:
        arrays.grad[:] = totals[1:] / n
    # Memory-mapped data is shuffled block by block, so disk reads stay
    # sequential; its epochs go to the kernels in segments of the order, so
    # that memory stays bounded however many samples there are.
    block = shuffle_block(X)
    orders = epoch_orders(n, opts.shuffle and not full_batch, opts.seed, block)
    segments = None
    if opts.shuffle and not full_batch and block is not None and n > block and hasattr(kernels, "run_steps"):
        rows = segment_rows(batch_size, getattr(kernels, "BLOCK", 1))
        segments = block_shuffled_segments(n, opts.seed, block, rows)
    # One kernel call runs many epochs, unless Python is needed between epochs
    # (a callback, or a fresh permutation). Scheduled rates are evaluated for
    # the epochs of a call before it.
    per_epoch = opts.callback is not None or (opts.shuffle and not full_batch) or statistics is not None
    pending = None  # the slots of the kernel call in progress, if any
    a = arrays
    try:
        while history.epochs < opts.epochs:
            count = 1 if per_epoch else min(opts.epochs - history.epochs, EPOCHS_PER_CALL)
            rates = opts.rates(history.epochs, count).astype(np.float64, copy=False)
            pending = history.reserve(count)
            if segments is not None or statistics is not None:
                pieces = next(segments) if segments is not None else (next(orders),)
                finite = _stepped_epoch(
                    kernels, problem, opts, batch_size, arrays, rates[0], pieces, pending, cost_of
                )
            else:
                finite = _interruptible(
                    kernels,
                    float(count) * X.size,
                    a.stop,
                    kernels.run_epochs,
                    X,
                    y,
                    params,
                    a.grad,
                    a.velocity,
                    a.steps,
                    a.previous,
                    a.hyper,
                    opts.nesterov,
                    problem.fit_intercept,
                    opts.exact,
                    full_batch,
                    batch_size,
                    next(orders),
                    pending,
                    a.stop,
                    rates,
                    a.loss_spec,
                    a.decayed,
                    a.average,
                    a.averaged,
                )
            if finite < count:
                broken = history.epochs + finite
                raise DivergenceError(
                    f"the loss became {pending[finite]} during epoch {broken}; lower lr",
                    epoch=broken,
                    fit=result(True, broken),
                )
            history.epochs += count
            pending = None
            if opts.callback is not None and opts.callback(history.epochs - 1, result(False, history.epochs)):
                break
    except KeyboardInterrupt as exc:
        # `previous` is the state after the last epoch whose cost was stored.
        completed = history.epochs + (0 if pending is None else history.completed(pending))
        raise FitInterrupted(
            f"fit interrupted after {completed} epochs; .fit holds that state",
            fit=result(True, completed),
        ) from exc
    if state is not None:
        state.save(a.velocity, a.steps[0])
    warn_if_runaway(history.losses(history.epochs + 1).tolist())
    return result(False, history.epochs)


def _shape_output(values: np.ndarray, model: _checks.Model) -> Union[float, np.ndarray]:
    return float(values[0]) if model.one_sample else values


def _predictions(model: _checks.Model) -> np.ndarray:
    out = np.empty(model.X.shape[0], dtype=model.X.dtype)
    _kernels_for(model.X).predict(model.X, model.params, model.has_intercept, out)
    return out


def forward(x: Any, w: Any, b: Optional[float] = None) -> Union[float, np.ndarray]:
    model = _checks.model_inputs(x, w, b)
    return _shape_output(_predictions(model), model)


def loss(
    x: Any, y: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> Union[float, np.ndarray]:
    kind, delta = _checks.loss_options(loss, delta)
    model = _checks.model_inputs(x, w, b)
    targets = _checks.targets(y, model)
    residuals = _predictions(model) - targets
    if kind == 0:
        values = residuals * residuals
    elif kind == 1:
        size = np.abs(residuals)
        half = residuals.dtype.type(0.5)
        limit = residuals.dtype.type(delta)
        values = np.where(size < limit, half * (residuals * residuals), limit * (size - half * limit))
    else:
        values = np.abs(residuals)
    return _shape_output(values, model)


def _model_sums(xs: Any, ys: Any, w: Any, b: Any, want_gradient: bool, loss: str, delta: float):
    kind, delta = _checks.loss_options(loss, delta)
    model = _checks.model_inputs(xs, w, b, x_name="xs")
    targets = _checks.targets(ys, model, "ys", "xs")
    loss_spec = np.array([kind, delta, 0.5], dtype=model.X.dtype)
    totals = _kernels_for(model.X).sums(
        model.X, targets, model.params, model.has_intercept, False, want_gradient, loss_spec
    )
    return model, totals / model.X.shape[0]


def cost(
    xs: Any, ys: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> float:
    return float(_model_sums(xs, ys, w, b, False, loss, delta)[1][0])


def gradient(
    xs: Any, ys: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> Any:
    model, means = _model_sums(xs, ys, w, b, True, loss, delta)
    d = model.X.shape[1]
    dw = float(means[1]) if model.scalar_model else means[1 : 1 + d].astype(model.X.dtype)
    return (dw, float(means[1 + d])) if model.has_intercept else dw
