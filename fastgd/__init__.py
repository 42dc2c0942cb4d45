"""fastgd: gradient descent for linear least squares, as fast as the hardware allows.

The functions here have the names and signatures of :mod:`fastgd.reference`
(the pure-Python definition of every result) and run on a compiled backend:
``numba`` by default, else the Cython extension ``fastgd_ext``, else numpy.
Swap ``import fastgd.reference as gd`` for ``import fastgd as gd``.

Examples
--------
>>> import fastgd
>>> result = fastgd.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], w0=1.0, lr=0.1, epochs=100)
>>> round(result.w, 9), result.backend in ("numba", "cython", "numpy")
(2.0, True)
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from fastgd import _checks, _dispatch, _model
from fastgd._registry import BackendInfo, backends, use
from fastgd._result import Fit
from fastgd.errors import BackendFallbackWarning, DivergenceError, DivergenceWarning, FitInterrupted

__version__ = "0.1.0"

__all__ = [
    "forward",
    "loss",
    "cost",
    "gradient",
    "fit",
    "gd",
    "sgd",
    "minibatch_sgd",
    "Fit",
    "DivergenceError",
    "DivergenceWarning",
    "FitInterrupted",
    "BackendFallbackWarning",
    "BackendInfo",
    "backends",
    "use",
    "datasets",
    "schedules",
    "GDRegressor",
    "SGDRegressor",
    "__version__",
]


def forward(x: Any, w: Any, b: Optional[float] = None) -> Union[float, Any]:
    """Prediction ``x·w (+ b)`` for one sample or an array of samples.

    Parameters
    ----------
    x : float or array-like
        One sample (a scalar, or ``(d,)`` when ``w`` has shape ``(d,)``) or
        samples ``(n,)`` / ``(n, d)``.
    w : float or array-like of shape (d,)
    b : float, optional

    Returns
    -------
    float for one sample, else ndarray of shape (n,).

    Examples
    --------
    >>> import fastgd
    >>> fastgd.forward(4.0, 2.0)
    8.0
    >>> fastgd.forward([[1.0, 2.0], [3.0, 4.0]], [1.0, 1.0], b=0.5)
    array([3.5, 7.5])
    """
    return _model.forward(x, w, b)


def loss(
    x: Any, y: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> Union[float, Any]:
    """Squared error ``(x·w (+ b) − y)²`` of one sample (or of each sample);
    with ``loss="huber"`` or ``"l1"``, torch's ``HuberLoss(delta)`` / ``L1Loss`` of it.

    Examples
    --------
    >>> import fastgd
    >>> fastgd.loss(3.0, 6.0, 1.0)
    9.0
    """
    return _model.loss(x, y, w, b, loss=loss, delta=delta)


def cost(
    xs: Any, ys: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> float:
    """Mean squared error over all samples (torch's ``MSELoss()``); or the mean
    Huber (``loss="huber"``, ``delta``) or absolute (``loss="l1"``) error.

    Examples
    --------
    >>> import fastgd
    >>> round(fastgd.cost([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 1.0), 6)
    4.666667
    """
    return _model.cost(xs, ys, w, b, loss=loss, delta=delta)


def gradient(
    xs: Any, ys: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> Any:
    """Gradient of :func:`cost`: ``∂w``, or ``(∂w, ∂b)`` when ``b`` is given.

    ``∂w = (2/n) Σ x_i (ŷ_i − y_i)``, ``∂b = (2/n) Σ (ŷ_i − y_i)``.

    Examples
    --------
    >>> import fastgd
    >>> round(fastgd.gradient([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 1.0), 6)
    -9.333333
    """
    return _model.gradient(xs, ys, w, b, loss=loss, delta=delta)


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

    Each step is exactly ``torch.optim.SGD(lr, momentum, dampening,
    weight_decay, nesterov)`` over ``torch.nn.Linear(d, 1, bias=fit_intercept)``
    with ``nn.MSELoss()``.

    Parameters
    ----------
    X : array-like of shape (n,) or (n, d), or a scipy.sparse matrix
        Samples (any array-like: lists, arrays of any memory order, views,
        ``np.memmap``). 1-D is the tutorial's scalar-feature model. scipy.sparse
        matrices and arrays (CSR, CSC, COO, ...; memory-mapped CSR too) train
        without ever forming the dense matrix, with its results (SPEC §10;
        not on cuda).
    y : array-like of shape (n,)
        Targets.
    lr : float, sequence of floats, or callable
        Learning rate, finite and > 0; or one rate per epoch (finite, >= 0):
        a sequence of at least ``epochs`` rates, or ``lr(epoch)`` (epochs
        count from 0), e.g. from :mod:`fastgd.schedules`.
    epochs : int
        Passes over the data.
    batch_size : int or None
        Samples per step; None means all (full-batch GD), 1 per-sample SGD.
    w0 : float or array-like of shape (d,), optional
        Starting weights (zeros).
    b0 : float, optional
        Starting intercept (0.0); needs ``fit_intercept=True``.
    fit_intercept : bool
        Learn an intercept ``b``.
    momentum, dampening, nesterov, weight_decay
        As ``torch.optim.SGD``.
    shuffle : bool
        Visit the samples in a fresh permutation each epoch.
    seed : int, optional
        Seed of the permutations; the same seed gives the same batches on
        every backend.
    exact : bool
        Bit-for-bit the reference's arithmetic (float64) instead of the
        faster, blocked (still deterministic) sums.
    callback : callable, optional
        ``callback(epoch, fit_so_far)`` after every epoch; returning True
        stops training.
    loss : {"mse", "huber", "l1"}
        torch's ``MSELoss()``, ``HuberLoss(delta=delta)``, ``L1Loss()`` (means
        over the batch); ``losses``, ``loss`` and the steps use it.
    delta : float
        The Huber threshold (> 0).
    average : bool or int
        True (or an int k): the returned ``w``/``b`` are the mean of the
        parameters after every step (from step k on), as torch's
        ``AveragedModel.update_parameters`` after each step; ``Fit.w_last``
        and ``Fit.b_last`` hold the last iterate.
    decay_intercept : bool
        False: ``weight_decay`` applies to ``w`` only (torch's parameter
        group for the bias with ``weight_decay=0``).
    solver : {"auto", "stream", "gram"}
        How full-batch GD reads the data: "stream" every epoch; "gram" once,
        into ``[X 1 y]ᵀ[X 1 y]``, then O(d²) per epoch (``loss="mse"``, not
        with ``exact=True``; its costs agree with the streamed ones to 1e-9
        while they stay above about ``1e-7·mean(y²)``, see fastgd/_gram.py).
        "auto" streams.

    Returns
    -------
    Fit
        ``w``, ``b``, ``losses`` (cost at the start of each epoch), ``loss``
        (after the last), ``epochs_run``, ``backend``, ``predict(X)``.

    Raises
    ------
    DivergenceError
        The loss became NaN or infinite; ``.fit`` holds the last finite state.

    Examples
    --------
    >>> import fastgd
    >>> result = fastgd.fit([1.0, 2.0, 3.0], [3.0, 5.0, 7.0], lr=0.05, epochs=2000,
    ...                     fit_intercept=True)
    >>> round(result.w, 6), round(result.b, 6)
    (2.0, 1.0)
    """
    return _dispatch.train(X, y, **_checks.forwarded(locals()))


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
    >>> import fastgd
    >>> round(fastgd.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], lr=0.1, epochs=100).w, 9)
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
    >>> import fastgd
    >>> round(fastgd.sgd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], lr=0.01, epochs=100).w, 6)
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
    >>> import fastgd
    >>> round(fastgd.minibatch_sgd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], batch_size=2, lr=0.05).w, 4)
    2.0
    """
    return fit(X, y, **_checks.forwarded(locals()))


def __getattr__(name: str) -> Any:
    # Heavier parts load on first use, so that `import fastgd` stays light.
    if name == "datasets":
        import importlib

        return importlib.import_module("fastgd.datasets")
    if name == "GDRegressor":
        from fastgd.estimator import GDRegressor

        return GDRegressor
    if name == "SGDRegressor":
        from fastgd.sgd_regressor import SGDRegressor

        return SGDRegressor
    if name == "schedules":
        import importlib

        return importlib.import_module("fastgd.schedules")
    if name == "reference":
        import importlib

        return importlib.import_module("fastgd.reference")
    raise AttributeError(f"module 'fastgd' has no attribute {name!r}")
