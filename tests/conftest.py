"""Shared fixtures: the backend registry as a pytest parameter.

A backend that cannot run here is skipped with the registry's reason, never
silently passed.

cuda: where this process can run it (a GPU, or NUMBA_ENABLE_CUDASIM=1 set by
the caller) its cases run here with the rest. Elsewhere (CI) they are not
collected in this process; ``tests/test_cuda.py::test_cuda_cases_on_the_simulator``
runs them, and only them, in a pytest subprocess with NUMBA_ENABLE_CUDASIM=1
(8 threads per block, at most 4 blocks) and fails with its output if one
fails. numba reads that variable when numba.cuda is first imported, so the
simulator cannot be switched on for one test, and switching it on for the
whole run would make cuda available to every test, unlike the machine.
A cuda case is one parametrised with ``backend="cuda"`` or one that takes the
``cuda`` fixture.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

import numpy as np
import pytest

import fastgd

# Set in the subprocess that runs the cuda cases: everything else is deselected there.
ONLY_CUDA = "FASTGD_TEST_ONLY_CUDA"

CPU_BACKENDS = ("numba", "cython", "numpy")
BACKENDS = CPU_BACKENDS + ("cuda",)


def _require(name: str) -> None:
    info = {row.name: row for row in fastgd.backends()}[name]
    if not info.available:
        pytest.skip(f"backend {name} unavailable: {info.reason}")


@functools.lru_cache(maxsize=None)
def cuda_runs_here() -> bool:
    """Whether this process can run the cuda backend (a GPU, or the simulator)."""
    return {row.name: row for row in fastgd.backends()}["cuda"].available


def _is_cuda_case(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("backend") == "cuda":
        return True
    return "cuda" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config, items):
    """Keep the cuda cases where cuda runs; only them in the simulator's subprocess."""
    only_cuda = os.environ.get(ONLY_CUDA) == "1"
    cuda_cases = {id(item) for item in items if _is_cuda_case(item)}
    # Probing cuda imports numba.cuda: only when a cuda case was collected.
    if not only_cuda and (not cuda_cases or cuda_runs_here()):
        return
    keep = [item for item in items if (id(item) in cuda_cases) == only_cuda]
    dropped = [item for item in items if (id(item) in cuda_cases) != only_cuda]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


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


@pytest.fixture
def cuda():
    """cuda selected (skipped with the registry's reason when it cannot run here)."""
    _require("cuda")
    with fastgd.use("cuda"), fast_simulator():
        yield


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each backend selected in turn: the CPU ones and cuda (see above), skipped
    with the registry's reason when unavailable.

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
