"""SPEC §8: solver="gram", full-batch GD from one read of the data."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd
import fastgd.reference as reference
from fastgd import _gram, schedules
from helpers import assert_close


def _noisy(n=3_000, d=3, seed=0, dtype="float64", out=None):
    # Noisy data: the cost stays far above the rounding of the quadratic form.
    X, y, _ = fastgd.datasets.make_linear(n, d, intercept=0.5, noise=0.5, seed=seed, dtype=dtype, out=out)
    return X, y


CASES = {
    "plain": dict(),
    "intercept-momentum": dict(fit_intercept=True, momentum=0.9),
    "nesterov-decay": dict(fit_intercept=True, momentum=0.8, nesterov=True, weight_decay=0.05),
    "bias-group-cosine": dict(
        fit_intercept=True, weight_decay=0.1, decay_intercept=False, lr=schedules.cosine(0.1, T_max=15)
    ),
    "average-from-3": dict(fit_intercept=True, average=3, dampening=0.2, momentum=0.5),
    "sequence": dict(lr=[0.2] * 5 + [0.05] * 10),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("shape", ["scalar", "features"])
def test_gram_equals_the_reference(case, shape, cpu_backend):
    X, y = _noisy(d=1 if shape == "scalar" else 4)
    if shape == "scalar":
        X = X[:, 0] if X.ndim == 2 else X
    kw = {"lr": 0.1, "epochs": 15, **CASES[case]}
    expected = reference.fit(X, y, **kw)
    got = fastgd.fit(X, y, solver="gram", **kw)
    assert got.backend == cpu_backend
    assert_close(got, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.w_last, expected.w_last, rtol=1e-9)
    again = fastgd.fit(X, y, solver="gram", **kw)
    assert np.array_equal(again.w, got.w) and np.array_equal(again.losses, got.losses)


def test_gram_float32_trains_to_float32(cpu_backend):
    X, y = _noisy(d=3, dtype="float32")
    expected = reference.fit(X, y, lr=0.1, epochs=10, fit_intercept=True)
    got = fastgd.fit(X, y, lr=0.1, epochs=10, fit_intercept=True, solver="gram")
    assert got.w.dtype == np.float32
    assert_close(got, expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize(
    "d, dtype, fit_intercept",
    [
        (2, "float64", True),  # one vector of 8, from a zero-padded buffer
        (8, "float64", False),  # one vector, read in place
        (19, "float32", True),  # three vectors (tiles of 4 rows), widened into a buffer
        (40, "float64", True),  # five vectors, read in place: a full and a partial group
    ],
)
def test_gram_statistics_are_the_same_for_any_thread_count(d, dtype, fit_intercept):
    numba = pytest.importorskip("numba")
    from fastgd.kernels import numba_kernels

    # Above PARALLEL_MIN values (the blocks run in parallel); an odd count of rows.
    X, y = _noisy(n=(1 << 18) // d + 4097, d=d, dtype=dtype)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = numba_kernels.gram(X, y, fit_intercept)
        numba.set_num_threads(max(2, before))
        many = numba_kernels.gram(X, y, fit_intercept)
    finally:
        numba.set_num_threads(before)
    assert one.tobytes() == many.tobytes()
    expected = _gram.numpy_statistics(X.astype(np.float64), y.astype(np.float64), fit_intercept)
    np.testing.assert_allclose(
        np.triu(one), np.triu(expected), rtol=1e-12, atol=1e-12 * np.abs(expected).max()
    )


def test_memory_mapped_data_is_read_once(tmp_path, monkeypatch):
    X, y = _noisy(n=20_000, d=2, out=tmp_path)
    kernels = fastgd._registry.kernel_module()
    reads = []
    real = _gram.statistics
    monkeypatch.setattr(_gram, "statistics", lambda *args: reads.append(1) or real(*args))

    def streamed(*args, **kwargs):
        raise AssertionError("solver='gram' streamed the data")

    monkeypatch.setattr(kernels, "sums", streamed)
    monkeypatch.setattr(kernels, "run_epochs", streamed)
    fit = fastgd.gd(X, y, lr=0.1, epochs=50, solver="gram", fit_intercept=True)
    assert reads == [1] and fit.epochs_run == 50


def test_gram_errors_name_the_solver():
    X, y = _noisy(n=50)
    for kw in (dict(exact=True), dict(batch_size=8), dict(loss="huber")):
        with pytest.raises(ValueError, match="solver"):
            fastgd.fit(X, y, solver="gram", **kw)


def test_gram_divergence_keeps_the_last_finite_state():
    X, y = _noisy(n=200)
    with pytest.raises(fastgd.DivergenceError) as info:
        fastgd.gd(X, y, lr=50.0, epochs=5_000, solver="gram")
    fit = info.value.fit
    assert fit.epochs_run == info.value.epoch and np.isfinite(fit.loss) and np.isfinite(fit.w).all()


def test_gram_callback_and_interrupt():
    X, y = _noisy(n=200)
    seen = []
    fastgd.gd(
        X, y, lr=0.1, epochs=10, solver="gram", callback=lambda e, f: seen.append(f.epochs_run) or e == 3
    )
    assert seen == [1, 2, 3, 4]

    def stop(epoch, fit):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(fastgd.FitInterrupted) as info:
        fastgd.gd(X, y, lr=0.1, epochs=10, solver="gram", callback=stop)
    assert info.value.fit.epochs_run == 3


@pytest.mark.parametrize("condition", [1.0, 1e3, 1e6])
def test_noise_free_targets_from_a_far_start(condition, cpu_backend):
    """The plain form misses by up to 1e5 here; re-anchoring keeps every loss
    within 1e-9 of the reference while it falls by up to 10^15."""
    rng = np.random.default_rng(0)
    scales = np.geomspace(1.0, 1.0 / np.sqrt(condition), 3)
    X = rng.standard_normal((2_000, 3)) * scales
    y = X @ np.array([1.0, -2.0, 3.0])
    kw = dict(lr=0.4, epochs=60, w0=np.array([50.0, 50.0, 50.0]))
    expected = reference.fit(X, y, **kw)
    got = fastgd.fit(X, y, solver="gram", **kw)
    kept = expected.losses >= expected.losses[0] * 1e-15
    np.testing.assert_allclose(got.losses[kept], expected.losses[kept], rtol=1e-9)
    np.testing.assert_allclose(got.w, expected.w, rtol=1e-9)
    if condition == 1.0:
        assert _gram.LAST_ANCHORS, "a fall of 10^15 needs streaming re-anchors"


def test_auto_takes_the_gram_path_only_where_it_pays(monkeypatch):
    calls = []
    real = _gram.train
    monkeypatch.setattr(_gram, "train", lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    X, y = _noisy(n=1 << 16, d=2)
    kernels = fastgd._registry.kernel_module()
    fastgd.gd(X, y, lr=0.1, epochs=50)
    assert calls == ([1] if hasattr(kernels, "gram") else [])
    calls.clear()
    fastgd.gd(X, y, lr=0.1, epochs=2)  # too few epochs to repay the pass
    fastgd.gd(X, y, lr=0.1, epochs=50, exact=True)
    fastgd.minibatch_sgd(X, y, batch_size=64, lr=0.01, epochs=50)
    fastgd.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], lr=0.1, epochs=100)  # the tutorial streams
    fastgd.gd(X, y, lr=0.1, epochs=50, solver="stream")
    assert calls == []


def test_gdregressor_takes_the_solver():
    pytest.importorskip("sklearn")
    X, y = _noisy(n=500, d=3)
    streamed = fastgd.GDRegressor(lr=0.1, epochs=30, solver="stream").fit(X, y)
    gram = fastgd.GDRegressor(lr=0.1, epochs=30, solver="gram").fit(X, y)
    np.testing.assert_allclose(gram.coef_, streamed.coef_, rtol=1e-9)
    np.testing.assert_allclose(gram.loss_curve_, streamed.loss_curve_, rtol=1e-9)


# --- the costs of per-sample and mini-batch epochs from the statistics ------

STATS_N = _gram.AUTO_MIN_SAMPLES  # the smallest fit that takes its costs from the statistics


def _stats_epochs(d):
    return int(np.ceil(_gram.COST_EPOCHS + _gram.COST_EPOCHS_PER_FEATURE * d))


def _count_calls(monkeypatch, kernels, name):
    calls = []
    real = getattr(kernels, name)
    monkeypatch.setattr(kernels, name, lambda *args: calls.append(1) or real(*args))
    return calls


def test_sgd_costs_come_from_the_statistics(monkeypatch):
    kernels = fastgd._registry.kernel_module()
    if not hasattr(kernels, "gram"):
        pytest.skip("the default backend has no compiled statistics")
    X, y = _noisy(n=STATS_N, d=2)
    epochs = _stats_epochs(2)
    kw = dict(lr=0.002, epochs=epochs, batch_size=64, fit_intercept=True, momentum=0.5)
    streamed = fastgd.fit(X, y, solver="stream", **kw)
    grams = _count_calls(monkeypatch, kernels, "gram")
    passes = _count_calls(monkeypatch, kernels, "sums")
    got = fastgd.fit(X, y, **kw)
    # One pass for the statistics, none for the costs (noisy data: no re-anchoring).
    assert grams == [1] and passes == []
    assert np.array_equal(got.w, streamed.w) and got.b == streamed.b  # the same steps
    np.testing.assert_allclose(got.losses, streamed.losses, rtol=1e-12)
    assert got.loss == pytest.approx(streamed.loss, rel=1e-12)


@pytest.mark.parametrize("batch_size", [1, 64])
def test_sgd_costs_from_the_statistics_equal_the_reference(batch_size, monkeypatch):
    X, y = _noisy(n=STATS_N, d=1)
    kw = dict(lr=0.001, epochs=_stats_epochs(1), batch_size=batch_size, fit_intercept=True)
    expected = reference.fit(X, y, **kw)
    kernels = fastgd._registry.kernel_module()
    grams = _count_calls(monkeypatch, kernels, "gram") if hasattr(kernels, "gram") else None
    got = fastgd.fit(X, y, **kw)
    assert grams is None or grams == [1]
    assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_sgd_costs_from_the_statistics_re_anchor_on_noise_free_targets():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((STATS_N, 3)) * np.array([1.0, 0.5, 0.2])
    y = X @ np.array([1.0, -2.0, 3.0])
    kw = dict(lr=0.1, batch_size=256, w0=np.array([50.0, 50.0, 50.0]), epochs=max(12, _stats_epochs(3)))
    streamed = fastgd.fit(X, y, solver="stream", **kw)
    got = fastgd.fit(X, y, **kw)
    assert streamed.losses[-1] < streamed.losses[0] * 1e-12  # a fall the plain form could not follow
    kept = streamed.losses >= streamed.losses[0] * 1e-15
    np.testing.assert_allclose(got.losses[kept], streamed.losses[kept], rtol=1e-9)
    assert np.array_equal(got.w, streamed.w)


def test_sgd_costs_from_the_statistics_keep_the_driver_guarantees():
    X, y = _noisy(n=STATS_N, d=2)
    epochs = _stats_epochs(2)
    with pytest.raises(fastgd.DivergenceError) as info:
        fastgd.fit(X, y, lr=5.0, epochs=epochs, batch_size=64)
    fit = info.value.fit
    assert np.isfinite(fit.loss) and np.isfinite(fit.w).all() and fit.epochs_run == info.value.epoch

    def stop(epoch, fit):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(fastgd.FitInterrupted) as interrupted:
        fastgd.fit(X, y, lr=0.001, epochs=epochs, batch_size=64, callback=stop)
    expected = fastgd.fit(X, y, lr=0.001, epochs=3, batch_size=64, solver="stream")
    assert interrupted.value.fit.epochs_run == 3 and np.array_equal(interrupted.value.fit.w, expected.w)


def test_sgd_costs_stream_where_the_statistics_do_not_apply(monkeypatch):
    kernels = fastgd._registry.kernel_module()
    if not hasattr(kernels, "gram"):
        pytest.skip("the default backend has no compiled statistics")
    grams = _count_calls(monkeypatch, kernels, "gram")
    X, y = _noisy(n=STATS_N, d=2)
    epochs = _stats_epochs(2)
    fastgd.fit(X, y, lr=0.001, epochs=epochs, batch_size=64, solver="stream")
    fastgd.fit(X, y, lr=0.001, epochs=epochs, batch_size=64, exact=True)
    fastgd.fit(X, y, lr=0.001, epochs=epochs, batch_size=64, loss="huber")
    fastgd.fit(X.astype(np.float32), y.astype(np.float32), lr=0.001, epochs=epochs, batch_size=64)
    fastgd.fit(X, y, lr=0.001, epochs=epochs - 1, batch_size=64)  # too few epochs to repay the pass
    fastgd.fit(X[:-1], y[:-1], lr=0.001, epochs=epochs, batch_size=64)  # too few samples
    assert grams == []


def test_sgd_costs_from_the_statistics_on_shuffled_memory_mapped_data(tmp_path):
    X, y = _noisy(n=2 * STATS_N, d=2, out=tmp_path)
    kw = dict(lr=0.002, epochs=_stats_epochs(2), batch_size=1, shuffle=True, seed=5, fit_intercept=True)
    streamed = fastgd.fit(X, y, solver="stream", **kw)
    got = fastgd.fit(X, y, **kw)
    assert np.array_equal(got.w, streamed.w)
    np.testing.assert_allclose(got.losses, streamed.losses, rtol=1e-12)
