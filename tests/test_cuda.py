"""The cuda backend's own tests, on a GPU or on numba's CUDA simulator (conftest.py says
where: without either here, ``test_cuda_cases_on_the_simulator`` runs every cuda case of
the suite in a subprocess with the simulator, 8 threads per block, at most 4 blocks).

cuda against fastgd.reference over the options grid, the tutorial functions and the
callbacks are tests/test_backends.py's (its ``backend`` fixture includes cuda). Here
what only cuda has: the column-chunked reduction of wide models, determinism with
``exact=True`` accepted, divergence, the options it refuses, one device copy per fit,
and the registry in a process without the simulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ONLY_CUDA, cuda_runs_here

import fastgd
from fastgd import reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "FASTGD_BACKEND")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@pytest.mark.skipif(cuda_runs_here(), reason="cuda runs in this process: its cases are collected here")
def test_cuda_cases_on_the_simulator():
    """Every cuda case of the suite (conftest.py: parametrised with backend="cuda", or taking
    the cuda fixture), run on numba's CUDA simulator in a subprocess; its output on failure."""
    env = _child_env(
        NUMBA_ENABLE_CUDASIM="1", FASTGD_CUDA_THREADS="8", FASTGD_CUDA_MAX_BLOCKS="4", **{ONLY_CUDA: "1"}
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", os.path.join(ROOT, "tests"), "-q", "-p", "no:cacheprovider"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-3000:]


def test_registry_without_device():
    """Without the simulator, cuda is available only with a GPU, says why not, and is never the default."""
    script = textwrap.dedent(
        """
        import fastgd
        from fastgd import _registry
        from numba import cuda
        info = {row.name: row for row in fastgd.backends()}["cuda"]
        assert _registry.current_name() != "cuda", _registry.current_name()
        if cuda.is_available():
            assert info.available and info.reason is None, info
        else:
            assert not info.available, info
            assert "no CUDA GPU" in info.reason and "NUMBA_ENABLE_CUDASIM" in info.reason, info.reason
        print("ok", info)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=_child_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _data(n, d, dtype, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + 0.5 + 0.1 * rng.standard_normal(n)
    if d == 1:
        X = X[:, 0]
    return X.astype(dtype), y.astype(dtype)


def _close(got, want, rtol):
    np.testing.assert_allclose(
        np.asarray(got.w, dtype=float), np.asarray(want.w, dtype=float), rtol=rtol, atol=rtol * 1e-3
    )
    if want.b is None:
        assert got.b is None
    else:
        np.testing.assert_allclose(got.b, want.b, rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(got.losses, want.losses, rtol=rtol)
    np.testing.assert_allclose(got.loss, want.loss, rtol=rtol)
    assert got.epochs_run == want.epochs_run
    assert got.backend == "cuda"


def test_wide_model_reduces_in_column_chunks(cuda):
    """d + 2 columns > MAX_WIDTH: the reduction runs one column chunk per blockIdx.y."""
    from fastgd.kernels import cuda_kernels

    d = cuda_kernels.MAX_WIDTH + 1
    X, y = _data(200, d, np.float64)
    kw = dict(lr=0.05, epochs=2, fit_intercept=True, momentum=0.5)
    _close(fastgd.gd(X, y, **kw), reference.gd(X, y, **kw), 1e-9)
    _close(
        fastgd.minibatch_sgd(X, y, batch_size=32, **kw),
        reference.minibatch_sgd(X, y, batch_size=32, **kw),
        1e-9,
    )
    w = np.linspace(-1, 1, d)
    dw, db = fastgd.gradient(X, y, w, 0.25)
    rdw, rdb = reference.gradient(X, y, w, 0.25)
    np.testing.assert_allclose(dw, rdw, rtol=1e-9)
    np.testing.assert_allclose(db, rdb, rtol=1e-9)


@pytest.mark.parametrize("batch_size", [None, 16, 1])
def test_deterministic(cuda, batch_size):
    X, y = _data(90 if batch_size == 1 else 300, 2, np.float64, seed=11)
    kw = dict(lr=0.02, epochs=2, batch_size=batch_size, fit_intercept=True, momentum=0.5)
    first, second = fastgd.fit(X, y, **kw), fastgd.fit(X, y, **kw)
    assert np.array_equal(first.w, second.w) and first.b == second.b
    assert np.array_equal(first.losses, second.losses)
    # exact=True is accepted (its bit-for-bit promise is the CPU backends'); still deterministic.
    exact = fastgd.fit(X, y, exact=True, **kw)
    np.testing.assert_allclose(exact.w, first.w, rtol=1e-12)


# The simulator runs kernels as numpy scalar code, which warns as the loss overflows.
@pytest.mark.filterwarnings("ignore:.*overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:.*invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("batch_size", [None, 8, 1])
def test_divergence(cuda, batch_size):
    X, y = _data(120, 1, np.float64)
    X = X * 1000
    kw = dict(lr=1000.0, epochs=40, batch_size=batch_size)
    with pytest.raises(fastgd.DivergenceError) as got:
        fastgd.fit(X, y, **kw)
    with pytest.raises(fastgd.DivergenceError) as want:
        reference.fit(X, y, **kw)
    assert want.value.epoch < 40
    assert got.value.epoch == want.value.epoch
    assert got.value.fit.epochs_run == want.value.fit.epochs_run
    np.testing.assert_allclose(got.value.fit.w, want.value.fit.w, rtol=1e-6)


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(loss="huber"), "loss"),
        (dict(loss="l1", batch_size=4), "loss"),
        (dict(average=True, batch_size=1), "average"),
        (dict(weight_decay=0.1, decay_intercept=False, fit_intercept=True), "decay_intercept"),
    ],
    ids=["huber", "l1", "average", "decay_intercept"],
)
def test_fit_refuses_what_cuda_does_not_run(cuda, kw, name):
    """SPEC §7: on cuda an unsupported combination is a ValueError naming the option."""
    X, y = _data(40, 2, np.float64)
    with pytest.raises(ValueError, match=name):
        fastgd.fit(X, y, lr=0.05, epochs=2, **kw)
    # ... and what it runs, it runs: a schedule, and weight decay on every parameter.
    done = fastgd.fit(X, y, lr=[0.05, 0.02], epochs=2, weight_decay=0.1, fit_intercept=True)
    assert done.backend == "cuda" and done.epochs_run == 2


def test_device_copies_follow_the_fit(cuda):
    """Data goes to the device once per fit, held by the fit's handle and freed with it."""
    import gc
    import weakref

    from fastgd.kernels import cuda_kernels

    X, y = _data(100, 2, np.float64)
    copies = []
    real = cuda_kernels._DeviceData.__init__

    def counting(self, *args):
        copies.append(weakref.ref(self))
        real(self, *args)

    cuda_kernels._DeviceData.__init__ = counting
    try:
        fastgd.minibatch_sgd(X, y, batch_size=25, lr=0.1, epochs=4, shuffle=True, seed=2)
        fastgd.gd(X, y, lr=0.1, epochs=2, callback=lambda e, f: False)
    finally:
        cuda_kernels._DeviceData.__init__ = real
    gc.collect()
    assert len(copies) == 2
    assert [copy() for copy in copies] == [None, None]
