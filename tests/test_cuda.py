"""The cuda backend against fastgd.reference: on a real GPU, or on numba's CUDA simulator.

numba reads NUMBA_ENABLE_CUDASIM when numba.cuda is first imported, so the
simulated run cannot share a process with the rest of the suite. This module
therefore works in two modes:

- Where a device can run the kernels (NUMBA_ENABLE_CUDASIM=1 is set, or a CUDA
  GPU is present outside CI), the grid below runs in this process.
- Otherwise ``test_simulated_grid`` runs this same file under pytest in a
  subprocess with NUMBA_ENABLE_CUDASIM=1 and FASTGD_CUDA_THREADS=8 (several
  blocks for a few hundred samples) and fails with its output if it fails.
  The grid is not collected in this mode rather than skipped: it runs, in the
  subprocess.

Run the grid directly: ``NUMBA_ENABLE_CUDASIM=1 FASTGD_CUDA_THREADS=8 pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastgd
from fastgd import reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def _gpu_present() -> bool:
    if os.environ.get("CI"):
        return False  # CI runs the simulated grid, never a GPU it happens to find
    try:
        from numba import cuda
    except ImportError:
        return False
    try:
        return bool(cuda.is_available())
    except Exception:
        return False


ON_DEVICE = SIMULATED or _gpu_present()


def _child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "FASTGD_BACKEND")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


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


if not ON_DEVICE:

    def test_simulated_grid():
        """The grid below, on the CUDA simulator with 8 threads per block and at most 4 blocks."""
        env = _child_env(NUMBA_ENABLE_CUDASIM="1", FASTGD_CUDA_THREADS="8", FASTGD_CUDA_MAX_BLOCKS="4")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                os.path.abspath(__file__),
                "-q",
                "-p",
                "no:cacheprovider",
                "-W",
                "error",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
        assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-3000:]


if ON_DEVICE:

    @pytest.fixture(scope="module", autouse=True)
    def _fast_simulator():
        """The simulator polls its threads while holding the GIL; a short switch
        interval hands the GIL over in microseconds instead of 5 ms."""
        if not SIMULATED:
            yield
            return
        before = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        yield
        sys.setswitchinterval(before)

    @pytest.fixture(autouse=True)
    def _cuda_selected():
        with fastgd.use("cuda"):
            yield

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

    KINDS = {"gd": None, "minibatch": 16, "sgd": 1}
    OPTIONS = {
        "plain": {},
        "momentum": {"momentum": 0.9},
        "dampening_wd": {"momentum": 0.9, "dampening": 0.3, "weight_decay": 0.05},
        "nesterov_intercept": {"momentum": 0.9, "nesterov": True, "fit_intercept": True},
        "wd_intercept": {"weight_decay": 0.1, "fit_intercept": True},
        "shuffle": {"shuffle": True, "seed": 7, "fit_intercept": True},
        "wd_shuffle": {"weight_decay": 0.2, "shuffle": True, "seed": 1},
    }
    LR = {"gd": 0.1, "minibatch": 0.05, "sgd": 0.01}
    TOL = {np.float64: 1e-9, np.float32: 2e-4}

    CASES = [(kind, option, 3, np.float64) for kind in KINDS for option in OPTIONS if option != "wd_shuffle"]
    # One feature: the tutorial's fast reduction, and the affine-map scan for per-sample SGD.
    CASES += [
        (kind, option, 1, np.float64) for kind in KINDS for option in ("plain", "dampening_wd", "shuffle")
    ]
    CASES += [("sgd", "wd_shuffle", 1, np.float64)]
    CASES += [
        (kind, option, d, np.float32)
        for kind in KINDS
        for option in ("plain", "nesterov_intercept")
        for d in (1, 3)
    ]

    @pytest.mark.parametrize(
        "kind, option, d, dtype",
        CASES,
        ids=[f"{k}-{o}-d{d}-{np.dtype(t).name}" for k, o, d, t in CASES],
    )
    def test_matches_reference(kind, option, d, dtype):
        # Per-sample SGD off the affine-scan path walks n dependent steps in one block: fewer
        # samples keep the simulator quick.
        affine = d == 1 and not {"momentum", "fit_intercept", "weight_decay"} & set(OPTIONS[option])
        n = 90 if kind == "sgd" and not affine else 300
        X, y = _data(n, d, dtype)
        kw = dict(OPTIONS[option], lr=LR[kind], epochs=3, batch_size=KINDS[kind])
        _close(fastgd.fit(X, y, **kw), reference.fit(X, y, **kw), TOL[dtype])

    def test_wide_model_reduces_in_column_chunks():
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

    def test_tutorial_functions():
        X, y = _data(257, 2, np.float64)
        w = np.array([0.3, -0.7])
        assert fastgd.cost(X, y, w, 0.1) == pytest.approx(reference.cost(X, y, w, 0.1), rel=1e-9)
        np.testing.assert_allclose(fastgd.forward(X, w, 0.1), reference.forward(X, w, 0.1), rtol=1e-9)
        xs, ys = fastgd.datasets.tutorial()
        assert fastgd.gradient(xs, ys, 1.0) == pytest.approx(reference.gradient(xs, ys, 1.0), rel=1e-9)
        tutorial = fastgd.gd(xs, ys, w0=1.0, lr=0.1, epochs=5)
        np.testing.assert_allclose(
            tutorial.losses, reference.gd(xs, ys, w0=1.0, lr=0.1, epochs=5).losses, rtol=1e-9
        )

    @pytest.mark.parametrize("batch_size", [None, 16, 1])
    def test_deterministic(batch_size):
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
    def test_divergence(batch_size):
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

    def test_callback_stops_and_sees_each_epoch():
        X, y = _data(200, 2, np.float64)
        seen = []

        def callback(epoch, fit):
            seen.append((epoch, fit.loss))
            return epoch == 2

        kw = dict(lr=0.05, epochs=10, batch_size=32, shuffle=True, seed=5)
        got = fastgd.fit(X, y, callback=callback, **kw)
        want = reference.fit(X, y, epochs=3, **{k: v for k, v in kw.items() if k != "epochs"})
        assert [e for e, _ in seen] == [0, 1, 2]
        _close(got, want, 1e-9)

    def test_device_copies_follow_the_fit():
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
