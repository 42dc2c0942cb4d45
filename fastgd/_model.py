"""The model functions forward, loss, cost and gradient on the selected backend (internal)."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from fastgd import _checks, _registry, _sparse


def kernel_module_for(X: Any, backend: Optional[str] = None) -> Any:
    """The kernel module that runs on ``X``: the backend's sparse kernels for sparse X."""
    kernel_module = _registry.kernel_module(backend)
    return _sparse.kernel_module_for(kernel_module) if _sparse.is_csr(X) else kernel_module


def _shape_output(values: np.ndarray, model: _checks.Model) -> Union[float, np.ndarray]:
    return float(values[0]) if model.one_sample else values


def _predictions(model: _checks.Model) -> np.ndarray:
    out = np.empty(model.X.shape[0], dtype=model.X.dtype)
    kernel_module_for(model.X).predict(model.X, model.params, model.fit_intercept, out)
    return out


def forward(x: Any, w: Any, b: Optional[float] = None) -> Union[float, np.ndarray]:
    model = _checks.model_inputs(x, w, b)
    return _shape_output(_predictions(model), model)


def loss(
    x: Any, y: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> Union[float, np.ndarray]:
    kind, delta = _checks.loss_options(loss, delta)
    model = _checks.model_inputs(x, w, b)
    targets = _checks.targets(y, model)
    residuals = _predictions(model) - targets
    if kind == 0:
        values = residuals * residuals
    elif kind == 1:
        size = np.abs(residuals)
        half = residuals.dtype.type(0.5)
        limit = residuals.dtype.type(delta)
        values = np.where(size < limit, half * (residuals * residuals), limit * (size - half * limit))
    else:
        values = np.abs(residuals)
    return _shape_output(values, model)


def _model_sums(xs: Any, ys: Any, w: Any, b: Any, want_gradient: bool, loss: str, delta: float):
    kind, delta = _checks.loss_options(loss, delta)
    model = _checks.model_inputs(xs, w, b, x_name="xs")
    targets = _checks.targets(ys, model, "ys", "xs")
    loss_spec = np.array([kind, delta, 0.5], dtype=model.X.dtype)
    totals = kernel_module_for(model.X).sums(
        model.X, targets, model.params, model.fit_intercept, False, want_gradient, loss_spec
    )
    return model, totals / model.X.shape[0]


def cost(
    xs: Any, ys: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> float:
    return float(_model_sums(xs, ys, w, b, False, loss, delta)[1][0])


def gradient(
    xs: Any, ys: Any, w: Any, b: Optional[float] = None, *, loss: str = "mse", delta: float = 1.0
) -> Any:
    model, means = _model_sums(xs, ys, w, b, True, loss, delta)
    d = model.X.shape[1]
    dw = float(means[1]) if model.scalar_model else means[1 : 1 + d].astype(model.X.dtype)
    return (dw, float(means[1 + d])) if model.fit_intercept else dw
