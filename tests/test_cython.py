"""The Cython backend (fastgd_ext): present, equal to numba, thread-count independent,
and the default when numba cannot be imported.

Nothing here skips because the extension is missing: a missing ``.so`` fails
:func:`test_extension_is_built` and every comparison below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import linear_data

import fastgd
from helpers import OPTIMIZERS, assert_bitwise_equal, assert_close

ROOT = Path(__file__).resolve().parents[1]

# Python run in the subprocesses: records every attempt to import the blocked
# modules and makes it fail as if they were not installed.
BLOCKER = textwrap.dedent(
    """
    import importlib.abc, importlib.machinery, sys
    BLOCKED = {blocked!r}
    ATTEMPTS = []

    class _Missing(importlib.abc.Loader):
        def create_module(self, spec):
            raise ModuleNotFoundError(f"No module named {{spec.name!r}}", name=spec.name)

        def exec_module(self, module):
            raise AssertionError("unreachable")

    class _Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in BLOCKED or name.split(".")[0] in BLOCKED:
                ATTEMPTS.append(name)
                return importlib.machinery.ModuleSpec(name, _Missing())
            return None

    sys.meta_path.insert(0, _Blocker())
    """
)

# The fits compared across processes: (name, data, options).
CASES = {
    "gd_1d": ("1d", dict(lr=0.1, epochs=3)),
    "gd_2d_intercept": ("2d", dict(lr=0.1, epochs=3, fit_intercept=True, momentum=0.5)),
    "sgd_2d": ("2d", dict(lr=0.01, epochs=2, batch_size=1, weight_decay=0.01)),
    "sgd_1d_plain": ("1d", dict(lr=0.01, epochs=2, batch_size=1)),  # the affine maps (parallel)
    "sgd_2d_plain": ("2d", dict(lr=0.01, epochs=2, batch_size=1, fit_intercept=True)),  # lane dot products
    "mini_shuffle": (
        "2d",
        dict(
            lr=0.02,
            epochs=2,
            batch_size=7,
            fit_intercept=True,
            shuffle=True,
            seed=5,
            momentum=0.8,
            nesterov=True,
        ),
    ),
}
CASE_CODE = textwrap.dedent(
    """
    import numpy as np
    def case_data(kind, n):
        rng = np.random.default_rng(2024)
        X = rng.standard_normal((n, 3))
        y = X @ np.array([1.5, -2.0, 0.25]) + 0.5 + 0.1 * rng.standard_normal(n)
        return (X[:, 0], 2.0 * X[:, 0] - y * 0.01) if kind == "1d" else (X, y)

    def fit_record(result):
        return [np.asarray(result.w, dtype=np.float64).tobytes().hex(),
                None if result.b is None else float(result.b).hex(),
                np.asarray(result.losses).tobytes().hex(), float(result.loss).hex(),
                result.epochs_run, result.backend]
    """
)
namespace: dict = {}
exec(CASE_CODE, namespace)
case_data, fit_record = namespace["case_data"], namespace["fit_record"]
N_CASE = 3 * 4096 + 123  # several blocks, and a short last one


def _run_python(code: str, tmp_path: Path, env_extra=None) -> dict:
    """Run ``code`` in a fresh interpreter (warnings as errors); it prints one JSON line."""
    script = tmp_path / "child.py"
    script.write_text(code)
    env = dict(os.environ)
    env.pop("FASTGD_BACKEND", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# (a) the extension is part of the tested install ---------------------------------------------


def test_extension_is_built():
    """Fails (never skips) when the compiled fastgd_ext._kernels is missing or stale."""
    from fastgd_ext import _kernels  # an ImportError here means: build it (pip install -e .)

    assert Path(_kernels.__file__).suffix in (".so", ".pyd"), _kernels.__file__
    from fastgd.kernels import cython_kernels, numba_kernels

    assert cython_kernels.unavailable_reason() is None
    # The extension's compile-time constants are the package's (fastgd/kernels/__init__.py).
    import fastgd.kernels as package
    from fastgd_ext import _sparse_kernels

    assert (
        (_kernels.BLOCK, _sparse_kernels.BLOCK)
        == (package.BLOCK, package.BLOCK)
        == (numba_kernels.BLOCK,) * 2
    )
    assert (_kernels.LANES, _kernels.LANES_MIN_FEATURES) == (package.LANES, package.LANES_MIN_FEATURES)
    info = {row.name: row for row in fastgd.backends()}["cython"]
    assert info.available, info.reason
    with fastgd.use("cython"):
        assert fastgd.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], lr=0.1).backend == "cython"


def test_extension_float_types_only():
    from fastgd_ext import _kernels

    X = np.ones((3, 1), dtype=np.int64)
    with pytest.raises(TypeError):
        _kernels.sums(X, X[:, 0], np.ones(1, dtype=np.int64), False, True, True)


# (d) numba's bits in the default mode ---------------------------------------------------


# The grids against the reference (exact mode bit for bit, the default mode within
# 1e-9, float32, the model functions, prediction and exact sums over several blocks,
# divergence, the caller's arrays) are test_backends.py's: its backend fixtures include
# cython. Here what is cython's own: numba's bits in the default mode too.


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", [1, 11])
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("batch_size", [None, 1, 7])
@pytest.mark.parametrize("optimizer", ["plain", "everything"])
def test_default_mode_bitwise_numba(rng, dtype, d, fit_intercept, batch_size, optimizer):
    """Same blocks, lanes and per-block arithmetic: cython gives numba's bits in the default mode
    too (plain per-sample SGD covers the lane dot products and, with one feature, the affine maps),
    except numba's full-batch gradient with 8+ features (close, see below)."""
    info = {row.name: row for row in fastgd.backends()}["numba"]
    if not info.available:
        pytest.skip(f"numba unavailable: {info.reason}")
    n = (
        4 * 4096 + 2 * 4096 + 700 if d == 1 else 2 * 4096 + 700
    )  # d == 1: one group of 4 blocks, then the rest
    X, y = linear_data(rng, n, d, dtype=dtype, scalar=d == 1)
    kw = dict(
        lr=0.05 if batch_size is None else 0.002,
        epochs=2,
        batch_size=batch_size,
        fit_intercept=fit_intercept,
        shuffle=batch_size is not None,
        seed=1,
        **OPTIMIZERS[optimizer],
    )
    with fastgd.use("numba"):
        expected = fastgd.fit(X, y, **kw)
        expected_cost = fastgd.cost(X, y, expected.w, expected.b)
    with fastgd.use("cython"):
        got = fastgd.fit(X, y, **kw)
        got_cost = fastgd.cost(X, y, got.w, got.b)
    assert got.backend == "cython"
    if batch_size is None and d >= 8:
        # numba's full-batch gradient with 8+ features adds the terms of each
        # 8 rows as a pairwise tree before one add per feature
        # (_gradient_block_lanes); cython keeps the row-by-row order. SPEC §4
        # asks each backend to be deterministic and within 1e-9 of the
        # reference in the default mode, not to agree with the other backends
        # bit for bit: here they agree to rounding.
        assert_close(got, expected, rtol=1e-12)
        assert float(got_cost) == pytest.approx(float(expected_cost), rel=1e-12)
        return
    assert_bitwise_equal(got, expected)
    assert float(got_cost).hex() == float(expected_cost).hex()


# (b) numba cannot be imported: cython is the default, with the same results -------------------


def _cases_code() -> str:
    return CASE_CODE + textwrap.dedent(
        f"""
        import fastgd
        CASES = {CASES!r}
        def run_cases():
            out = {{}}
            for name, (kind, kw) in CASES.items():
                X, y = case_data(kind, {N_CASE})
                out[name] = fit_record(fastgd.fit(X, y, **kw))
            return out
        """
    )


def _in_process_cases() -> dict:
    out = {}
    with fastgd.use("cython"):
        for name, (kind, kw) in CASES.items():
            X, y = case_data(kind, N_CASE)
            out[name] = fit_record(fastgd.fit(X, y, **kw))
    return out


def test_default_is_cython_without_numba(tmp_path):
    code = (
        BLOCKER.format(blocked=["numba", "llvmlite"])
        + textwrap.dedent(
            """
        import json
        import fastgd
        after_import = sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "llvmlite"))
        attempts_at_import = list(ATTEMPTS)
        """
        )
        + _cases_code()
        + textwrap.dedent(
            """
        results = run_cases()
        backends = {row.name: [row.available, row.reason] for row in fastgd.backends()}
        print(json.dumps(dict(
            after_import=after_import, attempts_at_import=attempts_at_import,
            after_fit=sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "llvmlite")),
            default=fastgd._registry.current_name(), backends=backends, results=results)))
        """
        )
    )
    child = _run_python(code, tmp_path)
    assert child["after_import"] == [] and child["attempts_at_import"] == []  # import fastgd: no numba
    assert child["after_fit"] == []
    assert child["default"] == "cython"
    assert child["backends"]["numba"][0] is False and "numba" in child["backends"]["numba"][1]
    assert child["backends"]["cython"] == [True, None]
    expected = _in_process_cases()
    for name in CASES:
        assert child["results"][name][-1] == "cython"
        assert child["results"][name] == expected[name], name


def test_missing_extension_reason_and_fallback(tmp_path):
    # Neither numba nor the compiled extension: backends() says why, and fits fall back to numpy.
    code = BLOCKER.format(blocked=["numba", "fastgd_ext._kernels"]) + textwrap.dedent(
        """
        import json, warnings
        import fastgd
        reasons = {row.name: row.reason for row in fastgd.backends()}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fastgd.use("cython"):
                backend = fastgd.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], lr=0.1).backend
        print(json.dumps(dict(reasons=reasons, backend=backend,
                              warnings=[(w.category.__name__, str(w.message)) for w in caught])))
        """
    )
    child = _run_python(code, tmp_path)
    assert "not built" in child["reasons"]["cython"]
    assert "pip install" in child["reasons"]["cython"]
    assert child["backend"] == "numpy"
    assert [name for name, _ in child["warnings"]] == ["BackendFallbackWarning"]
    assert "not built" in child["warnings"][0][1]


# (c) thread-count independence of the parallel (prange) paths ---------------------------------


def test_same_bytes_for_one_and_two_threads(tmp_path):
    code = _cases_code() + textwrap.dedent(
        """
        import json
        from fastgd_ext import _kernels
        results = run_cases()
        X, y = case_data("2d", 5 * 4096 + 1)
        results["predict"] = fastgd.forward(X, np.array([0.1, 0.2, 0.3]), 0.4).tobytes().hex()
        results["cost"] = float(fastgd.cost(X, y, np.array([0.1, 0.2, 0.3]), 0.4)).hex()
        print(json.dumps(dict(threads=_kernels.threads(), openmp=_kernels.OPENMP, results=results)))
        """
    )
    runs = {
        t: _run_python(code, tmp_path, {"OMP_NUM_THREADS": str(t), "FASTGD_BACKEND": "cython"})
        for t in (1, 2)
    }
    assert runs[1]["threads"] == 1
    if runs[2]["openmp"]:
        assert runs[2]["threads"] == 2
    for name in CASES:
        assert runs[1]["results"][name][-1] == "cython"
    assert runs[1]["results"] == runs[2]["results"]
    # ... and the same bytes as this process, whatever its thread count.
    expected = _in_process_cases()
    for name in CASES:
        assert runs[1]["results"][name] == expected[name], name
