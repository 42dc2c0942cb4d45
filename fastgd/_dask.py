"""Fits on dask arrays, chunk by chunk, run by the one epoch driver.

``train`` checks the arrays and persists the chunks, then hands the fit to
``fastgd._engine.run`` with a :class:`ChunkHandle`: the driver's interrupts,
callbacks, schedules, divergence and state hand-over are the in-memory
fit's. dask itself is imported only inside these functions, never by
``import fastgd``.

How a fit runs:

- ``X`` and ``y`` are checked lazily (shapes, dtype; ``X`` is rechunked to a
  single column chunk and ``y`` to ``X``'s row chunks) and, when a
  ``dask.distributed`` client is active, persisted on the cluster once.
  Without a client the local scheduler recomputes the chunks each epoch
  (persisting would load the whole array into this process).
- One round trip per epoch: the client sends the parameters; each chunk's
  task returns the float64 partial sums ``[Σ r², Σ 2·x_j·r, (Σ 2·r)]`` from
  the compiled kernels (``kernels.sums``) run in the worker; the client adds
  the partials in chunk order (deterministic, whatever order the tasks
  finish in), divides by ``n`` and takes the ``torch.optim.SGD`` step itself
  (the numpy backend's step, the same arithmetic as every kernel's). As in
  the in-memory engine, the pass that gives the cost after a step also gives
  the gradient of the next step: ``epochs + 1`` round trips in all.
- The sums are those of the in-memory fit, reassociated by chunk: results
  agree with it to about 1e-12 relative (float64), not bit for bit, so
  ``exact=True`` is refused on more than one chunk.
- Workers must not oversubscribe the cores: each task limits numba to one
  thread (``numba.set_num_threads(1)``, which is per calling thread), so a
  worker runs as many kernel threads as it has dask threads. Start one
  worker process per core with one thread each (``LocalCluster(n_workers=
  cores, threads_per_worker=1)``); setting ``NUMBA_NUM_THREADS=1`` in the
  workers' environment also avoids starting numba's idle thread pool.

Mini-batch and per-sample SGD (``batch_size`` smaller than ``n``) run
chunk after chunk on the workers that hold the chunks: the parameters, the
momentum buffer and the step count travel from task to task, the data stays
(one compute per epoch: the chain of chunk tasks, then the cost of each
chunk). ``X`` is first rechunked, once, so that every chunk but the last
holds whole batches; the batches are then those of the in-memory fit, and
with ``shuffle=False`` the steps are the in-memory fit's steps (bit for bit
in exact mode on one chunk; default mode within 1e-9: the kernels' blocks
restart at each chunk). With ``shuffle=True`` each epoch visits the chunks in
a random order and the rows of each chunk in a random order, drawn from
``seed`` as the block-shuffled order of memory-mapped data is, with the
chunks as its blocks (chunks of 65,536 rows give exactly the order of the
same data memory-mapped).
"""

from __future__ import annotations

import sys
from typing import Any, List, Optional, Tuple

import numpy as np

from fastgd import _checks, _engine, _registry
from fastgd._backend import Handle, Plan, is_full_batch
from fastgd._orders import NATURAL
from fastgd._result import Fit
from fastgd._state import Training


def _single_threaded_module(name: str) -> Any:
    """The kernels ``name`` in this (worker) thread, with numba limited to one thread."""
    kernel_module = _registry.kernel_module(name)
    if kernel_module.NAME == "numba":
        import numba

        numba.set_num_threads(1)
    return kernel_module


def _chunk_arrays(X: np.ndarray, y: np.ndarray, dtype: Any) -> Tuple[np.ndarray, np.ndarray]:
    """A chunk as the kernels read it: C-contiguous (n, d) and (n,) in the training dtype."""
    X2 = np.ascontiguousarray(X.reshape(X.shape[0], -1), dtype=dtype)
    return X2, np.ascontiguousarray(y, dtype=dtype)


def _chunk_sums(
    X: np.ndarray,
    y: np.ndarray,
    params: np.ndarray,
    plan: Plan,
    backend: str,
    loss_spec: np.ndarray,
    want_gradient: bool = True,
    exact: Optional[bool] = None,
) -> np.ndarray:
    """``[Σ ℓ(r), Σ x_j·ℓ'(r), (Σ ℓ'(r))]`` (float64) over one chunk; runs in a worker."""
    kernel_module = _single_threaded_module(backend)
    X2, y1 = _chunk_arrays(X, y, params.dtype)
    # (numba's kernels serialise themselves under its workqueue threading layer.)
    return Handle(kernel_module, X2, y1, plan, loss_spec).sums(params, want_gradient, exact)


def _chunk_steps(
    X: np.ndarray,
    y: np.ndarray,
    carried: Tuple[np.ndarray, ...],
    hyper: np.ndarray,
    plan: Plan,
    rows: np.ndarray,
    backend: str,
    loss_spec: np.ndarray,
    decayed: int,
) -> Tuple[Tuple[np.ndarray, ...], np.ndarray]:
    """The SGD steps over one chunk's rows in the order ``rows`` (empty: in
    order); runs in the worker that holds the chunk. ``carried`` is what
    travels from chunk to chunk: the parameters, momentum buffer, step count
    and the running average with its counts (copied, never modified). Returns
    the new ``carried`` and, on its own, the new parameters."""
    kernel_module = _single_threaded_module(backend)
    X2, y1 = _chunk_arrays(X, y, carried[0].dtype)
    s = Training.travelling(carried, hyper, loss_spec, decayed)
    Handle(kernel_module, X2, y1, plan, loss_spec).run_steps(s, rows)
    return (s.params, s.velocity, s.steps, s.average, s.averaged), s.params


def _chunk_gram(X: np.ndarray, y: np.ndarray, fit_intercept: bool, backend: str, dtype: Any) -> np.ndarray:
    """``[A | y]ᵀ[A | y]`` (float64) of one chunk; runs in a worker."""
    from fastgd import _gram

    kernel_module = _single_threaded_module(backend)
    X2, y1 = _chunk_arrays(X, y, dtype)
    return _gram.statistics(kernel_module, X2, y1, fit_intercept)


def _in_chunk_order(partials: Any) -> np.ndarray:
    """The chunks' partial sums added in chunk order (whatever order they finished in)."""
    total = np.array(partials[0], dtype=np.float64, copy=True)
    for part in partials[1:]:
        total += part
    return total


def _chunk_visits(sizes: List[int], rng: Optional[np.random.Generator]):
    """``(chunk, rows)`` in visiting order: chunks in order with ``rows`` empty
    (natural order), or, with ``rng``, chunks in a random order and each
    chunk's rows in a random order — the draws of the block-shuffled order of
    memory-mapped data (fastgd._orders), with the chunks as its blocks."""
    if rng is None:
        for k in range(len(sizes)):
            yield k, NATURAL
        return
    for k in rng.permutation(len(sizes)).tolist():
        yield k, rng.permutation(sizes[k]).astype(np.int64, copy=False)


def _batch_aligned(X: Any, y: Any, batch_size: int) -> Tuple[Any, Any]:
    """X and y rechunked (once) so that every chunk but the last holds whole
    batches: a batch never spans two chunks, so the batches are those of the
    in-memory fit."""
    sizes = X.chunks[0]
    if all(size % batch_size == 0 for size in sizes[:-1]):
        return X, y
    rows = max(batch_size, max(sizes) // batch_size * batch_size)
    return X.rechunk({0: rows}), y.rechunk({0: rows})


def _chunk_finite(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[X finite, y finite]`` over one chunk; runs in a worker."""
    return np.array([bool(np.isfinite(X).all()), bool(np.isfinite(y).all())])


def _active_client() -> Any:
    """The ``dask.distributed`` client that dask computes on, or None: none is
    open, distributed is not imported here, or ``dask.config.set(scheduler=...)``
    picked another scheduler while one is open (its persisted chunks would be
    futures that scheduler cannot read)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        client = distributed.default_client()
    except ValueError:  # no client
        return None
    import dask.base

    scheduler = dask.base.get_scheduler()
    return client if getattr(scheduler, "__self__", None) is client else None


def _prepare(X: Any, y: Any) -> Tuple[Any, Any, bool]:
    """Lazy checks and coercion: X (n, d) with one column chunk, y (n,) on X's row chunks."""
    import dask.array as da

    if not isinstance(X, da.Array):  # y is the dask array: X follows its chunks
        X = _checks.numeric_array(X, "X")
        if X.ndim not in (1, 2) or not isinstance(y, da.Array) or y.ndim < 1 or len(X) != y.shape[0]:
            raise ValueError(f"X (shape {X.shape}) must be a dask array, or have one row per element of y")
        X = da.from_array(X, chunks=(y.chunks[0],) + (-1,) * (X.ndim - 1))
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must be numeric (real numbers), got dtype {X.dtype}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if X.ndim not in (1, 2):
        raise ValueError(f"X must be 1-D (n,) or 2-D (n, d), got shape {X.shape}")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes: call X.compute_chunk_sizes() first")
    scalar_model = X.ndim == 1
    if scalar_model:
        X = X[:, None]
    if X.shape[0] == 0:
        raise ValueError("X is empty: it needs at least one sample")
    if X.shape[1] == 0:
        raise ValueError("X has no features (shape (n, 0))")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    if not isinstance(y, da.Array):  # X is the dask array: y follows its chunks
        y = _checks.numeric_array(y, "y", dtype=X.dtype)
        if y.ndim == 0 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y have different numbers of samples: X has {X.shape[0]}, y has shape {y.shape}"
            )
        y = da.from_array(y, chunks=(X.chunks[0],) + (-1,) * (y.ndim - 1))
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y must be numeric (real numbers), got dtype {y.dtype}")
    y = _checks.target_vector(y.astype(X.dtype), X.shape[0])
    if y.chunks[0] != X.chunks[0]:
        y = y.rechunk((X.chunks[0],))
    return X, y, scalar_model


def train(
    X: Any,
    y: Any,
    *,
    w0: Any = None,
    b0: Any = None,
    fit_intercept: bool = False,
    backend: Optional[str] = None,
    state: Any = None,
    **hyperparameters: Any,
) -> Fit:
    """Full-batch gradient descent over dask arrays (see the module docstring)."""
    import dask

    fit_intercept = _checks.check_flag(fit_intercept, "fit_intercept")
    opts = _checks.options(**hyperparameters)
    X, y, scalar_model = _prepare(X, y)
    n, d = X.shape
    if not is_full_batch(opts.batch_size, n):
        X, y = _batch_aligned(X, y, opts.batch_size)
    if opts.exact and len(X.chunks[0]) > 1:
        raise ValueError(
            "exact=True needs the reference's summation order, but dask arrays are summed "
            "chunk by chunk: use exact=False (agrees to ~1e-12), or rechunk X to one chunk"
        )
    dtype = X.dtype
    params = _checks.start_params(w0, b0, d, scalar_model, fit_intercept, dtype)
    kernel_module = _registry.kernel_module(backend)
    name = kernel_module.NAME

    client = _active_client()
    if client is not None:
        X, y = client.persist([X, y])
    x_chunks = X.to_delayed().ravel().tolist()
    y_chunks = y.to_delayed().ravel().tolist()
    from fastgd import _gram

    if _gram.chosen(opts, n, d, kernel_module):
        # One round trip (and one more per re-anchoring): each chunk's
        # [A | y]ᵀ[A | y], added in chunk order.
        _gram.check(opts, n)
        gram = dask.delayed(_chunk_gram, pure=True)
        M = _in_chunk_order(
            dask.compute(*[gram(xb, yb, fit_intercept, name, dtype) for xb, yb in zip(x_chunks, y_chunks)])
        )
        if not np.isfinite(M).all():
            _raise_if_not_finite(x_chunks, y_chunks)
        mse = np.array([0, 1.0, 0.5], dtype=dtype)
        plan = Plan.of(X, fit_intercept, opts)

        def stream(at: np.ndarray) -> np.ndarray:
            sums = dask.delayed(_chunk_sums, pure=True)
            tasks = [sums(xb, yb, at, plan, name, mse, True, False) for xb, yb in zip(x_chunks, y_chunks)]
            return _in_chunk_order(dask.compute(*tasks))

        return _gram.train(
            M, n, _checks.Problem(X, y, params, scalar_model, fit_intercept), opts, name, state, stream
        )

    rng = np.random.default_rng(opts.seed) if opts.shuffle else None

    def chunks(kernel_module: Any, X: Any, y: Any, plan: Plan, loss_spec: np.ndarray) -> Handle:
        return ChunkHandle(kernel_module, X, y, plan, loss_spec, x_chunks, y_chunks, rng)

    problem = _checks.Problem(X, y, params, scalar_model, fit_intercept)
    return _engine.run(problem, opts, kernel_module, state, prepare=chunks)


class ChunkHandle(Handle):
    """A fit's dask chunks as the driver's handle (fastgd/_backend.py): the
    chunks stay on the workers, the parameters and optimizer state travel.

    ``run_epochs`` ignores the driver's ``order`` (``shuffles_itself``): a
    shuffled epoch visits the chunks, and the rows of each chunk, in the
    order drawn from ``rng`` (:func:`_chunk_visits`).
    """

    shuffles_itself = True
    has_steps = False
    # The client waits on the workers in the main thread, where Ctrl-C lands.
    threaded_module = None

    def __init__(
        self,
        kernel_module: Any,
        X: Any,
        y: Any,
        plan: Plan,
        loss_spec: np.ndarray,
        x_chunks: List[Any],
        y_chunks: List[Any],
        rng: Optional[np.random.Generator],
    ) -> None:
        self.kernel_module, self.name = kernel_module, kernel_module.NAME
        self.X, self.y, self.plan, self.loss_spec = X, y, plan, loss_spec
        self.x_chunks, self.y_chunks, self.rng = x_chunks, y_chunks, rng
        self.chunk_sizes = list(X.chunks[0])

    def sums(self, params: np.ndarray, want_gradient: bool, exact: Optional[bool] = None) -> np.ndarray:
        """Σ over all chunks, added in chunk order: one compute, one round trip."""
        import dask

        sums = dask.delayed(_chunk_sums, pure=True)
        tasks = [
            sums(xb, yb, params, self.plan, self.name, self.loss_spec, want_gradient, exact)
            for xb, yb in zip(self.x_chunks, self.y_chunks)
        ]
        return _in_chunk_order(dask.compute(*tasks))

    def check_data(self) -> None:
        _raise_if_not_finite(self.x_chunks, self.y_chunks)

    def run_epochs(self, state: Training, order: np.ndarray, costs: np.ndarray, rates: np.ndarray) -> int:
        n = self.X.shape[0]
        epoch = self._batch_epoch if self.plan.full_batch else self._steps_epoch
        for e in range(costs.shape[0]):
            state.hyper[0] = rates[e]
            costs[e] = epoch(state) / n
            if not np.isfinite(costs[e]):
                return e
            state.commit_epoch()
        return costs.shape[0]

    def _steps_epoch(self, state: Training) -> float:
        """One epoch of (mini-)batch steps, chunk after chunk on the workers that
        hold them, then the cost over all chunks: one compute in all."""
        import dask

        plan, s = self.plan, state
        run = dask.delayed(_chunk_steps, pure=True, nout=2)
        cost = dask.delayed(_chunk_sums, pure=True)
        carried = (s.params, s.velocity, s.steps, s.average, s.averaged)
        moved = None
        for k, rows in _chunk_visits(self.chunk_sizes, self.rng):
            carried, moved = run(
                self.x_chunks[k],
                self.y_chunks[k],
                carried,
                s.hyper,
                plan,
                rows,
                self.name,
                s.loss_spec,
                s.decayed,
            )
        tasks = [
            cost(xb, yb, moved, plan, self.name, s.loss_spec, False)
            for xb, yb in zip(self.x_chunks, self.y_chunks)
        ]
        final, *partials = dask.compute(carried, *tasks)
        for target, value in zip((s.params, s.velocity, s.steps, s.average, s.averaged), final):
            target[...] = value
        return _in_chunk_order(partials)[0]

    def _batch_epoch(self, state: Training) -> float:
        """One full-batch step (here), then the cost and gradient at its result."""
        from fastgd.kernels.numpy_kernels import _average, _step

        s = state
        _step(s.params, s.grad, s.velocity, s.steps, s.hyper, self.plan.nesterov, s.decayed)
        _average(s.params, s.steps, s.average, s.averaged)
        totals = self.sums(s.params, True)
        s.grad[:] = totals[1:] / self.X.shape[0]
        return totals[0]


def _raise_if_not_finite(x_chunks: List[Any], y_chunks: List[Any]) -> None:
    """ValueError naming X or y when a chunk holds NaN or infinity (one more round trip)."""
    import dask

    check = dask.delayed(_chunk_finite, pure=True)
    flags = np.array(dask.compute(*[check(xb, yb) for xb, yb in zip(x_chunks, y_chunks)]))
    if not flags[:, 0].all():
        raise ValueError("X contains NaN or infinity")
    if not flags[:, 1].all():
        raise ValueError("y contains NaN or infinity")
