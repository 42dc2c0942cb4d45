"""The backend registry: which kernels run, and why a backend is missing.

Backends load on first use, so ``import fastgd`` never imports numba. The
default is the first that loads of numba → cython → numpy; ``cuda`` runs only
when asked for. A requested backend that cannot load falls back along the same
chain with a warning (once per name) that says why.
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.util
import os
import threading
import warnings
from types import ModuleType
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from fastgd.errors import BackendFallbackWarning

NAMES = ("numba", "cython", "numpy", "cuda")
DEFAULT_ORDER = ("numba", "cython", "numpy")
_MODULES = {name: f"fastgd.kernels.{name}_kernels" for name in NAMES}
_REQUIREMENTS = {
    "numba": ("numba", "numba is not installed (pip install numba)"),
    "cython": ("fastgd_ext", "fastgd_ext is not installed (pip install fastgd builds it)"),
    "numpy": ("numpy", "numpy is not installed"),
    "cuda": ("numba", "numba is not installed (pip install numba); cuda needs numba.cuda"),
}

_loaded: Dict[str, Tuple[Optional[ModuleType], Optional[str]]] = {}
# The backend chosen by use(), per thread and per contextvars context: a
# thread (or task) that never called use() sees None, the process default.
_selected: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("fastgd_backend", default=None)
_warned: set = set()
# Two threads loading the same backend at once would compile it twice.
_load_lock = threading.RLock()


class BackendInfo(NamedTuple):
    """One row of :func:`fastgd.kernels`; also readable as ``info["name"]``."""

    name: str
    available: bool
    reason: Optional[str]

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return getattr(self, key)
        return tuple.__getitem__(self, key)


def _load(name: str) -> Tuple[Optional[ModuleType], Optional[str]]:
    if name in _loaded:
        return _loaded[name]
    with _load_lock:
        if name not in _loaded:
            _loaded[name] = _import_backend(name)
    return _loaded[name]


def _import_backend(name: str) -> Tuple[Optional[ModuleType], Optional[str]]:
    requirement, missing = _REQUIREMENTS[name]
    module: Optional[ModuleType] = None
    reason: Optional[str] = None
    if importlib.util.find_spec(requirement) is None:
        reason = missing
    else:
        try:
            module = importlib.import_module(_MODULES[name])
            check = getattr(module, "unavailable_reason", None)
            reason = check() if check is not None else None
            if reason is not None:
                module = None
        except Exception as exc:  # any failure to load means: use the next backend
            reason = f"failed to load: {type(exc).__name__}: {exc}"
            module = None
    return module, reason


def load(name: str) -> Tuple[Optional[ModuleType], Optional[str]]:
    """The kernel module of backend ``name`` (loaded once, no fallback) and,
    when it cannot run here, None and why."""
    return _load(_check_name(name))


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name.lower() not in NAMES:
        raise ValueError(f"backend must be one of {', '.join(NAMES)}; got {name!r}")
    return name.lower()


def kernel_module(name: Optional[str] = None) -> ModuleType:
    """The kernel module to run: ``name``, else ``use()``'s, ``FASTGD_BACKEND``'s, or the default."""
    requested = name or _selected.get() or os.environ.get("FASTGD_BACKEND") or None
    if requested is not None:
        requested = _check_name(requested)
        module, reason = _load(requested)
        if module is not None:
            return module
        fallback = _first_available()
        if requested not in _warned:
            _warned.add(requested)
            warnings.warn(
                f"fastgd: backend {requested!r} is unavailable ({reason}); using {fallback.NAME!r}",
                BackendFallbackWarning,
                stacklevel=3,
            )
        return fallback
    return _first_available()


def _first_available() -> ModuleType:
    reasons = []
    for candidate in DEFAULT_ORDER:
        module, reason = _load(candidate)
        if module is not None:
            return module
        reasons.append(f"{candidate}: {reason}")
    raise RuntimeError("fastgd: no backend can run: " + "; ".join(reasons))


def backends() -> List[BackendInfo]:
    """Every backend, whether it can run here, and why not.

    Examples
    --------
    >>> import fastgd
    >>> [info.name for info in fastgd.backends()]
    ['numba', 'cython', 'numpy', 'cuda']
    """
    rows = []
    for name in NAMES:
        module, reason = _load(name)
        rows.append(BackendInfo(name, module is not None, reason))
    return rows


class use:
    """Select the backend for later calls; also a context manager that restores the previous one.

    The choice is local to the calling thread (and ``contextvars`` context):
    other threads keep theirs, and a thread that never called ``use`` runs on
    the process default. Leaving the ``with`` block restores exactly the
    choice in force when it was entered.

    Parameters
    ----------
    name : {"numba", "cython", "numpy", "cuda"} or None
        None returns to the default (``FASTGD_BACKEND`` or numba → cython → numpy).

    Examples
    --------
    >>> import fastgd
    >>> with fastgd.use("numpy"):
    ...     fastgd.gd([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], lr=0.1).backend
    'numpy'
    """

    def __init__(self, name: Optional[str]) -> None:
        self.name = None if name is None else _check_name(name)
        self._token = _selected.set(self.name)
        if self.name is not None:
            kernel_module(self.name)  # load now, so a fallback warns here and not mid-fit

    def __enter__(self) -> "use":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            _selected.reset(self._token)
        except ValueError:
            # Exited in another context than the one that entered (e.g. a
            # generator resumed elsewhere): restore the value, not the token.
            _selected.set(
                self._token.old_value if self._token.old_value is not contextvars.Token.MISSING else None
            )

    def __repr__(self) -> str:
        return f"fastgd.use({self.name!r})"


def current_name() -> str:
    """Name of the backend that the next call will run on."""
    return kernel_module().NAME
