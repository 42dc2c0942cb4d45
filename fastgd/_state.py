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
            raise ValueError(f"optimizer state has {len(self.velocity)} parameters, the model has {size}")
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
    hyper = np.array([opts.lr, opts.momentum, 1 - opts.dampening, opts.weight_decay], dtype=params.dtype)
    grad = np.zeros_like(params)
    velocity = np.zeros_like(params)
    steps = np.zeros(1, dtype=np.int64)
    start = None if state is None else state.initial_velocity(len(params))
    if start is not None:
        velocity[:] = start
        steps[0] = state.steps
    return hyper, grad, velocity, steps


class Training:
    """The arrays a fit's kernels work on, by name (all in the training dtype
    unless said otherwise).

    ``params``/``previous``: the parameters now and after the last epoch with
    a finite cost; ``grad``, ``velocity``, ``steps`` (int64[1]) and ``hyper``
    (``[lr, momentum, 1 - dampening, weight_decay]``): the optimizer's;
    ``loss_spec``: ``[loss code, delta, 0.5]``; ``decayed``: how many
    parameters take weight decay; ``average`` (2, p): the running mean of the
    iterates and its copy at ``previous``, ``averaged`` (int64[3]): their
    update counts and the global step averaging starts from (0: none);
    ``stop`` (int64[1]): set to end a kernel call early.
    """

    params: np.ndarray
    previous: np.ndarray
    grad: np.ndarray
    velocity: np.ndarray
    steps: np.ndarray
    hyper: np.ndarray
    loss_spec: np.ndarray
    decayed: int
    average: np.ndarray
    averaged: np.ndarray
    stop: np.ndarray

    def __init__(self, problem: Any, opts: Any, state: Optional[OptimizerState]) -> None:
        params = problem.params
        d, p = problem.n_features, problem.params.shape[0]
        self.params = params
        self.hyper, self.grad, self.velocity, self.steps = optimizer_arrays(params, opts, state)
        self.previous = params.copy()
        self.loss_spec = np.array([opts.loss_kind, opts.delta, 0.5], dtype=params.dtype)
        self.decayed = d if (problem.fit_intercept and not opts.decay_intercept) else p
        self.average = np.zeros((2, p), dtype=params.dtype)
        first = int(self.steps[0]) + opts.average_from if opts.average_from else 0
        self.averaged = np.array([0, 0, first], dtype=np.int64)
        self.stop = np.zeros(1, dtype=np.int64)

    @classmethod
    def travelling(
        cls,
        carried: Any,
        hyper: np.ndarray,
        loss_spec: np.ndarray,
        decayed: int,
    ) -> "Training":
        """The state of a dask chunk's steps (fastgd/_dask.py): ``carried`` is
        what travels from chunk to chunk, ``(params, velocity, steps, average,
        averaged)``, copied here; the gradient buffer and stop flag are the
        chunk's own; ``previous`` is not kept (the client keeps it)."""
        self = cls.__new__(cls)
        self.params, self.velocity, self.steps, self.average, self.averaged = (
            np.array(value, copy=True) for value in carried
        )
        self.previous = self.params
        self.grad = np.zeros_like(self.params)
        self.hyper, self.loss_spec, self.decayed = hyper, loss_spec, decayed
        self.stop = np.zeros(1, dtype=np.int64)
        return self

    def commit_epoch(self) -> None:
        """An epoch ended with a finite cost: it is now the state to fall back
        to (``previous`` and the average's copy; the compiled ``run_epochs``
        does the same inside its loop)."""
        self.previous[:] = self.params
        self.average[1] = self.average[0]
        self.averaged[1] = self.averaged[0]

    def mean(self, at_previous: bool) -> Optional[np.ndarray]:
        """The running mean of the iterates (now, or at ``previous``); None before any update."""
        row = 1 if at_previous else 0
        return self.average[row] if self.averaged[row] > 0 else None
