"""SPEC §7: schedules, Huber/L1 losses, averaging and decay_intercept.

Torch is the ground truth for what the options mean (nn.Linear + optim.SGD +
schedulers / HuberLoss / L1Loss / AveragedModel / a bias parameter group);
the reference is the ground truth for every backend (bit for bit with
exact=True, 1e-9 otherwise).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastgd
import fastgd.reference as reference
from fastgd import schedules
from helpers import assert_bitwise_equal, assert_close

torch = pytest.importorskip("torch")

EPOCHS = 12

SCHEDULES = {
    "step": (
        lambda lr: schedules.step(lr, step_size=3, gamma=0.5),
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    ),
    "multistep": (
        lambda lr: schedules.multistep(lr, [2, 5, 5, 9], gamma=0.3),
        lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, [2, 5, 5, 9], gamma=0.3),
    ),
    "exponential": (
        lambda lr: schedules.exponential(lr, gamma=0.9),
        lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
    ),
    "cosine": (
        lambda lr: schedules.cosine(lr, T_max=7, eta_min=0.001),
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7, eta_min=0.001),
    ),
    "cosine-to-zero": (
        lambda lr: schedules.cosine(lr, T_max=EPOCHS - 1),
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS - 1),
    ),
    "linear-warmup": (
        lambda lr: schedules.linear(lr, start_factor=0.25, total_iters=4),
        lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=4),
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_equal_torchs_get_last_lr(name):
    ours, theirs = SCHEDULES[name]
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.2)
    scheduler = theirs(optimizer)
    rate = ours(0.2)
    for epoch in range(60):
        expected = scheduler.get_last_lr()[0]
        assert rate(epoch) == pytest.approx(expected, rel=1e-12, abs=1e-300), epoch
        optimizer.step()
        scheduler.step()


def _data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ np.linspace(1.0, -1.0, d) + 0.3 + rng.standard_normal(n)  # noisy: Huber/L1 see both branches
    return X, y


def _torch_fit(
    X,
    y,
    *,
    lr,
    epochs,
    batch_size,
    momentum=0.0,
    nesterov=False,
    weight_decay=0.0,
    loss="mse",
    delta=1.0,
    average=False,
    decay_intercept=True,
    scheduler=None,
):
    n, d = X.shape
    model = torch.nn.Linear(d, 1, bias=True).double()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    if decay_intercept:
        groups = [{"params": model.parameters()}]
    else:
        groups = [{"params": [model.weight]}, {"params": [model.bias], "weight_decay": 0.0}]
    optimizer = torch.optim.SGD(
        groups, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
    )
    sched = scheduler(optimizer) if scheduler is not None else None
    criterion = {
        "mse": torch.nn.MSELoss(),
        "huber": torch.nn.HuberLoss(delta=delta),
        "l1": torch.nn.L1Loss(),
    }[loss]
    averaged = torch.optim.swa_utils.AveragedModel(model) if average else None
    start = 1 if average is True else int(average)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    batch = n if batch_size is None else batch_size
    steps = 0
    for _ in range(epochs):
        for first in range(0, n, batch):
            optimizer.zero_grad()
            criterion(model(Xt[first : first + batch]).squeeze(1), yt[first : first + batch]).backward()
            optimizer.step()
            steps += 1
            if averaged is not None and steps >= start:
                averaged.update_parameters(model)
        if sched is not None:
            sched.step()
    last = (model.weight.detach().numpy()[0].copy(), float(model.bias.detach()))
    if averaged is None:
        return last, last
    mean = averaged.module
    return (mean.weight.detach().numpy()[0].copy(), float(mean.bias.detach())), last


CASES = {
    "step-momentum": dict(schedule="step", momentum=0.9),
    "cosine-nesterov": dict(schedule="cosine-to-zero", momentum=0.8, nesterov=True),
    "warmup-decay": dict(schedule="linear-warmup", weight_decay=0.05),
    "huber": dict(loss="huber", delta=0.7),
    "huber-momentum-exponential": dict(loss="huber", delta=1.5, momentum=0.5, schedule="exponential"),
    "l1": dict(loss="l1"),
    "l1-nesterov-multistep": dict(loss="l1", momentum=0.9, nesterov=True, schedule="multistep"),
    "average": dict(average=True),
    "average-from-5-momentum": dict(average=5, momentum=0.9),
    "average-huber-cosine": dict(average=True, loss="huber", schedule="cosine"),
    "bias-group": dict(weight_decay=0.1, decay_intercept=False),
    "bias-group-momentum-l1": dict(weight_decay=0.2, decay_intercept=False, momentum=0.7, loss="l1"),
}


@pytest.mark.parametrize("batch_size", [None, 1, 8], ids=["gd", "sgd", "minibatch"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_parity(case, batch_size, cpu_backend):
    X, y = _data()
    kw = dict(CASES[case])
    schedule = kw.pop("schedule", None)
    lr = 0.01
    (w, b), (w_last, b_last) = _torch_fit(
        X,
        y,
        lr=lr,
        epochs=EPOCHS,
        batch_size=batch_size,
        scheduler=None if schedule is None else SCHEDULES[schedule][1],
        **kw,
    )
    rate = lr if schedule is None else SCHEDULES[schedule][0](lr)
    got = fastgd.fit(X, y, lr=rate, epochs=EPOCHS, batch_size=batch_size, fit_intercept=True, **kw)
    np.testing.assert_allclose(got.w, w, rtol=1e-10, atol=1e-12)
    assert got.b == pytest.approx(b, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(got.w_last, w_last, rtol=1e-10, atol=1e-12)
    assert got.b_last == pytest.approx(b_last, rel=1e-10, abs=1e-12)
    # `loss` is the cost of the returned (averaged) parameters, in the chosen loss.
    expected_loss = fastgd.cost(X, y, got.w, got.b, loss=kw.get("loss", "mse"), delta=kw.get("delta", 1.0))
    assert got.loss == pytest.approx(expected_loss, rel=1e-12)


@pytest.mark.parametrize("loss", ["huber", "l1"])
def test_cost_and_gradient_are_torchs(loss):
    X, y = _data(n=30, d=2, seed=3)
    w, b = np.array([0.4, -0.2]), 0.1
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    criterion = torch.nn.HuberLoss(delta=0.8) if loss == "huber" else torch.nn.L1Loss()
    value = criterion(Xt @ wt + bt, yt)
    value.backward()
    for module in (fastgd, reference):
        assert module.cost(X, y, w, b, loss=loss, delta=0.8) == pytest.approx(
            float(value.detach()), rel=1e-14
        )
        dw, db = module.gradient(X, y, w, b, loss=loss, delta=0.8)
        np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=1e-13)
        assert db == pytest.approx(float(bt.grad), rel=1e-13)
        per_sample = module.loss(X, y, w, b, loss=loss, delta=0.8)
        reduction = (
            torch.nn.HuberLoss(delta=0.8, reduction="none")
            if loss == "huber"
            else torch.nn.L1Loss(reduction="none")
        )
        np.testing.assert_allclose(per_sample, reduction(Xt @ wt + bt, yt).detach().numpy(), rtol=1e-14)


# -- every backend against the reference ------------------------------------------------------

GRID = {
    "cosine": dict(lr=schedules.cosine(0.005, T_max=3)),
    "sequence-with-zero": dict(lr=[0.005, 0.0, 0.003, 0.001]),
    "huber": dict(loss="huber", delta=0.5, momentum=0.5),
    "l1": dict(loss="l1", weight_decay=0.01),
    "average": dict(average=True, momentum=0.6),
    "average-from-100": dict(average=100),
    "no-bias-decay": dict(weight_decay=0.1, decay_intercept=False, momentum=0.3),
    "everything": dict(
        lr=schedules.step(0.005, 2),
        loss="huber",
        average=7,
        weight_decay=0.05,
        decay_intercept=False,
        momentum=0.6,
        nesterov=True,
    ),
}


@pytest.mark.parametrize("batch_size", [None, 1, 16], ids=["gd", "sgd", "minibatch"])
@pytest.mark.parametrize("case", sorted(GRID))
@pytest.mark.parametrize("shape", ["scalar", "features"])
def test_backends_equal_the_reference(case, batch_size, shape, cpu_backend):
    """Exact mode bit for bit; default mode (blocked, lanes: 5,000 samples span
    several blocks) within 1e-9."""
    X, y = _data(n=5_000, d=1 if shape == "scalar" else 9, seed=7)
    if shape == "scalar":
        X = X[:, 0]
    kw = dict(lr=0.005, epochs=4, batch_size=batch_size, fit_intercept=shape == "features")
    kw.update(GRID[case])
    if kw.get("decay_intercept") is False:
        kw["fit_intercept"] = True
    expected = reference.fit(X, y, **kw)
    assert_bitwise_equal(fastgd.fit(X, y, exact=True, **kw), expected)
    default = fastgd.fit(X, y, **kw)
    assert_close(default, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(default.w_last, expected.w_last, rtol=1e-9, atol=1e-12)


OPTION_VALUES = st.fixed_dictionaries(
    {
        "loss": st.sampled_from(["mse", "huber", "l1"]),
        "delta": st.floats(0.1, 3.0),
        "average": st.one_of(st.booleans(), st.integers(0, 20)),
        "decay_intercept": st.booleans(),
        "weight_decay": st.sampled_from([0.0, 0.03]),
        "momentum": st.sampled_from([0.0, 0.5]),
        "batch_size": st.sampled_from([None, 1, 3, 7]),
        "rates": st.lists(st.floats(0.0, 0.05), min_size=3, max_size=3),
    }
)


@settings(max_examples=40, deadline=None)
@given(options=OPTION_VALUES, seed=st.integers(0, 1000))
def test_hypothesis_options_against_the_reference(options, seed):
    X, y = _data(n=23, d=2, seed=seed)
    kw = dict(options)
    kw["lr"] = kw.pop("rates")
    kw.update(epochs=3, fit_intercept=True)
    expected = reference.fit(X, y, **kw)
    for name in ("numba", "cython", "numpy"):
        if not {info.name: info.available for info in fastgd.backends()}[name]:
            continue
        with fastgd.use(name):
            assert_bitwise_equal(fastgd.fit(X, y, exact=True, **kw), expected)


def test_schedule_is_evaluated_ahead_and_once_per_epoch():
    calls = []

    def rate(epoch):
        calls.append(epoch)
        return 0.1 / (1 + epoch)

    x, y = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]
    fastgd.gd(x, y, lr=rate, epochs=50)
    assert calls == list(range(50))
    calls.clear()
    fastgd.gd(x, y, lr=rate, epochs=5, callback=lambda e, f: e == 2)
    assert calls == [0, 1, 2]


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
def test_option_errors_name_the_option(module):
    x, y = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]
    for kw, name in [
        (dict(lr=[0.1, 0.1], epochs=3), "lr"),
        (dict(lr=[0.1, -0.1], epochs=2), "lr"),
        (dict(lr=[0.1, math.nan], epochs=2), "lr"),
        (dict(lr=lambda e: -1.0, epochs=2), "lr"),
        (dict(lr=lambda e: "fast", epochs=2), "lr"),
        (dict(lr=0.0), "lr"),
        (dict(loss="mae"), "loss"),
        (dict(loss="huber", delta=0.0), "delta"),
        (dict(average=-1), "average"),
        (dict(average=1.5), "average"),
        (dict(decay_intercept="no"), "decay_intercept"),
        (dict(solver="newton"), "solver"),
        (dict(solver="gram", exact=True), "solver"),
    ]:
        with pytest.raises((ValueError, TypeError), match=name):
            module.fit(x, y, **kw)


def test_averaging_before_its_first_step_returns_the_iterate():
    x, y = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]
    late = fastgd.sgd(x, y, lr=0.01, epochs=2, average=100)  # 6 steps: the average never starts
    plain = fastgd.sgd(x, y, lr=0.01, epochs=2)
    assert late.w == plain.w == late.w_last and late.loss == plain.loss


def test_cuda_refuses_what_it_does_not_run():
    cuda_kernels = pytest.importorskip("fastgd.kernels.cuda_kernels")
    from fastgd import _checks

    base = dict(lr=0.1, epochs=1, weight_decay=0.1)
    for extra, name in [
        (dict(loss="huber"), "loss"),
        (dict(average=True), "average"),
        (dict(decay_intercept=False), "decay_intercept"),
    ]:
        with pytest.raises(ValueError, match=name):
            cuda_kernels.check_options(_checks.options(**base, **extra))
    cuda_kernels.check_options(_checks.options(**dict(base, lr=[0.1])))  # schedules run


@pytest.mark.parametrize(
    "kw",
    [
        dict(loss="huber", delta=0.5, lr=0.05),
        dict(loss="l1", batch_size=4, lr=schedules.exponential(0.05, 0.9)),
        dict(average=True, batch_size=1, lr=0.01),
        dict(weight_decay=0.1, decay_intercept=False, lr=[0.05] * 5 + [0.01] * 15),
    ],
    ids=["huber", "l1-schedule", "average", "bias-group-sequence"],
)
def test_gdregressor_exposes_the_options(kw):
    pytest.importorskip("sklearn")
    X, y = _data()
    model = fastgd.GDRegressor(epochs=20, **kw).fit(X, y)
    fit_kw = dict(kw, epochs=20, fit_intercept=True)
    expected = fastgd.fit(X, y, **fit_kw)
    np.testing.assert_array_equal(model.coef_, expected.w)
    assert model.intercept_ == expected.b and model.loss_ == expected.loss
    np.testing.assert_array_equal(model.loss_curve_, expected.losses)


def test_gdregressor_refuses_weights_with_other_losses():
    pytest.importorskip("sklearn")
    X, y = _data()
    with pytest.raises(ValueError, match="sample_weight needs loss='mse'"):
        fastgd.GDRegressor(loss="l1").fit(X, y, sample_weight=np.linspace(1, 2, len(y)))
