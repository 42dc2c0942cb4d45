"""The epoch driver of every backend: divergence, callbacks, Ctrl-C, bounded
kernel calls, the loss history, state hand-over and the Fit, written once.
Kernels only do arithmetic; fastgd/_dispatch.py chooses what runs."""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Optional

import numpy as np

from fastgd import _checks
from fastgd._backend import Handle, Plan
from fastgd._orders import block_shuffled_segments, epoch_orders, segment_rows, shuffle_block
from fastgd._result import Fit
from fastgd._state import OptimizerState, Training
from fastgd.errors import DivergenceError, FitInterrupted, warn_if_runaway

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

    def __init__(self, first: float = float("nan")) -> None:
        self._values = np.empty(64, dtype=np.float64)
        self._values[0] = first
        self.epochs = 0

    def start(self, first: float) -> None:
        """Set the cost of the starting parameters (NaN until it is known)."""
        self._values[0] = first

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


def _interruptible(kernel_module: Any, work: float, stop: np.ndarray, function: Any, *args: Any) -> Any:
    """``function(*args)`` (a call of the kernel module ``kernels``, e.g.
    ``Handle.run_epochs``; ``kernels`` None: a call that waits in this thread,
    where Ctrl-C lands anyway), interruptible
    by Ctrl-C within a fraction of a second.

    A compiled call that holds the main thread cannot see a signal until it
    returns. Long calls on kernels that release the GIL and accept a stop
    flag (``stop``, the state's) therefore run in a helper thread (one, kept
    for the process: :func:`_helper_jobs`); the main
    thread waits in short, interruptible joins, and on Ctrl-C sets the flag
    (the kernel checks it between blocks of samples), waits for the kernel to
    stop, and re-raises. Only the main thread receives signals: other
    threads call directly.
    """
    if (
        work < BACKGROUND_MIN_WORK
        or not getattr(kernel_module, "RELEASES_GIL", False)
        or threading.current_thread() is not threading.main_thread()
    ):
        return function(*args)
    outcome: dict = {}
    finished = threading.Event()
    _helper_jobs().put((kernel_module.thread_setup(), function, args, outcome, finished))
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
    handle: Handle, state: Training, rate: float, segments: Any, costs: np.ndarray, cost_of: Any
) -> int:
    """One epoch fed to ``handle.run_steps`` segment by segment (``segments``:
    the epoch's order in pieces), then its cost ``cost_of(params)``:
    ``run_epochs``' contract for one epoch (``costs[0]``, ``previous``, the
    number of finite epochs)."""
    X = handle.X
    state.hyper[0] = rate
    for segment in segments:
        rows = segment.shape[0] or X.shape[0]  # an empty segment: the natural order, every row
        work = float(rows) * X.size / X.shape[0]
        if not _interruptible(handle.threaded_module, work, state.stop, handle.run_steps, state, segment):
            return 0
    costs[0] = cost_of(state.params)
    if not np.isfinite(costs[0]):
        return 0
    state.commit_epoch()
    return 1


def run(
    problem: _checks.Problem,
    opts: _checks.Options,
    kernel_module: Any,
    state: Optional[OptimizerState] = None,
    statistics: Optional[np.ndarray] = None,
    prepare: Callable[..., Handle] = Handle,
) -> Fit:
    """The epoch loop over checked inputs.

    ``prepare(kernels, X, y, plan, loss_spec)`` makes the fit's handle
    (:class:`fastgd._backend.Handle`; dask passes its chunks' handle).

    ``statistics``: the Gram statistics of the data (fastgd/_gram.py); the
    costs of per-sample and mini-batch epochs then come from them
    (:class:`fastgd._gram.QuadraticCost`), each epoch reading ``X`` once.
    """
    X, params = problem.X, problem.params
    n, d = X.shape
    plan = Plan.of(X, problem.fit_intercept, opts)
    full_batch = plan.full_batch
    check = getattr(kernel_module, "check_options", None)
    if check is not None:
        check(opts)
    arrays = Training(problem, opts, state)
    handle = prepare(kernel_module, X, problem.y, plan, arrays.loss_spec)

    def result(at_previous: bool, epochs_run: int) -> Fit:
        at = arrays.previous if at_previous else params
        mean = arrays.mean(at_previous)
        loss = history.loss(epochs_run)
        if mean is not None:
            loss = handle.sums(mean, False)[0] / n
        return Fit.from_params(
            at if mean is None else mean,
            n_features=d,
            scalar_model=problem.scalar_model,
            fit_intercept=problem.fit_intercept,
            losses=history.losses(epochs_run),
            loss=loss,
            epochs_run=epochs_run,
            backend=handle.name,
            last=None if mean is None else at,
        )

    def streamed_cost(at: np.ndarray) -> float:
        return handle.sums(at, False)[0] / n

    cost_of = streamed_cost
    # The starting cost is the fit's first pass over X (and, on a fresh
    # process, where numba compiles): Ctrl-C there hands back the start,
    # whose cost is not known yet.
    history = LossHistory()
    try:
        if statistics is not None:
            from fastgd import _gram

            def stream(at: np.ndarray) -> np.ndarray:
                return handle.sums(at.astype(X.dtype), True, exact=False)

            # At p = 0 the form's anchor is exact from the statistics (cost yy/n);
            # elsewhere (w0, b0, a warm start) it starts from a streaming pass.
            form = _gram.QuadraticCost(
                statistics, n, params, stream, None if not params.any() else stream(params)
            )
            history.start(form.anchor_cost)

            def cost_of(at: np.ndarray) -> float:
                return form.cost(at, history.epochs)
        else:
            totals = handle.sums(params, full_batch)
            history.start(totals[0] / n)
    except KeyboardInterrupt as exc:
        raise FitInterrupted(
            "fit interrupted before its first epoch; .fit holds the starting parameters",
            fit=result(False, 0),
        ) from exc
    if not np.isfinite(history.loss(0)):
        handle.check_data()  # NaN/inf in X (see train): the input's error first
        raise DivergenceError(
            "the loss of the starting parameters is not finite", epoch=0, fit=result(False, 0)
        )
    if full_batch:
        arrays.grad[:] = totals[1:] / n
    # Memory-mapped data is shuffled block by block, so disk reads stay
    # sequential; its epochs go to the kernels in segments of the order, so
    # that memory stays bounded however many samples there are.
    block = shuffle_block(X)
    shuffled = opts.shuffle and not full_batch and not handle.shuffles_itself
    orders = epoch_orders(n, shuffled, opts.seed, block)
    segments = None
    if shuffled and block is not None and n > block and handle.has_steps:
        rows = segment_rows(plan.batch_size, handle.kernel_block)
        segments = block_shuffled_segments(n, opts.seed, block, rows)
    # One kernel call runs many epochs, unless Python is needed between epochs
    # (a callback, or a fresh permutation). Scheduled rates are evaluated for
    # the epochs of a call before it.
    per_epoch = opts.callback is not None or (opts.shuffle and not full_batch) or statistics is not None
    pending = None  # the slots of the kernel call in progress, if any
    try:
        while history.epochs < opts.epochs:
            count = 1 if per_epoch else min(opts.epochs - history.epochs, EPOCHS_PER_CALL)
            rates = opts.rates(history.epochs, count).astype(np.float64, copy=False)
            pending = history.reserve(count)
            if segments is not None or statistics is not None:
                pieces = next(segments) if segments is not None else (next(orders),)
                finite = _stepped_epoch(handle, arrays, rates[0], pieces, pending, cost_of)
            else:
                work = float(count) * X.size
                finite = _interruptible(
                    handle.threaded_module,
                    work,
                    arrays.stop,
                    handle.run_epochs,
                    arrays,
                    next(orders),
                    pending,
                    rates,
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
        state.save(arrays.velocity, arrays.steps[0])
    warn_if_runaway(history.losses(history.epochs + 1).tolist())
    return result(False, history.epochs)
