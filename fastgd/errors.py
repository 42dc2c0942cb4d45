"""Exceptions and warnings raised by fastgd."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
