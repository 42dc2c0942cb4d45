"""The result of a training run, shared by the reference and every backend."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np


class Fit:
    """Parameters and loss history of one training run.

    Attributes
    ----------
    w : float or ndarray of shape (d,)
        Weights: a float when ``X`` was 1-D (the tutorial's model).
    b : float or None
        Intercept, or None when the model has none.
    losses : ndarray of shape (epochs_run,)
        Cost over all samples with the parameters at the start of each epoch.
    loss : float
        Cost over all samples after the last epoch.
    epochs_run : int
        Number of epochs completed.
    backend : str
        Name of the backend that computed it.
    w_last, b_last : float or ndarray, and float or None
        The last iterate. Equal to ``w``/``b`` unless ``average`` was asked
        for: then ``w``/``b`` are the running mean of the iterates (SPEC §7),
        ``losses`` are the iterates' costs and ``loss`` is the cost of ``w``/``b``.

    Examples
    --------
    >>> import fastgd
    >>> result = fastgd.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], lr=0.1, epochs=50)
    >>> round(result.w, 6), result.epochs_run
    (2.0, 50)
    """

    __slots__ = ("w", "b", "losses", "loss", "epochs_run", "backend", "w_last", "b_last")

    def __init__(
        self,
        w: Union[float, np.ndarray],
        b: Optional[float],
        losses: np.ndarray,
        loss: float,
        epochs_run: int,
        backend: str,
        w_last: Any = None,
        b_last: Optional[float] = None,
    ) -> None:
        self.w = w
        self.b = b
        self.losses = losses
        self.loss = loss
        self.epochs_run = epochs_run
        self.backend = backend
        same = w_last is None
        self.w_last = (w if isinstance(w, float) else np.array(w, copy=True)) if same else w_last
        self.b_last = b if same else b_last

    @classmethod
    def from_params(
        cls,
        params: Any,
        *,
        n_features: int,
        scalar_model: bool,
        fit_intercept: bool,
        losses: Any,
        loss: float,
        epochs_run: int,
        backend: str,
        last: Any = None,
    ) -> "Fit":
        """Build a Fit from a flat parameter vector ``[w_0 .. w_{d-1}, (b)]``
        (and ``last``, the last iterate's, when ``params`` is an average)."""

        def split(flat: Any) -> tuple:
            if scalar_model:
                w: Union[float, np.ndarray] = float(flat[0])
            else:
                w = np.array(flat[:n_features], copy=True)
            return w, (float(flat[n_features]) if fit_intercept else None)

        w, b = split(params)
        w_last, b_last = split(last) if last is not None else (None, None)
        return cls(
            w,
            b,
            np.array(losses, dtype=np.float64, copy=True),
            float(loss),
            int(epochs_run),
            backend,
            w_last,
            b_last,
        )

    def predict(self, X: Any) -> Union[float, np.ndarray]:
        """Predictions ``X·w + b`` for one sample or an array of samples."""
        from fastgd import forward

        return forward(X, self.w, self.b)

    def to_dict(self) -> dict:
        """The fields as a plain dict (arrays stay arrays)."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __getstate__(self) -> dict:
        return self.to_dict()

    def __setstate__(self, state: dict) -> None:
        for name in self.__slots__:
            setattr(self, name, state.get(name))
        if state.get("w_last") is None:  # pickled before averaging existed
            self.w_last, self.b_last = self.w, self.b

    def __repr__(self) -> str:
        w = (
            self.w
            if isinstance(self.w, float)
            else np.array2string(np.asarray(self.w), threshold=8, precision=6)
        )
        return (
            f"Fit(w={w}, b={self.b}, loss={self.loss:.6g}, "
            f"epochs_run={self.epochs_run}, backend={self.backend!r})"
        )
