"""Shared fixtures: the backend registry as a pytest parameter.

A backend that cannot run here is skipped with the registry's reason, never
silently passed.

cuda runs in this process on numba's CUDA simulator: numba reads
NUMBA_ENABLE_CUDASIM when numba.cuda is first imported, so it is set here,
before any test module imports numba, with 8 threads per block and at most 4
blocks (several blocks, and grid-stride loops, for a few dozen samples).
``FASTGD_TEST_GPU=1`` leaves the environment alone, so cuda runs on a real GPU
(and is skipped with the registry's reason where there is none).
"""

from __future__ import annotations

import contextlib
import os
import sys

if os.environ.get("FASTGD_TEST_GPU") != "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    os.environ.setdefault("FASTGD_CUDA_THREADS", "8")
    os.environ.setdefault("FASTGD_CUDA_MAX_BLOCKS", "4")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fastgd  # noqa: E402

CPU_BACKENDS = ("numba", "cython", "numpy")
BACKENDS = CPU_BACKENDS + ("cuda",)


def _require(name: str) -> None:
    info = {row.name: row for row in fastgd.backends()}[name]
    if not info.available:
        pytest.skip(f"backend {name} unavailable: {info.reason}")


@contextlib.contextmanager
def fast_simulator():
    """The CUDA simulator polls its threads while holding the GIL; a short switch
    interval hands the GIL over in microseconds instead of 5 ms."""
    from fastgd.kernels import cuda_kernels

    if not cuda_kernels.simulated():
        yield
        return
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request):
    """Each CPU backend selected in turn (skipped with its reason when unavailable)."""
    _require(request.param)
    with fastgd.use(request.param):
        yield request.param


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each backend selected in turn: the CPU ones and cuda (on the simulator unless
    FASTGD_TEST_GPU=1), skipped with the registry's reason when unavailable.

    Parametrized indirectly it also takes ``"dask"``: the default CPU backend, with
    the test handing dask arrays to a LocalCluster (the ``client`` fixture, started here).
    """
    if request.param == "dask":
        pytest.importorskip("dask.array")
        request.getfixturevalue("client")
        yield "dask"
        return
    _require(request.param)
    with fastgd.use(request.param):
        if request.param == "cuda":
            with fast_simulator():
                yield "cuda"
        else:
            yield request.param


@pytest.fixture(scope="module")
def client():
    """A real distributed.LocalCluster: 2 worker processes, 1 thread each, on 127.0.0.1."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # any free port: runs may overlap
        env={"NUMBA_NUM_THREADS": "1"},
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


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
