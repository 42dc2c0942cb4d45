"""The per-fit plan and the backend handle: what the epoch driver hands a kernel module.

A fit decides once, here, how its epochs run (:class:`Plan`), and talks to
its kernel module through one :class:`Handle` made for that fit's data. The
handle is the only caller of the kernel interface of
``fastgd/kernels/__init__.py`` in the Python layer: the driver
(``fastgd/_engine.py``), the bench and the dask workers all go through it, so
the interface's positional argument lists are spelled out in one place.

A kernel module may define ``prepare(X, y, plan) -> data``: the handle then
passes ``data`` wherever the interface takes ``X`` (cuda: the device copies of
``X`` and ``y``, made once per fit and freed with the handle).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

from fastgd import _checks
from fastgd._state import Training
from fastgd.kernels import AFFINE, FULL_BATCH, MINI_BATCH, PER_SAMPLE

__all__ = ["AFFINE", "FULL_BATCH", "MINI_BATCH", "PER_SAMPLE", "Handle", "Plan", "is_full_batch", "path_of"]


def is_full_batch(batch_size: Optional[int], n: int) -> bool:
    """Whether batches of ``batch_size`` over ``n`` samples are full-batch GD
    (None, or a batch of every sample): the rule of :func:`path_of`, for the
    callers that need it before a plan (the auto learning rate, the Gram choice)."""
    return batch_size is None or batch_size >= n


def path_of(
    n: int,
    d: int,
    batch_size: Optional[int],
    fit_intercept: bool,
    exact: bool,
    momentum: float,
    weight_decay: float,
    loss_kind: int,
    average_from: int,
) -> int:
    """The path of :class:`Plan` (the codes of ``fastgd/kernels/__init__.py``);
    the one copy of the rule: the kernels take the path they are handed.

    The compiled kernels may still run a ``AFFINE`` plan as per-sample steps
    where the maps do not pay (numba and Cython: data within one block).
    """
    if is_full_batch(batch_size, n):
        return FULL_BATCH
    if batch_size != 1 or momentum != 0 or weight_decay != 0 or loss_kind != 0 or average_from:
        return MINI_BATCH
    if d == 1 and not fit_intercept and not exact:
        return AFFINE
    return PER_SAMPLE


class Plan(NamedTuple):
    """How one fit's epochs run, decided before the first."""

    path: int  # FULL_BATCH, PER_SAMPLE, AFFINE or MINI_BATCH
    batch_size: int  # n for FULL_BATCH
    fit_intercept: bool
    exact: bool
    nesterov: bool

    @property
    def full_batch(self) -> bool:
        return self.path == FULL_BATCH

    @classmethod
    def of(cls, X: Any, fit_intercept: bool, opts: Any) -> "Plan":
        """The plan of a fit of ``opts`` (``_checks.Options``) on ``X`` (n, d)."""
        n, d = X.shape
        path = path_of(
            n,
            d,
            opts.batch_size,
            fit_intercept,
            opts.exact,
            opts.momentum,
            opts.weight_decay,
            opts.loss_kind,
            opts.average_from,
        )
        batch_size = n if path == FULL_BATCH else int(opts.batch_size)
        return cls(path, batch_size, bool(fit_intercept), bool(opts.exact), bool(opts.nesterov))


class Handle:
    """One fit's data on one kernel module: sums, predictions and epochs.

    Parameters
    ----------
    kernels : module
        A kernel module (``fastgd/kernels``), dense or sparse.
    X, y : arrays
        The fit's checked data (``X`` may be a ``_sparse.CSR``).
    plan : Plan
    loss_spec : ndarray
        ``[loss code, delta, 0.5]`` in the training dtype (``Training.loss_spec``).
    """

    # The driver hands ``run_epochs`` each epoch's order (False), or the handle
    # draws its own (True: dask, whose shuffle visits chunks, not rows).
    shuffles_itself = False

    def __init__(self, kernel_module: Any, X: Any, y: np.ndarray, plan: Plan, loss_spec: np.ndarray) -> None:
        self.kernel_module = kernel_module
        self.name: str = kernel_module.NAME
        self.X, self.y, self.plan, self.loss_spec = X, y, plan, loss_spec
        prepare = getattr(kernel_module, "prepare", None)
        self._data = X if prepare is None else prepare(X, y, plan)

    @property
    def threaded_module(self) -> Any:
        """The kernel module whose long calls may run in the driver's helper
        thread (``fastgd._engine._interruptible``); None: call directly."""
        return self.kernel_module

    @property
    def has_steps(self) -> bool:
        """Whether the module runs a pass over part of an epoch (``run_steps``)."""
        return hasattr(self.kernel_module, "run_steps")

    def check_data(self) -> None:
        """ValueError naming X when it holds NaN or infinity (called once the
        starting cost came out non-finite: the input's error comes first)."""
        if isinstance(self.X, np.ndarray):
            _checks.check_finite(self.X, "X")

    @property
    def kernel_block(self) -> int:
        """The kernels' block of samples (segments of an epoch are cut at its multiples)."""
        return int(getattr(self.kernel_module, "BLOCK", 1))

    def sums(self, params: np.ndarray, want_gradient: bool, exact: Optional[bool] = None) -> np.ndarray:
        """``[Σ ℓ(r), Σ ℓ'(r)·x_j, (Σ ℓ'(r))]`` (float64) at ``params``; ``exact``
        defaults to the plan's."""
        exact = self.plan.exact if exact is None else exact
        return self.kernel_module.sums(
            self._data, self.y, params, self.plan.fit_intercept, exact, want_gradient, self.loss_spec
        )

    def run_epochs(self, state: Training, order: np.ndarray, costs: np.ndarray, rates: np.ndarray) -> int:
        """``len(costs)`` epochs on ``state`` in ``order`` at ``rates``; the number with a finite cost."""
        plan, s = self.plan, state
        return self.kernel_module.run_epochs(
            self._data,
            self.y,
            s.params,
            s.grad,
            s.velocity,
            s.steps,
            s.previous,
            s.hyper,
            plan.nesterov,
            plan.fit_intercept,
            plan.exact,
            plan.path,
            plan.batch_size,
            order,
            costs,
            s.stop,
            rates,
            s.loss_spec,
            s.decayed,
            s.average,
            s.averaged,
        )

    def run_steps(self, state: Training, order: np.ndarray) -> bool:
        """The steps of one pass over the positions ``order`` at ``state.hyper[0]``;
        False when ``state.stop`` ended it early."""
        plan, s = self.plan, state
        return self.kernel_module.run_steps(
            self._data,
            self.y,
            s.params,
            s.grad,
            s.velocity,
            s.steps,
            s.hyper,
            plan.nesterov,
            plan.fit_intercept,
            plan.exact,
            plan.path,
            plan.batch_size,
            order,
            s.stop,
            s.loss_spec,
            s.decayed,
            s.average,
            s.averaged,
        )
