"""Validation and coercion of user input, shared by the reference and every backend.

Every error names the argument it is about. Nothing here writes to the
caller's arrays: the arrays handed on are read-only views (or copies where a
dtype or memory-order change is needed).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Dict, NamedTuple, Optional

import numpy as np

from fastgd import _sparse

# Rows checked for NaN/inf at a time: bounds the temporary of np.isfinite on
# memory-mapped data far larger than memory.
_FINITE_CHECK_ROWS = 1 << 20
_FINITE_CHECK_SMALL = 1024  # values; below, one isfinite pass without np.errstate


class Problem(NamedTuple):
    """Training data and starting parameters, coerced and checked."""

    X: Any  # (n, d) ndarray, C-contiguous, read-only, float32 or float64; or a _sparse.CSR
    y: np.ndarray  # (n,), same dtype as X, read-only
    params: np.ndarray  # (d + fit_intercept,), writable copy, same dtype
    scalar_model: bool  # X was 1-D: w is a float
    fit_intercept: bool

    @property
    def n_features(self) -> int:
        return self.X.shape[1]


# The losses of SPEC §7 by name, and the code the kernels know them by.
LOSSES = {"mse": 0, "huber": 1, "l1": 2}
SOLVERS = ("auto", "stream", "gram")


class Options(NamedTuple):
    """Checked hyperparameters of a fit."""

    lr: float  # the constant rate; NaN when ``schedule`` gives one per epoch
    epochs: int
    batch_size: Optional[int]
    momentum: float
    dampening: float
    nesterov: bool
    weight_decay: float
    shuffle: bool
    seed: Optional[int]
    exact: bool
    callback: Optional[Callable]
    schedule: Any = None  # None, a float64 array of per-epoch rates, or a callable lr(epoch)
    loss: str = "mse"
    delta: float = 1.0
    average_from: int = 0  # 0: no averaging; k: the mean of the parameters after steps k, k+1, ...
    decay_intercept: bool = True
    solver: str = "auto"

    @property
    def loss_kind(self) -> int:
        return LOSSES[self.loss]

    def rates(self, start: int, count: int) -> np.ndarray:
        """The learning rates of epochs ``start .. start + count - 1`` (float64)."""
        if self.schedule is None:
            return np.full(count, self.lr)
        if callable(self.schedule):
            return np.array(
                [scheduled_rate(self.schedule(epoch), epoch) for epoch in range(start, start + count)],
                dtype=np.float64,
            )
        return self.schedule[start : start + count]

    def rate(self, epoch: int) -> float:
        """The learning rate of one epoch."""
        return float(self.rates(epoch, 1)[0])


def forwarded(scope: Dict[str, Any]) -> Dict[str, Any]:
    """A public wrapper's keywords (its ``locals()`` before anything else runs),
    without ``X`` and ``y``: ``gd``/``sgd``/``minibatch_sgd`` and ``fit`` keep
    explicit signatures for ``help()`` and hand every keyword on unchanged."""
    return {name: value for name, value in scope.items() if name not in ("X", "y")}


def scheduled_rate(value: Any, epoch: int) -> float:
    """A scheduled learning rate: finite and >= 0 (a step of zero is allowed)."""
    try:
        rate = finite_scalar(value, "lr")
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{exc} (the scheduled rate of epoch {epoch})") from None
    if rate < 0:
        raise ValueError(f"lr must be >= 0, got {rate} (the scheduled rate of epoch {epoch})")
    return rate


def _learning_rate(lr: Any, epochs: int) -> tuple:
    """``(constant rate, schedule)``: a float > 0, a sequence of at least
    ``epochs`` per-epoch rates, or a callable ``lr(epoch)``."""
    if callable(lr):
        return math.nan, lr
    if isinstance(lr, (str, bytes)) or not hasattr(lr, "__len__"):
        rate = finite_scalar(lr, "lr")
        if rate <= 0:
            raise ValueError(f"lr must be > 0, got {rate}")
        return rate, None
    if np.ndim(lr) == 0:  # a 0-d array or tensor
        return _learning_rate(float(np.asarray(lr)), epochs)
    rates = numeric_array(lr, "lr", dtype=np.float64)
    if rates.ndim != 1:
        raise ValueError(
            f"lr must be a number, a 1-D sequence of rates or a callable, got shape {rates.shape}"
        )
    if rates.shape[0] < epochs:
        raise ValueError(f"lr has {rates.shape[0]} rates but epochs={epochs}: one rate per epoch is needed")
    head = rates[:epochs]
    bad = np.flatnonzero(~np.isfinite(head) | (head < 0))
    if bad.size:
        scheduled_rate(head[bad[0]], int(bad[0]))
    return math.nan, np.array(head, dtype=np.float64)


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


def _from_pandas(value: Any, name: str) -> Any:
    """pandas objects with nullable columns (``Float64``, ``Int64``, ...) as numpy.

    ``np.asarray`` turns nullable columns into an object array; without
    missing values they hold plain numbers. A ``pd.NA`` is an error that
    names the column and its dtype.
    """
    if not hasattr(value, "to_numpy"):
        return value
    frame = value if hasattr(value, "columns") else None
    columns = list(frame.items()) if frame is not None else [(getattr(value, "name", None), value)]
    nullable = False
    numpy_dtypes = []
    for label, column in columns:
        dtype = column.dtype
        inner = getattr(dtype, "numpy_dtype", None)
        if inner is None or not hasattr(dtype, "na_value"):
            numpy_dtypes.append(np.dtype(dtype) if isinstance(dtype, np.dtype) else None)
            continue
        nullable = True
        if column.isna().any():
            where = f" in column {label!r}" if frame is not None else ""
            raise ValueError(
                f"{name} has missing values (pd.NA){where} of dtype {dtype}: drop or fill them first"
            )
        numpy_dtypes.append(np.dtype(inner))
    if not nullable:
        return value
    if any(dtype is None or dtype.kind not in "biuf" for dtype in numpy_dtypes):
        return value  # non-numeric columns: numeric_array reports the dtype
    target = np.float32 if all(dtype == np.float32 for dtype in numpy_dtypes) else np.float64
    return value.to_numpy(dtype=target)


def numeric_array(value: Any, name: str, dtype: Any = None) -> np.ndarray:
    """``value`` as a float32/float64 ndarray without copying when possible."""
    if getattr(value, "requires_grad", False) and hasattr(value, "detach"):
        value = value.detach()  # a torch tensor that requires grad: same memory, no autograd
    module = type(value).__module__
    if module.startswith("scipy.sparse"):
        # Sparse X is taken by prepare_data and model_inputs (fastgd/_sparse.py).
        raise TypeError(
            f"{name} is a scipy.sparse {type(value).__name__}: only X may be sparse; "
            f"pass a dense array ({name}.toarray())"
        )
    if module.startswith("pandas"):
        value = _from_pandas(value, name)
    if hasattr(value, "__array__") or isinstance(value, np.ndarray):
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be numeric: {exc}") from None
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a rectangular array of numbers: {exc}") from None
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{name} must be numeric (real numbers), got dtype {arr.dtype}")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif kind != "f" or arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise ValueError naming ``name`` if ``arr`` holds NaN or infinity."""
    if arr.size <= _FINITE_CHECK_SMALL:
        # Small arrays (the tutorial's y): the element-wise test at once costs
        # less than the error-state switch the sum needs.
        if arr.size and not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinity")
        return
    flat = arr.reshape(arr.shape[0], -1) if arr.ndim else arr.reshape(1)
    for start in range(0, max(flat.shape[0], 1), _FINITE_CHECK_ROWS):
        chunk = flat[start : start + _FINITE_CHECK_ROWS]
        # A sum is finite only if every term is, and costs a read with no
        # temporary (about 10x cheaper than isfinite); only a non-finite sum
        # (NaN/inf, or finite values overflowing) needs the element-wise test.
        with np.errstate(over="ignore", invalid="ignore"):
            total = chunk.sum()
        if not np.isfinite(total) and not np.isfinite(chunk).all():
            raise ValueError(f"{name} contains NaN or infinity")


def prepare_data(X: Any, y: Any, check_x: bool = True) -> tuple[Any, np.ndarray, bool]:
    """Check ``X`` (n,) or (n, d) and ``y`` (n,); return a 2-D X, y, scalar_model.

    scipy.sparse ``X`` becomes a canonical :class:`fastgd._sparse.CSR`.
    ``check_x=False`` leaves a dense ``X``'s NaN/inf check to the caller
    (the front: see :func:`fastgd._dispatch.train`).
    """
    if _sparse.is_sparse(X):
        rows, scalar_model = _sparse.as_csr(X, "X")
        y = target_vector(numeric_array(y, "y", dtype=rows.dtype), rows.shape[0])
        check_finite(y, "y")
        return rows, _readonly(np.ascontiguousarray(y)), scalar_model
    X = numeric_array(X, "X")
    if X.ndim not in (1, 2):
        raise ValueError(f"X must be 1-D (n,) or 2-D (n, d), got shape {X.shape}")
    scalar_model = X.ndim == 1
    X2 = X.reshape(-1, 1) if scalar_model else X
    if X2.shape[0] == 0:
        raise ValueError("X is empty: it needs at least one sample")
    if X2.shape[1] == 0:
        raise ValueError("X has no features (shape (n, 0))")
    # float32 data trains as float32: y follows X's dtype, never the reverse.
    y = target_vector(numeric_array(y, "y", dtype=X2.dtype), X2.shape[0])
    if check_x:
        check_finite(X2, "X")
    check_finite(y, "y")
    return _readonly(np.ascontiguousarray(X2)), _readonly(np.ascontiguousarray(y)), scalar_model


def target_vector(y: Any, n_samples: int) -> Any:
    """``y`` as a vector of ``n_samples`` targets (a column ``(n, 1)`` is accepted).

    Shape checks only, so that numpy and dask arrays share them.
    """
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (n,), got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"X and y have different numbers of samples: X has {n_samples}, y has {y.shape[0]}")
    return y


def finite_scalar(value: Any, name: str) -> float:
    if type(value) is float:  # the common case, first
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        return value
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # a 0-d numpy array or torch tensor
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def start_params(
    w0: Any, b0: Any, n_features: int, scalar_model: bool, fit_intercept: bool, dtype: Any
) -> np.ndarray:
    """The flat starting vector ``[w_0 .. w_{d-1}, (b)]`` in the training dtype."""
    params = np.zeros(n_features + int(fit_intercept), dtype=dtype)
    if w0 is not None:
        if np.ndim(w0) == 0:
            _store_start(params, slice(0, n_features), finite_scalar(w0, "w0"), "w0")
        else:
            w = numeric_array(w0, "w0")
            if scalar_model and w.shape == (1,):
                w = w.reshape(())
            if w.shape not in ((n_features,), ()):
                raise ValueError(f"w0 must have shape ({n_features},), got {w.shape}")
            check_finite(w.reshape(-1), "w0")
            _store_start(params, slice(0, n_features), w, "w0")
    if b0 is not None:
        if not fit_intercept:
            raise ValueError("b0 is given but fit_intercept=False: pass fit_intercept=True")
        _store_start(params, slice(n_features, n_features + 1), finite_scalar(b0, "b0"), "b0")
    return params


_LARGEST = {np.float32: float(np.finfo(np.float32).max), np.float64: float(np.finfo(np.float64).max)}


def _store_start(params: np.ndarray, where: slice, value: Any, name: str) -> None:
    """``params[where] = value``; a value that overflows the training dtype is a ValueError."""
    largest = _LARGEST[params.dtype.type]
    # (value is finite: checked by the caller; only a narrower dtype can overflow.)
    fits = abs(value) <= largest if isinstance(value, float) else bool(np.all(np.abs(value) <= largest))
    if fits:
        params[where] = value
    else:
        raise ValueError(
            f"{name} is not finite in {params.dtype} (the training dtype of X): "
            f"its largest value is {largest:.4g}"
        )


def prepare(X: Any, y: Any, w0: Any, b0: Any, fit_intercept: Any, check_x: bool = True) -> Problem:
    """Check and coerce the data and starting parameters of a fit (``check_x``: see
    :func:`prepare_data`)."""
    fit_intercept = check_flag(fit_intercept, "fit_intercept")
    X2, y1, scalar_model = prepare_data(X, y, check_x)
    params = start_params(w0, b0, X2.shape[1], scalar_model, fit_intercept, X2.dtype)
    return Problem(X2, y1, params, scalar_model, fit_intercept)


def check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def options(
    *,
    lr: Any = 0.01,
    epochs: Any = 100,
    batch_size: Any = None,
    momentum: Any = 0.0,
    dampening: Any = 0.0,
    nesterov: Any = False,
    weight_decay: Any = 0.0,
    shuffle: Any = False,
    seed: Any = None,
    exact: Any = False,
    callback: Any = None,
    loss: Any = "mse",
    delta: Any = 1.0,
    average: Any = False,
    decay_intercept: Any = True,
    solver: Any = "auto",
) -> Options:
    """Check hyperparameters the way ``torch.optim.SGD`` checks them (SPEC §3, §5, §7).

    The defaults are :func:`fastgd.fit`'s (tests/test_plan.py holds them equal).
    """
    epochs = check_int(epochs, "epochs", 0)
    lr, schedule = _learning_rate(lr, epochs)
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", 1)
    momentum = finite_scalar(momentum, "momentum")
    if momentum < 0:
        raise ValueError(f"momentum must be >= 0, got {momentum}")
    dampening = finite_scalar(dampening, "dampening")
    if not 0 <= dampening <= 1:
        raise ValueError(f"dampening must be in [0, 1], got {dampening}")
    weight_decay = finite_scalar(weight_decay, "weight_decay")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    nesterov = check_flag(nesterov, "nesterov")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov=True needs momentum > 0 and dampening == 0")
    shuffle = check_flag(shuffle, "shuffle")
    exact = check_flag(exact, "exact")
    if seed is not None:
        seed = check_int(seed, "seed", 0)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    delta = loss_options(loss, delta)[1]
    if isinstance(average, (bool, np.bool_)):
        average_from = int(bool(average))
    else:
        average_from = check_int(average, "average", 0)
    decay_intercept = check_flag(decay_intercept, "decay_intercept")
    solver = check_choice(solver, "solver", SOLVERS)
    if solver == "gram":
        if exact:
            raise ValueError(
                "solver='gram' sums X^T X once, not in the reference's order: "
                "exact=True needs solver='stream' (or 'auto')"
            )
        if loss != "mse":
            raise ValueError(f"solver='gram' is for loss='mse' (got loss={loss!r}): use solver='stream'")
    return Options(
        lr,
        epochs,
        batch_size,
        momentum,
        dampening,
        nesterov,
        weight_decay,
        shuffle,
        seed,
        exact,
        callback,
        schedule,
        loss,
        delta,
        average_from,
        decay_intercept,
        solver,
    )


def loss_options(loss: Any, delta: Any) -> tuple:
    """``(loss code, delta)`` of the tutorial functions' ``loss`` and ``delta``."""
    loss = check_choice(loss, "loss", tuple(LOSSES))
    delta = finite_scalar(delta, "delta")
    if delta <= 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    return LOSSES[loss], delta


def check_choice(value: Any, name: str, choices: tuple) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


class Model(NamedTuple):
    """Inputs of forward/loss/cost/gradient, coerced."""

    X: Any  # (n, d) read-only ndarray, or a _sparse.CSR
    params: np.ndarray  # (d + fit_intercept,)
    one_sample: bool  # the caller passed a single sample: return scalars
    scalar_model: bool  # w was a scalar: the gradient is a float
    fit_intercept: bool


def model_inputs(x: Any, w: Any, b: Any, x_name: str = "x") -> Model:
    """Check ``x`` and the parameters ``w``, ``b`` of forward/loss/cost/gradient.

    ``w`` a scalar: ``x`` is one sample (scalar) or samples (n,) / (n, 1).
    ``w`` of shape (d,): ``x`` is one sample (d,) or samples (n, d).
    A scipy.sparse ``x`` holds samples (n, d), or (n, 1) for a scalar ``w``.
    """
    if _sparse.is_sparse(x):
        return _sparse_model_inputs(x, w, b, x_name)
    X = numeric_array(x, x_name)
    if X.size == 0:
        raise ValueError(f"{x_name} is empty: it needs at least one sample")
    w_arr = numeric_array(w, "w")
    if w_arr.ndim > 1:
        raise ValueError(f"w must be a scalar or have shape (d,), got shape {w_arr.shape}")
    check_finite(w_arr.reshape(-1), "w")
    scalar_model = w_arr.ndim == 0
    d = 1 if scalar_model else w_arr.shape[0]
    if d == 0:
        raise ValueError("w is empty")
    if scalar_model:
        one_sample = X.ndim == 0
        if X.ndim == 2 and X.shape[1] != 1:
            raise ValueError(f"w is a scalar but {x_name} has {X.shape[1]} features")
        if X.ndim > 2:
            raise ValueError(f"{x_name} must be a scalar or 1-D for a scalar w, got shape {X.shape}")
    else:
        one_sample = X.ndim == 1
        if X.ndim not in (1, 2) or X.shape[-1] != d:
            raise ValueError(f"{x_name} must have shape ({d},) or (n, {d}) to match w, got {X.shape}")
    X2 = X.reshape(-1, d)
    if X2.shape[0] == 0:
        raise ValueError(f"{x_name} is empty: it needs at least one sample")
    check_finite(X2, x_name)
    dtype = np.result_type(X2.dtype, w_arr.dtype)
    fit_intercept = b is not None
    params = np.empty(d + int(fit_intercept), dtype=dtype)
    params[:d] = w_arr.reshape(-1)
    if fit_intercept:
        params[d] = finite_scalar(b, "b")
    return Model(
        _readonly(np.ascontiguousarray(X2, dtype=dtype)), params, one_sample, scalar_model, fit_intercept
    )


def _model_params(w: Any, b: Any) -> tuple:
    """``w`` as a checked array, and whether it is a scalar."""
    w_arr = numeric_array(w, "w")
    if w_arr.ndim > 1:
        raise ValueError(f"w must be a scalar or have shape (d,), got shape {w_arr.shape}")
    check_finite(w_arr.reshape(-1), "w")
    if w_arr.ndim == 1 and w_arr.shape[0] == 0:
        raise ValueError("w is empty")
    return w_arr, w_arr.ndim == 0


def _sparse_model_inputs(x: Any, w: Any, b: Any, x_name: str) -> Model:
    """:func:`model_inputs` for a scipy.sparse ``x`` (always samples, never one sample)."""
    w_arr, scalar_model = _model_params(w, b)
    d = 1 if scalar_model else w_arr.shape[0]
    shape = x.shape
    if len(shape) == 1 and scalar_model:
        shape = (shape[0], 1)
    if len(shape) != 2 or shape[1] != d:
        raise ValueError(f"{x_name} must have shape (n, {d}) to match w, got {shape}")
    if np.dtype(x.dtype).kind not in "biuf":
        raise TypeError(f"{x_name} must be numeric (real numbers), got dtype {x.dtype}")
    dtype = np.result_type(_sparse.float_dtype(np.dtype(x.dtype), x_name), w_arr.dtype)
    rows, _ = _sparse.as_csr(x, x_name, dtype=dtype)
    params = np.empty(d + int(b is not None), dtype=dtype)
    params[:d] = w_arr.reshape(-1)
    if b is not None:
        params[d] = finite_scalar(b, "b")
    return Model(rows, params, False, scalar_model, b is not None)


def targets(y: Any, model: Model, name: str = "y", x_name: str = "x") -> np.ndarray:
    """Check targets against the samples of ``model``."""
    arr = numeric_array(y, name, dtype=model.X.dtype)
    expected = () if model.one_sample else (model.X.shape[0],)
    if arr.shape != expected:
        if model.one_sample:
            raise ValueError(f"{name} must be a scalar for one sample, got shape {arr.shape}")
        raise ValueError(f"{name} must have shape {expected} to match {x_name}, got {arr.shape}")
    check_finite(arr.reshape(-1), name)
    return _readonly(np.ascontiguousarray(arr.reshape(-1)))
