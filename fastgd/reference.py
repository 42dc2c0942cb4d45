"""The pure-Python reference: the definition of every fastgd result.

Arithmetic here is plain Python floats in a fixed order; every backend is
tested against it (bit for bit when ``exact=True``). Operation order, per
sample ``i`` of a batch of ``B``:

    pred = x[0]*w[0] + x[1]*w[1] + ... (+ b)      left to right
    r    = pred - y
    cost_sum += r * r                             samples in order
    grad_sum[j] += 2 * x[j] * r                   samples in batch order
    grad_sum[b] += 2 * r
    grad = grad_sum / B

then one ``torch.optim.SGD`` step. For the tutorial's model this is the
tutorial's arithmetic (``grad += 2*x*(x*w - y)``, ``/ n``, ``w -= lr*grad``).
The squared residual is ``r * r`` rather than the tutorial's ``r ** 2``:
libm's ``pow`` is not correctly rounded (about 1 in 1,200 random values
differs by one ulp from ``r * r``), so no compiled kernel could reproduce
``**`` bit for bit; on the tutorial's data the two agree digit for digit.

Full-batch steps (``batch_size`` None or >= n) sum the samples in their
natural order even when ``shuffle=True``: the mean gradient over all samples
does not depend on the order, and one fused pass then serves both the cost
and the gradient.

Sparse ``X`` (scipy.sparse, SPEC §10) is read as CSR rows: the sums above
over each row's stored entries in column order. Those are the dense array's
bits (its other terms are zeros that change no sum: fastgd/_sparse.py);
``forward`` gives an exactly zero prediction the dense sum's sign.
"""

from __future__ import annotations

import math
from typing import Any, Callable, List, Optional, Sequence, Union

from fastgd import _checks
from fastgd._orders import epoch_orders, shuffle_block
from fastgd._result import Fit
from fastgd._state import OptimizerState
from fastgd.errors import DivergenceError, FitInterrupted, warn_if_runaway

__all__ = ["forward", "loss", "cost", "gradient", "fit", "gd", "sgd", "minibatch_sgd", "Fit"]

BACKEND = "reference"


def _predict_row(row: Sequence[float], params: Sequence[float], d: int, fit_intercept: bool) -> float:
    pred = row[0] * params[0]
    for j in range(1, d):
        pred += row[j] * params[j]
    if fit_intercept:
        pred += params[d]
    return pred


def _predict_sparse_row(row: tuple, params: Sequence[float], d: int, fit_intercept: bool) -> float:
    """:func:`_predict_row` of a sparse row ``(columns, values)``: the stored
    terms in column order. The same bits as the dense row's sum (its other
    terms are zeros; fastgd/_sparse.py), except the sign of a zero sum, which
    no result but ``forward`` shows (see :func:`_dense_zero`)."""
    columns, values = row
    pred = 0.0
    for j, x in zip(columns, values):
        pred += x * params[j]
    if fit_intercept:
        pred += params[d]
    return pred


def _dense_zero(row: tuple, params: Sequence[float], d: int, fit_intercept: bool) -> float:
    """The sign the dense sum gives a zero prediction: -0.0 exactly when every
    dense term (``x_j·w_j`` for all ``j``, unstored ``x_j`` being +0.0, and ``b``)
    is -0.0."""
    columns, values = row
    stored = dict(zip(columns, values))
    terms = [(stored.get(j, 0.0) + 0.0) * params[j] for j in range(d)] + (
        [params[d]] if fit_intercept else []
    )
    return -0.0 if all(t == 0 and math.copysign(1.0, t) < 0 for t in terms) else 0.0


def _huber(r: float, delta: float) -> tuple:
    """torch's ``HuberLoss(delta)`` of one residual and its derivative."""
    a = abs(r)
    if a < delta:
        return 0.5 * (r * r), r
    return delta * (a - 0.5 * delta), (delta if r > 0 else -delta)


def _l1(r: float) -> tuple:
    """torch's ``L1Loss`` of one residual and its derivative (0 at r = 0)."""
    return abs(r), (1.0 if r > 0 else (-1.0 if r < 0 else 0.0))


def _sums(
    rows: List[List[float]],
    ys: List[float],
    indices: Sequence[int],
    params: Sequence[float],
    fit_intercept: bool,
    want_gradient: bool,
    loss: str = "mse",
    delta: float = 1.0,
) -> List[float]:
    """``[Σ ℓ(r), Σ x_0 ℓ'(r), ..., (Σ ℓ'(r))]`` over ``indices``, in that order.

    ``mse``: ``ℓ = r * r``, and the gradient terms are ``2 * x_j * r`` and
    ``2 * r`` (the tutorial's). ``huber``/``l1``: ``ℓ`` and ``ℓ'`` from
    :func:`_huber` / :func:`_l1`, the terms ``x_j * ℓ'`` and ``ℓ'``.
    """
    if isinstance(rows, _SparseRows):
        return _sparse_sums(rows, ys, indices, params, fit_intercept, want_gradient, loss, delta)
    d = len(rows[0])
    sums = [0.0] * (1 + len(params))
    for i in indices:
        row = rows[i]
        r = _predict_row(row, params, d, fit_intercept) - ys[i]
        if loss == "mse":
            sums[0] += r * r
            if want_gradient:
                for j in range(d):
                    sums[1 + j] += 2 * row[j] * r
                if fit_intercept:
                    sums[1 + d] += 2 * r
            continue
        value, slope = _huber(r, delta) if loss == "huber" else _l1(r)
        sums[0] += value
        if want_gradient:
            for j in range(d):
                sums[1 + j] += row[j] * slope
            if fit_intercept:
                sums[1 + d] += slope
    return sums


class _SparseRows(list):
    """The rows of sparse ``X``: ``(columns, values)`` per row, and ``d``."""

    def __init__(self, X: Any) -> None:
        from fastgd import _sparse

        super().__init__(_sparse.reference_rows(X))
        self.d = X.shape[1]


def _rows(X: Any) -> Any:
    """``X`` as the Python rows the sums read: lists of floats, or :class:`_SparseRows`."""
    from fastgd import _sparse

    return _SparseRows(X) if _sparse.is_csr(X) else X.tolist()


def _sparse_sums(
    rows: _SparseRows,
    ys: List[float],
    indices: Sequence[int],
    params: Sequence[float],
    fit_intercept: bool,
    want_gradient: bool,
    loss: str = "mse",
    delta: float = 1.0,
) -> List[float]:
    """:func:`_sums` over sparse rows: the stored entries only, in column order.
    The same bits as the dense rows (fastgd/_sparse.py): the unstored terms
    of the dense sums are zeros that change no sum."""
    d = rows.d
    sums = [0.0] * (1 + len(params))
    for i in indices:
        row = rows[i]
        r = _predict_sparse_row(row, params, d, fit_intercept) - ys[i]
        if loss == "mse":
            sums[0] += r * r
            if want_gradient:
                for j, x in zip(*row):
                    sums[1 + j] += 2 * x * r
                if fit_intercept:
                    sums[1 + d] += 2 * r
            continue
        value, slope = _huber(r, delta) if loss == "huber" else _l1(r)
        sums[0] += value
        if want_gradient:
            for j, x in zip(*row):
                sums[1 + j] += x * slope
            if fit_intercept:
                sums[1 + d] += slope
    if not all(math.isfinite(v) for v in params):
        sums[0] = math.nan  # the dense cost is NaN (0·inf), even where a weight's column is empty
    return sums


def _step(
    params: List[float],
    grad: Sequence[float],
    velocity: List[float],
    first_step: bool,
    opts: _checks.Options,
    lr: float,
    decayed: int,
) -> None:
    """One ``torch.optim.SGD`` step at rate ``lr``, in place; weight decay on
    the first ``decayed`` parameters (all, or all but the intercept)."""
    for j in range(len(params)):
        g = grad[j]
        if opts.weight_decay != 0 and j < decayed:
            g = g + opts.weight_decay * params[j]
        if opts.momentum != 0:
            if first_step:
                velocity[j] = g
            else:
                velocity[j] = opts.momentum * velocity[j] + (1 - opts.dampening) * g
            g = g + opts.momentum * velocity[j] if opts.nesterov else velocity[j]
        params[j] = params[j] - lr * g


def _average(average: List[float], params: Sequence[float], count: int) -> None:
    """torch's ``AveragedModel.update_parameters`` after ``count`` earlier updates."""
    if count == 0:
        average[:] = params
        return
    for j in range(len(params)):
        average[j] = average[j] + (params[j] - average[j]) / (count + 1)


def fit(
    X: Any,
    y: Any,
    *,
    lr: float = 0.01,
    epochs: int = 100,
    batch_size: Optional[int] = None,
    w0: Any = None,
    b0: Optional[float] = None,
    fit_intercept: bool = False,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    shuffle: bool = False,
    seed: Optional[int] = None,
    exact: bool = False,
    callback: Optional[Callable[[int, Fit], Any]] = None,
    loss: str = "mse",
    delta: float = 1.0,
    average: Union[bool, int] = False,
    decay_intercept: bool = True,
    solver: str = "auto",
) -> Fit:
    """Train ``y ≈ X·w (+ b)`` by gradient descent on the mean squared error.

    Parameters
    ----------
    X : array-like of shape (n,) or (n, d), or a scipy.sparse matrix
        Samples; 1-D is the tutorial's scalar-feature model. Sparse X is read
        row by row (its stored values), with the dense array's results.
    y : array-like of shape (n,)
        Targets.
    lr : float, sequence of floats, or callable
        As ``torch.optim.SGD``; or one rate per epoch (a sequence, or
        ``lr(epoch)``, e.g. from :mod:`fastgd.schedules`).
    momentum, dampening, nesterov, weight_decay
        As ``torch.optim.SGD``.
    epochs : int
        Passes over the data.
    batch_size : int or None
        Samples per step; None means all of them (full-batch GD).
    w0, b0 : starting weights (zeros) and intercept (0.0).
    fit_intercept : bool
        Learn an intercept ``b``.
    shuffle, seed : visit samples in a fresh permutation each epoch, drawn
        from ``seed``.
    exact : bool
        Accepted for signature compatibility; the reference is always exact.
    callback : callable ``callback(epoch, fit_so_far)``
        Called after every epoch; returning True stops training.
    loss : {"mse", "huber", "l1"}
        torch's ``MSELoss``, ``HuberLoss(delta=delta)``, ``L1Loss`` (means).
    delta : float
        The Huber threshold.
    average : bool or int
        True (or k): return the mean of the parameters after every step (from
        step k on), as torch's ``AveragedModel``; ``Fit.w_last`` is the last iterate.
    decay_intercept : bool
        False: weight decay on ``w`` only (the bias in its own parameter group).
    solver : {"auto", "stream", "gram"}
        Accepted for signature compatibility; the reference always streams.

    Returns
    -------
    Fit

    Examples
    --------
    >>> from fastgd import reference
    >>> result = reference.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], w0=1.0, lr=0.1, epochs=3)
    >>> [round(v, 6) for v in result.losses]
    [4.666667, 0.020741, 9.2e-05]
    """
    return _fit(X, y, **_checks.forwarded(locals()))


def _fit(
    X: Any,
    y: Any,
    *,
    w0: Any = None,
    b0: Any = None,
    fit_intercept: bool = False,
    state: Optional[OptimizerState] = None,
    **hyperparameters: Any,
) -> Fit:
    """:func:`fit`, starting from the optimizer ``state`` and writing the final
    one back into it when given (internal; see :mod:`fastgd._state`).
    ``hyperparameters`` are every other keyword of :func:`fit`."""
    problem = _checks.prepare(X, y, w0, b0, fit_intercept)
    opts = _checks.options(**hyperparameters)
    rows = _rows(problem.X)
    ys = problem.y.tolist()
    n, d = problem.X.shape
    fit_intercept = problem.fit_intercept
    params = problem.params.astype(float).tolist()
    start = None if state is None else state.initial_velocity(len(params))
    velocity = [0.0] * len(params) if start is None else start
    everything = range(n)
    full_batch = opts.batch_size is None or opts.batch_size >= n
    batch = n if full_batch else opts.batch_size
    # Memory-mapped data is shuffled block by block, so disk reads stay sequential.
    orders = epoch_orders(n, opts.shuffle and not full_batch, opts.seed, shuffle_block(problem.X))

    decayed = d if (fit_intercept and not opts.decay_intercept) else len(params)
    average: List[float] = []
    averaged = 0  # updates of the average so far
    taken = 0  # steps of this fit

    def cost_at(at: Sequence[float]) -> float:
        return _sums(rows, ys, everything, at, fit_intercept, False, opts.loss, opts.delta)[0] / n

    def result(
        at: List[float],
        costs: List[float],
        epochs_run: int,
        mean: Sequence[float] = (),
        mean_cost: Optional[float] = None,
    ) -> Fit:
        if not mean:
            return Fit.from_params(
                at,
                n_features=d,
                scalar_model=problem.scalar_model,
                fit_intercept=fit_intercept,
                losses=costs[:epochs_run],
                loss=costs[epochs_run],
                epochs_run=epochs_run,
                backend=BACKEND,
            )
        return Fit.from_params(
            mean,
            n_features=d,
            scalar_model=problem.scalar_model,
            fit_intercept=fit_intercept,
            losses=costs[:epochs_run],
            loss=cost_at(mean) if mean_cost is None else mean_cost,
            epochs_run=epochs_run,
            backend=BACKEND,
            last=at,
        )

    costs = [cost_at(params)]
    if not math.isfinite(costs[0]):
        raise DivergenceError(
            "the loss of the starting parameters is not finite", epoch=0, fit=result(params, costs, 0)
        )
    steps = 0 if start is None else state.steps
    previous = list(params)  # the last state whose cost was finite
    previous_average: List[float] = []
    try:
        for epoch in range(opts.epochs):
            lr = opts.rate(epoch)
            order = next(orders)
            visit = order.tolist() if len(order) else everything
            for first in range(0, n, batch):
                indices = visit[first : first + batch]
                sums = _sums(rows, ys, indices, params, fit_intercept, True, opts.loss, opts.delta)
                grad = [s / len(indices) for s in sums[1:]]
                _step(params, grad, velocity, steps == 0, opts, lr, decayed)
                steps += 1
                taken += 1
                if opts.average_from and taken >= opts.average_from:
                    _average(average, params, averaged)
                    averaged += 1
            epoch_cost = cost_at(params)
            if not math.isfinite(epoch_cost):
                raise DivergenceError(
                    f"the loss became {epoch_cost} during epoch {epoch}; lower lr",
                    epoch=epoch,
                    fit=result(previous, costs, epoch, previous_average),
                )
            costs.append(epoch_cost)
            previous = list(params)
            previous_average = list(average)
            if opts.callback is not None and opts.callback(epoch, result(params, costs, epoch + 1, average)):
                break
    except KeyboardInterrupt as exc:
        raise FitInterrupted(
            f"fit interrupted after {len(costs) - 1} epochs; .fit holds that state",
            fit=result(previous, costs, len(costs) - 1, previous_average),
        ) from exc
    if state is not None:
        state.save(velocity, steps)
    warn_if_runaway(costs)
    return result(params, costs, len(costs) - 1, average)


def gd(
    X: Any,
    y: Any,
    *,
    lr: float = 0.01,
    epochs: int = 100,
    w0: Any = None,
    b0: Optional[float] = None,
    fit_intercept: bool = False,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    shuffle: bool = False,
    seed: Optional[int] = None,
    exact: bool = False,
    callback: Optional[Callable[[int, Fit], Any]] = None,
    loss: str = "mse",
    delta: float = 1.0,
    average: Union[bool, int] = False,
    decay_intercept: bool = True,
    solver: str = "auto",
) -> Fit:
    """Full-batch gradient descent: :func:`fit` with ``batch_size=None``.

    Every keyword is :func:`fit`'s; there is no ``batch_size`` (a
    ``TypeError``: use :func:`minibatch_sgd` or :func:`fit`).

    Examples
    --------
    >>> from fastgd import reference
    >>> round(reference.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], lr=0.1, epochs=100).w, 9)
    2.0
    """
    return fit(X, y, batch_size=None, **_checks.forwarded(locals()))


def sgd(
    X: Any,
    y: Any,
    *,
    lr: float = 0.01,
    epochs: int = 100,
    w0: Any = None,
    b0: Optional[float] = None,
    fit_intercept: bool = False,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    shuffle: bool = False,
    seed: Optional[int] = None,
    exact: bool = False,
    callback: Optional[Callable[[int, Fit], Any]] = None,
    loss: str = "mse",
    delta: float = 1.0,
    average: Union[bool, int] = False,
    decay_intercept: bool = True,
    solver: str = "auto",
) -> Fit:
    """Per-sample stochastic gradient descent: :func:`fit` with ``batch_size=1``.

    Every keyword is :func:`fit`'s; there is no ``batch_size`` (a
    ``TypeError``: use :func:`minibatch_sgd` or :func:`fit`).

    Examples
    --------
    >>> from fastgd import reference
    >>> round(reference.sgd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], lr=0.01, epochs=100).w, 6)
    2.0
    """
    return fit(X, y, batch_size=1, **_checks.forwarded(locals()))


def minibatch_sgd(
    X: Any,
    y: Any,
    batch_size: int = 32,
    *,
    lr: float = 0.01,
    epochs: int = 100,
    w0: Any = None,
    b0: Optional[float] = None,
    fit_intercept: bool = False,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    shuffle: bool = False,
    seed: Optional[int] = None,
    exact: bool = False,
    callback: Optional[Callable[[int, Fit], Any]] = None,
    loss: str = "mse",
    delta: float = 1.0,
    average: Union[bool, int] = False,
    decay_intercept: bool = True,
    solver: str = "auto",
) -> Fit:
    """Mini-batch SGD: :func:`fit` with batches of ``batch_size`` samples.

    Examples
    --------
    >>> from fastgd import reference
    >>> round(reference.minibatch_sgd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], batch_size=2, lr=0.05).w, 4)
    2.0
    """
    return fit(X, y, **_checks.forwarded(locals()))


def _shape_output(values: List[float], model: _checks.Model) -> Any:
    import numpy as np

    if model.one_sample:
        return values[0]
    return np.array(values, dtype=np.float64)


def forward(x: Any, w: Any, b: Optional[float] = None) -> Union[float, Any]:
    """Prediction ``x·w (+ b)`` for one sample or an array of samples.

    Examples
    --------
    >>> from fastgd import reference
    >>> reference.forward(4.0, 2.0)
    8.0
    """
    model = _checks.model_inputs(x, w, b)
    params = model.params.astype(float).tolist()
    d = model.X.shape[1]
    rows = _rows(model.X)
    if isinstance(rows, _SparseRows):
        preds = [_predict_sparse_row(row, params, d, model.fit_intercept) for row in rows]
        preds = [
            p if p != 0 else _dense_zero(row, params, d, model.fit_intercept) for p, row in zip(preds, rows)
        ]
    else:
        preds = [_predict_row(row, params, d, model.fit_intercept) for row in rows]
    return _shape_output(preds, model)


def loss(
    x: Any, y: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> Union[float, Any]:
    """Squared error ``(x·w (+ b) − y)²`` of one sample (or of each sample).

    Examples
    --------
    >>> from fastgd import reference
    >>> reference.loss(3.0, 6.0, 1.0)
    9.0
    """
    kind, delta = _checks.loss_options(loss, delta)
    model = _checks.model_inputs(x, w, b)
    ys = _checks.targets(y, model).tolist()
    params = model.params.astype(float).tolist()
    d = model.X.shape[1]
    errors = []
    rows = _rows(model.X)
    predict = _predict_sparse_row if isinstance(rows, _SparseRows) else _predict_row
    for row, target in zip(rows, ys):
        r = predict(row, params, d, model.fit_intercept) - target
        errors.append(r * r if kind == 0 else (_huber(r, delta) if kind == 1 else _l1(r))[0])
    return _shape_output(errors, model)


def cost(
    xs: Any, ys: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> float:
    """Mean squared error over all samples.

    Examples
    --------
    >>> from fastgd import reference
    >>> round(reference.cost([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 1.0), 6)
    4.666667
    """
    delta = _checks.loss_options(loss, delta)[1]
    model = _checks.model_inputs(xs, w, b, x_name="xs")
    targets = _checks.targets(ys, model, "ys", "xs").tolist()
    rows = _rows(model.X)
    params = model.params.astype(float).tolist()
    return _sums(rows, targets, range(len(rows)), params, model.fit_intercept, False, loss, delta)[0] / len(
        rows
    )


def gradient(
    xs: Any, ys: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> Any:
    """Gradient of :func:`cost`: ``∂w``, or ``(∂w, ∂b)`` when ``b`` is given.

    Examples
    --------
    >>> from fastgd import reference
    >>> round(reference.gradient([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 1.0), 6)
    -9.333333
    """
    import numpy as np

    model = _checks.model_inputs(xs, w, b, x_name="xs")
    targets = _checks.targets(ys, model, "ys", "xs").tolist()
    rows = _rows(model.X)
    n, d = model.X.shape
    params = model.params.astype(float).tolist()
    delta = _checks.loss_options(loss, delta)[1]
    sums = _sums(rows, targets, range(n), params, model.fit_intercept, True, loss, delta)
    grad = [s / n for s in sums[1:]]
    dw = grad[0] if model.scalar_model else np.array(grad[:d])
    return (dw, grad[d]) if model.fit_intercept else dw


def __getattr__(name: str) -> Any:
    # The estimator needs scikit-learn: loaded on first use only.
    if name == "SGDRegressor":
        from fastgd.sgd_regressor import SGDRegressor as _Compiled

        class SGDRegressor(_Compiled):
            """:class:`fastgd.SGDRegressor` whose epochs run in the pure-Python
            loop of ``fastgd/_sgd_regressor_reference.py`` (the oracle of its
            kernels); ``backend`` is ignored."""

            _pure_python = True

        SGDRegressor.__module__ = __name__
        SGDRegressor.__qualname__ = "SGDRegressor"  # pickled by name, found again by this __getattr__
        globals()["SGDRegressor"] = SGDRegressor
        return SGDRegressor
    raise AttributeError(f"module 'fastgd.reference' has no attribute {name!r}")
