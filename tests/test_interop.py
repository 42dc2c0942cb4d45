"""Inputs from torch, pandas and any ``__array__`` object reach the kernels
without copies where the memory layout allows; Fit as a dict and a repr."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastgd
from fastgd import GDRegressor, _engine

pd = pytest.importorskip("pandas", reason="pandas is a test dependency")
torch = pytest.importorskip("torch", reason="torch is a test dependency")


@pytest.fixture
def received(monkeypatch):
    """The arrays that the epoch loop hands to the kernels, per fit."""
    seen = []
    run = _engine.run

    def spy(problem, *args, **kwargs):
        seen.append((problem.X, problem.y))
        return run(problem, *args, **kwargs)

    monkeypatch.setattr(_engine, "run", spy)
    return seen


def data(n=30, d=3, dtype=np.float64):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, d))
    return X.astype(dtype), (X @ np.arange(1.0, d + 1) + 0.25).astype(dtype)


class ArrayLike:
    """Any object with ``__array__``."""

    def __init__(self, array):
        self.array = array

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype, copy=False)


def fit_both(X, y):
    """fastgd.fit and GDRegressor on the same input."""
    return (
        fastgd.fit(X, y, lr=0.05, epochs=5, fit_intercept=True, exact=True),
        GDRegressor(lr=0.05, epochs=5, exact=True).fit(X, y),
    )


def check_against_numpy(fit, model, X, y):
    expected_fit, expected_model = fit_both(X, y)
    np.testing.assert_array_equal(fit.w, expected_fit.w)
    np.testing.assert_array_equal(model.coef_, expected_model.coef_)
    assert model.intercept_ == expected_model.intercept_


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_tensors_are_not_copied(received, dtype):
    X, y = data(dtype=dtype)
    Xt, yt = torch.from_numpy(X.copy()), torch.from_numpy(y.copy())
    fit, model = fit_both(Xt, yt)
    for kernel_X, kernel_y in received:
        assert kernel_X.dtype == dtype
        assert np.shares_memory(kernel_X, Xt.numpy()) and np.shares_memory(kernel_y, yt.numpy())
    assert model.coef_.dtype == dtype
    np.testing.assert_array_equal(model.predict(Xt), model.predict(X))
    check_against_numpy(fit, model, X, y)


def test_torch_tensors_that_require_grad(received):
    X, y = data()
    Xt = torch.from_numpy(X.copy()).requires_grad_(True)
    yt = torch.from_numpy(y.copy()).requires_grad_(True)
    fit, model = fit_both(Xt, yt)
    assert np.shares_memory(received[0][0], Xt.detach().numpy())
    check_against_numpy(fit, model, X, y)
    assert not Xt.grad_fn and Xt.grad is None  # nothing recorded on the autograd tape


def test_torch_sample_weight():
    X, y = data()
    w = np.linspace(0.5, 2.0, X.shape[0])
    a = GDRegressor(epochs=5).fit(torch.from_numpy(X), torch.from_numpy(y), sample_weight=torch.from_numpy(w))
    b = GDRegressor(epochs=5).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_pandas_objects(received):
    X, y = data()
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    series = pd.Series(y, name="target")
    fit, model = fit_both(frame, series)
    # A Series is one contiguous column: never copied. A DataFrame's block is
    # stored column by column (Fortran order), so the C-ordered matrix the
    # kernels read is one copy of it.
    for kernel_X, kernel_y in received:
        assert np.shares_memory(kernel_y, series.to_numpy())
        assert kernel_X.flags.c_contiguous
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    check_against_numpy(fit, model, X, y)
    np.testing.assert_allclose(model.predict(frame), X @ model.coef_ + model.intercept_, rtol=1e-12)


def test_single_column_frame_is_not_copied(received):
    X, y = data(d=1)
    frame = pd.DataFrame({"x": X[:, 0]})
    GDRegressor(epochs=2).fit(frame, pd.Series(y))
    assert np.shares_memory(received[0][0], frame.to_numpy())


def test_array_like_objects_are_not_copied(received):
    X, y = data()
    fit, model = fit_both(ArrayLike(X), ArrayLike(y))
    for kernel_X, kernel_y in received:
        assert np.shares_memory(kernel_X, X) and np.shares_memory(kernel_y, y)
    check_against_numpy(fit, model, X, y)


def test_fortran_order_is_copied_once_and_caller_arrays_untouched(received):
    X, y = data()
    F = np.asfortranarray(X)
    before = F.copy()
    GDRegressor(epochs=3).fit(F, y)
    assert received[0][0].flags.c_contiguous and not np.shares_memory(received[0][0], F)
    np.testing.assert_array_equal(F, before)


def test_fit_to_dict_and_repr():
    X, y = data()
    result = fastgd.fit(X, y, lr=0.05, epochs=4, fit_intercept=True)
    as_dict = result.to_dict()
    assert set(as_dict) == {"w", "b", "losses", "loss", "epochs_run", "backend", "w_last", "b_last"}
    np.testing.assert_array_equal(as_dict["w"], result.w)
    assert as_dict["b"] == result.b and as_dict["epochs_run"] == 4
    assert as_dict["losses"].shape == (4,)
    text = repr(result)
    assert text.startswith("Fit(w=[") and f"epochs_run=4, backend={result.backend!r})" in text
    assert f"loss={result.loss:.6g}" in text and "\n" not in text
    scalar = fastgd.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], lr=0.1, epochs=3)
    assert repr(scalar).startswith(f"Fit(w={scalar.w}, b=None, ")
    wide = fastgd.fit(np.ones((3, 50)), np.ones(3), epochs=1)
    assert "..." in repr(wide)  # long weight vectors are summarised
    again = pickle.loads(pickle.dumps(result))
    assert repr(again) == text
