"""The per-fit plan and the backend handle (fastgd/_backend.py)."""

from __future__ import annotations

import ast
import inspect
import pathlib

import numpy as np
import pytest

import fastgd
from fastgd import _checks, reference
from fastgd._backend import AFFINE, FULL_BATCH, MINI_BATCH, PER_SAMPLE, Handle, Plan

PACKAGE = pathlib.Path(fastgd.__file__).parent
DEFAULTS = dict(lr=0.1, epochs=1, batch_size=1)  # per-sample steps; fit's defaults otherwise


@pytest.mark.parametrize(
    "d, fit_intercept, options, path",
    [
        (1, False, {}, AFFINE),
        (1, False, {"exact": True}, PER_SAMPLE),
        (1, True, {}, PER_SAMPLE),
        (3, False, {}, PER_SAMPLE),
        (1, False, {"weight_decay": 0.1}, MINI_BATCH),
        (1, False, {"momentum": 0.5}, MINI_BATCH),
        (1, False, {"loss": "huber"}, MINI_BATCH),
        (1, False, {"average": True}, MINI_BATCH),
        (1, False, {"batch_size": 4}, MINI_BATCH),
        (1, False, {"batch_size": None}, FULL_BATCH),
        (3, True, {"batch_size": 50}, FULL_BATCH),  # a batch of every sample is full-batch GD
    ],
)
def test_plan_path(d, fit_intercept, options, path):
    X = np.ones((50, d))
    plan = Plan.of(X, fit_intercept, _checks.options(**{**DEFAULTS, **options}))
    assert plan.path == path
    assert plan.full_batch == (path == FULL_BATCH)
    assert plan.batch_size == (50 if path == FULL_BATCH else (options.get("batch_size") or 1))


def test_handle_runs_what_the_driver_runs(cpu_backend, rng):
    """One epoch through a handle by hand equals fastgd.fit's first epoch (and the reference)."""
    from fastgd import _registry
    from fastgd._state import Training

    X = rng.standard_normal((300, 4))
    y = X @ np.array([1.0, -1.0, 0.5, 2.0])
    opts = _checks.options(**{**DEFAULTS, "batch_size": 7, "momentum": 0.5})
    problem = _checks.Problem(X, y, np.zeros(5), False, True)
    state = Training(problem, opts, None)
    handle = Handle(_registry.kernel_module(), X, y, Plan.of(X, True, opts), state.loss_spec)
    costs = np.full(1, np.nan)
    assert handle.run_epochs(state, np.empty(0, dtype=np.int64), costs, opts.rates(0, 1)) == 1
    kw = dict(lr=0.1, epochs=1, batch_size=7, momentum=0.5, fit_intercept=True)
    fit = fastgd.fit(X, y, **kw)
    assert handle.name == fit.backend == cpu_backend
    np.testing.assert_array_equal(state.params[:4], fit.w)
    assert costs[0] == fit.loss
    np.testing.assert_allclose(state.params[:4], reference.fit(X, y, **kw).w, rtol=1e-9)


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_kernels_take_the_path_they_are_handed(backend, rng):
    """The compiled kernels run the plan's path, not one of their own: one-feature
    plain SGD handed PER_SAMPLE steps sample after sample, handed AFFINE it
    composes the maps (other bits); both agree with the reference."""
    from fastgd import _registry
    from fastgd._state import Training

    kernel_module, reason = _registry.load(backend)
    if kernel_module is None:
        pytest.skip(f"backend {backend} unavailable: {reason}")
    n = 3 * kernel_module.BLOCK  # the maps pay from two blocks
    X = rng.standard_normal((n, 1))
    y = 2.0 * X[:, 0] + 0.1 * rng.standard_normal(n)
    opts = _checks.options(lr=1e-3, epochs=1, batch_size=1)
    problem = _checks.Problem(X, y, np.zeros(1), False, False)
    finals = {}
    for path in (AFFINE, PER_SAMPLE):
        plan = Plan.of(X, False, opts)._replace(path=path)
        state = Training(problem, opts, None)
        handle = Handle(kernel_module, X, y, plan, state.loss_spec)
        assert (
            handle.run_epochs(state, np.empty(0, dtype=np.int64), np.full(1, np.nan), opts.rates(0, 1)) == 1
        )
        finals[path] = state.params[0]
    kw = dict(lr=1e-3, epochs=1, batch_size=1, fit_intercept=False)
    with fastgd.use(backend):
        assert finals[AFFINE] == fastgd.fit(X, y, **kw).w[0]  # fit plans AFFINE here
    assert finals[PER_SAMPLE] != finals[AFFINE]  # a chain of steps, not the composed maps
    chain = reference.fit(X, y, **kw).w[0]
    assert finals[PER_SAMPLE] == pytest.approx(chain, rel=1e-9)
    assert finals[AFFINE] == pytest.approx(chain, rel=1e-9)


@pytest.mark.parametrize("extension", ["fastgd_ext._kernels", "fastgd_ext._sparse_kernels"])
def test_cython_path_codes_are_the_kernels(extension):
    """The Cython extensions repeat the path codes of fastgd/kernels/__init__.py."""
    import fastgd.kernels

    module = pytest.importorskip(extension)
    assert module.PATHS == {name: getattr(fastgd.kernels, name) for name in module.PATHS}
    assert len(set(module.PATHS.values())) == len(module.PATHS)


def test_option_defaults_are_fits():
    """_checks.options, which the bench and the tests call directly, defaults as fastgd.fit does."""
    from fastgd import _checks

    fit = inspect.signature(fastgd.fit).parameters
    checked = inspect.signature(_checks.options).parameters
    assert set(checked) <= set(fit)
    assert {name: checked[name].default for name in checked} == {name: fit[name].default for name in checked}


def _imports(module: pathlib.Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_driver_does_not_import_its_callers():
    """_engine is imported by _dispatch and _dask, never the other way round (no cycle)."""
    engine = _imports(PACKAGE / "_engine.py")
    assert not {"fastgd._dask", "fastgd._dispatch"} & engine
    assert "fastgd._engine" in _imports(PACKAGE / "_dask.py")


def test_only_the_handles_call_the_kernel_interface():
    """The argument lists of run_epochs and run_steps are written in fastgd/_backend.py,
    nowhere else in the Python layer (the dask workers' chunk calls use a Handle too)."""
    callers = set()
    for path in PACKAGE.rglob("*.py"):
        if "kernels" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run_epochs", "run_steps")
                and len(node.args) > 4
            ):
                callers.add(path.name)
    assert callers == {"_backend.py"}
