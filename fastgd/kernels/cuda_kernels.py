"""CUDA kernels (numba.cuda), mirroring fastgd/kernels/numba_kernels.py; the operation order is fastgd/reference.py's.

The opt-in ``cuda`` backend: same kernel interface as every backend (see
fastgd/kernels/__init__.py). The engine hands in host numpy arrays; this
module copies the data to the device once per fit and keeps it there.

Reductions. ``_blocked_sums`` walks the samples with a grid-stride loop, each
thread adding its samples into float64 accumulators; each block then reduces
its threads' sums in shared memory with a tree of fixed shape and writes one
row of ``partials``. A one-block kernel (``_reduce_partials``) adds the rows in
block order, again with a fixed tree. No float atomics anywhere, and the grid
depends only on ``n``, ``THREADS_PER_BLOCK`` and ``MAX_BLOCKS``: the same
inputs give bit-for-bit the same result on every run. The columns
``[Σ r², Σ 2 x_j r, (Σ 2 r)]`` are reduced ``MAX_WIDTH`` at a time, one column
chunk per ``blockIdx.y``; wide models (``d + 2 > MAX_WIDTH``) therefore read the
data once per chunk.

Epochs. All epochs of a ``run_epochs`` call are queued without a host sync.
The kernel that ends an epoch writes the epoch's cost to a device array and
raises a device flag when it is not finite; every later kernel of the call
returns at once when the flag is up, so ``params`` and ``previous`` are left as
the CPU kernels leave them. The costs, parameters and optimizer state come
back in one copy at the end of the call.

- Full-batch GD: per epoch, ``_blocked_sums`` at the stepped parameters, then
  ``_finish_epoch`` (one block) adds the block sums, stores the cost and the
  mean gradient, and takes the next epoch's step (``_step``, one thread per
  parameter): two launches per epoch.
- Mini-batch SGD: one persistent one-block kernel per epoch (``_batch_steps``)
  instead of one launch per batch. The batches form a sequential chain, and a
  64 x 64 batch is about 4k multiply-adds, far less work than one launch
  costs (numba's Python-side launch overhead is tens of microseconds, against
  a few ``__syncthreads`` per batch inside one block); one launch per batch
  would make an epoch of n/B batches launch-bound. Inside the block, each
  sample's residual is one thread's left-to-right dot product (the
  reference's order), the gradient columns are split over the threads (each
  column's samples over ``THREADS_PER_BLOCK // p`` lanes, added in lane order)
  and each parameter's step is one thread's. A batch of many thousands of
  samples would be faster on a multi-block launch; that is not done here.
  Checked on the CUDA simulator for correctness only.
- Per-sample SGD (``batch_size == 1``) with one feature, no intercept, no
  momentum and no weight decay (the plan's ``AFFINE`` path, fastgd/_backend.py):
  each step is the affine map ``w <- a_i w + b_i`` with
  ``a_i = 1 - 2 lr x_i²`` and ``b_i = 2 lr x_i y_i``. The maps
  compose associatively, so ``_affine_maps`` composes each thread's contiguous
  run of samples, then the block's threads in order (an ordered tree), and
  ``_compose_maps`` composes the blocks in order and applies the result to
  ``w``: an epoch is a parallel reduction instead of a chain of n dependent
  steps. The maps are composed in float64 for both dtypes; the result agrees
  with the sequential chain to rounding (it is not bit-for-bit).
- Per-sample SGD otherwise (d features, an intercept or momentum) runs through
  ``_batch_steps`` with batches of one: the chain is inherently sequential
  (momentum and the intercept make the map a (2d+2)-square matrix whose
  products cost far more than the chain), so one block walks it, with threads
  cooperating on the gradient and the update across features. The CPU
  backends are faster for this case.

``exact`` is accepted and has no effect: the bit-for-bit guarantee of SPEC §4
is the CPU backends'. GPU results are deterministic and agree with the
reference to 1e-9 relative in float64 (the GPU may contract multiply-adds).
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
from numba import config, cuda, float64

from fastgd.kernels import AFFINE, FULL_BATCH

NAME = "cuda"


def _setting(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    return value


# Threads per block: a power of two (the shared-memory trees halve it). Tests
# set FASTGD_CUDA_THREADS=8 so that a few hundred samples span many blocks.
THREADS_PER_BLOCK = _setting("FASTGD_CUDA_THREADS", 256)
if THREADS_PER_BLOCK < 1 or THREADS_PER_BLOCK > 1024 or THREADS_PER_BLOCK & (THREADS_PER_BLOCK - 1):
    raise ValueError(f"FASTGD_CUDA_THREADS must be a power of two in 1..1024, got {THREADS_PER_BLOCK}")
# Most blocks of a reduction: 1024 x 256 threads fill an H100 (132 SMs x 2048
# threads); beyond that the grid-stride loop takes over. A constant, not the
# device's SM count, so results do not depend on which GPU runs them.
MAX_BLOCKS = _setting("FASTGD_CUDA_MAX_BLOCKS", 1024)
if MAX_BLOCKS < 1:
    raise ValueError(f"FASTGD_CUDA_MAX_BLOCKS must be >= 1, got {MAX_BLOCKS}")
# Columns of [cost, gradient...] one reduction pass carries.
MAX_WIDTH = 8

TPB = THREADS_PER_BLOCK
# Dynamic shared memory per launch, in bytes (float64 slots). Each kernel uses
# one dynamic shared array and carves it into rows of TPB slots.
_REDUCE_BYTES = MAX_WIDTH * TPB * 8
_LANE_BYTES = TPB * 8
_MAPS_BYTES = 2 * TPB * 8


# --------------------------------------------------------------------------
# Device functions
# --------------------------------------------------------------------------


@cuda.jit(device=True)
def _predict_row(X, i, params, d, fit_intercept):
    pred = X[i, 0] * params[0]
    for j in range(1, d):
        pred += X[i, j] * params[j]
    if fit_intercept:
        pred += params[d]
    return pred


@cuda.jit(device=True)
def _accumulate(X, y, params, fit_intercept, start, stride, c0, c1, out):
    """Add columns c0..c1-1 of ``[Σ r², Σ 2 x_j r, (Σ 2 r)]`` over rows start, start+stride, ...

    into ``out`` (a grid-stride walk).
    """
    n = X.shape[0]
    d = X.shape[1]
    if d == 1 and not fit_intercept:
        # The tutorial's model: keep the running sums in registers.
        w = params[0]
        cost_sum = np.float64(0.0)
        grad_sum = np.float64(0.0)
        for i in range(start, n, stride):
            x = X[i, 0]
            r = x * w - y[i]
            cost_sum += r * r
            if c1 > 1:
                grad_sum += (x + x) * r
        out[0] = cost_sum
        out[1] = grad_sum
        return
    j_first = max(c0 - 1, 0)
    j_stop = min(c1 - 1, d)
    for i in range(start, n, stride):
        r = _predict_row(X, i, params, d, fit_intercept) - y[i]
        if c0 == 0:
            out[0] += r * r
        for j in range(j_first, j_stop):
            out[1 + j - c0] += (X[i, j] + X[i, j]) * r
        if fit_intercept and c0 <= 1 + d and 1 + d < c1:
            out[1 + d - c0] += r + r


@cuda.jit(device=True)
def _block_tree(shared, count):
    """Reduce row k (``shared[k*TPB : (k+1)*TPB]``) into its first slot for k < count.

    A tree of fixed shape: at each level thread t adds slot t + half.
    """
    t = cuda.threadIdx.x
    half = TPB // 2
    while half > 0:
        if t < half:
            for k in range(count):
                shared[k * TPB + t] += shared[k * TPB + t + half]
        cuda.syncthreads()
        half //= 2


@cuda.jit(device=True)
def _add_partials(partials, width, shared, totals):
    """One block: ``totals[k] = Σ_b partials[b, k]`` for k < width, in a fixed order."""
    t = cuda.threadIdx.x
    n_blocks = partials.shape[0]
    for c0 in range(0, width, MAX_WIDTH):
        c1 = min(c0 + MAX_WIDTH, width)
        for k in range(c0, c1):
            s = np.float64(0.0)
            for blk in range(t, n_blocks, TPB):
                s += partials[blk, k]
            shared[(k - c0) * TPB + t] = s
        cuda.syncthreads()
        _block_tree(shared, c1 - c0)
        if t == 0:
            for k in range(c0, c1):
                totals[k] = shared[(k - c0) * TPB]
        cuda.syncthreads()


@cuda.jit(device=True)
def _step(params, grad, velocity, steps, hyper, nesterov):
    """One torch.optim.SGD step, ``hyper = [lr, momentum, 1 - dampening, weight_decay]``.

    One thread per parameter; thread 0 counts the step.
    """
    lr = hyper[0]
    momentum = hyper[1]
    one_minus_dampening = hyper[2]
    weight_decay = hyper[3]
    first_step = steps[0] == 0
    for j in range(cuda.threadIdx.x, params.shape[0], TPB):
        g = grad[j]
        if weight_decay != 0:
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
    cuda.syncthreads()
    if cuda.threadIdx.x == 0:
        steps[0] += 1
    cuda.syncthreads()


@cuda.jit(device=True)
def _copy_params(params, previous):
    for j in range(cuda.threadIdx.x, params.shape[0], TPB):
        previous[j] = params[j]
    cuda.syncthreads()


# --------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------


@cuda.jit
def _blocked_sums(X, y, params, fit_intercept, width, status, partials):
    """Grid (blocks, column chunks): one row of block sums per block, columns of its chunk."""
    if status[0] != 0:
        return
    shared = cuda.shared.array(0, float64)
    out = cuda.local.array(MAX_WIDTH, float64)
    t = cuda.threadIdx.x
    c0 = cuda.blockIdx.y * MAX_WIDTH
    c1 = min(c0 + MAX_WIDTH, width)
    for k in range(MAX_WIDTH):
        out[k] = 0.0
    start = cuda.blockIdx.x * TPB + t
    _accumulate(X, y, params, fit_intercept, start, cuda.gridDim.x * TPB, c0, c1, out)
    for k in range(c1 - c0):
        shared[k * TPB + t] = out[k]
    cuda.syncthreads()
    _block_tree(shared, c1 - c0)
    if t == 0:
        for k in range(c1 - c0):
            partials[cuda.blockIdx.x, c0 + k] = shared[k * TPB]


@cuda.jit
def _final_sums(partials, width, totals):
    shared = cuda.shared.array(0, float64)
    _add_partials(partials, width, shared, totals)


@cuda.jit
def _start_epoch(params, grad, velocity, steps, previous, hyper, nesterov):
    """The first full-batch step of a run_epochs call (later ones are in _finish_epoch)."""
    _copy_params(params, previous)
    _step(params, grad, velocity, steps, hyper, nesterov)


@cuda.jit
def _finish_epoch(partials, width, n, totals, costs, e, status, full_batch, step_next,
                  params, grad, velocity, steps, previous, hyper, nesterov):
    """One block: the epoch's cost (and mean gradient), the divergence flag, and the next GD step."""
    if status[0] != 0:
        return
    shared = cuda.shared.array(0, float64)
    _add_partials(partials, width, shared, totals)
    cost = totals[0] / n
    if cuda.threadIdx.x == 0:
        costs[e] = cost
    if not math.isfinite(cost):
        if cuda.threadIdx.x == 0:
            status[0] = 1
        return
    if full_batch:
        for j in range(cuda.threadIdx.x, params.shape[0], TPB):
            grad[j] = totals[1 + j] / n
        cuda.syncthreads()
        if step_next:
            _copy_params(params, previous)
            _step(params, grad, velocity, steps, hyper, nesterov)


@cuda.jit
def _batch_steps(X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept,
                 batch_size, natural, order, resid, status):
    """One block, one epoch of mini-batch steps over consecutive slices of ``order``."""
    if status[0] != 0:
        return
    lane_sums = cuda.shared.array(0, float64)
    t = cuda.threadIdx.x
    n = X.shape[0]
    d = X.shape[1]
    p = params.shape[0]
    _copy_params(params, previous)
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        for k in range(start + t, stop, TPB):
            i = k if natural else order[k]
            resid[k - start] = _predict_row(X, i, params, d, fit_intercept) - y[i]
        cuda.syncthreads()
        count = stop - start
        for col0 in range(0, p, TPB):
            cols = min(p - col0, TPB)
            lanes = TPB // cols
            lane = t // cols
            j = col0 + t % cols
            if lane < lanes:
                acc = np.float64(0.0)
                for k in range(start + lane, stop, lanes):
                    i = k if natural else order[k]
                    r = resid[k - start]
                    if j < d:
                        acc += (X[i, j] + X[i, j]) * r
                    else:
                        acc += r + r
                lane_sums[t] = acc
            cuda.syncthreads()
            if t < cols:
                acc = np.float64(0.0)
                for lane in range(lanes):
                    acc += lane_sums[lane * cols + t]
                grad[col0 + t] = acc / count
            cuda.syncthreads()
        _step(params, grad, velocity, steps, hyper, nesterov)


@cuda.jit
def _affine_maps(X, y, lr, natural, order, status, maps):
    """Per-block composition of the per-sample maps ``w <- a_i w + b_i`` (one feature, plain SGD)."""
    if status[0] != 0:
        return
    maps_ab = cuda.shared.array(0, float64)  # [a of each thread, b of each thread]
    t = cuda.threadIdx.x
    n = X.shape[0]
    threads = cuda.gridDim.x * TPB
    chunk = (n + threads - 1) // threads
    lo = (cuda.blockIdx.x * TPB + t) * chunk
    hi = min(n, lo + chunk)
    a = np.float64(1.0)
    b = np.float64(0.0)
    for k in range(lo, hi):
        i = k if natural else order[k]
        x = X[i, 0]
        lr_x = lr * x  # float64
        a_i = 1.0 - 2.0 * lr_x * x
        b_i = 2.0 * lr_x * y[i]
        a = a_i * a
        b = a_i * b + b_i
    maps_ab[t] = a
    maps_ab[TPB + t] = b
    cuda.syncthreads()
    # Ordered tree: node t covers threads t .. t + 2*stride - 1; left runs first.
    stride = 1
    while stride < TPB:
        if t % (2 * stride) == 0:
            right_a = maps_ab[t + stride]
            maps_ab[TPB + t] = right_a * maps_ab[TPB + t] + maps_ab[TPB + t + stride]
            maps_ab[t] = right_a * maps_ab[t]
        cuda.syncthreads()
        stride *= 2
    if t == 0:
        maps[cuda.blockIdx.x, 0] = maps_ab[0]
        maps[cuda.blockIdx.x, 1] = maps_ab[TPB]


@cuda.jit
def _compose_maps(maps, n, params, steps, previous, status):
    """One thread: compose the blocks' maps in block order and apply them to ``w``."""
    if status[0] != 0:
        return
    a = np.float64(1.0)
    b = np.float64(0.0)
    for blk in range(maps.shape[0]):
        a_blk = maps[blk, 0]
        b = a_blk * b + maps[blk, 1]
        a = a_blk * a
    previous[0] = params[0]
    params[0] = a * params[0] + b
    steps[0] += n


@cuda.jit
def _predict_rows(X, params, fit_intercept, out):
    d = X.shape[1]
    for i in range(cuda.grid(1), X.shape[0], cuda.gridDim.x * TPB):
        out[i] = _predict_row(X, i, params, d, fit_intercept)


# --------------------------------------------------------------------------
# Device copies of the data: once per fit
# --------------------------------------------------------------------------


class _DeviceData:
    """Device copies of one fit's X and y and its scratch arrays. Made by
    :func:`prepare`, held by the fit's ``Handle`` and freed with it."""

    def __init__(self, X, y):
        self.X = cuda.to_device(X)
        self.y = None if y is None else cuda.to_device(y)
        self.shape, self.dtype = X.shape, X.dtype
        self._scratch = {}

    def scratch(self, name, shape, dtype):
        key = (name, shape, np.dtype(dtype).str)
        buffer = self._scratch.get(key)
        if buffer is None:
            buffer = self._scratch[key] = cuda.device_array(shape, dtype=dtype)
        return buffer


def _device_data(X, y=None):
    """``X`` when :func:`prepare` made it; else fresh copies for this call alone."""
    return X if isinstance(X, _DeviceData) else _DeviceData(X, y)


def _blocks(n):
    return max(1, min((n + TPB - 1) // TPB, MAX_BLOCKS))


class _quiet_launches(warnings.catch_warnings):
    """Small grids (one-block kernels, tiny inputs) are deliberate: silence numba's occupancy warning."""

    def __enter__(self):
        super().__enter__()
        # By message too: numba-cuda may raise its own class of the same name.
        warnings.filterwarnings("ignore", message=r"(?s).*GPU under-utilization")
        try:
            from numba.core.errors import NumbaPerformanceWarning
        except ImportError:  # pragma: no cover
            return self
        warnings.simplefilter("ignore", NumbaPerformanceWarning)
        return self


def _launch_sums(data, d_params, fit_intercept, width, d_status, partials):
    n_blocks = partials.shape[0]
    chunks = (width + MAX_WIDTH - 1) // MAX_WIDTH
    _blocked_sums[(n_blocks, chunks), TPB, 0, _REDUCE_BYTES](
        data.X, data.y, d_params, fit_intercept, width, d_status, partials)


# --------------------------------------------------------------------------
# The kernel interface (fastgd/kernels/__init__.py)
# --------------------------------------------------------------------------


def prepare(X, y, plan):
    """The device copies of a fit's data, copied once (the handle passes them as ``X``)."""
    with _quiet_launches():
        return _DeviceData(X, y)


def check_options(opts):
    """ValueError naming a fit option these kernels do not run (SPEC §7)."""
    if opts.loss != "mse":
        raise ValueError(f"loss={opts.loss!r} is not supported on the cuda backend (only 'mse')")
    if opts.average_from:
        raise ValueError("average is not supported on the cuda backend")
    if not opts.decay_intercept and opts.weight_decay != 0:
        raise ValueError("decay_intercept=False is not supported on the cuda backend")


def sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec):
    if int(loss_spec[0]) != 0:
        raise ValueError("loss: only 'mse' is supported on the cuda backend")
    n = X.shape[0]
    p = params.shape[0]
    width = 1 + p if want_gradient else 1
    with _quiet_launches():
        data = _device_data(X, y)
        partials = data.scratch("partials", (_blocks(n), 1 + p), np.float64)
        totals = data.scratch("totals", (1 + p,), np.float64)
        status = cuda.to_device(np.zeros(1, dtype=np.int64))
        _launch_sums(data, cuda.to_device(params), bool(fit_intercept), width, status, partials)
        _final_sums[1, TPB, 0, _REDUCE_BYTES](partials, width, totals)
        host = totals.copy_to_host()
    out = np.zeros(1 + p)
    out[:width] = host[:width]
    return out


def predict(X, params, fit_intercept, out):
    with _quiet_launches():
        data = _device_data(X)
        d_out = cuda.device_array(out.shape, dtype=out.dtype)
        _predict_rows[_blocks(X.shape[0]), TPB](data.X, cuda.to_device(params), bool(fit_intercept), d_out)
        out[:] = d_out.copy_to_host()


def run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept, exact,
               path, batch_size, order, costs, stop, rates, loss_spec, decayed, average, averaged):
    # Launches return to Python at once, so Ctrl-C arrives between them;
    # ``stop`` (part of the interface) is not needed here. Epochs at one rate
    # are queued together; a schedule splits the call where the rate changes.
    # (check_options has refused the losses, averaging and decay groups.)
    done = 0
    while done < costs.shape[0]:
        same = 1
        while done + same < costs.shape[0] and rates[done + same] == rates[done]:
            same += 1
        hyper[0] = rates[done]
        finite = _run_epochs_at_one_rate(X, y, params, grad, velocity, steps, previous, hyper, nesterov,
                                         fit_intercept, path, batch_size, order, costs[done : done + same])
        if finite < same:
            return done + finite
        done += same
    return done


def _run_epochs_at_one_rate(X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept,
                            path, batch_size, order, costs):
    count = costs.shape[0]
    if count == 0:
        return 0
    n = X.shape[0]
    p = params.shape[0]
    full_batch = path == FULL_BATCH
    affine = path == AFFINE
    fit_intercept = bool(fit_intercept)
    nesterov = bool(nesterov)
    natural = order.shape[0] == 0
    width = 1 + p if full_batch else 1
    with _quiet_launches():
        data = _device_data(X, y)
        partials = data.scratch("partials", (_blocks(n), 1 + p), np.float64)
        totals = data.scratch("totals", (1 + p,), np.float64)
        d_params = cuda.to_device(params)
        d_grad = cuda.to_device(grad)
        d_velocity = cuda.to_device(velocity)
        d_steps = cuda.to_device(steps)
        d_previous = cuda.to_device(previous)
        d_hyper = cuda.to_device(hyper)
        d_costs = cuda.to_device(np.zeros(count))
        d_status = cuda.to_device(np.zeros(1, dtype=np.int64))
        # A natural order is never read; the kernels get a one-element stand-in.
        d_order = cuda.to_device(np.zeros(1, dtype=np.int64) if natural else order)
        if not full_batch and not affine:
            resid = data.scratch("resid", (min(batch_size, n),), X.dtype)
        if affine:
            maps = data.scratch("maps", (_blocks(n), 2), np.float64)
            lr = np.float64(hyper[0])
        for e in range(count):
            if full_batch:
                if e == 0:
                    _start_epoch[1, TPB](d_params, d_grad, d_velocity, d_steps, d_previous, d_hyper,
                                         nesterov)
            elif affine:
                _affine_maps[maps.shape[0], TPB, 0, _MAPS_BYTES](
                    data.X, data.y, lr, natural, d_order, d_status, maps)
                _compose_maps[1, 1](maps, n, d_params, d_steps, d_previous, d_status)
            else:
                _batch_steps[1, TPB, 0, _LANE_BYTES](
                    data.X, data.y, d_params, d_grad, d_velocity, d_steps, d_previous, d_hyper, nesterov,
                    fit_intercept, batch_size, natural, d_order, resid, d_status)
            _launch_sums(data, d_params, fit_intercept, width, d_status, partials)
            _finish_epoch[1, TPB, 0, _REDUCE_BYTES](
                partials, width, n, totals, d_costs, e, d_status, full_batch, e + 1 < count,
                d_params, d_grad, d_velocity, d_steps, d_previous, d_hyper, nesterov)
        costs[:] = d_costs.copy_to_host()
        params[:] = d_params.copy_to_host()
        grad[:] = d_grad.copy_to_host()
        velocity[:] = d_velocity.copy_to_host()
        steps[:] = d_steps.copy_to_host()
        previous[:] = d_previous.copy_to_host()
    finite = np.isfinite(costs)
    return count if finite.all() else int(np.argmin(finite))


def simulated():
    """Whether numba.cuda runs on its simulator (NUMBA_ENABLE_CUDASIM=1)."""
    flag = getattr(config, "ENABLE_CUDASIM", None)
    return bool(flag) if flag is not None else os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def unavailable_reason():
    """None when kernels can run here (a CUDA GPU, or the simulator); else why not."""
    if simulated():
        return None
    try:
        available = cuda.is_available()
    except Exception as exc:  # a broken driver or toolkit
        return f"numba.cuda failed to initialise: {type(exc).__name__}: {exc}"
    if not available:
        return ("no CUDA GPU found (numba.cuda.is_available() is False); "
                "set NUMBA_ENABLE_CUDASIM=1 to use the simulator")
    return None
