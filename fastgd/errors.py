"""Exceptions and warnings raised by fastgd."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Sequence

    from fastgd._result import Fit


class DivergenceError(FloatingPointError):
    """The training loss became NaN or infinite.

    Attributes
    ----------
    epoch : int
        The epoch (0-based) whose updates made the loss non-finite. When the
        loss of the starting parameters is already non-finite, ``0``.
    fit : Fit
        The state at the start of that epoch: the last parameters whose loss
        was still finite (or the starting parameters, as above).
    """

    def __init__(self, message: str, *, epoch: int, fit: "Fit") -> None:
        super().__init__(message)
        self.epoch = epoch
        self.fit = fit


class FitInterrupted(KeyboardInterrupt):
    """A fit was interrupted (Ctrl-C, or a KeyboardInterrupt from a callback).

    Attributes
    ----------
    fit : Fit
        The state after the last completed epoch: nothing finished is lost.
    """

    def __init__(self, message: str, *, fit: "Fit") -> None:
        super().__init__(message)
        self.fit = fit


class BackendFallbackWarning(RuntimeWarning):
    """A requested backend could not be used and another one runs instead."""


class DivergenceWarning(RuntimeWarning):
    """A fit ran away: its loss ended far above where it started and was still
    growing fast (see :func:`is_runaway`). The run is still finite (a
    non-finite loss is a :class:`DivergenceError`); lower ``lr``.
    """


# A finished fit "ran away" when its last cost is more than RUNAWAY_FACTOR
# times its first and each of its last RUNAWAY_EPOCHS epochs (at least two)
# multiplied the cost by RUNAWAY_GROWTH or more: steps that overshoot grow the
# cost geometrically. A cost that rises once or slowly is not enough: SGD on
# data with outliers can end above its start while converging.
RUNAWAY_FACTOR = 1e6
RUNAWAY_EPOCHS = 3
RUNAWAY_GROWTH = 1.5


def is_runaway(costs: "Sequence[float]") -> bool:
    """Whether the costs ``[start, after epoch 0, ...]`` of a finished fit ran away.

    Examples
    --------
    >>> from fastgd.errors import is_runaway
    >>> is_runaway([1.0, 10.0, 1e3, 1e5, 1e7]), is_runaway([1.0, 0.5, 0.25])
    (True, False)
    """
    epochs = len(costs) - 1
    if epochs < 2 or not costs[-1] > RUNAWAY_FACTOR * costs[0] or not costs[0] > 0:
        return False
    recent = costs[-1 - min(RUNAWAY_EPOCHS, epochs) :]
    return all(later >= RUNAWAY_GROWTH * earlier for earlier, later in zip(recent[:-1], recent[1:]))


def warn_if_runaway(costs: "Sequence[float]") -> None:
    """Warn once (DivergenceWarning) when a finished fit ran away (:func:`is_runaway`)."""
    if is_runaway(costs):
        warnings.warn(
            f"the loss grew from {costs[0]:.6g} to {costs[-1]:.6g} and is still growing: "
            "the steps overshoot; lower lr",
            DivergenceWarning,
            stacklevel=4,
        )
