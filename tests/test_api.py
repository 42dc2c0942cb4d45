"""The public surface: same names and signatures as the reference, backend
selection, a light import, and a numba cache that cannot be written."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastgd
import fastgd.reference as reference

PUBLIC = ["forward", "loss", "cost", "gradient", "fit", "gd", "sgd", "minibatch_sgd"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k != "FASTGD_BACKEND"}
    environment = dict(inherited, PYTHONPATH=ROOT, **env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=600,
    )


@pytest.mark.parametrize("name", PUBLIC)
def test_same_signature_as_reference(name):
    assert inspect.signature(getattr(fastgd, name)) == inspect.signature(getattr(reference, name))
    assert getattr(fastgd, name).__doc__ and "Examples" in getattr(fastgd, name).__doc__


def test_fit_signature_is_the_specs():
    params = inspect.signature(fastgd.fit).parameters
    assert list(params) == [
        "X",
        "y",
        "lr",
        "epochs",
        "batch_size",
        "w0",
        "b0",
        "fit_intercept",
        "momentum",
        "dampening",
        "nesterov",
        "weight_decay",
        "shuffle",
        "seed",
        "exact",
        "callback",
        "loss",
        "delta",
        "average",
        "decay_intercept",
        "solver",  # SPEC §7
    ]
    defaults = {k: v.default for k, v in params.items() if v.default is not inspect.Parameter.empty}
    assert defaults == dict(
        lr=0.01,
        epochs=100,
        batch_size=None,
        w0=None,
        b0=None,
        fit_intercept=False,
        momentum=0.0,
        dampening=0.0,
        nesterov=False,
        weight_decay=0.0,
        shuffle=False,
        seed=None,
        exact=False,
        callback=None,
        loss="mse",
        delta=1.0,
        average=False,
        decay_intercept=True,
        solver="auto",
    )


def test_backends_listing():
    rows = fastgd.backends()
    assert [row.name for row in rows] == ["numba", "cython", "numpy", "cuda"]
    for row in rows:
        assert row["name"] == row.name and isinstance(row.available, bool)
        assert (row.reason is None) == row.available
        if not row.available:
            assert isinstance(row.reason, str) and row.reason


def test_use_is_global_and_a_context_manager(monkeypatch):
    monkeypatch.delenv("FASTGD_BACKEND", raising=False)
    default = fastgd.gd([1.0, 2.0], [2.0, 4.0], epochs=1).backend
    with fastgd.use("numpy"):
        assert fastgd.gd([1.0, 2.0], [2.0, 4.0], epochs=1).backend == "numpy"
    assert fastgd.gd([1.0, 2.0], [2.0, 4.0], epochs=1).backend == default
    fastgd.use("numpy")
    try:
        assert fastgd.sgd([1.0, 2.0], [2.0, 4.0], epochs=1).backend == "numpy"
    finally:
        fastgd.use(None)
    assert fastgd.gd([1.0, 2.0], [2.0, 4.0], epochs=1).backend == default


def test_unknown_backend_is_an_error():
    with pytest.raises(ValueError, match="backend"):
        fastgd.use("fortran")


def test_environment_variable_selects_backend(monkeypatch):
    monkeypatch.setenv("FASTGD_BACKEND", "numpy")
    assert fastgd.gd([1.0, 2.0], [2.0, 4.0], epochs=1).backend == "numpy"


def test_fit_result_is_readable():
    result = fastgd.gd(np.ones((4, 2)), np.ones(4), epochs=2, fit_intercept=True)
    as_dict = result.to_dict()
    assert set(as_dict) == {"w", "b", "losses", "loss", "epochs_run", "backend", "w_last", "b_last"}
    assert "Fit(" in repr(result) and "epochs_run=2" in repr(result)
    np.testing.assert_array_equal(result.predict(np.ones((3, 2))), np.ones((3, 2)) @ result.w + result.b)


def test_import_is_light_and_lazy():
    run = run_python("""
        import sys, time
        start = time.perf_counter()
        import fastgd
        elapsed = time.perf_counter() - start
        heavy = [m for m in ("numba", "dask", "tqdm", "matplotlib", "torch", "sklearn") if m in sys.modules]
        print(heavy)
        print(elapsed)
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "[]"


def test_default_backend_is_numba_when_importable(monkeypatch):
    monkeypatch.delenv("FASTGD_BACKEND", raising=False)
    if not fastgd.backends()[0].available:
        pytest.skip(f"numba unavailable: {fastgd.backends()[0].reason}")
    assert fastgd.gd([1.0, 2.0], [2.0, 4.0], epochs=1).backend == "numba"


def test_unwritable_numba_cache_still_works():
    pytest.importorskip("numba")
    # As root every folder is writable, so make numba's cache locators fail the way
    # a read-only install does: ensure_cache_path raises.
    run = run_python(
        """
        import warnings
        from numba.core import caching
        def refuse(self):
            raise OSError("read-only file system")
        pending = [caching._CacheLocator]
        while pending:
            cls = pending.pop()
            cls.ensure_cache_path = refuse
            pending.extend(cls.__subclasses__())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import fastgd
            result = fastgd.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], w0=1.0, lr=0.1, epochs=100)
        print(result.backend, result.w)
        print(any("cache" in str(w.message) for w in caught))
    """,
        NUMBA_CACHE_DIR="/proc/fastgd-cannot-write-here",
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["numba", "2.0", "True"]


@pytest.mark.parametrize("method, d", [("gd", 3), ("gd", 9), ("sgd", 3), ("minibatch", 3)])
def test_default_mode_is_thread_count_independent(method, d):
    pytest.importorskip("numba")
    code = f"""
        import numpy as np, fastgd
        rng = np.random.default_rng(0)
        X = rng.standard_normal((50_003, {d})); y = X @ np.linspace(-2.0, 1.0, {d}) + 0.3
        kw = dict(gd=dict(lr=0.1), sgd=dict(batch_size=1, lr=0.001), minibatch=dict(batch_size=64, lr=0.01))["{method}"]
        r = fastgd.fit(X, y, epochs=3, fit_intercept=True, momentum=0.5, **kw)
        print((np.append(r.w, [r.b, r.loss]).tobytes() + r.losses.tobytes()).hex())
    """
    outputs = {threads: run_python(code, NUMBA_NUM_THREADS=threads) for threads in ("1", "2")}
    for run in outputs.values():
        assert run.returncode == 0, run.stderr
    assert outputs["1"].stdout == outputs["2"].stdout
