"""Cython kernels over CSR rows: fastgd_ext/_sparse_kernels.pyx behind the kernel
interface of fastgd/kernels/__init__.py (``X`` a :class:`fastgd._sparse.CSR`).
Mirrors fastgd/kernels/numba_sparse.py: the same bits in both modes.

Python glue only: the arithmetic is in the extension. When it is not built
(or was built from an older source), :func:`unavailable_reason` says so.
"""

from __future__ import annotations

from typing import Optional

from fastgd.kernels import BLOCK as PACKAGE_BLOCK

NAME = "cython"

try:
    from fastgd_ext import _sparse_kernels
except ImportError as exc:  # the .so is missing or cannot load here
    _sparse_kernels = None
    _IMPORT_ERROR: Optional[str] = f"{type(exc).__name__}: {exc}"
else:
    _IMPORT_ERROR = None

BLOCK = PACKAGE_BLOCK if _sparse_kernels is None else _sparse_kernels.BLOCK
# run_epochs and run_steps run without the GIL and stop when stop[0] is set
# (read every BLOCK samples): the engine may run long calls in its helper
# thread, so that Ctrl-C stops one long epoch too.
RELEASES_GIL = True


def thread_setup():
    """Nothing to hand to the helper thread (OpenMP reads its own settings)."""
    return lambda: None

_BUILD_HINT = "pip install -e . (or python setup.py build_ext --inplace) builds it"


def sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec):
    """``[Σ ℓ(r), Σ ℓ'(r)·x_j, (Σ ℓ'(r))]`` over all rows of the CSR ``X``, float64 (see fastgd.kernels)."""
    return _sparse_kernels.sums(X.data, X.indices, X.indptr, y, params, X.n_features, fit_intercept, exact,
                                want_gradient, loss_spec)


def predict(X, params, fit_intercept, out):
    """``out[i] = X[i]·w (+ b)``, with the dense sum's sign of a zero (see fastgd.kernels)."""
    _sparse_kernels.predict(X.data, X.indices, X.indptr, params, X.n_features, fit_intercept, out)


def run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov, fit_intercept, exact,
               path, batch_size, order, costs, stop, rates, loss_spec, decayed, average, averaged):
    """Run ``len(costs)`` epochs in place; the epochs with a finite cost (see fastgd.kernels)."""
    return _sparse_kernels.run_epochs(X.data, X.indices, X.indptr, y, params, grad, velocity, steps, previous,
                                      hyper, nesterov, fit_intercept, exact, path, batch_size, order, costs,
                                      stop, rates, loss_spec, decayed, average, averaged, X.n_features,
                                      _sparse_kernels.SCALE_FLOOR[params.dtype])


def run_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept, exact, path, batch_size, order,
              stop, loss_spec, decayed, average, averaged):
    """The SGD steps of one pass over ``order``; False when ``stop`` ended it (see fastgd.kernels)."""
    return _sparse_kernels.run_steps(X.data, X.indices, X.indptr, y, params, grad, velocity, steps, hyper,
                                     nesterov, fit_intercept, exact, batch_size, order, stop, loss_spec, decayed,
                                     average, averaged, X.n_features, _sparse_kernels.SCALE_FLOOR[params.dtype])


def unavailable_reason() -> Optional[str]:
    """None when the extension is built; else why not."""
    if _sparse_kernels is None:
        return f"the extension fastgd_ext._sparse_kernels is not built ({_IMPORT_ERROR}); {_BUILD_HINT}"
    missing = [name for name in ("sums", "predict", "run_epochs", "run_steps") if not hasattr(_sparse_kernels, name)]
    if missing:
        return (f"the extension fastgd_ext._sparse_kernels is out of date (no {', '.join(missing)}); "
                f"rebuild it: {_BUILD_HINT}")
    return None
