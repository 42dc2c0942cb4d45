"""SPEC §5: bad input raises a clear error naming the argument; nothing the caller
passed is ever modified; a diverging run hands back its last finite state."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd
import fastgd.reference as reference

MODULES = [reference, fastgd]
GOOD_X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.5]])
GOOD_Y = np.array([1.0, 2.0, 3.0])

BAD_DATA = [
    ("X", GOOD_X[:2], GOOD_Y, ValueError),  # shape mismatch
    ("X", np.empty((0, 2)), np.empty(0), ValueError),
    ("X", np.ones((3, 0)), GOOD_Y, ValueError),
    ("X", np.ones((3, 2, 2)), GOOD_Y, ValueError),
    ("X", np.ones(()), GOOD_Y, ValueError),
    ("X", [[1.0, np.nan], [1.0, 2.0], [3.0, 4.0]], GOOD_Y, ValueError),
    ("X", [[1.0, np.inf], [1.0, 2.0], [3.0, 4.0]], GOOD_Y, ValueError),
    ("X", [["a", "b"], ["c", "d"], ["e", "f"]], GOOD_Y, TypeError),
    ("X", np.ones((3, 2), dtype=complex), GOOD_Y, TypeError),
    ("X", [[1.0, 2.0], [3.0], [4.0, 5.0]], GOOD_Y, ValueError),  # ragged
    ("y", GOOD_X, [1.0, np.nan, 3.0], ValueError),
    ("y", GOOD_X, ["a", "b", "c"], TypeError),
    ("y", GOOD_X, np.ones((3, 2)), ValueError),
    ("y", GOOD_X, np.ones(4), ValueError),
]


@pytest.mark.parametrize("module", MODULES, ids=["reference", "fastgd"])
@pytest.mark.parametrize("name, X, y, error", BAD_DATA)
def test_bad_data(module, name, X, y, error):
    with pytest.raises(error, match=rf"\b{name}\b"):
        module.fit(X, y)


BAD_OPTIONS = [
    ("lr", dict(lr=0.0), ValueError),
    ("lr", dict(lr=-0.1), ValueError),
    ("lr", dict(lr=float("nan")), ValueError),
    ("lr", dict(lr=float("inf")), ValueError),
    ("lr", dict(lr="0.1"), TypeError),
    ("epochs", dict(epochs=-1), ValueError),
    ("epochs", dict(epochs=2.5), TypeError),
    ("batch_size", dict(batch_size=0), ValueError),
    ("batch_size", dict(batch_size=1.5), TypeError),
    ("momentum", dict(momentum=-0.1), ValueError),
    ("weight_decay", dict(weight_decay=-1e-3), ValueError),
    ("dampening", dict(dampening=1.5), ValueError),
    ("dampening", dict(dampening=-0.5), ValueError),
    ("nesterov", dict(nesterov=True), ValueError),
    ("nesterov", dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError),
    ("w0", dict(w0=[1.0, 2.0, 3.0]), ValueError),
    ("w0", dict(w0=[1.0, np.nan]), ValueError),
    ("b0", dict(b0=1.0), ValueError),
    ("b0", dict(b0=float("inf"), fit_intercept=True), ValueError),
    ("seed", dict(seed=-1, shuffle=True), ValueError),
    ("callback", dict(callback=3), TypeError),
    ("fit_intercept", dict(fit_intercept="yes"), TypeError),
]


@pytest.mark.parametrize("module", MODULES, ids=["reference", "fastgd"])
@pytest.mark.parametrize("name, kw, error", BAD_OPTIONS)
def test_bad_options(module, name, kw, error):
    with pytest.raises(error, match=rf"\b{name}\b"):
        module.fit(GOOD_X, GOOD_Y, **kw)


@pytest.mark.parametrize("module", MODULES, ids=["reference", "fastgd"])
def test_bad_function_inputs(module):
    with pytest.raises(ValueError, match=r"\bxs\b"):
        module.cost([1.0, 2.0], [1.0], 1.0)
    with pytest.raises(ValueError, match=r"\bw\b"):
        module.forward([[1.0, 2.0]], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"\bx\b"):
        module.forward([1.0, float("nan")], 2.0)
    with pytest.raises(TypeError, match=r"\bb\b"):
        module.forward(1.0, 2.0, "b")
    with pytest.raises(ValueError, match=r"\bys\b"):
        module.gradient([1.0, 2.0], [1.0, np.inf], 1.0)


@pytest.mark.parametrize("module", MODULES, ids=["reference", "fastgd"])
@pytest.mark.parametrize("batch_size", [None, 1, 2])
def test_inputs_never_modified(module, batch_size):
    X = np.asfortranarray(GOOD_X.copy())
    y = GOOD_Y.copy()
    w0 = np.array([0.5, -0.5])
    copies = [a.copy() for a in (X, y, w0)]
    module.fit(
        X,
        y,
        w0=w0,
        batch_size=batch_size,
        momentum=0.9,
        fit_intercept=True,
        b0=0.1,
        shuffle=True,
        seed=1,
        epochs=3,
    )
    module.forward(X, w0, 0.5)
    module.gradient(X, y, w0, 0.5)
    for before, after in zip(copies, (X, y, w0)):
        assert before.tobytes() == after.tobytes()


@pytest.mark.parametrize("module", MODULES, ids=["reference", "fastgd"])
@pytest.mark.parametrize("batch_size", [None, 1])
def test_divergence_keeps_last_finite_fit(module, batch_size):
    with pytest.raises(fastgd.DivergenceError) as info:
        module.fit(GOOD_X, GOOD_Y, lr=5.0, epochs=10_000, batch_size=batch_size)
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert "lr" in str(error)
    assert error.fit.epochs_run == error.epoch >= 1
    assert np.isfinite(error.fit.w).all() and np.isfinite(error.fit.loss)
    assert len(error.fit.losses) == error.epoch and np.isfinite(error.fit.losses).all()
    # The state handed back is exactly the run stopped before the breaking epoch
    # (a run that grows so fast is also told so).
    with pytest.warns(fastgd.DivergenceWarning, match="lower lr"):
        again = module.fit(GOOD_X, GOOD_Y, lr=5.0, epochs=error.epoch, batch_size=batch_size, exact=True)
    np.testing.assert_array_equal(again.w, error.fit.w)


@pytest.mark.parametrize("module", MODULES, ids=["reference", "fastgd"])
def test_interrupt_keeps_completed_epochs(module):
    def stop_at_three(epoch, so_far):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(fastgd.FitInterrupted) as info:
        module.sgd(GOOD_X, GOOD_Y, epochs=10, callback=stop_at_three, exact=True)
    assert isinstance(info.value, KeyboardInterrupt)
    again = module.sgd(GOOD_X, GOOD_Y, epochs=4, exact=True)
    assert info.value.fit.epochs_run == 4
    np.testing.assert_array_equal(info.value.fit.w, again.w)
    np.testing.assert_array_equal(info.value.fit.losses, again.losses)
