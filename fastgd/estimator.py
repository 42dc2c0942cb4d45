"""``GDRegressor``: fastgd as a scikit-learn estimator.

Imported on first use of ``fastgd.GDRegressor``, so that ``import fastgd``
never imports scikit-learn.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import sys
from typing import Any, Callable, Optional

import numpy as np

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:
    # scikit-learn is the extra "sklearn": name the install that brings it (and,
    # when an older scikit-learn is there, what it lacks).
    _detail = "" if isinstance(exc, ModuleNotFoundError) else f" >= 1.6 ({exc})"
    raise ImportError(f"GDRegressor needs scikit-learn{_detail}: pip install 'fastgd[sklearn]'") from None

import fastgd
from fastgd import _dispatch, _sparse
from fastgd._autolr import auto_lr as _auto_lr
from fastgd._backend import is_full_batch
from fastgd._result import Fit
from fastgd._state import OptimizerState
from fastgd.errors import DivergenceError, FitInterrupted

__all__ = ["GDRegressor"]

# The scipy.sparse formats validate_data keeps; any other becomes CSR there.
_SPARSE_FORMATS = ["csr", "csc", "coo"]

# The trainer: the engine's train, or (in tests) the reference's ``_fit`` with
# the same keyword arguments, so that estimator results can be checked
# against the reference.
_train: Callable[..., Fit] = _dispatch.train


class GDRegressor(RegressorMixin, BaseEstimator):
    """Linear least squares trained by gradient descent, as a scikit-learn regressor.

    Each fit is :func:`fastgd.fit` (full-batch GD, per-sample SGD or
    mini-batch SGD with ``torch.optim.SGD``'s update) on the mean squared
    error (or torch's Huber or L1 loss); the hyperparameters keep fastgd's
    names and meaning.

    Parameters
    ----------
    lr : float, "auto", sequence or callable, default="auto"
        Learning rate (finite, > 0); per-epoch rates (a sequence with one
        rate per epoch, or ``lr(epoch)`` such as :mod:`fastgd.schedules`'
        torch schedulers; epochs count from 0 in each :meth:`fit` or
        :meth:`partial_fit` call); or "auto": a step that cannot diverge on
        the data it is given, computed before training (stored in ``lr_``)::

            full-batch GD:  1 / (2 * mean_i |x~_i|^2 + weight_decay)
            (mini-)batches: 1 / (2 * max_i  |x~_i|^2 + weight_decay)

        where ``x~_i`` is the sample with a 1 appended for the intercept (and
        scaled by its ``sample_weight``, weighted mean). The loss's curvature
        is ``2 * eigenvalues(X~.T @ X~ / n) + weight_decay``; the mean squared
        norm (the trace) bounds the largest eigenvalue, so GD steps shrink
        every error mode; with batches, the largest single sample bounds every
        batch's curvature. A fixed default such as :func:`fastgd.fit`'s 0.01
        diverges on unscaled features (two features near 100 already
        need ``lr < 5e-5``) and is needlessly slow on small ones. ``partial_fit``
        keeps the smallest "auto" step of the chunks seen so far.
    epochs : int, default=100
        Passes over the data per :meth:`fit` (fewer when early stopping ends
        it); :func:`fastgd.fit`'s default.
    batch_size : int or None, default=None
        Samples per step: None is full-batch GD (every epoch one exact
        gradient step; deterministic and the most stable choice), 1 is
        per-sample SGD.
    momentum, dampening, nesterov, weight_decay : as ``torch.optim.SGD``
        ``weight_decay`` also decays the intercept, as torch does for a bias
        (unless ``decay_intercept=False``).
    loss : {"mse", "huber", "l1"}, default="mse"
        torch's ``MSELoss``, ``HuberLoss(delta=delta)`` or ``L1Loss`` (see
        :func:`fastgd.fit`); ``loss_curve_``, ``loss_`` and ``tol`` use it.
        ``sample_weight`` needs "mse" (the weights scale the rows, which is the
        weighted mean only for a squared loss).
    delta : float, default=1.0
        The Huber threshold.
    average : bool or int, default=False
        True (or k): ``coef_``/``intercept_`` are the running mean of the
        parameters after every step (from step k of each fit on), torch's
        ``AveragedModel``.
    decay_intercept : bool, default=True
        False: ``weight_decay`` on ``coef_`` only (torch's parameter group
        for the bias with ``weight_decay=0``); not with ``sample_weight``.
    solver : {"auto", "stream", "gram"}, default="auto"
        Full-batch GD from one read of the data ("gram"), or streaming it
        every epoch; see :func:`fastgd.fit`.
    fit_intercept : bool, default=True
        Learn ``intercept_``; otherwise it is 0.0.
    shuffle : bool, default=False
        Visit the samples in a fresh permutation each epoch (mini-batch and
        per-sample SGD only). Off by default, as in :func:`fastgd.fit`, so
        that results do not depend on ``random_state``.
    random_state : int, RandomState instance or None, default=None
        Seed of the permutations when ``shuffle=True``. An int is passed to
        :func:`fastgd.fit` as ``seed``.
    backend : str or None, default=None
        Run on this backend (``fastgd.use(backend)`` around the fit); None
        uses the current selection.
    tol : float or None, default=None
        Early stopping: stop when the loss after an epoch has not fallen below
        ``best_loss - tol`` for ``n_iter_no_change`` consecutive epochs
        (``SGDRegressor``'s rule, on the training loss). None trains for
        all ``epochs``.
    n_iter_no_change : int, default=5
        Epochs without improvement before early stopping (with ``tol``).
    warm_start : bool, default=False
        :meth:`fit` continues from the previous ``coef_``, ``intercept_`` and
        optimizer state (momentum buffer, step count) and appends to
        ``loss_curve_``, instead of starting from zeros.
    verbose : bool or int, default=False
        Print one line per epoch, as the tutorial does:
        ``Epoch: 0 w= [...] b= ... loss ...`` (``w`` after the epoch, ``loss``
        the mean squared error at its start).
    progress : bool, default=False
        Show a tqdm progress bar over the epochs of :meth:`fit` (needs tqdm).
    exact : bool, default=False
        Bit-for-bit the reference's arithmetic (see :func:`fastgd.fit`).
    callback : callable or None, default=None
        ``callback(epoch, fit_so_far)`` after every epoch of :meth:`fit` and
        :meth:`partial_fit`; ``fit_so_far`` is a :class:`fastgd.Fit` with the
        parameters after that epoch (use it to checkpoint); returning True
        stops training.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    loss_curve_ : ndarray of shape (n_iter_,)
        Mean squared error (weighted, with ``sample_weight``) at the start of
        each epoch since the model was initialised: :meth:`fit` without
        ``warm_start`` starts it afresh; :meth:`partial_fit` appends.
    loss_ : float
        Mean squared error after the last epoch.
    n_iter_ : int
        Epochs run since the model was initialised (``len(loss_curve_)``).
    t_ : int
        Optimizer steps taken since the model was initialised.
    lr_ : float, sequence or callable
        The learning rate used by the last fit (``lr``, or what "auto" chose).
    backend_ : str
        The backend that ran the last fit.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Notes
    -----
    ``sample_weight`` trains on rows scaled by ``s_i = sqrt(w_i · n / Σw)``
    (``X``, ``y`` and an explicit intercept column): every loss is the
    weighted mean squared error ``Σ w_i r_i² / Σ w_i`` and every full-batch
    step is the exact weighted gradient. Samples of weight zero are removed
    before training, in every mode. In (mini-)batch SGD a batch's gradient is
    ``(2/B) Σ_batch (n w_i / Σw) x_i r_i``: an unbiased estimate of the
    weighted gradient, so a heavy sample takes a larger step rather than
    being visited more often. Equal weights train exactly as no weights.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd import GDRegressor
    >>> X = np.array([[1.0], [2.0], [3.0]])
    >>> model = GDRegressor(lr=0.05, epochs=2000).fit(X, [3.0, 5.0, 7.0])
    >>> np.round(model.coef_, 6), round(model.intercept_, 6)
    (array([2.]), 1.0)
    """

    def __init__(
        self,
        *,
        lr: Any = "auto",
        epochs: int = 100,
        batch_size: Optional[int] = None,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        loss: str = "mse",
        delta: float = 1.0,
        average: Any = False,
        decay_intercept: bool = True,
        solver: str = "auto",
        fit_intercept: bool = True,
        shuffle: bool = False,
        random_state: Any = None,
        backend: Optional[str] = None,
        tol: Optional[float] = None,
        n_iter_no_change: int = 5,
        warm_start: bool = False,
        verbose: Any = False,
        progress: bool = False,
        exact: bool = False,
        callback: Optional[Callable[[int, Fit], Any]] = None,
    ) -> None:
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.loss = loss
        self.delta = delta
        self.average = average
        self.decay_intercept = decay_intercept
        self.solver = solver
        self.fit_intercept = fit_intercept
        self.shuffle = shuffle
        self.random_state = random_state
        self.backend = backend
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.verbose = verbose
        self.progress = progress
        self.exact = exact
        self.callback = callback

    # -- scikit-learn protocol ---------------------------------------------

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "GDRegressor":
        """Train for ``epochs`` epochs (fewer with early stopping).

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (n_samples, n_features)
            Any array-like: numpy arrays, pandas DataFrames, torch CPU
            tensors, objects with ``__array__``; or any scipy.sparse matrix
            or array (trained as CSR, never densified). float32 data trains
            as float32.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights (see Notes of the class).

        Returns
        -------
        self
        """
        X, y = self._validate(X, y, reset=True)
        warm = self.warm_start and hasattr(self, "coef_")
        if warm and self.coef_.shape[0] != X.shape[1]:
            raise ValueError(
                f"warm_start: X has {X.shape[1]} features, the fitted model {self.coef_.shape[0]}"
            )
        tol, patience = self._check_early_stopping()
        stopper = None if tol is None else _EarlyStopping(tol, patience)
        self._train(
            X,
            y,
            sample_weight,
            epochs=self.epochs,
            seed=self._seed(),
            warm=warm,
            stopper=stopper,
            bar=bool(self.progress),
        )
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> "GDRegressor":
        """One epoch over the chunk ``(X, y)``, continuing from the current state.

        Parameters, the momentum buffer and the step count carry over between
        calls: per-sample SGD over chunks without shuffling gives bit for bit
        the parameters of one epoch over their concatenation. With
        ``sample_weight`` the weights are normalised within each chunk.
        ``tol`` and ``progress`` do not apply.

        Returns
        -------
        self
        """
        first = not hasattr(self, "coef_")
        X, y = self._validate(X, y, reset=first)
        if self.shuffle:
            if first or not hasattr(self, "_partial_rng"):
                self._partial_rng = np.random.default_rng(self._seed())
            seed: Optional[int] = int(self._partial_rng.integers(2**63 - 1))
        else:
            seed = None
        self._train(
            X,
            y,
            sample_weight,
            epochs=1,
            seed=seed,
            warm=not first,
            stopper=None,
            bar=False,
            partial=True,
        )
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``X @ coef_ + intercept_``.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "coef_")
        X = validate_data(
            self,
            _as_numpy(X),
            reset=False,
            dtype=[np.float64, np.float32],
            order="C",
            accept_sparse=_SPARSE_FORMATS,
        )
        b = float(self.intercept_) if self.fit_intercept else None
        with self._backend():
            return np.asarray(fastgd.forward(X, self.coef_, b)).reshape(X.shape[0])

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        # Dense or scipy.sparse numeric input (SPEC §10); no NaN (SPEC §5); one target.
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = False
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags

    # -- internals -----------------------------------------------------------

    def _validate(self, X: Any, y: Any, reset: bool):
        # float32 stays float32 (SPEC §4); everything else becomes float64.
        # C order is what the kernels read, so F-ordered input (a pandas
        # DataFrame's blocks) is copied here once, and C-ordered input (numpy,
        # torch CPU tensors, __array__ objects) not at all.
        # Sparse X (any scipy.sparse format; others become CSR here) is made
        # canonical CSR once (fastgd/_sparse.py), never dense.
        X, y = validate_data(
            self,
            _as_numpy(X),
            _as_numpy(y),
            reset=reset,
            dtype=[np.float64, np.float32],
            order="C",
            y_numeric=True,
            accept_sparse=_SPARSE_FORMATS,
        )
        if _sparse.is_sparse(X):
            X = _sparse.as_csr(X, "X")[0]
        return X, y

    def _check_early_stopping(self):
        if self.tol is None:
            return None, None
        if isinstance(self.tol, (bool, np.bool_)) or not isinstance(self.tol, numbers.Real):
            raise TypeError(f"tol must be a real number or None, got {type(self.tol).__name__}")
        tol = float(self.tol)
        if not math.isfinite(tol) or tol < 0:
            raise ValueError(f"tol must be finite and >= 0, got {self.tol}")
        patience = self.n_iter_no_change
        if isinstance(patience, (bool, np.bool_)) or not isinstance(patience, numbers.Integral):
            raise TypeError(f"n_iter_no_change must be an integer, got {type(patience).__name__}")
        if patience < 1:
            raise ValueError(f"n_iter_no_change must be >= 1, got {patience}")
        return tol, int(patience)

    def _seed(self) -> Optional[int]:
        rs = self.random_state
        if rs is None or (isinstance(rs, numbers.Integral) and not isinstance(rs, bool)):
            return None if rs is None else int(rs)
        # A RandomState instance: draw the seed from it (sklearn's convention).
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    def _backend(self):
        return contextlib.nullcontext() if self.backend is None else fastgd.use(self.backend)

    def _train(self, X, y, sample_weight, *, epochs, seed, warm, stopper, bar, partial=False) -> None:
        d = X.shape[1]
        weighted = _Weighted.build(X, y, sample_weight, self.fit_intercept)
        if warm:
            w0, b0 = self.coef_, float(self.intercept_) if self.fit_intercept else None
            state = self._optimizer_state
            if state.velocity is not None and len(state.velocity) != d + int(self.fit_intercept):
                state = OptimizerState()  # fit_intercept changed: a different set of parameters
            first_epoch = self.n_iter_
        else:
            w0, b0, state, first_epoch = None, None, OptimizerState(), 0
        if weighted is not None:
            if self.loss != "mse":
                raise ValueError(
                    f"sample_weight needs loss='mse' (got loss={self.loss!r}): the weights "
                    "scale the rows, which gives the weighted mean only for a squared loss"
                )
            if self.fit_intercept and self.decay_intercept is False and self.weight_decay != 0:
                raise ValueError(
                    "decay_intercept=False is not supported with sample_weight and "
                    "weight_decay (the weighted intercept is trained as a feature)"
                )
            X, y = weighted.X, weighted.y
            w0 = weighted.start(w0, b0, d, X.dtype)
            b0 = None
        lr = self.lr
        full_batch = is_full_batch(self.batch_size, X.shape[0])
        if isinstance(lr, str):
            if lr != "auto":
                raise ValueError(f"lr must be a positive number or 'auto', got {lr!r}")
            lr = _auto_lr(X, self.fit_intercept and weighted is None, full_batch, self.weight_decay)
            if partial and warm and isinstance(lr, float) and isinstance(self.lr_, float):
                lr = min(lr, self.lr_)  # partial_fit never takes a larger step than before
        reporter = _Reporter(self, d, weighted is not None, first_epoch, epochs if bar else None, stopper)
        kwargs = dict(
            lr=lr,
            epochs=epochs,
            batch_size=self.batch_size,
            w0=w0,
            b0=b0,
            fit_intercept=self.fit_intercept and weighted is None,
            momentum=self.momentum,
            dampening=self.dampening,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay,
            shuffle=self.shuffle,
            seed=seed,
            exact=self.exact,
            callback=reporter if reporter.active else None,
            loss=self.loss,
            delta=self.delta,
            average=self.average,
            decay_intercept=self.decay_intercept,
            solver=self.solver,
        )
        run_state = OptimizerState(state.velocity, state.steps)
        try:
            with self._backend():
                result = _train(X, y, state=run_state, **kwargs)
        except FitInterrupted as exc:
            # Keep what the completed epochs learned; the momentum buffer of
            # an interrupted epoch is not consistent with them: drop it.
            exc.fit = reporter.user_fit(exc.fit)
            self._store(exc.fit, warm, OptimizerState(), lr)
            raise
        except DivergenceError as exc:
            raise DivergenceError(
                f"{exc} (or standardize X, e.g. with sklearn's StandardScaler)",
                epoch=exc.epoch,
                fit=reporter.user_fit(exc.fit),
            ) from None
        finally:
            reporter.close()
        self._store(reporter.user_fit(result), warm, run_state, lr)

    def _store(self, result: Fit, warm: bool, state: OptimizerState, lr: float) -> None:
        self.lr_ = float(lr) if isinstance(lr, numbers.Real) and not isinstance(lr, bool) else lr
        self.backend_ = result.backend
        self.coef_ = np.asarray(result.w).reshape(-1).copy()
        self.intercept_ = float(result.b) if result.b is not None else 0.0
        losses = np.asarray(result.losses, dtype=np.float64)
        self.loss_curve_: np.ndarray = np.concatenate([self.loss_curve_, losses]) if warm else losses
        self.loss_ = float(result.loss)
        self.n_iter_ = int(self.loss_curve_.shape[0])
        self.t_ = int(state.steps)
        self._optimizer_state = state


def _as_numpy(value: Any) -> Any:
    """Torch tensors as the numpy arrays that share their memory.

    scikit-learn's validation does not read a tensor's dtype, so it would turn
    float32 tensors into float64 copies; pandas objects and plain arrays pass
    through (pandas carries the feature names).
    """
    if type(value).__module__.split(".", 1)[0] == "torch":
        if getattr(value, "requires_grad", False):
            value = value.detach()
        return value.numpy()  # CPU tensors only: torch raises with a clear message otherwise
    return value


class _Weighted:
    """Rows scaled by ``sqrt(w_i · n / Σw)`` (see GDRegressor's Notes)."""

    def __init__(self, X: Any, y: np.ndarray) -> None:
        self.X = X  # an ndarray, or a fastgd._sparse.CSR
        self.y = y

    @staticmethod
    def build(X, y, sample_weight, fit_intercept) -> Optional["_Weighted"]:
        if sample_weight is None:
            return None
        sw = _check_sample_weight(_as_numpy(sample_weight), X, dtype=np.float64, ensure_non_negative=True)
        if np.all(sw == sw[0]) and sw[0] > 0:
            return None  # equal weights: the unweighted mean, trained exactly as such
        keep = sw > 0
        if not keep.any():
            raise ValueError("sample_weight: every weight is zero; nothing to train on")
        sparse_rows = _sparse.is_csr(X)
        if not keep.all():
            rows = np.flatnonzero(keep)
            X, y, sw = (_sparse.take_rows(X, rows) if sparse_rows else X[keep]), y[keep], sw[keep]
        # Only the weights' ratios matter: divided by the largest first, their
        # sum cannot overflow (weights near 1e307 gave sw.sum() = inf, s = 0).
        sw = sw / sw.max()
        s = np.sqrt(sw * (sw.shape[0] / sw.sum()))
        if sparse_rows:
            Xw = _sparse.scale_rows(X, s)
            if fit_intercept:
                Xw = _sparse.with_column(Xw, s)
            return _Weighted(Xw, (y * s).astype(X.dtype))
        columns = [X * s[:, None].astype(X.dtype)]
        if fit_intercept:
            columns.append(s[:, None].astype(X.dtype))
        Xs = np.ascontiguousarray(np.hstack(columns), dtype=X.dtype)
        return _Weighted(Xs, (y * s).astype(X.dtype))

    @staticmethod
    def start(w0, b0, d: int, dtype) -> Optional[np.ndarray]:
        if w0 is None:
            return None
        return np.concatenate([np.asarray(w0, dtype=dtype).reshape(d), [] if b0 is None else [b0]])


class _EarlyStopping:
    """``SGDRegressor``'s rule on fastgd's loss: stop after ``patience``
    consecutive epochs whose loss is not below ``best - tol``."""

    def __init__(self, tol: float, patience: int) -> None:
        self.tol = tol
        self.patience = patience
        self.best = math.inf
        self.count = 0

    def __call__(self, epoch: int, fit_so_far: Fit) -> bool:
        loss = fit_so_far.loss
        self.count = self.count + 1 if loss > self.best - self.tol else 0
        self.best = min(self.best, loss)
        return self.count >= self.patience


class _Reporter:
    """The fit's callback: verbose lines, progress bar, early stopping, the user's callback."""

    def __init__(
        self,
        model: GDRegressor,
        d: int,
        weighted: bool,
        first_epoch: int,
        bar_total: Optional[int],
        stopper: Optional[_EarlyStopping],
    ) -> None:
        self.d = d
        self.weighted = weighted
        self.intercept = bool(model.fit_intercept)
        self.first_epoch = first_epoch
        self.verbose = bool(model.verbose)
        self.user = model.callback
        self.stopper = stopper
        self.bar = None
        if bar_total is not None:
            from tqdm import tqdm  # only when asked for

            self.bar = tqdm(total=bar_total, desc="fastgd", unit="epoch")
        self.active = bool(self.verbose or self.user or self.stopper or self.bar is not None)

    def user_fit(self, fit: Fit) -> Fit:
        """``fit`` in the user's parameters (undo the weighted intercept column)."""
        if not self.weighted or not self.intercept:
            return fit
        w = np.asarray(fit.w).reshape(-1)
        last = np.asarray(fit.w_last).reshape(-1)
        return Fit(
            w[: self.d].copy(),
            float(w[self.d]),
            fit.losses,
            fit.loss,
            fit.epochs_run,
            fit.backend,
            last[: self.d].copy(),
            float(last[self.d]),
        )

    def __call__(self, epoch: int, fit_so_far: Fit) -> bool:
        fit = self.user_fit(fit_so_far)
        if self.verbose:
            w = np.array2string(np.asarray(fit.w), precision=6, threshold=8)
            b = f" b= {fit.b:.6g}" if fit.b is not None else ""
            print(
                f"Epoch: {self.first_epoch + epoch} w= {w}{b} loss {float(fit.losses[-1])!r}", file=sys.stdout
            )
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{fit.loss:.6g}", refresh=False)
        stop = bool(self.stopper(epoch, fit)) if self.stopper is not None else False
        if self.user is not None and self.user(self.first_epoch + epoch, fit):
            stop = True
        return stop

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
