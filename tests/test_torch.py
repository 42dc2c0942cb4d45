"""Parity with PyTorch: torch.optim.SGD over nn.Linear with nn.MSELoss, float64."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd
import fastgd.reference as reference

torch = pytest.importorskip("torch", reason="torch is not installed (CI installs torch==2.13.0 CPU)")

OPTIMIZERS = [
    {},
    {"momentum": 0.9},
    {"momentum": 0.9, "nesterov": True},
    {"momentum": 0.6, "dampening": 0.4},
    {"weight_decay": 0.05},
    {"momentum": 0.5, "dampening": 0.1, "weight_decay": 0.02},
]


def torch_fit(X, y, *, lr, epochs, batch_size, fit_intercept, **options):
    """The PyTorch loop a user writes: returns weights, bias and per-epoch start losses."""
    n, d = X.shape
    model = torch.nn.Linear(d, 1, bias=fit_intercept, dtype=torch.float64)
    with torch.no_grad():
        model.weight.zero_()
        if fit_intercept:
            model.bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, **options)
    criterion = torch.nn.MSELoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1)
    batch = n if batch_size is None else batch_size
    losses = []
    for _ in range(epochs):
        with torch.no_grad():
            losses.append(criterion(model(Xt), yt).item())
        for start in range(0, n, batch):
            optimizer.zero_grad()
            criterion(model(Xt[start : start + batch]), yt[start : start + batch]).backward()
            optimizer.step()
    w = model.weight.detach().numpy().ravel().copy()
    b = model.bias.item() if fit_intercept else None
    return w, b, np.array(losses)


@pytest.mark.parametrize("options", OPTIMIZERS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize("batch_size", [None, 1, 7])
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
def test_matches_torch_sgd(module, options, batch_size, fit_intercept):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((23, 3))
    y = X @ np.array([0.5, -1.0, 2.0]) + 0.7 + 0.05 * rng.standard_normal(23)
    kw = dict(lr=0.03, epochs=5, batch_size=batch_size, fit_intercept=fit_intercept, **options)
    w, b, losses = torch_fit(X, y, **kw)
    result = module.fit(X, y, **kw)
    np.testing.assert_allclose(result.w, w, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(result.losses, losses, rtol=1e-10, atol=1e-13)
    if fit_intercept:
        assert result.b == pytest.approx(b, rel=1e-10, abs=1e-13)
    else:
        assert result.b is None
