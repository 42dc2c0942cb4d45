"""fastgd.SGDRegressor against scikit-learn's SGDRegressor (SPEC §9) and
against its own pure-Python oracle, fastgd.reference.SGDRegressor."""

from __future__ import annotations

import itertools
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import SGDRegressor as SkSGDRegressor  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import fastgd  # noqa: E402
from fastgd import _registry, reference  # noqa: E402
from fastgd.kernels import sgd_regressor_layout as layout  # noqa: E402
from fastgd.sgd_regressor import InvalidParameterError  # noqa: E402

BACKENDS = [name for name in ("numba", "cython", "numpy") if _registry.load(name)[0] is not None]
LOSSES = ["squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"]
PENALTIES = ["l2", "l1", "elasticnet", None]
RATES = ["constant", "optimal", "invscaling", "adaptive"]


def _data(n=40, d=3, seed=0, sparsity=0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if sparsity:
        X[rng.random(X.shape) < sparsity] = 0.0
    y = X @ rng.normal(size=d) + 0.3 + 0.1 * rng.normal(size=n)
    return X, y


def _params(model):
    return np.concatenate(
        [np.asarray(model.coef_, dtype=np.float64), np.asarray(model.intercept_, dtype=np.float64)]
    )


def assert_same_model(expected, got, rtol=1e-9):
    """coef_ and intercept_ to ``rtol`` (relative, per entry); n_iter_ and t_ exactly."""
    a, b = _params(expected), _params(got)
    scale = np.maximum(np.abs(a), 1e-12)
    assert np.all(np.abs(a - b) <= rtol * scale), (a, b)
    assert got.n_iter_ == expected.n_iter_
    assert got.t_ == expected.t_
    assert got.intercept_.shape == (1,)


def _quiet():
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("ignore", ConvergenceWarning)
    return context


GRID = list(itertools.product(LOSSES, PENALTIES, RATES, [False, True, 7], [True, False], [None, 1e-3]))


# The numpy backend runs the reference's loop: a third of the grid covers it.
CASES = [
    (backend, *case)
    for backend in BACKENDS
    for case in GRID
    if backend != "numpy" or (case[3] != 7 and case[1] != "elasticnet")
]


@pytest.mark.parametrize("backend,loss,penalty,learning_rate,average,fit_intercept,tol", CASES)
def test_parity_with_scikit_learn(backend, loss, penalty, learning_rate, average, fit_intercept, tol):
    X, y = _data()
    kwargs = dict(
        loss=loss,
        penalty=penalty,
        learning_rate=learning_rate,
        average=average,
        fit_intercept=fit_intercept,
        tol=tol,
        shuffle=False,
        max_iter=25,
        alpha=0.01,
    )
    context = _quiet()
    try:
        expected = SkSGDRegressor(**kwargs).fit(X, y)
        got = fastgd.SGDRegressor(backend=backend, **kwargs).fit(X, y)
    finally:
        context.__exit__(None, None, None)
    assert_same_model(expected, got)


@pytest.mark.parametrize(
    "loss,penalty,learning_rate",
    [
        ("squared_error", "l2", "invscaling"),
        ("huber", "elasticnet", "optimal"),
        ("epsilon_insensitive", "l1", "constant"),
        ("squared_epsilon_insensitive", None, "adaptive"),
    ],
)
def test_reference_matches_scikit_learn(loss, penalty, learning_rate):
    X, y = _data(n=30)
    kwargs = dict(
        loss=loss, penalty=penalty, learning_rate=learning_rate, shuffle=False, average=3, alpha=0.01
    )
    assert_same_model(SkSGDRegressor(**kwargs).fit(X, y), reference.SGDRegressor(**kwargs).fit(X, y))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("d", [3, 9])
def test_backends_equal_the_reference_with_shuffling(backend, d):
    # fastgd's own permutation: the same visiting order on every backend.
    X, y = _data(n=50, d=d, seed=3)
    kwargs = dict(random_state=11, penalty="elasticnet", average=True, max_iter=8, tol=None)
    expected = reference.SGDRegressor(**kwargs).fit(X, y)
    got = fastgd.SGDRegressor(backend=backend, **kwargs).fit(X, y)
    if d < 8:  # below LANES_MIN_FEATURES the kernels keep the reference's (scikit-learn's) order
        np.testing.assert_array_equal(_params(got), _params(expected))
    assert_same_model(expected, got, rtol=1e-12)
    other = fastgd.SGDRegressor(backend=backend, **dict(kwargs, random_state=12)).fit(X, y)
    assert not np.array_equal(_params(other), _params(got))  # the seed decides the order


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("penalty,average", [("l2", False), ("elasticnet", True), ("l1", 5)])
def test_sample_weight_partial_fit_warm_start(backend, penalty, average):
    X, y = _data(n=60, d=4, seed=1)
    sw = np.random.default_rng(2).random(60) * 2
    kwargs = dict(shuffle=False, penalty=penalty, average=average, alpha=0.001)
    make = lambda **k: fastgd.SGDRegressor(backend=backend, **kwargs, **k)  # noqa: E731
    assert_same_model(
        SkSGDRegressor(**kwargs).fit(X, y, sample_weight=sw), make().fit(X, y, sample_weight=sw)
    )
    expected, got = SkSGDRegressor(**kwargs), make()
    for chunk in np.array_split(np.arange(60), 4):
        expected.partial_fit(X[chunk], y[chunk], sample_weight=sw[chunk])
        got.partial_fit(X[chunk], y[chunk], sample_weight=sw[chunk])
        assert_same_model(expected, got)
    start = np.array([0.5, -0.5, 1.0, 2.0])
    given_start = start.copy()
    assert_same_model(
        SkSGDRegressor(**kwargs).fit(X, y, coef_init=start.copy(), intercept_init=0.2),
        make().fit(X, y, coef_init=given_start, intercept_init=0.2),
    )
    np.testing.assert_array_equal(given_start, start)  # scikit-learn writes into it; fastgd never
    context = _quiet()
    try:
        expected = SkSGDRegressor(warm_start=True, max_iter=3, **kwargs)
        got = make(warm_start=True, max_iter=3)
        for _ in range(2):
            expected.fit(X, y)
            got.fit(X, y)
    finally:
        context.__exit__(None, None, None)
    assert_same_model(expected, got)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_sparse_input(backend, fmt, index_dtype):
    # scikit-learn's sparse path: steps touch only a row's stored entries and
    # the intercept moves by 1/100 of a step.
    X, y = _data(n=60, d=5, seed=4, sparsity=0.6)
    X[7] = 0.0  # an empty row
    Xs = sp.csr_matrix(X).asformat(fmt)
    if fmt == "csr":
        Xs.indices = Xs.indices.astype(index_dtype)
        Xs.indptr = Xs.indptr.astype(index_dtype)
    kwargs = dict(shuffle=False, penalty="elasticnet", average=True)
    expected = SkSGDRegressor(**kwargs).fit(sp.csr_matrix(X), y)
    got = fastgd.SGDRegressor(backend=backend, **kwargs).fit(Xs, y)
    assert_same_model(expected, got)
    np.testing.assert_allclose(got.predict(Xs), expected.predict(X), rtol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_trains_as_float32(backend):
    X, y = _data(n=50, d=4)
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    kwargs = dict(shuffle=False, average=True, penalty="elasticnet", tol=None, max_iter=10)
    expected = SkSGDRegressor(**kwargs).fit(X32, y32)
    got = fastgd.SGDRegressor(backend=backend, **kwargs).fit(X32, y32)
    assert got.coef_.dtype == np.float32 and got.intercept_.dtype == np.float32
    assert_same_model(expected, got, rtol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stopping(backend):
    # Without a penalty the weights' scale stays 1, so the validation score is
    # scikit-learn's to the bit (with L2 fastgd scores the scaled weights).
    X, y = _data(n=200, d=3, seed=5)
    kwargs = dict(
        early_stopping=True,
        validation_fraction=0.2,
        random_state=4,
        penalty=None,
        shuffle=False,
        n_iter_no_change=3,
        learning_rate="adaptive",
    )
    assert_same_model(
        SkSGDRegressor(**kwargs).fit(X, y), fastgd.SGDRegressor(backend=backend, **kwargs).fit(X, y)
    )


def test_convergence_warning_and_n_iter():
    X, y = _data()
    with pytest.warns(ConvergenceWarning):
        model = fastgd.SGDRegressor(max_iter=2).fit(X, y)
    assert model.n_iter_ == 2 and model.t_ == 2 * 40 + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fastgd.SGDRegressor(max_iter=2, tol=None).fit(X, y)


def test_overflow_raises_and_keeps_the_last_finite_epoch():
    X, y = _data()
    X = X * 1e150  # x·w of mixed signs overflows to inf - inf = nan in the first epochs
    model = fastgd.SGDRegressor(learning_rate="constant", eta0=1.0, penalty=None, shuffle=False)
    with pytest.raises(ValueError, match="Floating-point under-/overflow"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="Floating-point under-/overflow"):
        SkSGDRegressor(learning_rate="constant", eta0=1.0, penalty=None, shuffle=False).fit(X, y)
    assert np.all(np.isfinite(model.coef_)) and np.isfinite(model.intercept_[0])


@pytest.mark.parametrize(
    "name,value",
    [
        ("alpha", -1.0),
        ("loss", "hinge"),
        ("penalty", "l3"),
        ("learning_rate", "fast"),
        ("eta0", 0.0),
        ("max_iter", 0),
        ("tol", -1.0),
        ("l1_ratio", 1.5),
        ("average", 0),
        ("validation_fraction", 1.0),
        ("n_iter_no_change", 0),
        ("shuffle", 1),
        ("epsilon", -0.1),
        ("verbose", -1),
        ("random_state", "a"),
    ],
)
def test_invalid_parameters_name_the_parameter(name, value):
    X, y = _data()
    with pytest.raises(InvalidParameterError, match=repr(name)):
        fastgd.SGDRegressor(**{name: value}).fit(X, y)
    with pytest.raises(ValueError, match=repr(name)):  # also a ValueError, as scikit-learn's
        fastgd.SGDRegressor(**{name: value}).fit(X, y)


def test_other_errors():
    X, y = _data()
    with pytest.raises(ValueError, match="alpha must be > 0"):
        fastgd.SGDRegressor(learning_rate="optimal", alpha=0.0).fit(X, y)
    with pytest.raises(ValueError, match="l1_ratio must be set"):
        fastgd.SGDRegressor(penalty="elasticnet", l1_ratio=None).fit(X, y)
    with pytest.raises(ValueError, match="early_stopping should be False"):
        fastgd.SGDRegressor(early_stopping=True).partial_fit(X, y)
    with pytest.raises(ValueError, match="coef_init"):
        fastgd.SGDRegressor().fit(X, y, coef_init=np.zeros(5))
    with pytest.raises(ValueError, match="features"):
        fastgd.SGDRegressor().fit(X, y).predict(X[:, :2])
    with pytest.raises(ValueError):
        fastgd.SGDRegressor().fit(np.where(X > 1, np.nan, X), y)


def test_caller_arrays_are_not_written():
    X, y = _data()
    X0, y0 = X.copy(), y.copy()
    model = fastgd.SGDRegressor(average=True, penalty="elasticnet").fit(X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    coef = model.coef_.copy()
    model.partial_fit(X, y)
    assert not np.array_equal(coef, model.coef_)


@pytest.mark.parametrize("cls", [fastgd.SGDRegressor, reference.SGDRegressor])
def test_pickle_round_trip(cls):
    X, y = _data()
    model = cls(average=True, shuffle=False).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    again.partial_fit(X, y)
    model.partial_fit(X, y)
    np.testing.assert_array_equal(again.coef_, model.coef_)


def test_verbose_prints_scikit_learns_lines(capsys):
    X, y = _data()
    fastgd.SGDRegressor(verbose=1, max_iter=3, tol=None).fit(X, y)
    out = capsys.readouterr().out
    assert out.count("-- Epoch") == 3 and "Avg. loss:" in out and "Objective:" in out


# Both SGD implementations fail these two checks: a weighted step is not the
# same as repeating a sample (scikit-learn's own SGDRegressor fails them too).
SAMPLE_WEIGHT_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": "SGD steps: weights are not repetitions",
    "check_sample_weight_equivalence_on_sparse_data": "SGD steps: weights are not repetitions",
}


@pytest.mark.parametrize("cls", [fastgd.SGDRegressor, reference.SGDRegressor])
def test_check_estimator(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(cls(), on_fail=None, expected_failed_checks=SAMPLE_WEIGHT_CHECKS)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
    assert sum(r["status"] == "passed" for r in results) >= 50


def test_scikit_learn_fails_the_same_sample_weight_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(SkSGDRegressor(), on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    assert failed == set(SAMPLE_WEIGHT_CHECKS)


def test_layout_slots_are_distinct():
    for prefix, size in (("C_", layout.CONFIG_SIZE), ("S_", layout.STATE_SIZE)):
        slots = [v for k, v in vars(layout).items() if k.startswith(prefix)]
        assert sorted(slots) == list(range(size))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 30),
    d=st.integers(1, 10),
    seed=st.integers(0, 2**16),
    loss=st.sampled_from(LOSSES),
    penalty=st.sampled_from(PENALTIES),
    rate=st.sampled_from(RATES),
    average=st.sampled_from([False, True, 3]),
    shuffle=st.booleans(),
    alpha=st.sampled_from([1e-4, 0.01, 0.3]),
)
def test_kernels_agree_with_the_oracle(n, d, seed, loss, penalty, rate, average, shuffle, alpha):
    X, y = _data(n=n, d=d, seed=seed)
    kwargs = dict(
        loss=loss,
        penalty=penalty,
        learning_rate=rate,
        average=average,
        shuffle=shuffle,
        alpha=alpha,
        random_state=seed,
        max_iter=6,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = reference.SGDRegressor(**kwargs).fit(X, y)
        except ValueError:  # overflow: the kernels must say so too
            for backend in BACKENDS:
                with pytest.raises(ValueError):
                    fastgd.SGDRegressor(backend=backend, **kwargs).fit(X, y)
            return
        for backend in BACKENDS:
            assert_same_model(expected, fastgd.SGDRegressor(backend=backend, **kwargs).fit(X, y), rtol=1e-9)


def test_cython_enum_mirrors_the_layout():
    extension = pytest.importorskip("fastgd_ext._sgd_regressor")
    expected = {k: v for k, v in vars(layout).items() if k[:2] in ("C_", "S_")}
    assert extension.LAYOUT == expected


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
@pytest.mark.parametrize(
    "penalty,learning_rate,fit_intercept,weighted",
    [
        ("l2", "invscaling", True, False),
        (None, "constant", True, True),
        ("l2", "optimal", False, False),
        ("l2", "adaptive", True, True),
        (None, "invscaling", False, True),
    ],
)
def test_one_feature_affine_path_matches_scikit_learn(
    backend, penalty, learning_rate, fit_intercept, weighted
):
    # From AFFINE_MIN_SAMPLES rows, one-feature squared-error SGD runs as
    # composed block maps: within rounding of scikit-learn's steps.
    rng = np.random.default_rng(6)
    n = 20_000
    X = rng.normal(size=(n, 1))
    y = 1.5 * X[:, 0] - 0.5 + 0.2 * rng.normal(size=n)
    sw = rng.random(n) * 2 if weighted else None
    kwargs = dict(
        penalty=penalty,
        learning_rate=learning_rate,
        fit_intercept=fit_intercept,
        shuffle=False,
        max_iter=30,
        tol=1e-4,
    )
    context = _quiet()
    try:
        expected = SkSGDRegressor(**kwargs).fit(X, y, sample_weight=sw)
        got = fastgd.SGDRegressor(backend=backend, **kwargs).fit(X, y, sample_weight=sw)
    finally:
        context.__exit__(None, None, None)
    assert_same_model(expected, got)


def test_affine_path_is_the_same_on_numba_and_cython_and_falls_back_at_the_clip():
    if not {"numba", "cython"} <= set(BACKENDS):
        pytest.skip("needs both compiled backends")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(20_000, 1))
    y = 3.0 * X[:, 0] + rng.normal(size=20_000)
    kwargs = dict(shuffle=True, random_state=2, penalty="l2")
    a = fastgd.SGDRegressor(backend="numba", **kwargs).fit(X, y)
    b = fastgd.SGDRegressor(backend="cython", **kwargs).fit(X, y)
    np.testing.assert_array_equal(_params(a), _params(b))
    # Residuals beyond 1e12 clip the derivative: no longer affine, so those
    # epochs go step by step (and stay scikit-learn's).
    y_far = y * 1e13
    kwargs = dict(shuffle=False, learning_rate="constant", eta0=1e-3, penalty=None, max_iter=3, tol=None)
    expected = SkSGDRegressor(**kwargs).fit(X, y_far)
    for backend in ("numba", "cython"):
        assert_same_model(expected, fastgd.SGDRegressor(backend=backend, **kwargs).fit(X, y_far))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("penalty", ["l2", "elasticnet", None])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_many_features_lanes_match_scikit_learn(backend, penalty, dtype, rtol):
    # From LANES_MIN_FEATURES features the kernels sum in SIMD lanes: within rounding.
    X, y = _data(n=300, d=19, seed=8)
    X, y = X.astype(dtype), y.astype(dtype)
    kwargs = dict(penalty=penalty, shuffle=False, average=penalty == "elasticnet")
    assert_same_model(
        SkSGDRegressor(**kwargs).fit(X, y),
        fastgd.SGDRegressor(backend=backend, **kwargs).fit(X, y),
        rtol=rtol,
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_x_is_refused_and_nothing_is_kept(backend, bad):
    # X's finite check runs once an epoch ends non-finite: the same error as scikit-learn's, the
    # same state (a fresh model stays unfitted, a fitted one unchanged).
    X, y = _data(n=50, d=3)
    X_bad = X.copy()
    X_bad[17, 1] = bad
    message = "Input X contains (NaN|infinity)"
    fresh = fastgd.SGDRegressor(backend=backend)
    with pytest.raises(ValueError, match=message):
        fresh.fit(X_bad, y)
    assert not hasattr(fresh, "coef_")
    fitted = fastgd.SGDRegressor(backend=backend).fit(X, y)
    coef, intercept = fitted.coef_.copy(), fitted.intercept_.copy()
    with pytest.raises(ValueError, match=message):
        fitted.partial_fit(X_bad, y)
    np.testing.assert_array_equal(fitted.coef_, coef)
    np.testing.assert_array_equal(fitted.intercept_, intercept)
    with pytest.raises(ValueError, match=message):
        fastgd.SGDRegressor(backend=backend).fit(sp.csr_matrix(X_bad), y)
    with pytest.raises(ValueError, match=message):  # checked up front with early stopping
        fastgd.SGDRegressor(backend=backend, early_stopping=True).fit(X_bad, y)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss,penalty", list(itertools.product(LOSSES, PENALTIES)))
def test_chaotic_fits_on_many_features_stay_scikit_learns(backend, loss, penalty):
    # "optimal" at the default alpha on unscaled data starts with steps of ~10:
    # the first epochs grow chaotically and any change of operation order would
    # show as differences of order 1. The parameters keep scikit-learn's bits.
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=100, n_features=10, noise=1.0, random_state=0)
    kwargs = dict(loss=loss, penalty=penalty, learning_rate="optimal", shuffle=False, max_iter=50)
    context = _quiet()
    try:
        expected = SkSGDRegressor(**kwargs).fit(X, y)
        got = fastgd.SGDRegressor(backend=backend, **kwargs).fit(X, y)
    finally:
        context.__exit__(None, None, None)
    assert_same_model(expected, got)
