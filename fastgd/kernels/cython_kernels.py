"""Cython kernels: fastgd_ext/_kernels.pyx behind the kernel interface of
fastgd/kernels/__init__.py, so the Python layer does not know which backend
runs. Mirrors fastgd/kernels/numba_kernels.py (same fixed ``BLOCK``, so the
default mode gives numba's bits too).

Python glue only: the arithmetic is in the extension. When the extension is
not built (or was built from an older source), :func:`unavailable_reason`
says so and the registry falls back to the next backend.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from fastgd.kernels import BLOCK as PACKAGE_BLOCK

NAME = "cython"

try:
    from fastgd_ext import _kernels
except ImportError as exc:  # the .so is missing or cannot load here
    _kernels = None
    _IMPORT_ERROR: Optional[str] = f"{type(exc).__name__}: {exc}"
else:
    _IMPORT_ERROR = None

BLOCK = PACKAGE_BLOCK if _kernels is None else _kernels.BLOCK

try:
    from fastgd_ext._sgd_regressor import sgd_regressor_epochs  # noqa: F401  (SGDRegressor's kernel)
except ImportError:  # an extension built before it existed: SGDRegressor says so by name
    pass

_BUILD_HINT = "pip install -e . (or python setup.py build_ext --inplace) builds it"


def sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec):
    """``[Σ r², Σ 2·x_j·r, (Σ 2·r)]`` over all samples, float64 (see fastgd.kernels)."""
    return _kernels.sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec)


def predict(X, params, fit_intercept, out):
    """``out[i] = X[i]·w (+ b)`` (see fastgd.kernels)."""
    _kernels.predict(X, params, fit_intercept, out)


def run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept, exact,
               path, batch_size, order, costs, stop, rates, loss_spec, decayed, average, averaged):
    """Run ``len(costs)`` epochs in place; returns the epochs with a finite cost (see fastgd.kernels)."""
    return _kernels.run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov,
                               fit_intercept, exact, path, batch_size, order, costs, stop, rates,
                               loss_spec, decayed, average, averaged)


def run_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact, path, batch_size, order,
              stop, loss_spec, decayed, average, averaged):
    """The SGD steps of one pass over ``order``; True (see fastgd.kernels)."""
    return _kernels.run_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact,
                              path, batch_size, order, stop, loss_spec, decayed, average, averaged)


def unavailable_reason() -> Optional[str]:
    """None when the extension is built and runs here; else why not."""
    if _kernels is None:
        return f"the extension fastgd_ext._kernels is not built ({_IMPORT_ERROR}); {_BUILD_HINT}"
    missing = [name for name in ("sums", "predict", "run_epochs", "run_steps") if not hasattr(_kernels, name)]
    if missing:
        return (f"the extension fastgd_ext._kernels is out of date (no {', '.join(missing)}); "
                f"rebuild it: {_BUILD_HINT}")
    try:
        X = np.ones((2, 1))
        _kernels.sums(X, X[:, 0], np.ones(1), False, True, True, np.array([0.0, 1.0, 0.5]))
    except Exception as exc:  # a broken build
        return f"the extension fastgd_ext._kernels fails to run: {type(exc).__name__}: {exc}"
    return None
