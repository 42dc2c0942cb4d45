"""Every backend against fastgd.reference (SPEC §4): one fixture, one options grid.

The ``backend`` fixture (conftest.py) runs numba, cython, numpy and cuda (on a GPU,
or on numba's CUDA simulator in a subprocess: conftest.py), each skipped with the
registry's reason when it cannot run here; the options grid adds ``dask`` (dask arrays on a
LocalCluster, the default CPU backend on the workers). What each promises:

- numba, cython, numpy: ``exact=True`` float64 results bit for bit; the default
  mode within 1e-9 relative.
- cuda: the default mode within 1e-9 relative (float64); ``exact=True`` is
  accepted, but its bit-for-bit promise is the CPU backends'. The simulator is
  slow, so cuda runs a pairwise subset of the grid (below).
- dask: the default mode within 1e-9 relative, where the case applies: not with
  ``shuffle=True`` (dask data is visited block-shuffled, as memory-mapped data
  is, SPEC §3: tests/test_dask.py); ``exact=True`` is refused there.

float32 trains as float32 and is compared with a float32 tolerance.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple, Optional

import numpy as np
import pytest
from conftest import BACKENDS, CPU_BACKENDS, linear_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastgd
import fastgd.reference as reference
from helpers import OPTIMIZERS, assert_bitwise_equal, assert_close

F64 = dict(rtol=1e-9, atol=1e-12)  # SPEC §4, default mode
F32 = dict(rtol=2e-4, atol=2e-5)


def _data(rng, shape, dtype):
    return linear_data(rng, 41, 3, dtype=dtype, scalar=shape == "1d")


class Case(NamedTuple):
    shape: str
    fit_intercept: bool
    batch_size: Optional[int]
    optimizer: str
    shuffle: bool

    def options(self, seed):
        return dict(
            lr=0.02,
            epochs=4,
            batch_size=self.batch_size,
            fit_intercept=self.fit_intercept,
            shuffle=self.shuffle,
            seed=seed,
            **OPTIMIZERS[self.optimizer],
        )

    @property
    def id(self):
        batch = "gd" if self.batch_size is None else f"b{self.batch_size}"
        return "-".join(
            [self.shape, "icpt" if self.fit_intercept else "noicpt", batch, self.optimizer]
            + (["shuffle"] if self.shuffle else [])
        )


BATCH_SIZES = (None, 1, 7)
OPTIMIZER_NAMES = tuple(sorted(OPTIMIZERS))
# shape, fit_intercept, shuffle: the axes cuda's subset cycles through.
OTHERS = list(itertools.product(("1d", "2d"), (False, True), (False, True)))
CASES = [
    Case(shape, fit_intercept, batch_size, optimizer, shuffle)
    for shape, fit_intercept, shuffle in OTHERS
    for batch_size in BATCH_SIZES
    for optimizer in OPTIMIZER_NAMES
]


def _on_cuda(case):
    """Every batch size with every optimizer once, the other three axes picked by
    (3 * batch + optimizer) mod 8: any two values of any two axes meet in some case.
    Plus plain per-sample SGD of the scalar model without intercept: the affine-map scan."""
    b, o = BATCH_SIZES.index(case.batch_size), OPTIMIZER_NAMES.index(case.optimizer)
    pairwise = (case.shape, case.fit_intercept, case.shuffle) == OTHERS[(3 * b + o) % len(OTHERS)]
    affine = (
        case.shape == "1d" and case.batch_size == 1 and case.optimizer == "plain" and not case.fit_intercept
    )
    return pairwise or affine


RUNS = {
    "numba": lambda case: True,
    "cython": lambda case: True,
    "numpy": lambda case: True,
    "cuda": _on_cuda,
    "dask": lambda case: not case.shuffle,
}


def grid(backends):
    """(backend, case) for every case each backend runs; ``backend`` is the conftest fixture."""
    return pytest.mark.parametrize(
        "backend, case",
        [
            pytest.param(name, case, id=f"{name}-{case.id}")
            for case in CASES
            for name in backends
            if RUNS[name](case)
        ],
        indirect=["backend"],
    )


def _check_backend(got, backend):
    if backend == "dask":
        assert got.backend in CPU_BACKENDS
    else:
        assert got.backend == backend


def _assert_exact(backend, got, expected):
    """An exact=True fit: bit for bit on the CPU backends; cuda within the default mode's tolerance."""
    _check_backend(got, backend)
    if backend in CPU_BACKENDS:
        assert_bitwise_equal(got, expected)
    else:
        assert_close(got, expected, **F64)


@grid(BACKENDS + ("dask",))
def test_float64_against_the_reference(backend, case, rng):
    X, y = _data(rng, case.shape, np.float64)
    kw = case.options(seed=7)
    expected = reference.fit(X, y, **kw)
    if backend == "dask":
        import dask.array as da

        # Three chunks of whole batches (14 rows, then 13).
        got = fastgd.fit(da.from_array(X, chunks=14), da.from_array(y, chunks=14), **kw)
    else:
        got = fastgd.fit(X, y, **kw)
    _check_backend(got, backend)
    assert_close(got, expected, **F64)
    if backend in CPU_BACKENDS:
        assert_bitwise_equal(fastgd.fit(X, y, exact=True, **kw), expected)


@grid(BACKENDS)
def test_float32_trains_as_float32(backend, case, rng):
    X, y = _data(rng, case.shape, np.float32)
    kw = case.options(seed=3)
    expected = reference.fit(X, y, **kw)
    got = fastgd.fit(X, y, **kw)
    _check_backend(got, backend)
    if case.shape == "2d":
        assert got.w.dtype == np.float32
    assert_close(got, expected, **F32)


@pytest.mark.parametrize("batch_size", [None, 1, 64])
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("d", [1, 5, 13])  # 13: eight-lane sums and a tail of 5
def test_default_mode_blocked_within_tolerance(cpu_backend, rng, batch_size, fit_intercept, d):
    # More samples than one block, so the blocked (parallel) reductions run.
    X, y = linear_data(rng, 10_000, d, scalar=d == 1)
    kw = dict(
        lr=0.01 if batch_size else 0.2,
        epochs=2,
        batch_size=batch_size,
        fit_intercept=fit_intercept,
        momentum=0.5,
    )
    expected = reference.fit(X, y, **kw)
    got = fastgd.fit(X, y, **kw)
    assert_close(got, expected, rtol=1e-9, atol=1e-12)
    assert_bitwise_equal(fastgd.fit(X, y, exact=True, **kw), expected)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_float32_blocked_gradient_with_lanes(cpu_backend, rng, fit_intercept):
    # Full batch, 8+ features, several blocks and a tail of rows: the lane kernels in float32.
    X, y = linear_data(rng, 10_005, 13, dtype=np.float32)
    kw = dict(lr=0.05, epochs=3, fit_intercept=fit_intercept, momentum=0.5)
    expected = reference.fit(X, y, **kw)
    got = fastgd.fit(X, y, **kw)
    assert got.w.dtype == np.float32
    assert_close(got, expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("layout", ["F", "strided", "list", "int", "readonly", "memmap"])
def test_any_array_like(backend, rng, tmp_path, layout):
    X, y = linear_data(rng, 30, 2)
    if layout == "F":
        X_in = np.asfortranarray(X)
    elif layout == "strided":
        wide = np.zeros((30, 4))
        wide[:, ::2] = X
        X_in = wide[:, ::2]
    elif layout == "list":
        X_in = X.tolist()
    elif layout == "int":
        X = np.round(X * 3)
        X_in = X.astype(np.int32)
    elif layout == "readonly":
        X_in = X.copy()
        X_in.flags.writeable = False
    else:
        np.save(tmp_path / "X.npy", X)
        X_in = np.load(tmp_path / "X.npy", mmap_mode="r")
    kw = dict(lr=0.05, epochs=3, batch_size=4, fit_intercept=True)
    _assert_exact(backend, fastgd.fit(X_in, y, exact=True, **kw), reference.fit(X, y, **kw))


def _flat(value):
    """A value of forward/loss/cost/gradient (scalar, array or a (dw, db) tuple) as float64[:]."""
    parts = value if isinstance(value, tuple) else (value,)
    return np.hstack([np.atleast_1d(np.asarray(part, dtype=np.float64)) for part in parts])


def _assert_same_values(backend, got, expected):
    """Bit for bit on the CPU backends (no sum here is longer than a block); cuda within 1e-9."""
    if backend in CPU_BACKENDS:
        assert _flat(got).tobytes() == _flat(expected).tobytes(), (got, expected)
    else:
        np.testing.assert_allclose(_flat(got), _flat(expected), **F64)


def test_functions_match_reference(backend, rng):
    X, y = linear_data(rng, 37, 4)
    w = rng.standard_normal(4)
    for b in (None, 0.25):
        for got, expected in [
            (fastgd.forward(X, w, b), reference.forward(X, w, b)),
            (fastgd.forward(X[0], w, b), reference.forward(X[0], w, b)),
            (fastgd.loss(X, y, w, b), reference.loss(X, y, w, b)),
            (fastgd.cost(X, y, w, b), reference.cost(X, y, w, b)),
            (fastgd.gradient(X, y, w, b), reference.gradient(X, y, w, b)),
        ]:
            _assert_same_values(backend, got, expected)
        assert isinstance(fastgd.gradient(X, y, w, b), tuple) == (b is not None)
    assert fastgd.forward(3.0, 2.0, 0.5) == reference.forward(3.0, 2.0, 0.5)
    xs, ys = fastgd.datasets.tutorial()
    for w0 in (1.0, 1.5):
        _assert_same_values(backend, fastgd.gradient(xs, ys, w0), reference.gradient(xs, ys, w0))
        _assert_same_values(backend, fastgd.cost(xs, ys, w0), reference.cost(xs, ys, w0))
    assert isinstance(fastgd.gradient(xs, ys, 1.5), float)
    assert isinstance(fastgd.cost(xs, ys, 1.5), float)
    tutorial = dict(w0=1.0, lr=0.1, epochs=5)
    _assert_exact(backend, fastgd.gd(xs, ys, exact=True, **tutorial), reference.gd(xs, ys, **tutorial))


def test_predict_over_several_blocks(cpu_backend, rng):
    X, _ = linear_data(rng, 3 * 4096 + 5, 3)  # above a block: the parallel loops
    w = rng.standard_normal(3)
    assert fastgd.forward(X, w, -1.5).tobytes() == reference.forward(X, w, -1.5).tobytes()


def test_epochs_zero_and_callback_stop(backend, rng):
    X, y = linear_data(rng, 20, 2)
    for kw in (dict(epochs=0), dict(epochs=50, callback=lambda e, f: e == 2)):
        _assert_exact(backend, fastgd.sgd(X, y, exact=True, **kw), reference.sgd(X, y, **kw))
    assert fastgd.sgd(X, y, epochs=50, callback=lambda e, f: e == 2).epochs_run == 3


def test_callback_sees_each_epoch(backend, rng):
    X, y = linear_data(rng, 20, 2)
    seen, expected_seen = [], []
    fastgd.minibatch_sgd(
        X,
        y,
        batch_size=3,
        epochs=5,
        exact=True,
        shuffle=True,
        seed=5,
        callback=lambda e, f: seen.append((e, f.w.copy(), f.loss, f.epochs_run)),
    )
    reference.minibatch_sgd(
        X,
        y,
        batch_size=3,
        epochs=5,
        shuffle=True,
        seed=5,
        callback=lambda e, f: expected_seen.append((e, f.w.copy(), f.loss, f.epochs_run)),
    )
    assert len(seen) == len(expected_seen) == 5
    for (e, w, loss, run), (e2, w2, loss2, run2) in zip(seen, expected_seen):
        assert (e, run) == (e2, run2)
        _assert_same_values(backend, (w, loss), (w2, loss2))


def test_divergence_matches_reference(cpu_backend):
    x, y = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]
    for method in ("gd", "sgd"):
        with pytest.raises(fastgd.DivergenceError) as expected:
            getattr(reference, method)(x, y, lr=2.0, epochs=2000)
        with pytest.raises(fastgd.DivergenceError) as got:
            getattr(fastgd, method)(x, y, lr=2.0, epochs=2000, exact=True)
        assert got.value.epoch == expected.value.epoch
        assert_bitwise_equal(got.value.fit, expected.value.fit)
        assert np.isfinite(got.value.fit.w) and np.isfinite(got.value.fit.loss)


@st.composite
def problems(draw):
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 4))
    scalar = d == 1 and draw(st.booleans())
    values = st.floats(-8, 8, allow_nan=False, allow_infinity=False, width=64)
    X = np.array(draw(st.lists(values, min_size=n * d, max_size=n * d))).reshape(n, d)
    y = np.array(draw(st.lists(values, min_size=n, max_size=n)))
    scale = 1.0 + float((X * X).sum(axis=1).max())
    kw = dict(
        lr=draw(st.floats(0.001, 0.4)) / scale,
        epochs=draw(st.integers(0, 6)),
        batch_size=draw(st.one_of(st.none(), st.integers(1, n + 2))),
        fit_intercept=draw(st.booleans()),
        momentum=draw(st.sampled_from([0.0, 0.5, 0.9])),
        weight_decay=draw(st.sampled_from([0.0, 1e-3, 0.1])),
        shuffle=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32)),
    )
    if kw["momentum"] and draw(st.booleans()):
        kw["nesterov"] = True
    elif kw["momentum"]:
        kw["dampening"] = draw(st.sampled_from([0.0, 0.1, 1.0]))
    return (X[:, 0] if scalar else X), y, kw


def _outcome(module, X, y, kw, **extra):
    try:
        return module.fit(X, y, **kw, **extra), None
    except fastgd.DivergenceError as exc:
        return exc.fit, exc.epoch


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_hypothesis_exact_bitwise(backend, problem):
    if not {b.name: b for b in fastgd.backends()}[backend].available:
        pytest.skip(f"backend {backend} unavailable")
    X, y, kw = problem
    expected, expected_epoch = _outcome(reference, X, y, kw)
    with fastgd.use(backend):
        got, got_epoch = _outcome(fastgd, X, y, kw, exact=True)
        default, _ = _outcome(fastgd, X, y, kw)
    assert got_epoch == expected_epoch
    assert_bitwise_equal(got, expected)
    if expected_epoch is None:
        assert_close(default, expected, rtol=1e-9, atol=1e-12)


def test_caller_arrays_untouched(backend, rng):
    """SPEC §5: no function modifies the caller's arrays."""
    X, y = linear_data(rng, 50, 2)
    w0 = np.array([0.5, -0.5])
    copies = X.copy(), y.copy(), w0.copy()
    fastgd.sgd(X, y, w0=w0, lr=0.01, epochs=2, shuffle=True, seed=0, momentum=0.5)
    fastgd.gd(X, y, w0=w0, lr=0.01, epochs=2, fit_intercept=True)
    fastgd.gradient(X, y, w0, 0.5)
    for before, after in zip(copies, (X, y, w0)):
        assert before.tobytes() == after.tobytes()
