"""Comparisons of Fit results shared by the test modules."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np

# torch.optim.SGD settings that every backend is compared over.
OPTIMIZERS = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.8, "nesterov": True},
    "dampening": {"momentum": 0.5, "dampening": 0.3},
    "weight_decay": {"weight_decay": 0.05},
    "everything": {"momentum": 0.7, "dampening": 0.2, "weight_decay": 0.01},
}


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


def interrupt_after(seconds: float) -> threading.Timer:
    """SIGINT to this process after ``seconds`` (a started timer: ``cancel()`` it).

    A test runner started in the background by a shell without job control
    (``bash .ci/run &``) inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler: the signal would vanish and the fit run on.
    So the test installs Python's own handler first.
    """
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer
