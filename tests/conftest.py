"""Shared fixtures: the backend registry as a pytest parameter.

A backend that cannot run here is skipped with the registry's reason, never
silently passed.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastgd

CPU_BACKENDS = ("numba", "cython", "numpy")


def _require(name: str) -> None:
    info = {row.name: row for row in fastgd.backends()}[name]
    if not info.available:
        pytest.skip(f"backend {name} unavailable: {info.reason}")


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request):
    """Each CPU backend selected in turn (skipped with its reason when unavailable)."""
    _require(request.param)
    with fastgd.use(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def linear_data(rng, n, d, dtype=np.float64, intercept=0.5, noise=0.1, scalar=False):
    """A small well-conditioned regression problem."""
    X = rng.standard_normal((n, d))
    coef = rng.standard_normal(d)
    y = X @ coef + intercept + noise * rng.standard_normal(n)
    if scalar:
        X = X[:, 0]
        y = 2.0 * X + intercept + noise * rng.standard_normal(n)
    return X.astype(dtype), y.astype(dtype)
