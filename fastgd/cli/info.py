"""``fastgd info``: what fastgd runs on here."""

from __future__ import annotations

import argparse
import os
import platform
from typing import Any, List, Optional, Tuple

# (distribution, what it is to fastgd, the extra that installs it or None).
# "Cython" is only the build tool of fastgd_ext: the compiled extension runs
# without it, so its line must not read as the cython backend's state.
PACKAGES: Tuple[Tuple[str, str, Optional[str]], ...] = (
    ("numpy", "", None),
    ("numba", "", None),
    ("llvmlite", "", None),
    ("tqdm", "progress bars", None),
    ("Cython", "build tool", None),
    ("matplotlib", "--plot", "plot"),
    ("scikit-learn", "GDRegressor", "sklearn"),
    ("dask", "dask arrays", "dask"),
    ("distributed", "dask clusters", "dask"),
    ("torch", "tests and bench only", None),
)


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def _version(module_name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module_name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _extension_state() -> str:
    """Whether the compiled extension fastgd_ext._kernels imports, and from where."""
    import importlib

    try:
        module = importlib.import_module("fastgd_ext._kernels")
    except ImportError as exc:
        return f"not available ({exc})"
    return f"available ({module.__file__})"


def package_lines() -> List[str]:
    """One line per package fastgd uses: its version, what it is for, the extra that brings it."""
    lines = []
    for name, role, extra in PACKAGES:
        version = _version(name)
        label = f"{name} ({role})" if role else name
        if version == "not installed" and extra is not None:
            version += f": pip install 'fastgd[{extra}]'"
        lines.append(f"{label}: {version}")
    lines.append(f"fastgd_ext (compiled extension): {_extension_state()}")
    return lines


def run(args: argparse.Namespace) -> int:
    import fastgd

    print(f"fastgd {fastgd.__version__} on Python {platform.python_version()} ({platform.machine()})")
    print(f"default backend: {fastgd._registry.current_name()}")
    print("backends:")
    for info in fastgd.backends():
        state = "available" if info.available else f"unavailable: {info.reason}"
        print(f"  {info.name:<7} {state}")
    for line in package_lines():
        print(line)
    try:
        import numba

        config: Any = numba.config  # its attributes are set at import time from the environment
        CACHE_DIR = config.CACHE_DIR

        print(f"numba threads: {numba.get_num_threads()} (NUMBA_NUM_THREADS={config.NUMBA_NUM_THREADS})")
        print(f"numba threading layer: {config.THREADING_LAYER}")
        print(f"numba cache dir: {CACHE_DIR or 'next to the fastgd sources (__pycache__)'}")
    except ImportError:
        print("numba threads: numba not installed")
    print(f"cpu count: {os.cpu_count()}")
    return 0
