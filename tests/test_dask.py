"""Fits on dask arrays: a real distributed.LocalCluster (conftest.py's ``client``: 2
worker processes, 1 thread each, on 127.0.0.1) against the in-memory fit.

The options grid on dask against the reference is tests/test_backends.py's (its
``dask`` parameter); here the cluster's own behaviour."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fastgd
from helpers import interrupt_after

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def data():
    rng = np.random.default_rng(21)
    X = rng.standard_normal((40_000, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.7 + 0.1 * rng.standard_normal(40_000)
    return X, y


def _close(a, b, rtol=1e-9):
    np.testing.assert_allclose(a.w, b.w, rtol=rtol, atol=0)
    if a.b is not None:
        assert abs(a.b - b.b) <= rtol * abs(b.b)
    np.testing.assert_allclose(a.losses, b.losses, rtol=rtol, atol=0)
    assert abs(a.loss - b.loss) <= rtol * b.loss
    assert a.epochs_run == b.epochs_run


@pytest.mark.parametrize(
    "kw",
    [
        dict(fit_intercept=True),
        dict(fit_intercept=True, momentum=0.9, nesterov=True, weight_decay=0.01),
        dict(momentum=0.5, dampening=0.3),
    ],
)
def test_cluster_gd_matches_in_memory(client, data, kw):
    X, y = data
    Xd, yd = da.from_array(X, chunks=(7_000, 2)), da.from_array(y, chunks=9_000)
    on_cluster = fastgd.gd(Xd, yd, lr=0.1, epochs=8, **kw)
    in_memory = fastgd.gd(X, y, lr=0.1, epochs=8, **kw)
    _close(on_cluster, in_memory)
    # Deterministic: partial sums are added in chunk order, whatever finishes first.
    again = fastgd.gd(Xd, yd, lr=0.1, epochs=8, **kw)
    assert np.array_equal(again.w, on_cluster.w) and np.array_equal(again.losses, on_cluster.losses)


def test_cluster_scalar_model_float32_and_mixed_inputs(client, data):
    X, y = data
    x = X[:, 0].astype(np.float32)
    t = (2.0 * X[:, 0] + 0.1 * X[:, 1]).astype(np.float32)
    on_cluster = fastgd.gd(da.from_array(x, chunks=6_000), t, lr=0.2, epochs=10)
    in_memory = fastgd.gd(x, t, lr=0.2, epochs=10)
    assert isinstance(on_cluster.w, float)
    _close(on_cluster, in_memory, rtol=1e-5)


def test_workers_run_numba_single_threaded(client):
    from fastgd import _dask

    def threads():
        kernels = _dask._single_threaded_module("numba")
        import numba

        return kernels.NAME, numba.get_num_threads()

    results = client.run(threads)
    assert len(results) == 2 and all(r == ("numba", 1) for r in results.values())


def test_callback_stops_and_sees_losses(client, data):
    X, y = data
    seen = []

    def callback(epoch, so_far):
        seen.append((epoch, so_far.epochs_run, so_far.loss))
        return epoch == 3

    result = fastgd.gd(da.from_array(X, chunks=10_000), y, lr=0.1, epochs=20, callback=callback)
    assert result.epochs_run == 4 and [s[:2] for s in seen] == [(e, e + 1) for e in range(4)]
    assert seen[-1][2] == result.loss


def test_divergence(client, data):
    X, y = data
    with pytest.raises(fastgd.DivergenceError) as info:
        fastgd.gd(da.from_array(X, chunks=10_000), y, lr=1e6, epochs=200)
    assert np.isfinite(info.value.fit.loss) and info.value.fit.epochs_run == info.value.epoch


def test_local_scheduler_without_client(data):
    """dask's own threaded scheduler, no distributed client: a client another
    test of this module opened would otherwise be dask's default scheduler."""
    import dask
    import dask.threaded

    X, y = data
    with dask.config.set(scheduler="threads"):
        assert dask.base.get_scheduler() is dask.threaded.get
        on_dask = fastgd.gd(
            da.from_array(X, chunks=8_000),
            da.from_array(y, chunks=8_000),
            lr=0.1,
            epochs=5,
            fit_intercept=True,
        )
    _close(on_dask, fastgd.gd(X, y, lr=0.1, epochs=5, fit_intercept=True))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, y: fastgd.gd(X, y, exact=True), "exact"),
        (lambda X, y: fastgd.sgd(X, y, exact=True), "exact"),
        (lambda X, y: fastgd.gd(X, y[:-1]), "y"),
        (lambda X, y: fastgd.gd(X, y, lr=-1.0), "lr"),
    ],
)
def test_errors(data, call, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        call(da.from_array(X, chunks=10_000), y)


def test_non_finite_data_names_the_argument(data):
    X, y = data
    X = X.copy()
    X[12_345, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        fastgd.gd(da.from_array(X, chunks=10_000), y)
    y = y.copy()
    y[3] = np.inf
    with pytest.raises(ValueError, match="y contains NaN"):
        fastgd.gd(da.from_array(data[0], chunks=10_000), da.from_array(y, chunks=10_000))


def test_import_fastgd_does_not_import_dask():
    code = (
        "import sys, fastgd; fastgd.gd([1.0, 2.0], [2.0, 4.0]);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_ctrl_c_on_dask(client):
    X, y, _ = fastgd.datasets.make_linear(20_000, 2, seed=1)
    dX = da.from_array(X, chunks=(5_000, 2))
    dy = da.from_array(y, chunks=5_000)
    fastgd.gd(dX, dy, lr=0.1, epochs=1)  # compiled before the clock starts: Ctrl-C lands in the epochs
    timer = interrupt_after(1.0)
    started = time.perf_counter()
    try:
        with pytest.raises(fastgd.FitInterrupted) as info:
            fastgd.gd(dX, dy, lr=0.1, epochs=10**6)
        latency = time.perf_counter() - started - 1.0
    finally:
        timer.cancel()
    assert latency < 1.0
    assert info.value.fit.epochs_run == len(info.value.fit.losses)


def test_dask_callback_interrupt_is_fit_interrupted(client):
    X, y, _ = fastgd.datasets.make_linear(4_000, 2, seed=1)
    dX = da.from_array(X, chunks=(1_000, 2))
    dy = da.from_array(y, chunks=1_000)

    def stop_at_three(epoch, so_far):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(fastgd.FitInterrupted) as info:
        fastgd.gd(dX, dy, lr=0.1, epochs=10, callback=stop_at_three)
    assert info.value.fit.epochs_run == 4
    expected = fastgd.gd(X, y, lr=0.1, epochs=4)
    np.testing.assert_allclose(info.value.fit.w, expected.w, rtol=1e-12)


@pytest.mark.parametrize(
    "kw",
    [
        dict(batch_size=1, lr=0.01),
        dict(batch_size=1, lr=0.01, fit_intercept=True, momentum=0.5),
        dict(batch_size=64, lr=0.05, fit_intercept=True, momentum=0.9, nesterov=True, weight_decay=0.01),
        dict(batch_size=1000, lr=0.1),  # chunks of 7,000 rows: rechunked to whole batches
    ],
    ids=["sgd", "sgd-momentum", "minibatch-nesterov", "minibatch-rechunked"],
)
def test_cluster_sgd_matches_in_memory(client, data, kw):
    X, y = data
    Xd, yd = da.from_array(X, chunks=(7_000, 3)), da.from_array(y, chunks=7_000)
    on_cluster = fastgd.fit(Xd, yd, epochs=3, **kw)
    in_memory = fastgd.fit(X, y, epochs=3, **kw)
    _close(on_cluster, in_memory)
    again = fastgd.fit(Xd, yd, epochs=3, **kw)
    assert np.array_equal(again.w, on_cluster.w) and np.array_equal(again.losses, on_cluster.losses)


@pytest.mark.parametrize(
    "kw",
    [
        dict(batch_size=64, lr=[0.05, 0.02, 0.01], average=True, fit_intercept=True),
        dict(
            batch_size=1,
            lr=0.01,
            loss="huber",
            delta=0.5,
            decay_intercept=False,
            weight_decay=0.01,
            fit_intercept=True,
        ),
        dict(lr=lambda epoch: 0.2 / (1 + epoch), loss="l1", fit_intercept=True),
    ],
    ids=["schedule-average", "huber-decay-groups", "gd-callable-schedule-l1"],
)
def test_cluster_runs_every_option_of_the_driver(client, data, kw):
    """Schedules, averaging, losses and decay groups on dask: the one driver runs them,
    with the in-memory fit's result."""
    X, y = data
    Xd, yd = da.from_array(X, chunks=(7_000, 3)), da.from_array(y, chunks=7_000)
    on_cluster = fastgd.fit(Xd, yd, epochs=3, **kw)
    in_memory = fastgd.fit(X, y, epochs=3, **kw)
    _close(on_cluster, in_memory)
    if kw.get("average"):
        np.testing.assert_allclose(on_cluster.w_last, in_memory.w_last, rtol=1e-9, atol=0)


def test_cluster_sgd_divergence_hands_back_the_last_finite_epoch(client, data):
    X, y = data
    kw = dict(batch_size=16, lr=0.9, momentum=0.9, epochs=50)
    with pytest.raises(fastgd.DivergenceError) as on_cluster:
        fastgd.fit(da.from_array(X, chunks=(7_008, 3)), y, **kw)
    with pytest.raises(fastgd.DivergenceError) as in_memory:
        fastgd.fit(X, y, **kw)
    assert on_cluster.value.epoch == in_memory.value.epoch
    _close(on_cluster.value.fit, in_memory.value.fit, rtol=1e-6)


def test_cluster_sgd_one_chunk_exact_is_bitwise(client, data):
    X, y = data
    kw = dict(batch_size=16, lr=0.02, momentum=0.9, fit_intercept=True, epochs=2, exact=True)
    on_cluster = fastgd.fit(da.from_array(X, chunks=(40_000, 3)), y, **kw)
    in_memory = fastgd.fit(X, y, **kw)
    assert np.array_equal(on_cluster.w, in_memory.w) and on_cluster.b == in_memory.b
    assert np.array_equal(on_cluster.losses, in_memory.losses)


def test_cluster_sgd_state_hand_over(client, data):
    """The optimizer state travels between chunks and between fits (partial_fit)."""
    from fastgd._state import OptimizerState

    X, y = data
    Xd = da.from_array(X, chunks=(10_000, 3))
    kw = dict(batch_size=32, lr=0.01, momentum=0.9, fit_intercept=True)
    state = OptimizerState()
    first = fastgd._dispatch.train(Xd, y, epochs=1, state=state, **_fit_defaults(kw))
    second = fastgd._dispatch.train(
        Xd,
        y,
        epochs=1,
        w0=first.w,
        b0=first.b,
        state=state,
        **_fit_defaults(kw, keep=("lr", "batch_size", "momentum")),
    )
    both = fastgd.fit(X, y, epochs=2, **kw)
    np.testing.assert_allclose(second.w, both.w, rtol=1e-9)
    assert state.steps == 2 * 40_000 // 32 + 2 * (40_000 % 32 > 0)


def _fit_defaults(kw, keep=None):
    """The options of ``kw`` (those in ``keep``, when given) for _dispatch.train; fit's defaults otherwise."""
    options = {k: v for k, v in kw.items() if k != "fit_intercept" and (keep is None or k in keep)}
    options["fit_intercept"] = kw.get("fit_intercept", False)
    return options


def test_cluster_shuffle_is_the_memory_mapped_block_order(client, tmp_path):
    """Chunks of SHUFFLE_BLOCK rows, shuffled: the same visits as the same data
    memory-mapped (blocks in a seeded order, rows shuffled within each)."""
    from fastgd import _orders

    X, y, _ = fastgd.datasets.make_linear(3 * _orders.SHUFFLE_BLOCK + 123, 2, noise=0.1, seed=8, out=tmp_path)
    kw = dict(batch_size=1, lr=0.01, shuffle=True, seed=4, epochs=2, fit_intercept=True)
    on_cluster = fastgd.fit(da.from_array(np.array(X), chunks=(_orders.SHUFFLE_BLOCK, 2)), np.array(y), **kw)
    on_file = fastgd.fit(X, y, **kw)
    _close(on_cluster, on_file, rtol=1e-12)
    in_order = fastgd.fit(X, y, **dict(kw, shuffle=False))
    assert not np.allclose(on_cluster.w, in_order.w, rtol=1e-9)


def test_cluster_gram_is_one_round_trip(client, data, monkeypatch):
    import dask

    X, y = data
    Xd, yd = da.from_array(X, chunks=(7_000, 3)), da.from_array(y, chunks=7_000)
    kw = dict(lr=0.1, epochs=30, fit_intercept=True, momentum=0.5)
    expected = fastgd.gd(X, y, **kw)
    computes = []
    real = dask.compute
    monkeypatch.setattr(dask, "compute", lambda *args, **kwargs: computes.append(1) or real(*args, **kwargs))
    got = fastgd.gd(Xd, yd, solver="gram", **kw)
    assert len(computes) == 1
    _close(got, expected)
