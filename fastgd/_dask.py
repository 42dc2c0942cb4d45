"""Full-batch gradient descent on dask arrays, chunk by chunk.

Imported only when ``fit`` is handed a dask array; dask is imported here,
never by ``import fastgd``.

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

Mini-batch and per-sample SGD (``batch_size`` smaller than ``n``) are not
run on dask arrays: they raise ``ValueError`` naming the alternatives
(``gd``, or ``.compute()`` / an ``np.memmap`` of the data).
"""

from __future__ import annotations

import sys
from typing import Any, List, Optional, Tuple

import numpy as np

from fastgd import _checks, _registry
from fastgd._engine import optimizer_arrays
from fastgd._result import Fit
from fastgd.errors import DivergenceError, FitInterrupted, warn_if_runaway

def _single_threaded_kernels(name: str) -> Any:
    """The kernels ``name`` in this (worker) thread, with numba limited to one thread."""
    kernels = _registry.kernels(name)
    if kernels.NAME == "numba":
        import numba

        numba.set_num_threads(1)
    return kernels


def _chunk_sums(
    X: np.ndarray, y: np.ndarray, params: np.ndarray, fit_intercept: bool, backend: str
) -> np.ndarray:
    """``[Σ r², Σ 2·x_j·r, (Σ 2·r)]`` (float64) over one chunk; runs in a worker."""
    kernels = _single_threaded_kernels(backend)
    X2 = np.ascontiguousarray(X.reshape(X.shape[0], -1), dtype=params.dtype)
    y1 = np.ascontiguousarray(y, dtype=params.dtype)
    # (numba's kernels serialise themselves under its workqueue threading layer.)
    return kernels.sums(X2, y1, params, fit_intercept, False, True)


def _chunk_finite(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[X finite, y finite]`` over one chunk; runs in a worker."""
    return np.array([bool(np.isfinite(X).all()), bool(np.isfinite(y).all())])


def _active_client() -> Any:
    """The active ``dask.distributed`` client, or None (distributed is not imported here)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.default_client()
    except ValueError:  # no client
        return None


def _prepare(X: Any, y: Any) -> Tuple[Any, Any, bool]:
    """Lazy checks and coercion: X (n, d) with one column chunk, y (n,) on X's row chunks."""
    import dask.array as da

    if not isinstance(X, da.Array):  # y is the dask array: X follows its chunks
        X = _checks.numeric_array(X, "X")
        if X.ndim not in (1, 2) or not isinstance(y, da.Array) or y.ndim < 1 or len(X) != y.shape[0]:
            raise ValueError(
                f"X (shape {X.shape}) must be a dask array, or have one row per element of y"
            )
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
                f"X and y have different numbers of samples: X has {X.shape[0]}, "
                f"y has shape {y.shape}"
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

    from fastgd.kernels.numpy_kernels import _step

    fit_intercept = _checks.check_flag(fit_intercept, "fit_intercept")
    opts = _checks.options(**hyperparameters)
    X, y, scalar_model = _prepare(X, y)
    n, d = X.shape
    if opts.batch_size is not None and opts.batch_size < n:
        raise ValueError(
            f"batch_size={opts.batch_size}: dask arrays run full-batch gradient descent only "
            "(batch_size=None, fastgd.gd). For sgd or minibatch_sgd pass numpy data: "
            "X.compute(), or an np.memmap / np.load(path, mmap_mode='r') of it for data larger "
            "than memory"
        )
    if opts.exact and len(X.chunks[0]) > 1:
        raise ValueError(
            "exact=True needs the reference's summation order, but dask arrays are summed "
            "chunk by chunk: use exact=False (agrees to ~1e-12), or rechunk X to one chunk"
        )
    dtype = X.dtype
    params = _checks.start_params(w0, b0, d, scalar_model, fit_intercept, dtype)
    kernels = _registry.kernels(backend)
    name = kernels.NAME

    client = _active_client()
    if client is not None:
        X, y = client.persist([X, y])
    x_blocks = X.to_delayed().ravel().tolist()
    y_blocks = y.to_delayed().ravel().tolist()

    def round_trip(at: np.ndarray) -> np.ndarray:
        """Σ over all chunks, added in chunk order: one compute, one round trip."""
        sums = dask.delayed(_chunk_sums, pure=True)
        tasks = [sums(xb, yb, at, fit_intercept, name) for xb, yb in zip(x_blocks, y_blocks)]
        partials = dask.compute(*tasks)
        total = np.array(partials[0], dtype=np.float64, copy=True)
        for part in partials[1:]:
            total += part
        return total

    hyper, grad, velocity, steps = optimizer_arrays(params, opts, state)
    costs: List[float] = []

    def result(at: np.ndarray, epochs_run: int) -> Fit:
        return Fit.from_params(
            at, n_features=d, scalar_model=scalar_model, fit_intercept=fit_intercept,
            losses=costs[:epochs_run], loss=costs[epochs_run], epochs_run=epochs_run, backend=name,
        )

    totals = round_trip(params)
    costs.append(totals[0] / n)
    if not np.isfinite(costs[0]):
        _raise_if_not_finite(x_blocks, y_blocks)
        raise DivergenceError(
            "the loss of the starting parameters is not finite", epoch=0, fit=result(params, 0)
        )
    grad[:] = totals[1:] / n
    completed = params.copy()  # the parameters after the last epoch whose cost is in `costs`
    try:
        for epoch in range(opts.epochs):
            _step(params, grad, velocity, steps, hyper, opts.nesterov)
            totals = round_trip(params)
            if not np.isfinite(totals[0]):
                costs.append(totals[0] / n)
                raise DivergenceError(
                    f"the loss became {costs[-1]} during epoch {epoch}; lower lr",
                    epoch=epoch, fit=result(completed, epoch),
                )
            costs.append(totals[0] / n)
            completed = params.copy()
            grad[:] = totals[1:] / n
            if opts.callback is not None and opts.callback(epoch, result(params, epoch + 1)):
                break
    except KeyboardInterrupt as exc:
        # Ctrl-C while the workers sum, or a KeyboardInterrupt from a callback.
        done = len(costs) - 1
        raise FitInterrupted(
            f"fit interrupted after {done} epochs; .fit holds that state", fit=result(completed, done)
        ) from exc
    warn_if_runaway(costs)
    if state is not None:
        state.save(velocity, steps[0])
    return result(params, len(costs) - 1)


def _raise_if_not_finite(x_blocks: List[Any], y_blocks: List[Any]) -> None:
    """ValueError naming X or y when a chunk holds NaN or infinity (one more round trip)."""
    import dask

    check = dask.delayed(_chunk_finite, pure=True)
    flags = np.array(dask.compute(*[check(xb, yb) for xb, yb in zip(x_blocks, y_blocks)]))
    if not flags[:, 0].all():
        raise ValueError("X contains NaN or infinity")
    if not flags[:, 1].all():
        raise ValueError("y contains NaN or infinity")
