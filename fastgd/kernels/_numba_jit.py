"""How fastgd compiles with numba: on-disk cache when it can be written, else none.

numba raises at decoration time when no cache directory is writable; that
must never break ``import fastgd``, so the decorator falls back to compiling
without a cache and says why once.
"""

from __future__ import annotations

import os
import warnings

from numba import njit, prange  # noqa: F401  (prange is re-exported for the kernels)

# FASTGD_NUMBA_CACHE=0 turns the on-disk cache off (e.g. for workers that
# import fastgd in parallel from a shared file system).
_CACHE = os.environ.get("FASTGD_NUMBA_CACHE", "1") != "0"
_warned = False


def jit(function=None, **options):
    """``numba.njit`` with fastgd's options: cached when possible, never fastmath.

    No fastmath: the exact paths rely on LLVM not reassociating sums or
    contracting multiply-adds into FMAs.
    """

    def decorate(py_function):
        global _CACHE, _warned
        if _CACHE:
            try:
                return njit(cache=True, **options)(py_function)
            except RuntimeError as exc:  # "cannot cache function ...: no locator available"
                _CACHE = False
                if not _warned:
                    _warned = True
                    warnings.warn(
                        f"fastgd: numba's cache cannot be written ({exc}); compiling without a "
                        "cache. Set NUMBA_CACHE_DIR to a writable folder to keep compiled kernels.",
                        RuntimeWarning,
                        stacklevel=3,
                    )
        return njit(**options)(py_function)

    return decorate(function) if function is not None else decorate
