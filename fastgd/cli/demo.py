"""``fastgd demo``: the tutorial's gradient-descent run, printed line for line as the tutorial prints it."""

from __future__ import annotations

import argparse
from typing import List


def configure(parser: argparse.ArgumentParser) -> None:
    from fastgd._registry import NAMES

    parser.add_argument("--epochs", type=int, default=100, help="epochs (tutorial: 100)")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (tutorial: 0.1)")
    parser.add_argument(
        "--backend",
        type=str.lower,
        choices=NAMES,
        default=None,
        help="backend to run on (default: the fastest available)",
    )


def lines(epochs: int = 100, lr: float = 0.1) -> List[str]:
    """The tutorial's output: a prediction for x=4, one line per epoch, a prediction after."""
    import fastgd
    from fastgd import datasets

    x_data, y_data = datasets.tutorial()
    w0 = 1.0
    out = [f"Predict (before training) 4 {fastgd.forward(4, w0)!r}"]
    ws: List[float] = []
    result = fastgd.gd(
        x_data,
        y_data,
        w0=w0,
        lr=lr,
        epochs=epochs,
        exact=True,
        callback=lambda epoch, so_far: ws.append(float(so_far.w)),
    )
    for epoch, (w, cost) in enumerate(zip(ws, result.losses)):
        out.append(f"Epoch: {epoch} w= {w!r} loss {float(cost)!r}")
    out.append(f"Predict (after train) 4 {fastgd.forward(4, result.w)!r}")
    return out


def run(args: argparse.Namespace) -> int:
    import fastgd

    with fastgd.use(args.backend):
        for line in lines(args.epochs, args.lr):
            print(line)
    return 0
