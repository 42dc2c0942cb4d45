"""Defects found by trying to break fastgd (threads, Ctrl-C, overflow, odd input).

Each test here failed before its fix. SPEC §3–§5 is the contract.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import numpy as np
import pytest

import fastgd
import fastgd.reference as reference
from helpers import interrupt_after

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU = [info.name for info in fastgd.backends() if info.available and info.name != "cuda"]
TUTORIAL = ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "FASTGD_BACKEND"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


# -- use() is local to the thread / context ---------------------------------------------


def test_use_is_local_to_each_thread():
    x, y = TUTORIAL
    default = fastgd.gd(x, y, epochs=1).backend
    entered = threading.Barrier(2)
    a_left = threading.Event()
    seen = {}

    def thread_a():
        with fastgd.use("numpy"):
            entered.wait()
            seen["a"] = fastgd.gd(x, y, epochs=1).backend
        a_left.set()
        seen["a_after"] = fastgd.gd(x, y, epochs=1).backend

    def thread_b():
        with fastgd.use("cython" if "cython" in CPU else "numpy"):
            entered.wait()
            a_left.wait()
            seen["b"] = fastgd.gd(x, y, epochs=1).backend
        seen["b_after"] = fastgd.gd(x, y, epochs=1).backend

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bystander = {}
    third = threading.Thread(target=lambda: bystander.setdefault("c", fastgd.gd(x, y, epochs=1).backend))
    third.start()
    third.join()
    assert seen["a"] == "numpy"
    assert seen["b"] == ("cython" if "cython" in CPU else "numpy")
    assert seen["a_after"] == seen["b_after"] == default
    assert bystander["c"] == default
    assert fastgd.gd(x, y, epochs=1).backend == default


def test_use_without_with_stays_in_its_thread():
    x, y = TUTORIAL
    default = fastgd.gd(x, y, epochs=1).backend
    seen = {}

    def select_numpy():
        fastgd.use("numpy")
        seen["inside"] = fastgd.gd(x, y, epochs=1).backend

    t = threading.Thread(target=select_numpy)
    t.start()
    t.join()
    assert seen["inside"] == "numpy"
    assert fastgd.gd(x, y, epochs=1).backend == default


def test_nested_use_restores_exactly():
    x, y = TUTORIAL
    with fastgd.use("numpy"):
        with fastgd.use(CPU[0]):
            assert fastgd.gd(x, y, epochs=1).backend == CPU[0]
        assert fastgd.gd(x, y, epochs=1).backend == "numpy"


# -- Ctrl-C -------------------------------------------------------------------------------


LONG_FITS = {
    "gd": dict(),
    "sgd-momentum": dict(batch_size=1, momentum=0.5),
    "sgd-plain": dict(batch_size=1),
    "minibatch": dict(batch_size=16, fit_intercept=True),
}


@pytest.mark.parametrize("backend", [b for b in CPU if b != "numpy"])
@pytest.mark.parametrize("case", sorted(LONG_FITS))
def test_ctrl_c_inside_a_long_compiled_call(backend, case):
    """SIGINT 0.5 s into a fit that would run for minutes: FitInterrupted within 1 s,
    holding a state that a fit of that many epochs reproduces exactly."""
    X, y, _ = fastgd.datasets.make_linear(400_000, 2, noise=0.1, seed=3)
    options = dict(lr=1e-3, exact=True, **LONG_FITS[case])
    with fastgd.use(backend):
        fastgd.fit(X, y, epochs=1, **options)  # compiled before the clock starts
        timer = interrupt_after(0.5)
        started = time.perf_counter()
        try:
            with pytest.raises(fastgd.FitInterrupted) as info:
                fastgd.fit(X, y, epochs=10**9, **options)
            latency = time.perf_counter() - started - 0.5
        finally:
            timer.cancel()
        assert latency < 1.0, f"FitInterrupted arrived {latency:.2f} s after SIGINT"
        stopped = info.value.fit
        assert isinstance(info.value, KeyboardInterrupt)
        assert len(stopped.losses) == stopped.epochs_run
        again = fastgd.fit(X, y, epochs=stopped.epochs_run, **options)
    np.testing.assert_array_equal(again.w, stopped.w)
    assert again.loss == stopped.loss


@pytest.mark.parametrize("backend", CPU)
def test_ctrl_c_before_the_first_epoch_hands_back_the_start(backend, monkeypatch):
    """Ctrl-C during the starting cost pass (where a fresh process compiles): FitInterrupted
    holding the starting parameters and no epochs, not a bare KeyboardInterrupt."""
    from fastgd import _backend

    def pressed(self, *args, **kwargs):
        raise KeyboardInterrupt

    X, y, _ = fastgd.datasets.make_linear(1000, 3, noise=0.1, seed=3)
    monkeypatch.setattr(_backend.Handle, "sums", pressed)
    with fastgd.use(backend), pytest.raises(fastgd.FitInterrupted) as info:
        fastgd.fit(X, y, w0=[1.0, 2.0, 3.0], b0=0.5, fit_intercept=True, lr=0.1, epochs=5)
    start = info.value.fit
    np.testing.assert_array_equal(start.w, [1.0, 2.0, 3.0])
    assert start.b == 0.5 and start.epochs_run == 0 and len(start.losses) == 0
    assert start.backend == backend


# -- concurrent fits ----------------------------------------------------------------------


CONCURRENT = textwrap.dedent("""
    import threading, numpy as np, fastgd, numba
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300_000, 2)); y = X @ np.array([1.0, -2.0])
    runs = [dict(), dict(batch_size=64), dict(batch_size=1), dict(momentum=0.9)]
    alone = [fastgd.fit(X, y, lr=0.01, epochs=3, **r).w for r in runs]
    together = [None] * 4
    def work(k):
        together[k] = fastgd.fit(X, y, lr=0.01, epochs=3, **runs[k]).w
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert all(np.array_equal(a, b) for a, b in zip(alone, together)), (alone, together)
    print(numba.threading_layer())
""")


@pytest.mark.skipif("numba" not in CPU, reason="numba is not available")
@pytest.mark.parametrize("layer", ["workqueue", "default"])
def test_concurrent_fits_on_every_threading_layer(layer, tmp_path):
    env = _clean_env(NUMBA_THREADING_LAYER=layer, NUMBA_NUM_THREADS="2")
    done = subprocess.run(
        [sys.executable, "-c", CONCURRENT], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if layer == "workqueue":
        assert done.stdout.strip() == "workqueue"


# -- overflow in the composed one-feature maps --------------------------------------------


@pytest.mark.parametrize("backend", CPU)
def test_overflowing_affine_block_is_replayed(backend):
    X = np.ones(5000)
    y = np.full(5000, 2.0)
    X[:2] = 1e150
    y[:2] = 0.0
    expected = reference.sgd(X, y, lr=1e-3, epochs=1).w
    with fastgd.use(backend):
        for exact in (False, True):
            got = fastgd.sgd(X, y, lr=1e-3, epochs=1, exact=exact).w
            assert got == pytest.approx(expected, rel=1e-9)
        # The second epoch really diverges (w ≈ 2 meets x = 1e150), as in the reference.
        with pytest.raises(fastgd.DivergenceError) as info:
            fastgd.sgd(X, y, lr=1e-3, epochs=3)
    assert info.value.epoch == 1 and info.value.fit.w == pytest.approx(expected, rel=1e-9)


# -- the loss history grows with the epochs run --------------------------------------------


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
@pytest.mark.parametrize("epochs", [10**11, 2**63])
def test_losses_grow_with_the_epochs_run(module, epochs):
    x, y = TUTORIAL
    tracemalloc.start()
    try:
        result = module.gd(x, y, epochs=epochs, callback=lambda e, f: e >= 5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.epochs_run == 6 and len(result.losses) == 6
    assert peak < 10 * 2**20


def test_long_run_without_callback_keeps_every_loss():
    x, y = TUTORIAL
    result = fastgd.gd(x, y, lr=0.01, epochs=200_000)  # more than one kernel call
    expected = reference.gd(x, y, lr=0.01, epochs=200_000)
    assert result.epochs_run == 200_000
    np.testing.assert_allclose(result.losses, expected.losses, rtol=1e-9, atol=1e-300)


def test_epochs_beyond_int64_stop_by_callback():
    x, y = TUTORIAL
    result = fastgd.gd(x, y, epochs=2**70, callback=lambda e, f: e >= 1)
    assert result.epochs_run == 2


def test_gdregressor_with_huge_epochs_and_tol():
    pytest.importorskip("sklearn")
    X, y, _ = fastgd.datasets.make_linear(200, 2, noise=0.1, seed=0)
    model = fastgd.GDRegressor(epochs=10**11, tol=1e-3).fit(X, y)
    assert model.n_iter_ < 10**5


# -- runaway training warns -----------------------------------------------------------------


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
def test_runaway_fit_warns(module):
    x, y = TUTORIAL
    with pytest.warns(fastgd.DivergenceWarning, match="lower lr"):
        result = module.fit(x, y, lr=0.5, epochs=30)
    assert np.isfinite(result.loss) and result.loss > 1e6 * result.losses[0]


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
def test_outliers_that_raise_the_loss_do_not_warn(module):
    # Per-sample SGD skips two huge samples (their gradient is zero at w = 0)
    # and converges on the rest: the cost ends 1e293 times above its start
    # without any runaway. pytest turns a warning into an error.
    X = np.ones(5000)
    y = np.full(5000, 2.0)
    X[:2] = 1e150
    y[:2] = 0.0
    result = module.sgd(X, y, lr=1e-3, epochs=1)
    assert result.loss > 1e6 * result.losses[0]


def test_runaway_rule():
    from fastgd.errors import is_runaway

    geometric = [1.0 * 4.0**k for k in range(12)]
    assert is_runaway(geometric)
    assert not is_runaway(geometric[:2])  # one epoch: a rise, not yet a trend
    slow = [1.0 * 1.2**k for k in range(100)]  # 1e7 times higher, but creeping up
    assert slow[-1] > 1e6 and not is_runaway(slow)
    recovered = geometric + [geometric[-1] / 2]
    assert not is_runaway(recovered)
    assert not is_runaway([0.0, 1.0, 10.0, 100.0])  # no scale to compare with


# -- input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
def test_start_not_finite_in_training_dtype(module):
    X = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match="w0"):
        module.gd(X, X, w0=1e300)
    with pytest.raises(ValueError, match="w0"):
        module.gd(X.reshape(3, 1), X, w0=np.array([1e300]))
    with pytest.raises(ValueError, match="b0"):
        module.gd(X, X, b0=-1e39, fit_intercept=True)
    assert module.gd(X, X, w0=1e15, lr=1e-40, epochs=1).w == pytest.approx(1e15, rel=1e-6)


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
def test_zero_dimensional_tensors_as_start(module):
    torch = pytest.importorskip("torch")
    x, y = TUTORIAL
    expected = module.gd(x, y, w0=1.0, b0=0.5, fit_intercept=True, epochs=3)
    got = module.gd(x, y, w0=torch.tensor(1.0), b0=torch.tensor(0.5), fit_intercept=True, epochs=3)
    assert (got.w, got.b) == (expected.w, expected.b)


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
def test_empty_forward_names_x(module):
    with pytest.raises(ValueError, match="x is empty"):
        module.forward([], [])
    with pytest.raises(ValueError, match="xs is empty"):
        module.cost([], [], [])


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
def test_pandas_nullable_dtypes(module):
    pd = pytest.importorskip("pandas")
    X = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 1.0]])
    y = np.array([2.0, 5.0, 7.0])
    frame = pd.DataFrame(
        {"a": pd.array(X[:, 0], dtype="Float64"), "b": pd.array(X[:, 1].astype(int), dtype="Int64")}
    )
    expected = module.gd(X, y, epochs=5)
    got = module.gd(frame, pd.Series(y, dtype="Float64"), epochs=5)
    np.testing.assert_array_equal(got.w, expected.w)
    frame.loc[1, "b"] = pd.NA
    with pytest.raises(ValueError, match=r"X has missing values \(pd.NA\) in column 'b' of dtype Int64"):
        module.gd(frame, y)
    with pytest.raises(ValueError, match="y has missing values"):
        module.gd(X, pd.Series([1.0, None, 2.0], dtype="Float64"))


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
def test_sparse_x_trains_and_other_sparse_arguments_say_only_x(module):
    """Sparse X is SPEC §10 (tests/test_sparse.py); y, w0 must be dense."""
    sparse = pytest.importorskip("scipy.sparse")
    got = module.fit(sparse.csr_matrix(np.eye(3)), [1.0, 2.0, 3.0], epochs=3, exact=True)
    assert np.array_equal(got.w, reference.fit(np.eye(3), [1.0, 2.0, 3.0], epochs=3).w)
    with pytest.raises(TypeError, match=r"y is a scipy.sparse.*only X may be sparse.*toarray"):
        module.fit(np.eye(3), sparse.csr_matrix(np.ones((3, 1))))


# -- signatures ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gd", "sgd", "minibatch_sgd", "fit"])
def test_explicit_signatures_equal_the_reference(name):
    ours = inspect.signature(getattr(fastgd, name))
    theirs = inspect.signature(getattr(reference, name))
    assert ours == theirs
    assert not any(p.kind is p.VAR_KEYWORD for p in ours.parameters.values())
    fit_keywords = set(inspect.signature(fastgd.fit).parameters)
    expected = fit_keywords - ({"batch_size"} if name in ("gd", "sgd") else set())
    assert set(ours.parameters) == expected


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
@pytest.mark.parametrize("name", ["gd", "sgd"])
def test_batch_size_is_refused_by_gd_and_sgd(module, name):
    x, y = TUTORIAL
    with pytest.raises(TypeError, match="batch_size"):
        getattr(module, name)(x, y, batch_size=8)
    with pytest.raises(TypeError, match=rf"{name}\(\).*n_epochs"):
        getattr(module, name)(x, y, n_epochs=5)


# -- GDRegressor ------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-300, 1e300, 1e307])
def test_sample_weight_is_scale_free(scale):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 2))
    y = X @ np.array([1.0, 2.0]) + 0.3
    weights = rng.uniform(0.5, 2.0, 50)
    expected = fastgd.GDRegressor(epochs=30).fit(X, y, sample_weight=weights)
    got = fastgd.GDRegressor(epochs=30).fit(X, y, sample_weight=weights * scale)
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-12)
    assert got.intercept_ == pytest.approx(expected.intercept_, rel=1e-12)
    assert np.abs(got.coef_).max() > 0.5


def test_auto_lr_on_overflowing_data_names_the_scale():
    pytest.importorskip("sklearn")
    X = np.full((10, 2), 1e160)
    with pytest.raises(ValueError, match=r"lr='auto'.*rescale X"):
        fastgd.GDRegressor().fit(X, np.ones(10))
