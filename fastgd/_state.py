"""Optimizer state handed from one fit to the next (internal).

``torch.optim.SGD`` keeps a momentum buffer and knows whether it has taken a
step yet; a fit normally starts both afresh. ``GDRegressor.partial_fit`` (and
``warm_start``) continue training across calls, so the engine and the
reference accept an :class:`OptimizerState`, start from it, and write the
state after the last epoch back into it when the fit returns. A fit that
raises (divergence, interrupt) leaves it untouched.
"""

from __future__ import annotations

from typing import Any, List, Optional

import numpy as np


class OptimizerState:
    """Momentum buffer and step count of ``torch.optim.SGD`` between fits.

    Attributes
    ----------
    velocity : ndarray of shape (p,) or None
        The momentum buffer over ``[w_0 .. w_{d-1}, (b)]``; None before any step.
    steps : int
        Steps taken so far; the first step sets the buffer (SPEC §3).
    """

    __slots__ = ("velocity", "steps")

    def __init__(self, velocity: Optional[np.ndarray] = None, steps: int = 0) -> None:
        self.velocity = velocity
        self.steps = int(steps)

    def initial_velocity(self, size: int) -> Optional[List[float]]:
        """The buffer as Python floats, checked against the parameter count ``size``."""
        if self.steps == 0 or self.velocity is None:
            return None
        if len(self.velocity) != size:
            raise ValueError(
                f"optimizer state has {len(self.velocity)} parameters, the model has {size}"
            )
        return [float(v) for v in self.velocity]

    def save(self, velocity: Any, steps: int) -> None:
        """Record the state after a fit (a float64 copy of the buffer)."""
        self.velocity = np.array(velocity, dtype=np.float64, copy=True)
        self.steps = int(steps)

    def __repr__(self) -> str:
        return f"OptimizerState(velocity={self.velocity!r}, steps={self.steps})"


def optimizer_arrays(params: np.ndarray, opts: Any, state: Optional[OptimizerState]):
    """What the kernels' SGD step works on, in the training dtype of ``params``:
    ``hyper = [lr, momentum, 1 - dampening, weight_decay]``, a gradient buffer,
    the momentum buffer and the step count (both from ``state`` when given)."""
    hyper = np.array([opts.lr, opts.momentum, 1 - opts.dampening, opts.weight_decay],
                     dtype=params.dtype)
    grad = np.zeros_like(params)
    velocity = np.zeros_like(params)
    steps = np.zeros(1, dtype=np.int64)
    start = None if state is None else state.initial_velocity(len(params))
    if start is not None:
        velocity[:] = start
        steps[0] = state.steps
    return hyper, grad, velocity, steps
