"""GDRegressor: scikit-learn's own checks, meta-estimators, partial_fit and
optimizer state, sample weights, early stopping, progress output, interrupts.

Results are compared bit for bit (``exact=True``) with fastgd.fit and with
the reference (the estimator's trainer swapped for ``reference._fit``).
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import fastgd
import fastgd.reference as reference
from fastgd import GDRegressor, _dispatch, estimator
from fastgd._state import OptimizerState
from fastgd.errors import DivergenceError, FitInterrupted

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data(n=40, d=3, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ np.arange(1.0, d + 1) - 0.5 + 0.1 * rng.standard_normal(n)
    return X.astype(dtype), y.astype(dtype)


@pytest.fixture
def on_reference(monkeypatch):
    """Run the estimator's fits on the pure-Python reference."""
    monkeypatch.setattr(estimator, "_train", reference._fit)


def assert_same(a, b):
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.intercept_ == b.intercept_
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)


# -- scikit-learn's checks ---------------------------------------------------


def test_check_estimator_in_full():
    results = check_estimator(GDRegressor(), on_skip=None, on_fail=None)
    failed = {r["check_name"]: r["exception"] for r in results if r["status"] == "failed"}
    assert not failed
    skipped = [r["check_name"] for r in results if r["status"] == "skipped"]
    # Only skipped because SCIPY_ARRAY_API must be set before scipy is
    # imported: test_check_array_api_input runs it in a fresh interpreter.
    assert skipped == ["check_array_api_input"]


def test_check_array_api_input():
    code = """
        from sklearn.utils.estimator_checks import check_array_api_input
        from fastgd import GDRegressor
        # numpy backend: a fresh interpreter would otherwise spend seconds compiling
        check_array_api_input("GDRegressor", GDRegressor(backend="numpy"), array_namespace="numpy",
                              expect_only_array_outputs=False)
    """
    env = dict(os.environ, PYTHONPATH=ROOT, SCIPY_ARRAY_API="1")
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


SGD_EXPECTED_FAILURES = {
    # With batches, a sample's weight scales its step (an unbiased estimate of
    # the weighted gradient); repeating the sample instead changes the batches
    # and the number of steps, so the two trajectories differ. Full-batch GD
    # (the default) passes this check.
    "check_sample_weight_equivalence_on_dense_data": "SGD: a weight scales a sample's step; repeating it changes the batches",
    "check_sample_weight_equivalence_on_sparse_data": "SGD: a weight scales a sample's step; repeating it changes the batches",
}


@pytest.mark.parametrize(
    "model",
    [
        GDRegressor(batch_size=1),
        GDRegressor(batch_size=8, momentum=0.9, shuffle=True, random_state=0),
        GDRegressor(
            batch_size=4,
            momentum=0.5,
            nesterov=True,
            weight_decay=1e-3,
            exact=True,
            tol=1e-3,
            fit_intercept=False,
        ),
    ],
    ids=["sgd", "minibatch-momentum-shuffle", "nesterov-tol-no-intercept"],
)
def test_check_estimator_sgd_configurations(model):
    results = check_estimator(model, on_skip=None, on_fail=None, expected_failed_checks=SGD_EXPECTED_FAILURES)
    failed = {r["check_name"]: r["exception"] for r in results if r["status"] == "failed"}
    assert not failed


# -- defaults and the learning rate -------------------------------------------


def test_explicit_lr_is_fastgd_fit_and_the_reference(on_reference):
    X, y = data()
    kw = dict(lr=0.05, epochs=20, momentum=0.9, weight_decay=1e-3, exact=True)
    on_ref = GDRegressor(**kw).fit(X, y)
    expected = reference.fit(X, y, fit_intercept=True, **kw)
    np.testing.assert_array_equal(on_ref.coef_, expected.w)
    assert on_ref.intercept_ == expected.b
    np.testing.assert_array_equal(on_ref.loss_curve_, expected.losses)
    assert on_ref.loss_ == expected.loss and on_ref.n_iter_ == 20 and on_ref.lr_ == 0.05


def test_explicit_lr_is_fastgd_fit(cpu_backend):
    X, y = data()
    # (lr=0.05 with this momentum runs away: DivergenceWarning, tested elsewhere.)
    kw = dict(lr=0.01, epochs=20, batch_size=4, momentum=0.9, exact=True)
    model = GDRegressor(**kw).fit(X, y)
    expected = fastgd.fit(X, y, fit_intercept=True, **kw)
    np.testing.assert_array_equal(model.coef_, expected.w)
    assert model.intercept_ == expected.b and model.backend_ == cpu_backend
    assert model.t_ == 20 * 10


def test_auto_lr_is_the_curvature_bound():
    X, y = data()
    model = GDRegressor(epochs=1).fit(X, y)
    norms = (X * X).sum(axis=1) + 1.0
    assert model.lr_ == pytest.approx(1.0 / (2.0 * norms.mean()), rel=1e-12)
    model = GDRegressor(epochs=1, batch_size=5, weight_decay=0.5).fit(X, y)
    assert model.lr_ == pytest.approx(1.0 / (2.0 * norms.max() + 0.5), rel=1e-12)


@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_auto_lr_fits_unscaled_data_where_a_fixed_lr_diverges(batch_size):
    rng = np.random.default_rng(0)
    X = rng.normal(loc=100.0, size=(30, 2))
    y = X[:, 0] - X[:, 1]
    model = GDRegressor(batch_size=batch_size, epochs=50).fit(X, y)
    assert np.all(np.isfinite(model.coef_)) and np.all(np.diff(model.loss_curve_) <= 0)
    with pytest.raises(DivergenceError, match="standardize X") as info:
        GDRegressor(lr=0.01, batch_size=batch_size).fit(X, y)
    assert np.all(np.isfinite(info.value.fit.w))


def test_default_converges_on_standardized_data():
    X, y = data(n=200, d=5)
    assert GDRegressor().fit(X, y).score(X, y) > 0.99


def test_bad_lr_string():
    with pytest.raises(ValueError, match="lr"):
        GDRegressor(lr="fast").fit(*data())


def test_float32_trains_as_float32():
    X, y = data(dtype=np.float32)
    model = GDRegressor(epochs=5).fit(X, y)
    assert model.coef_.dtype == np.float32
    assert model.predict(X).dtype == np.float32


def test_backend_selection_is_scoped():
    X, y = data()
    before = fastgd._registry.current_name()
    assert GDRegressor(backend="numpy", epochs=3).fit(X, y).backend_ == "numpy"
    assert fastgd._registry.current_name() == before
    with fastgd.use("numpy"):  # backend=None keeps the caller's selection
        assert GDRegressor(epochs=3).fit(X, y).backend_ == "numpy"


# -- meta-estimators, clone, pickle -------------------------------------------


def test_pipeline_and_grid_search():
    X, y = data(n=60)
    X = X * [1.0, 100.0, 0.01] + 50.0
    pipe = make_pipeline(StandardScaler(), GDRegressor(epochs=200))
    assert pipe.fit(X, y).score(X, y) > 0.99
    search = GridSearchCV(
        pipe, {"gdregressor__batch_size": [None, 8], "gdregressor__momentum": [0.0, 0.9]}, cv=3
    )
    search.fit(X, y)
    assert search.best_score_ > 0.99
    assert set(search.best_params_) == {"gdregressor__batch_size", "gdregressor__momentum"}


def test_clone_and_pickle_round_trips():
    X, y = data()
    model = GDRegressor(lr=0.05, batch_size=4, momentum=0.9, shuffle=True, random_state=3, epochs=10)
    fresh = clone(model)
    assert fresh.get_params() == model.get_params() and not hasattr(fresh, "coef_")
    model.fit(X, y)
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.predict(X), model.predict(X))
    # The optimizer state survives pickling: both continue identically.
    assert_same(copy.partial_fit(X, y), model.partial_fit(X, y))
    refit = clone(model).fit(X, y)
    model.set_params(warm_start=False).fit(X, y)
    assert_same(refit, model)


# -- partial_fit, warm_start and the optimizer state ------------------------


SGD_OPTIONS = [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.3, weight_decay=1e-3),
    dict(momentum=0.5, nesterov=True),
]


@pytest.mark.parametrize("options", SGD_OPTIONS)
def test_partial_fit_chunks_equal_one_fit(options, cpu_backend):
    X, y = data(n=37)
    kw = dict(lr=0.02, batch_size=1, exact=True, **options)
    model = GDRegressor(**kw)
    chunks = np.array_split(np.arange(37), 5)
    for _ in range(3):
        for rows in chunks:
            model.partial_fit(X[rows], y[rows])
    one = fastgd.fit(X, y, epochs=3, fit_intercept=True, **kw)
    ref = reference.fit(X, y, epochs=3, fit_intercept=True, **kw)
    np.testing.assert_array_equal(model.coef_, one.w)
    np.testing.assert_array_equal(model.coef_, ref.w)
    assert model.intercept_ == one.b == ref.b
    assert model.n_iter_ == 15 and model.t_ == 3 * 37


@pytest.mark.parametrize("options", SGD_OPTIONS)
def test_partial_fit_on_the_reference(options, on_reference):
    X, y = data(n=23)
    kw = dict(lr=0.02, batch_size=1, exact=True, **options)
    model = GDRegressor(**kw)
    for rows in np.array_split(np.arange(23), 4):
        model.partial_fit(X[rows], y[rows])
    ref = reference.fit(X, y, epochs=1, fit_intercept=True, **kw)
    np.testing.assert_array_equal(model.coef_, ref.w)
    assert model.intercept_ == ref.b


def test_state_hand_over_engine_vs_reference(cpu_backend):
    X, y = data(n=30)
    kw = dict(
        lr=0.01,
        epochs=2,
        batch_size=3,
        w0=None,
        b0=None,
        fit_intercept=True,
        momentum=0.8,
        dampening=0.1,
        nesterov=False,
        weight_decay=0.01,
        shuffle=False,
        seed=None,
        exact=True,
        callback=None,
    )
    fits = []
    for train in (_dispatch.train, reference._fit):
        state, w, b = OptimizerState(), None, None
        for rows in np.array_split(np.arange(30), 3):
            result = train(X[rows], y[rows], state=state, **dict(kw, w0=w, b0=b))
            w, b = result.w, result.b
        fits.append((w, b, state.velocity, state.steps))
    np.testing.assert_array_equal(fits[0][0], fits[1][0])
    assert fits[0][1] == fits[1][1]
    np.testing.assert_array_equal(fits[0][2], fits[1][2])
    assert fits[0][3] == fits[1][3] == 3 * 2 * 4


def test_warm_start_continues_like_one_longer_fit():
    X, y = data()
    kw = dict(lr=0.05, batch_size=4, momentum=0.9, exact=True)
    warm = GDRegressor(epochs=7, warm_start=True, **kw).fit(X, y).fit(X, y)
    assert_same(warm, GDRegressor(epochs=14, **kw).fit(X, y))
    assert warm.n_iter_ == 14


def test_partial_fit_checks_features_and_auto_lr_never_grows():
    X, y = data()
    model = GDRegressor(batch_size=1).partial_fit(X, y)
    first = model.lr_
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :2], y)
    model.partial_fit(X * 0.1, y)
    assert model.lr_ == first
    model.partial_fit(X * 10.0, y)
    assert model.lr_ < first


def test_changing_fit_intercept_between_partial_fits():
    X, y = data()
    model = GDRegressor(batch_size=1, momentum=0.9).partial_fit(X, y)
    model.set_params(fit_intercept=False).partial_fit(X, y)
    assert model.intercept_ == 0.0 and model.n_iter_ == 2
    model.set_params(fit_intercept=True).partial_fit(X, y)
    assert model.intercept_ != 0.0 and model.n_iter_ == 3


def test_partial_fit_shuffle_is_seeded():
    X, y = data()
    a, b = (GDRegressor(batch_size=2, shuffle=True, random_state=5) for _ in range(2))
    for model in (a, b):
        model.partial_fit(X, y).partial_fit(X, y)
    assert_same(a, b)
    c = GDRegressor(batch_size=2, shuffle=True, random_state=6).partial_fit(X, y)
    assert not np.array_equal(
        c.coef_, GDRegressor(batch_size=2, shuffle=True, random_state=5).partial_fit(X, y).coef_
    )


# -- sample weights -------------------------------------------------------------


def test_integer_weights_equal_repeated_rows_for_gd():
    X, y = data(n=25)
    w = np.random.default_rng(2).integers(0, 4, 25)
    weighted = GDRegressor(epochs=200).fit(X, y, sample_weight=w)
    repeated = GDRegressor(epochs=200).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-12, atol=1e-12)
    assert weighted.intercept_ == pytest.approx(repeated.intercept_, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-12)


@pytest.mark.parametrize("batch_size", [None, 1, 4])
def test_zero_weight_is_a_removed_sample(batch_size):
    X, y = data(n=20)
    w = np.ones(20)
    w[[3, 11]] = 0.0
    keep = w > 0
    kw = dict(lr=0.02, epochs=5, batch_size=batch_size, exact=True)
    assert_same(GDRegressor(**kw).fit(X, y, sample_weight=w), GDRegressor(**kw).fit(X[keep], y[keep]))
    w[0] = 2.0
    assert_same(
        GDRegressor(**kw).fit(X, y, sample_weight=w),
        GDRegressor(**kw).fit(X[keep], y[keep], sample_weight=w[keep]),
    )


def test_equal_weights_are_no_weights():
    X, y = data()
    kw = dict(lr=0.05, epochs=5, exact=True)
    assert_same(GDRegressor(**kw).fit(X, y, sample_weight=np.full(40, 2.5)), GDRegressor(**kw).fit(X, y))


def test_weighted_loss_and_reference(on_reference):
    X, y = data(n=12)
    w = np.arange(1.0, 13.0)
    model = GDRegressor(lr=0.05, epochs=3, exact=True).fit(X, y, sample_weight=w)
    # Starting from zeros, the loss is the weighted mean of y².
    assert model.loss_curve_[0] == pytest.approx(np.sum(w * y * y) / w.sum(), rel=1e-13)
    # The weighted full-batch step is the weighted-MSE gradient step.
    first = GDRegressor(lr=0.05, epochs=1, exact=True).fit(X, y, sample_weight=w)
    Xt = np.column_stack([X, np.ones(12)])
    step = -0.05 * (2.0 / w.sum()) * (Xt.T @ (w * (Xt @ np.zeros(4) - y)))
    np.testing.assert_allclose(np.r_[first.coef_, first.intercept_], step, rtol=1e-12)


def test_weighted_engine_equals_weighted_reference(monkeypatch):
    X, y = data(n=15)
    w = np.random.default_rng(4).uniform(0.0, 3.0, 15)
    kw = dict(lr=0.03, epochs=4, batch_size=4, momentum=0.9, exact=True)
    fast = GDRegressor(**kw).fit(X, y, sample_weight=w)
    monkeypatch.setattr(estimator, "_train", reference._fit)
    assert_same(fast, GDRegressor(**kw).fit(X, y, sample_weight=w))


def test_bad_sample_weights():
    X, y = data()
    with pytest.raises(ValueError, match="(?i)negative"):
        GDRegressor().fit(X, y, sample_weight=-np.ones(40))
    with pytest.raises(ValueError, match="zero"):
        GDRegressor().fit(X, y, sample_weight=np.zeros(40))
    with pytest.raises(ValueError):
        GDRegressor().fit(X, y, sample_weight=np.ones(39))


# -- early stopping -------------------------------------------------------------


def expected_stop(losses_after, tol, patience):
    best, count = np.inf, 0
    for epoch, loss in enumerate(losses_after):
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        if count >= patience:
            return epoch + 1
    return len(losses_after)


@pytest.mark.parametrize("tol, patience", [(1e-3, 1), (1e-3, 3), (1e-6, 5), (0.0, 2)])
def test_early_stopping_rule(tol, patience):
    X, y = data()
    full = GDRegressor(lr=0.05, epochs=300, batch_size=8, exact=True).fit(X, y)
    after = np.r_[full.loss_curve_[1:], full.loss_]
    stops = expected_stop(after, tol, patience)
    model = GDRegressor(
        lr=0.05, epochs=300, batch_size=8, exact=True, tol=tol, n_iter_no_change=patience
    ).fit(X, y)
    assert model.n_iter_ == stops < 300
    np.testing.assert_array_equal(model.loss_curve_, full.loss_curve_[:stops])


def test_early_stopping_on_the_reference(on_reference):
    X, y = data(n=15)
    kw = dict(lr=0.05, epochs=200, batch_size=4, exact=True, tol=1e-4, n_iter_no_change=2)
    on_ref = GDRegressor(**kw).fit(X, y)
    monkeypatch_free = estimator._EarlyStopping(1e-4, 2)
    fast = fastgd.fit(
        X, y, lr=0.05, epochs=200, batch_size=4, exact=True, fit_intercept=True, callback=monkeypatch_free
    )
    assert on_ref.n_iter_ == fast.epochs_run < 200
    np.testing.assert_array_equal(on_ref.coef_, fast.w)


@pytest.mark.parametrize(
    "tol, patience, error",
    [
        (-1.0, 5, ValueError),
        (float("nan"), 5, ValueError),
        ("x", 5, TypeError),
        (1e-3, 0, ValueError),
        (1e-3, 2.5, TypeError),
    ],
)
def test_bad_early_stopping_parameters(tol, patience, error):
    with pytest.raises(error, match="tol|n_iter_no_change"):
        GDRegressor(tol=tol, n_iter_no_change=patience).fit(*data())


# -- progress, callbacks, interrupts --------------------------------------------


def test_verbose_prints_the_tutorial_line(capsys):
    X, y = data(n=10, d=1)
    model = GDRegressor(lr=0.1, epochs=3, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines):
        match = re.fullmatch(r"Epoch: (\d+) w= \[(\S+)\] b= (\S+) loss (\S+)", line)
        assert match, line
        assert int(match.group(1)) == epoch
        assert float(match.group(4)) == model.loss_curve_[epoch]
    assert float(match.group(2)) == pytest.approx(model.coef_[0], abs=1e-6)
    clone(model).set_params(fit_intercept=False).partial_fit(X, y)
    assert re.fullmatch(r"Epoch: 0 w= \[\S+\] loss \S+\n", capsys.readouterr().out)
    model.partial_fit(X, y)  # partial_fit continues the epoch count
    assert capsys.readouterr().out.startswith("Epoch: 3 w= [")


def test_progress_bar(capsys):
    X, y = data(n=10)
    GDRegressor(epochs=4, progress=True).fit(X, y)
    err = capsys.readouterr().err
    assert "4/4" in err and "epoch" in err


def test_tqdm_imported_only_for_progress():
    code = """
        import sys
        import numpy as np
        from fastgd import GDRegressor
        GDRegressor(epochs=2, verbose=True, backend="numpy").fit(np.ones((3, 1)), np.ones(3))
        assert "tqdm" not in sys.modules
        GDRegressor(epochs=2, progress=True, backend="numpy").fit(np.ones((3, 1)), np.ones(3))
        assert "tqdm" in sys.modules
    """
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def test_callback_sees_parameters_and_can_stop():
    X, y = data()
    seen = []

    def checkpoint(epoch, so_far):
        seen.append((epoch, so_far.w.copy(), so_far.b, so_far.losses.copy()))
        return epoch == 5

    model = GDRegressor(epochs=50, callback=checkpoint).fit(X, y, sample_weight=np.r_[np.ones(39), 3])
    assert [s[0] for s in seen] == list(range(6)) and model.n_iter_ == 6
    np.testing.assert_array_equal(seen[-1][1], model.coef_)
    assert seen[-1][2] == model.intercept_ and seen[-1][1].shape == (3,)
    np.testing.assert_array_equal(seen[-1][3], model.loss_curve_)


@pytest.mark.parametrize("weighted", [False, True])
def test_keyboard_interrupt_keeps_the_last_completed_epoch(weighted):
    X, y = data()
    sw = np.linspace(0.5, 2.0, 40) if weighted else None

    def interrupt(epoch, so_far):
        if epoch == 4:
            raise KeyboardInterrupt

    model = GDRegressor(epochs=10, batch_size=4, momentum=0.9, callback=interrupt)
    with pytest.raises(KeyboardInterrupt) as info:
        model.fit(X, y, sample_weight=sw)
    assert isinstance(info.value, FitInterrupted)
    five = GDRegressor(epochs=5, batch_size=4, momentum=0.9).fit(X, y, sample_weight=sw)
    assert_same(model, five)
    assert model.n_iter_ == 5 and info.value.fit.epochs_run == 5
    np.testing.assert_array_equal(info.value.fit.w, five.coef_)
    assert info.value.fit.b == five.intercept_


# -- docs ---------------------------------------------------------------------


@pytest.mark.parametrize("penalised", [False, True])
def test_sgdregressor_mapping_in_docs(penalised):
    """docs/mapping.md: eta0 = 2·lr, weight_decay = 2·alpha, weights of mean 1."""
    from sklearn.linear_model import SGDRegressor

    X, y = data(n=50)
    w = np.random.default_rng(3).uniform(0.5, 1.5, 50)
    w /= w.mean()
    options = dict(penalty="l2", alpha=0.05, fit_intercept=False) if penalised else {}
    theirs = SGDRegressor(
        learning_rate="constant",
        eta0=0.02,
        shuffle=False,
        max_iter=20,
        tol=None,
        **dict(dict(penalty=None), **options),
    ).fit(X, y, sample_weight=w)
    ours = GDRegressor(
        lr=0.01, batch_size=1, epochs=20, weight_decay=0.1 if penalised else 0.0, fit_intercept=not penalised
    ).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-12, atol=1e-12)
    assert ours.intercept_ == pytest.approx(float(theirs.intercept_[0]), abs=1e-12)


def test_api_reference_is_current():
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "docs", "make_api.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert done.returncode == 0, done.stderr
