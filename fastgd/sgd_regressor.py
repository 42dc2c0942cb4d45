"""``fastgd.SGDRegressor``: scikit-learn's ``SGDRegressor``, compiled.

Same constructor, defaults, attributes and arithmetic as
``sklearn.linear_model.SGDRegressor`` (SPEC §9); the epochs run in one call
of a compiled kernel (``sgd_regressor_epochs`` of the selected backend:
numba, Cython, or the pure-Python loop of the reference on the numpy
backend). Imported on first use of ``fastgd.SGDRegressor``, so that
``import fastgd`` never imports scikit-learn.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
import warnings
from typing import Any, Optional

import numpy as np

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import ShuffleSplit
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import _check_sample_weight, check_array, check_is_fitted, validate_data
except ImportError as exc:
    _detail = "" if isinstance(exc, ModuleNotFoundError) else f" >= 1.6 ({exc})"
    raise ImportError(f"SGDRegressor needs scikit-learn{_detail}: pip install 'fastgd[sklearn]'") from None

from fastgd import _registry
from fastgd import _sgd_regressor_reference as _python_loop
from fastgd._result import Fit
from fastgd.errors import FitInterrupted
from fastgd.kernels import sgd_regressor_layout as L

__all__ = ["SGDRegressor", "InvalidParameterError"]

# The seed drawn from random_state: scikit-learn draws from [0, 2**31 - 1).
_MAX_INT = np.iinfo(np.int32).max
# scikit-learn moves the intercept by 1/100 of a step on sparse data (its
# features are mostly zero, the intercept's "feature" never is).
SPARSE_INTERCEPT_DECAY = 0.01
# The Python loop between kernel calls runs only every this many epochs when
# nothing (verbose, early stopping) needs it sooner: bounds one call's length.
EPOCHS_PER_CALL = 1 << 16
# A kernel call over more values than this may take long: run it where Ctrl-C
# can stop it (fastgd._engine._interruptible).
_LONG_CALL_WORK = 1 << 24


class _NonFiniteInput(ValueError):
    """X holds NaN or infinity (found once an epoch ended non-finite)."""


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter is out of range or of the wrong type (as
    scikit-learn's error of that name: both a ValueError and a TypeError)."""


class SGDRegressor(RegressorMixin, BaseEstimator):
    """Linear regression by stochastic gradient descent: scikit-learn's
    ``SGDRegressor``, with the same parameters, attributes and results,
    computed by compiled kernels.

    Change ``from sklearn.linear_model import SGDRegressor`` to
    ``from fastgd import SGDRegressor``: with ``shuffle=False`` the fitted
    ``coef_``, ``intercept_``, ``n_iter_`` and ``t_`` equal scikit-learn's
    (the parameters to rounding: 1e-9 relative in float64). Each sample takes
    one step on ``loss(y, x·w + b) + alpha * penalty(w)``; see
    scikit-learn's documentation for every parameter.

    Parameters
    ----------
    loss : {"squared_error", "huber", "epsilon_insensitive", \
"squared_epsilon_insensitive"}, default="squared_error"
        ``squared_error`` is half the squared residual.
    penalty : {"l2", "l1", "elasticnet", None}, default="l2"
    alpha : float, default=0.0001
        Strength of the penalty (and the scale of the "optimal" rate).
    l1_ratio : float or None, default=0.15
        The L1 share of the elastic net.
    fit_intercept : bool, default=True
    max_iter : int, default=1000
        Most epochs of :meth:`fit`.
    tol : float or None, default=1e-3
        Stop when an epoch's mean training objective (loss plus ``alpha``
        times the penalty, summed over the epoch's steps) is not below
        ``best - tol`` for ``n_iter_no_change`` epochs in a row (the
        validation score not above ``best + tol`` with ``early_stopping``).
        None: run ``max_iter`` epochs.
    shuffle : bool, default=True
        Visit the samples in a fresh permutation each epoch: fastgd's own
        seeded permutation (splitmix64 and Fisher–Yates, the same on every
        backend), not scikit-learn's generator, so shuffled fits differ from
        scikit-learn's in their order (not in their statistics).
    verbose : int, default=0
    epsilon : float, default=0.1
        Huber's threshold; the insensitive losses' band.
    random_state : int, RandomState instance or None, default=None
    learning_rate : {"constant", "optimal", "invscaling", "adaptive"}, default="invscaling"
        ``eta0``; ``1 / (alpha * (t0 + t - 1))``; ``eta0 / t**power_t``;
        ``eta0`` divided by 5 whenever the stopping rule sees no improvement.
    eta0 : float, default=0.01
    power_t : float, default=0.25
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (scikit-learn's
        ``ShuffleSplit`` with ``random_state``) and stop on its R².
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
    warm_start : bool, default=False
    average : bool or int, default=False
        True (or k): ``coef_`` and ``intercept_`` are the mean of the iterates
        (from step k on).
    backend : str or None, default=None
        Run on this fastgd backend ("numba", "cython", "numpy"); None uses
        the current selection (:func:`fastgd.use`).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : ndarray of shape (1,)
    n_iter_ : int
        Epochs of the last :meth:`fit` (1 after :meth:`partial_fit`).
    t_ : float
        Steps taken plus one (``n_iter_ * n_samples + 1`` after a fit).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Notes
    -----
    Differences from scikit-learn: shuffling uses fastgd's permutation (see
    ``shuffle``); with ``early_stopping`` the validation score is computed
    with the scaled weights (scikit-learn scores the unscaled storage of an
    L2-shrunk weight vector); a run whose parameters overflow raises the same
    ``ValueError`` but leaves ``coef_``/``intercept_`` at the last epoch whose
    parameters were finite; the passive-aggressive rates ("pa1", "pa2") are not
    provided.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd import SGDRegressor
    >>> X = np.array([[1.0], [2.0], [3.0]])
    >>> model = SGDRegressor(learning_rate="constant", eta0=0.05, penalty=None,
    ...                      tol=None, max_iter=2000, shuffle=False)
    >>> model.fit(X, [3.0, 5.0, 7.0]).coef_.round(3), model.intercept_.round(3)
    (array([2.]), array([1.]))
    """

    # The reference's subclass runs the pure-Python loop instead of a backend.
    _pure_python = False

    def __init__(
        self,
        loss: str = "squared_error",
        *,
        penalty: Optional[str] = "l2",
        alpha: float = 0.0001,
        l1_ratio: Optional[float] = 0.15,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: Optional[float] = 1e-3,
        shuffle: bool = True,
        verbose: int = 0,
        epsilon: float = 0.1,
        random_state: Any = None,
        learning_rate: str = "invscaling",
        eta0: float = 0.01,
        power_t: float = 0.25,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        warm_start: bool = False,
        average: Any = False,
        backend: Optional[str] = None,
    ) -> None:
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.average = average
        self.backend = backend

    # -- scikit-learn protocol ---------------------------------------------

    def fit(
        self, X: Any, y: Any, coef_init: Any = None, intercept_init: Any = None, sample_weight: Any = None
    ) -> "SGDRegressor":
        """Train for up to ``max_iter`` epochs from zeros (or ``coef_init``,
        ``intercept_init``; or the current model with ``warm_start``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            float32 data trains as float32.
        y : array-like of shape (n_samples,)
        coef_init : array-like of shape (n_features,), optional
        intercept_init : array-like of shape (1,), optional
        sample_weight : array-like of shape (n_samples,), optional
            Each sample's step is scaled by its weight.

        Returns
        -------
        self
        """
        self._check_params(for_partial_fit=False)
        if self.warm_start and getattr(self, "coef_", None) is not None:
            # scikit-learn's warm start continues from the model; coef_init
            # and intercept_init are used only by a fresh start.
            fresh = False
        else:
            fresh = True
            for name in (
                "coef_",
                "intercept_",
                "_standard_coef",
                "_standard_intercept",
                "_average_coef",
                "_average_intercept",
            ):
                self.__dict__.pop(name, None)
        self.t_ = 1.0
        self._epochs(
            X,
            y,
            self.max_iter,
            sample_weight,
            coef_init if fresh else None,
            intercept_init if fresh else None,
        )
        if self.tol is not None and self.n_iter_ == self.max_iter:
            warnings.warn(
                "Maximum number of iteration reached before convergence. Consider "
                "increasing max_iter to improve the fit.",
                ConvergenceWarning,
                stacklevel=2,
            )
        if self.power_t < 0:
            warnings.warn(
                "Negative values for `power_t` are deprecated in scikit-learn 1.8; "
                "use values in the range [0.0, inf).",
                FutureWarning,
                stacklevel=2,
            )
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> "SGDRegressor":
        """One epoch over ``(X, y)``, continuing from the current model.

        Returns
        -------
        self
        """
        self._check_params(for_partial_fit=not hasattr(self, "coef_"))
        self._epochs(X, y, 1, sample_weight, None, None)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, accept_sparse="csr", reset=False)
        return np.asarray(X @ self.coef_ + self.intercept_).ravel()

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = False
        return tags

    # -- internals -----------------------------------------------------------

    def _check_params(self, for_partial_fit: bool) -> None:
        """scikit-learn's parameter constraints, with its error type and wording."""
        _choice(self, "loss", tuple(L.LOSS_CODES))
        _choice(self, "penalty", ("l2", "l1", "elasticnet", None))
        _choice(self, "learning_rate", tuple(L.RATE_CODES))
        for name in ("fit_intercept", "shuffle", "early_stopping", "warm_start"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                _invalid(self, name, "an instance of 'bool'")
        _real(self, "alpha", 0.0, None, low_open=False)
        _real(self, "epsilon", 0.0, None, low_open=False)
        _real(self, "eta0", 0.0, None, low_open=True)
        _real(self, "power_t", None, None, low_open=False)
        _real(self, "validation_fraction", 0.0, 1.0, low_open=True, high_open=True)
        if self.l1_ratio is not None:
            _real(self, "l1_ratio", 0.0, 1.0, low_open=False)
        if self.tol is not None:
            _real(self, "tol", 0.0, None, low_open=False)
        _integer(self, "max_iter", 1)
        _integer(self, "n_iter_no_change", 1)
        if not isinstance(self.average, (bool, np.bool_)):
            _integer(self, "average", 1)
        if not (
            isinstance(self.verbose, (bool, np.bool_))
            or (isinstance(self.verbose, numbers.Integral) and self.verbose >= 0)
        ):
            _invalid(self, "verbose", "an int in the range [0, inf) or a bool")
        rs = self.random_state
        if not (
            rs is None
            or isinstance(rs, np.random.RandomState)
            or (
                isinstance(rs, numbers.Integral)
                and not isinstance(rs, (bool, np.bool_))
                and 0 <= int(rs) < 2**32
            )
        ):
            _invalid(
                self,
                "random_state",
                "an int in the range [0, 4294967295], an instance of "
                "'numpy.random.mtrand.RandomState' or None",
            )
        if self.backend is not None and not isinstance(self.backend, str):
            _invalid(self, "backend", "a backend name (str) or None")
        if self.early_stopping and for_partial_fit:
            raise ValueError("early_stopping should be False with partial_fit")
        if self.learning_rate == "optimal" and self.alpha == 0:
            raise ValueError(
                "alpha must be > 0 since learning_rate is 'optimal'. alpha is used "
                "to compute the optimal learning rate."
            )
        if self.penalty == "elasticnet" and self.l1_ratio is None:
            raise ValueError("l1_ratio must be set when penalty is 'elasticnet'")

    def _kernel(self):
        if self._pure_python:
            return _python_loop, _python_loop.sgd_regressor_epochs
        kernel_module = _registry.kernel_module(self.backend)
        function = getattr(kernel_module, "sgd_regressor_epochs", None)
        if function is None:
            raise ValueError(
                f"backend={kernel_module.NAME!r} does not run SGDRegressor; use 'numba', 'cython' or 'numpy'"
            )
        return kernel_module, function

    def _epochs(self, X, y, max_iter, sample_weight, coef_init, intercept_init) -> None:
        first_call = getattr(self, "coef_", None) is None
        # NaN or inf in X reaches every weight within the first epoch (0·inf is
        # NaN too), so X's finite check waits until an epoch ends non-finite:
        # it reads X once more, which costs more than a many-feature epoch.
        # Early stopping scores rows it never trains on: checked up front.
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse="csr",
            copy=False,
            order="C",
            dtype=[np.float64, np.float32],
            reset=first_call,
            ensure_all_finite=bool(self.early_stopping),
        )
        y = np.ascontiguousarray(y, dtype=X.dtype)
        n_samples, n_features = X.shape
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(_check_sample_weight(sample_weight, X, dtype=X.dtype))
        if first_call:
            self._allocate(n_features, X.dtype, coef_init, intercept_init)
        if self.average and getattr(self, "_average_coef", None) is None:
            self._standard_coef = self.coef_
            self._standard_intercept = self.intercept_
            self._average_coef = np.zeros(n_features, dtype=X.dtype)
            self._average_intercept = np.zeros(1, dtype=X.dtype)
        if not hasattr(self, "t_"):
            self.t_ = 1.0
        try:
            self._train(X, y, sample_weight, max_iter)
        except _NonFiniteInput:
            if first_call:  # as if validation had refused X up front: nothing allocated stays
                for name in (
                    "coef_",
                    "intercept_",
                    "_standard_coef",
                    "_standard_intercept",
                    "_average_coef",
                    "_average_intercept",
                ):
                    self.__dict__.pop(name, None)
            raise

    def _allocate(self, n_features: int, dtype: Any, coef_init: Any, intercept_init: Any) -> None:
        if coef_init is not None:
            coef = np.array(coef_init, dtype=dtype, order="C").ravel()
            if coef.shape != (n_features,):
                raise ValueError("Provided coef_init does not match dataset.")
        else:
            coef = np.zeros(n_features, dtype=dtype)
        if intercept_init is not None:
            intercept = np.array(intercept_init, dtype=dtype)
            if intercept.shape not in ((1,), ()):
                raise ValueError("Provided intercept_init does not match dataset.")
            intercept = intercept.reshape(1)
        else:
            intercept = np.zeros(1, dtype=dtype)
        self.coef_, self.intercept_ = coef, intercept
        if self.average:
            self._standard_coef, self._standard_intercept = coef, intercept
            self._average_coef = np.zeros(n_features, dtype=dtype)
            self._average_intercept = np.zeros(1, dtype=dtype)

    def _validation_mask(self, y: np.ndarray, sample_weight: Optional[np.ndarray]) -> np.ndarray:
        """scikit-learn's split: ``ShuffleSplit(test_size=validation_fraction,
        random_state=random_state)``."""
        n = y.shape[0]
        mask = np.zeros(n, dtype=bool)
        if not self.early_stopping:
            return mask
        split = ShuffleSplit(test_size=self.validation_fraction, random_state=self.random_state)
        train, held_out = next(split.split(np.zeros((n, 1)), y))
        if sample_weight is not None and not np.any(sample_weight[held_out] > 0):
            raise ValueError(
                "The sample weights for validation set are all zero, consider using a different random state."
            )
        if train.shape[0] == 0 or held_out.shape[0] == 0:
            raise ValueError(
                f"Splitting {n} samples into a train set and a validation set with "
                f"validation_fraction={self.validation_fraction!r} led to an empty set "
                f"({train.shape[0]} and {held_out.shape[0]} samples). Please either change "
                "validation_fraction, increase number of samples, or disable early_stopping."
            )
        mask[held_out] = True
        return mask

    def _config(self, sparse: bool, train_count: int, dtype: Any) -> np.ndarray:
        config = np.zeros(L.CONFIG_SIZE)
        loss = L.LOSS_CODES[self.loss]
        penalty = L.PENALTY_CODES[self.penalty]
        alpha = float(self.alpha)
        l1_ratio = {L.L2: 0.0, L.L1: 1.0}.get(penalty, 0.0 if self.l1_ratio is None else float(self.l1_ratio))
        config[L.C_LOSS] = loss
        config[L.C_EPSILON] = float(self.epsilon)
        config[L.C_PENALTY] = penalty
        config[L.C_ALPHA] = alpha
        config[L.C_L1_RATIO] = l1_ratio
        config[L.C_RATE] = L.RATE_CODES[self.learning_rate]
        config[L.C_ETA0] = float(self.eta0)
        config[L.C_POWER_T] = float(self.power_t)
        if self.learning_rate == "optimal":
            # The first step of "optimal" is about 1/sqrt(alpha) / dloss at a
            # typical margin, as in scikit-learn (Bottou's heuristic).
            typical = math.sqrt(1.0 / math.sqrt(alpha))
            first = typical / max(1.0, _python_loop.loss_derivative(loss, float(self.epsilon), 1.0, -typical))
            config[L.C_OPTIMAL_INIT] = 1.0 / (first * alpha)
        config[L.C_FIT_INTERCEPT] = 1.0 if self.fit_intercept else 0.0
        config[L.C_INTERCEPT_DECAY] = SPARSE_INTERCEPT_DECAY if sparse else 1.0
        config[L.C_AVERAGE] = int(self.average)
        config[L.C_TOL] = -math.inf if self.tol is None else float(self.tol)
        config[L.C_PATIENCE] = int(self.n_iter_no_change)
        config[L.C_STOPPING_RULE] = 0.0 if self.early_stopping else 1.0
        config[L.C_TRAIN_COUNT] = train_count
        config[L.C_WSCALE_MIN] = 1e-6 if dtype == np.float32 else 1e-9
        config[L.C_SHUFFLE] = 1.0 if self.shuffle else 0.0
        return config

    def _train(self, X, y, sample_weight, max_iter: int) -> None:
        n_samples, d = X.shape
        mask = self._validation_mask(y, sample_weight)
        random_state = check_random_state(self.random_state)
        seed = random_state.randint(0, _MAX_INT)
        random_state.randint(0, _MAX_INT)  # scikit-learn draws a second seed (its dataset's)
        sparse = not isinstance(X, np.ndarray)
        # The kernels read an empty order as 0..n-1 and empty weights as ones.
        if self.shuffle or mask.any():
            order = np.flatnonzero(~mask).astype(np.int64)
        else:
            order = np.empty(0, dtype=np.int64)
        train_count = n_samples - int(mask.sum())
        weights = np.empty(0, dtype=X.dtype) if sample_weight is None else sample_weight
        if self.average:
            coef, intercept = self._standard_coef, self._standard_intercept
            average_coef, average_intercept = self._average_coef, float(self._average_intercept[0])
        else:
            coef, intercept = self.coef_, self.intercept_
            average_coef, average_intercept = np.zeros(d, dtype=X.dtype), 0.0
        coef = np.array(coef, dtype=X.dtype, order="C")  # the caller's arrays are never written
        average_coef = np.array(average_coef, dtype=X.dtype, order="C")
        q = np.zeros(d, dtype=X.dtype)
        previous = np.concatenate([coef.astype(np.float64), [float(intercept[0])]])
        state = np.zeros(L.STATE_SIZE)
        state[L.S_INTERCEPT] = float(intercept[0])
        state[L.S_WSCALE] = 1.0
        state[L.S_AVERAGE_B] = 1.0
        state[L.S_AVERAGE_INTERCEPT] = average_intercept
        state[L.S_T] = self.t_
        state[L.S_ETA] = float(self.eta0)
        state[L.S_BEST] = math.inf
        state[L.S_SQ_NORM] = float(np.dot(coef, coef))
        state[L.S_L1_NORM] = float(np.abs(coef).sum())
        config = self._config(sparse, train_count, X.dtype)
        rng = np.array([seed], dtype=np.uint64)
        stop = np.zeros(1, dtype=np.int64)
        if sparse:
            dense = np.empty((0, d), dtype=X.dtype)
            data, indices, indptr = X.data, X.indices, X.indptr
        else:
            dense = X
            data, indices, indptr = np.empty(0, X.dtype), np.empty(0, np.int32), np.zeros(1, np.int32)
        kernel_module, kernel = self._kernel()
        # Python between epochs only when something needs it.
        per_call = 1 if (self.verbose or self.early_stopping) else EPOCHS_PER_CALL
        scorer = _ValidationScore(X, y, sample_weight, mask) if self.early_stopping else None
        best_score, start, ran = -math.inf, time.time(), 0
        try:
            while ran < max_iter and not state[L.S_CONVERGED] and not state[L.S_NONFINITE]:
                epochs = min(per_call, max_iter - ran)
                work = float(epochs) * train_count * max(1, d if not sparse else X.nnz // max(1, n_samples))
                ran += self._call(
                    kernel_module,
                    kernel,
                    work,
                    stop,
                    dense,
                    data,
                    indices,
                    indptr,
                    sparse,
                    y,
                    weights,
                    order,
                    coef,
                    average_coef,
                    q,
                    previous,
                    state,
                    config,
                    rng,
                    epochs,
                )
                if state[L.S_NONFINITE]:
                    break
                if self.verbose:
                    self._report(ran, coef, state, ran * train_count, train_count, start)
                if scorer is not None:
                    score = scorer(coef * state[L.S_WSCALE], state[L.S_INTERCEPT])
                    tol = config[L.C_TOL]
                    bad = state[L.S_BAD_EPOCHS]
                    bad = bad + 1 if (tol > -math.inf and score < best_score + tol) else 0
                    best_score = max(best_score, score)
                    state[L.S_BAD_EPOCHS] = bad
                    if bad >= self.n_iter_no_change:
                        if self.learning_rate == "adaptive" and state[L.S_ETA] > 1e-6:
                            state[L.S_ETA] /= 5.0
                            state[L.S_BAD_EPOCHS] = 0
                        else:
                            state[L.S_CONVERGED] = 1.0
                if self.verbose and state[L.S_CONVERGED]:
                    print(f"Convergence after {ran} epochs took {time.time() - start:.2f} seconds")
        except KeyboardInterrupt:
            self._keep_previous(previous, d, X.dtype, ran, n_samples)
            raise FitInterrupted(
                f"SGDRegressor interrupted after {ran} epochs; coef_ and intercept_ hold the last one",
                fit=Fit(
                    self.coef_.copy(),
                    float(self.intercept_[0]),
                    np.zeros(0),
                    math.nan,
                    ran,
                    getattr(kernel_module, "NAME", "reference"),
                ),
            ) from None
        if state[L.S_NONFINITE]:
            # Input X contains NaN/infinity: scikit-learn's error, before anything is kept.
            try:
                check_array(X, accept_sparse="csr", dtype=None, input_name="X")
            except ValueError as exc:
                raise _NonFiniteInput(str(exc)) from None
            self._keep_previous(previous, d, X.dtype, ran - 1, n_samples)
            raise ValueError(
                f"Floating-point under-/overflow occurred at epoch #{ran}. Scaling input "
                "data with StandardScaler or MinMaxScaler might help. (coef_ and "
                "intercept_ hold the last epoch whose parameters were finite.)"
            )
        # The scale folded into the weights (and the average), as at the end
        # of every scikit-learn fit.
        wscale = state[L.S_WSCALE]
        if self.average:
            average_coef = (average_coef + state[L.S_AVERAGE_A] * coef) * (1.0 / state[L.S_AVERAGE_B])
            average_coef = average_coef.astype(X.dtype)
        coef = (coef * wscale).astype(X.dtype)
        self.n_iter_ = ran
        self.t_ += ran * n_samples
        new_intercept = np.array([state[L.S_INTERCEPT]], dtype=X.dtype)
        if self.average:
            self._standard_coef, self._standard_intercept = coef, new_intercept
            self._average_coef = average_coef
            self._average_intercept = np.array([state[L.S_AVERAGE_INTERCEPT]], dtype=X.dtype)
            if self.average <= self.t_ - 1.0:
                self.coef_, self.intercept_ = average_coef, self._average_intercept
            else:
                self.coef_, self.intercept_ = coef, new_intercept
        else:
            self.coef_, self.intercept_ = coef, new_intercept

    @staticmethod
    def _call(kernel_module, kernel, work, stop, *args) -> int:
        if kernel_module is _python_loop or work < _LONG_CALL_WORK:
            return int(kernel(*args, stop))
        from fastgd._engine import _interruptible

        return int(_interruptible(kernel_module, work, stop, kernel, *args, stop))

    def _keep_previous(self, previous, d, dtype, epochs, n_samples) -> None:
        self.coef_ = previous[:d].astype(dtype)
        self.intercept_ = np.array([previous[d]], dtype=dtype)
        if self.average:
            self._standard_coef, self._standard_intercept = self.coef_, self.intercept_
            self.__dict__.pop("_average_coef", None)  # the average of an unfinished run: restart it
        self.n_iter_ = max(0, epochs)
        self.t_ += max(0, epochs) * n_samples

    def _report(self, epoch, coef, state, count, train_count, start) -> None:
        w = coef * state[L.S_WSCALE]
        print(f"-- Epoch {epoch}")
        print(
            f"Norm: {float(np.sqrt(w @ w)):.2f}, NNZs: {int(np.count_nonzero(coef))}, "
            f"Bias: {state[L.S_INTERCEPT]:.6f}, T: {count}, "
            f"Avg. loss: {state[L.S_SUMLOSS] / train_count:f}, "
            f"Objective: {state[L.S_OBJECTIVE] / train_count:f}"
        )
        print(f"Total training time: {time.time() - start:.2f} seconds.")
        sys.stdout.flush()


class _ValidationScore:
    """R² of the held-out rows (weighted), for ``early_stopping``."""

    def __init__(self, X, y, sample_weight, mask) -> None:
        self.X, self.y = X[mask], y[mask]
        self.sw = None if sample_weight is None else sample_weight[mask]

    def __call__(self, w: np.ndarray, b: float) -> float:
        from sklearn.metrics import r2_score

        return float(r2_score(self.y, np.asarray(self.X @ w + b).ravel(), sample_weight=self.sw))


def _invalid(model: Any, name: str, expected: str) -> None:
    raise InvalidParameterError(
        f"The {name!r} parameter of {type(model).__name__} must be "
        f"{expected}. Got {getattr(model, name)!r} instead."
    )


def _choice(model: Any, name: str, choices: tuple) -> None:
    value = getattr(model, name)
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        shown = ", ".join(repr(c) for c in choices)
        _invalid(model, name, f"one of {{{shown}}}")


def _real(
    model: Any,
    name: str,
    low: Optional[float],
    high: Optional[float],
    *,
    low_open: bool,
    high_open: bool = False,
) -> None:
    value = getattr(model, name)
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        v = float(value)
        ok = not math.isnan(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
    if not ok:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        brackets = (
            ("(" if low_open or low is None else "[")
            + f"{lo}, {hi}"
            + (")" if high_open or high is None else "]")
        )
        _invalid(model, name, f"a float in the range {brackets}")


def _integer(model: Any, name: str, low: int) -> None:
    value = getattr(model, name)
    if not (
        isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and int(value) >= low
    ):
        _invalid(model, name, f"an int in the range [{low}, inf)")
