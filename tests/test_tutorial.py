"""The tutorial's own loops, written out as published, against fastgd.reference,
fastgd and `fastgd demo` (SPEC §3: digit for digit)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import fastgd
import fastgd.reference as reference
from fastgd import datasets


def tutorial_gd_lines():
    """The tutorial's full-batch program, verbatim but for print → list."""
    x_data = [1.0, 2.0, 3.0]
    y_data = [2.0, 4.0, 6.0]
    w = 1.0

    def forward(x):
        return x * w

    def cost(xs, ys):
        cost = 0
        for x, y in zip(xs, ys):
            y_pred = forward(x)
            cost += (y_pred - y) ** 2
        return cost / len(xs)

    def gradient(xs, ys):
        grad = 0
        for x, y in zip(xs, ys):
            grad += 2 * x * (x * w - y)
        return grad / len(xs)

    out = ["Predict (before training) %r %r" % (4, forward(4))]
    for epoch in range(100):
        cost_val = cost(x_data, y_data)
        grad_val = gradient(x_data, y_data)
        w -= 0.1 * grad_val
        out.append("Epoch: %r w= %r loss %r" % (epoch, w, cost_val))
    out.append("Predict (after train) %r %r" % (4, forward(4)))
    return out


def tutorial_sgd_weights(lr=0.1, epochs=100):
    """The tutorial's per-sample loop (with its `grad_val` typo read as `grad`)."""
    x_data = [1.0, 2.0, 3.0]
    y_data = [2.0, 4.0, 6.0]
    w = 1.0
    weights = []
    for _epoch in range(epochs):
        for x, y in zip(x_data, y_data):
            grad = 2 * x * (x * w - y)
            w = w - lr * grad
        weights.append(w)
    return weights


def test_dataset_is_the_tutorials():
    assert datasets.tutorial() == ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
def test_gd_reproduces_tutorial_digit_for_digit(module):
    expected = tutorial_gd_lines()
    ws = []
    x, y = datasets.tutorial()
    result = module.gd(
        x, y, w0=1.0, lr=0.1, epochs=100, exact=True, callback=lambda epoch, so_far: ws.append(so_far.w)
    )
    got = ["Predict (before training) %r %r" % (4, module.forward(4, 1.0))]
    got += ["Epoch: %r w= %r loss %r" % (e, w, float(c)) for e, (w, c) in enumerate(zip(ws, result.losses))]
    got.append("Predict (after train) %r %r" % (4, module.forward(4, result.w)))
    assert got == expected


@pytest.mark.parametrize("module", [reference, fastgd], ids=["reference", "fastgd"])
@pytest.mark.parametrize("lr", [0.1, 0.01])
def test_sgd_reproduces_tutorial_weights(module, lr):
    ws = []
    x, y = datasets.tutorial()
    module.sgd(
        x, y, w0=1.0, lr=lr, epochs=100, exact=True, callback=lambda epoch, so_far: ws.append(so_far.w)
    )
    assert ws == tutorial_sgd_weights(lr)


def test_demo_command_prints_the_tutorial():
    run = subprocess.run([sys.executable, "-m", "fastgd", "demo"], capture_output=True, text=True, check=True)
    assert run.stdout.splitlines() == tutorial_gd_lines()
    assert run.stdout.startswith("Predict (before training) 4 4.0\n")


def test_tutorial_functions_match_tutorial_formulas():
    xs, ys = datasets.tutorial()
    for module in (reference, fastgd):
        assert module.forward(4, 1.0) == 4.0
        assert module.cost(xs, ys, 1.0) == ((1 - 2) ** 2 + (2 - 4) ** 2 + (3 - 6) ** 2) / 3
        assert (
            module.gradient(xs, ys, 1.0)
            == (2 * 1.0 * (1.0 - 2) + 2 * 2.0 * (2.0 - 4) + 2 * 3.0 * (3.0 - 6)) / 3
        )
        assert module.loss(3.0, 6.0, 1.0) == 9.0
