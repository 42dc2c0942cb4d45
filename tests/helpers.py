"""Comparisons of Fit results shared by the test modules."""

from __future__ import annotations

import numpy as np


def fit_arrays(result):
    """w, b, losses and loss of a Fit as float64 arrays."""
    return (
        np.atleast_1d(np.asarray(result.w, dtype=np.float64)),
        np.atleast_1d(np.asarray(np.nan if result.b is None else result.b, dtype=np.float64)),
        np.asarray(result.losses, dtype=np.float64),
        np.atleast_1d(np.float64(result.loss)),
    )


def assert_bitwise_equal(got, expected):
    """Every float of the two fits has the same bits (signed zeros included)."""
    assert got.epochs_run == expected.epochs_run
    assert type(got.w) is type(expected.w) or np.ndim(expected.w) == 1
    assert (got.b is None) == (expected.b is None)
    for name, a, b in zip(("w", "b", "losses", "loss"), fit_arrays(got), fit_arrays(expected)):
        assert a.shape == b.shape, name
        assert a.tobytes() == b.tobytes(), f"{name}: {a!r} != {b!r}"


def assert_close(got, expected, rtol, atol=0.0):
    assert got.epochs_run == expected.epochs_run
    assert (got.b is None) == (expected.b is None)
    for name, a, b in zip(("w", "b", "losses", "loss"), fit_arrays(got), fit_arrays(expected)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)
