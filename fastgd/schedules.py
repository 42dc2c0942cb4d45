"""Learning-rate schedules equal to torch's schedulers stepped once per epoch.

Each function returns a callable ``lr(epoch) -> float`` (epochs count from 0)
to pass as ``fit(..., lr=...)``: the rate of epoch ``e`` is what
``scheduler.get_last_lr()`` of the torch scheduler returns after ``e`` calls
of ``scheduler.step()`` (one per epoch), to 1e-12 relative. The rates come
from the closed forms (torch's own ``_get_closed_form_lr``) rather than
torch's recursive updates, so they do not accumulate rounding over epochs.
fastgd evaluates a schedule for the epochs of a kernel call before the call:
a schedule costs no extra kernel calls.

Examples
--------
>>> import fastgd
>>> from fastgd import schedules
>>> rate = schedules.step(0.1, step_size=2, gamma=0.5)
>>> [rate(e) for e in range(5)]
[0.1, 0.1, 0.05, 0.05, 0.025]
>>> fit = fastgd.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], lr=schedules.cosine(0.1, T_max=10), epochs=10)
>>> round(fit.w, 4)
2.0
"""

from __future__ import annotations

import bisect
import math
import numbers
from typing import Any, Callable, Iterable, List

__all__ = ["Schedule", "step", "multistep", "exponential", "cosine", "linear"]


class Schedule:
    """A per-epoch learning rate: ``schedule(epoch) -> float``, with a readable repr."""

    def __init__(self, rate: Callable[[int], float], description: str) -> None:
        self._rate = rate
        self._description = description

    def __call__(self, epoch: int) -> float:
        return float(self._rate(int(epoch)))

    def __repr__(self) -> str:
        return f"fastgd.schedules.{self._description}"


def _positive(value: Any, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def step(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """torch's ``StepLR(step_size, gamma)``: ``lr · gamma^(epoch // step_size)``.

    Examples
    --------
    >>> from fastgd import schedules
    >>> [schedules.step(1.0, 2, gamma=0.1)(e) for e in (0, 1, 2, 4)]
    [1.0, 1.0, 0.1, 0.010000000000000002]
    """
    base, size, factor = _positive(lr, "lr"), _count(step_size, "step_size"), _positive(gamma, "gamma")
    return Schedule(
        lambda e: base * factor ** (e // size), f"step({base!r}, step_size={size}, gamma={factor!r})"
    )


def multistep(lr: float, milestones: Iterable[int], gamma: float = 0.1) -> Schedule:
    """torch's ``MultiStepLR(milestones, gamma)``: ``lr · gamma^(milestones reached)``
    (a milestone listed twice counts twice, as in torch).

    Examples
    --------
    >>> from fastgd import schedules
    >>> [schedules.multistep(1.0, [1, 3], gamma=0.5)(e) for e in range(4)]
    [1.0, 0.5, 0.5, 0.25]
    """
    base, factor = _positive(lr, "lr"), _positive(gamma, "gamma")
    marks: List[int] = sorted(_count(m, "milestones") for m in milestones)
    return Schedule(
        lambda e: base * factor ** bisect.bisect_right(marks, e),
        f"multistep({base!r}, milestones={marks}, gamma={factor!r})",
    )


def exponential(lr: float, gamma: float) -> Schedule:
    """torch's ``ExponentialLR(gamma)``: ``lr · gamma^epoch``.

    Examples
    --------
    >>> from fastgd import schedules
    >>> [schedules.exponential(1.0, 0.5)(e) for e in range(3)]
    [1.0, 0.5, 0.25]
    """
    base, factor = _positive(lr, "lr"), _positive(gamma, "gamma")
    return Schedule(lambda e: base * factor**e, f"exponential({base!r}, gamma={factor!r})")


def cosine(lr: float, T_max: int, eta_min: float = 0.0) -> Schedule:
    """torch's ``CosineAnnealingLR(T_max, eta_min)``:
    ``eta_min + (lr - eta_min) · (1 + cos(π · epoch / T_max)) / 2`` (0 steps at
    ``epoch = T_max`` when ``eta_min = 0``; periodic after it, as torch's).

    Examples
    --------
    >>> from fastgd import schedules
    >>> [round(schedules.cosine(1.0, 2)(e), 12) for e in range(3)]
    [1.0, 0.5, 0.0]
    """
    base, period = _positive(lr, "lr"), _count(T_max, "T_max")
    if isinstance(eta_min, bool) or not isinstance(eta_min, numbers.Real) or not 0 <= eta_min < math.inf:
        raise ValueError(f"eta_min must be a finite number >= 0, got {eta_min!r}")
    floor = float(eta_min)
    return Schedule(
        lambda e: floor + (base - floor) * (1 + math.cos(math.pi * e / period)) / 2,
        f"cosine({base!r}, T_max={period}, eta_min={floor!r})",
    )


def linear(
    lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5
) -> Schedule:
    """torch's ``LinearLR(start_factor, end_factor, total_iters)``: the factor goes
    linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` epochs
    (warm-up when it grows), then stays.

    Examples
    --------
    >>> from fastgd import schedules
    >>> [schedules.linear(1.0, 0.5, 1.0, total_iters=2)(e) for e in range(4)]
    [0.5, 0.75, 1.0, 1.0]
    """
    base = _positive(lr, "lr")
    if (
        isinstance(start_factor, bool)
        or not isinstance(start_factor, numbers.Real)
        or not 0 < start_factor <= 1
    ):
        raise ValueError(f"start_factor must be in (0, 1], got {start_factor!r}")
    if isinstance(end_factor, bool) or not isinstance(end_factor, numbers.Real) or not 0 <= end_factor <= 1:
        raise ValueError(f"end_factor must be in [0, 1], got {end_factor!r}")
    iters = _count(total_iters, "total_iters")
    start, end = float(start_factor), float(end_factor)
    return Schedule(
        lambda e: base * (start + (end - start) * min(iters, e) / iters),
        f"linear({base!r}, start_factor={start!r}, end_factor={end!r}, total_iters={iters})",
    )
