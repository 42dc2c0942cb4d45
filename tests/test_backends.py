"""Every CPU backend against fastgd.reference (SPEC §4).

exact=True: float64 results bit for bit. Default mode: within 1e-9 relative
(float64); float32 trains as float32 and is compared with a float32 tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CPU_BACKENDS, linear_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastgd
import fastgd.reference as reference
from helpers import OPTIMIZERS, assert_bitwise_equal, assert_close


def _data(rng, shape, dtype):
    return linear_data(rng, 41, 3, dtype=dtype, scalar=shape == "1d")


@pytest.mark.parametrize("shape", ["1d", "2d"])
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("batch_size", [None, 1, 7])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("shuffle", [False, True])
def test_exact_is_bitwise_reference(cpu_backend, rng, shape, fit_intercept, batch_size, optimizer, shuffle):
    X, y = _data(rng, shape, np.float64)
    kw = dict(
        lr=0.02,
        epochs=4,
        batch_size=batch_size,
        fit_intercept=fit_intercept,
        shuffle=shuffle,
        seed=7,
        **OPTIMIZERS[optimizer],
    )
    expected = reference.fit(X, y, **kw)
    got = fastgd.fit(X, y, exact=True, **kw)
    assert got.backend == cpu_backend
    assert_bitwise_equal(got, expected)


@pytest.mark.parametrize("shape", ["1d", "2d"])
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("batch_size", [None, 1, 7])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("shuffle", [False, True])
def test_float32_trains_as_float32(cpu_backend, rng, shape, fit_intercept, batch_size, optimizer, shuffle):
    X, y = _data(rng, shape, np.float32)
    kw = dict(
        lr=0.02,
        epochs=4,
        batch_size=batch_size,
        fit_intercept=fit_intercept,
        shuffle=shuffle,
        seed=3,
        **OPTIMIZERS[optimizer],
    )
    expected = reference.fit(X, y, **kw)
    got = fastgd.fit(X, y, **kw)
    if shape == "2d":
        assert got.w.dtype == np.float32
    assert_close(got, expected, rtol=2e-4, atol=2e-5)


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
def test_any_array_like(cpu_backend, rng, tmp_path, layout):
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
    assert_bitwise_equal(fastgd.fit(X_in, y, exact=True, **kw), reference.fit(X, y, **kw))


def test_functions_match_reference(cpu_backend, rng):
    X, y = linear_data(rng, 25, 3)
    w = rng.standard_normal(3)
    for b in (None, 0.25):
        np.testing.assert_array_equal(fastgd.forward(X, w, b), reference.forward(X, w, b))
        assert fastgd.forward(X[0], w, b) == reference.forward(X[0], w, b)
        np.testing.assert_array_equal(fastgd.loss(X, y, w, b), reference.loss(X, y, w, b))
        assert fastgd.cost(X, y, w, b) == reference.cost(X, y, w, b)
        got, expected = fastgd.gradient(X, y, w, b), reference.gradient(X, y, w, b)
        if b is None:
            np.testing.assert_array_equal(got, expected)
        else:
            np.testing.assert_array_equal(got[0], expected[0])
            assert got[1] == expected[1]
    xs = X[:, 0]
    assert fastgd.gradient(xs, y, 1.5) == reference.gradient(xs, y, 1.5)
    assert isinstance(fastgd.gradient(xs, y, 1.5), float)
    assert isinstance(fastgd.cost(xs, y, 1.5), float)


def test_epochs_zero_and_callback_stop(cpu_backend, rng):
    X, y = linear_data(rng, 20, 2)
    for kw in (dict(epochs=0), dict(epochs=50, callback=lambda e, f: e == 2)):
        got, expected = fastgd.sgd(X, y, exact=True, **kw), reference.sgd(X, y, **kw)
        assert_bitwise_equal(got, expected)
    assert fastgd.sgd(X, y, epochs=50, callback=lambda e, f: e == 2).epochs_run == 3


def test_callback_sees_each_epoch(cpu_backend, rng):
    X, y = linear_data(rng, 20, 2)
    seen, expected_seen = [], []
    fastgd.minibatch_sgd(
        X,
        y,
        batch_size=3,
        epochs=5,
        exact=True,
        callback=lambda e, f: seen.append((e, f.w.copy(), f.loss, f.epochs_run)),
    )
    reference.minibatch_sgd(
        X,
        y,
        batch_size=3,
        epochs=5,
        callback=lambda e, f: expected_seen.append((e, f.w.copy(), f.loss, f.epochs_run)),
    )
    assert len(seen) == len(expected_seen) == 5
    for (e, w, loss, run), (e2, w2, loss2, run2) in zip(seen, expected_seen):
        assert (e, loss, run) == (e2, loss2, run2) and w.tobytes() == w2.tobytes()


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
