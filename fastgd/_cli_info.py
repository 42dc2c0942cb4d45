"""``fastgd info``: what fastgd runs on here."""

from __future__ import annotations

import argparse
import os
import platform


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def _version(module_name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module_name)
    except metadata.PackageNotFoundError:
        return "not installed"


def run(args: argparse.Namespace) -> int:
    import fastgd

    print(f"fastgd {fastgd.__version__} on Python {platform.python_version()} ({platform.machine()})")
    print(f"default backend: {fastgd._registry.current_name()}")
    print("backends:")
    for info in fastgd.backends():
        state = "available" if info.available else f"unavailable: {info.reason}"
        print(f"  {info.name:<7} {state}")
    for package in ("numpy", "numba", "llvmlite", "Cython", "dask", "scikit-learn", "torch"):
        print(f"{package}: {_version(package)}")
    try:
        import numba
        from numba.core.config import CACHE_DIR

        print(f"numba threads: {numba.get_num_threads()} (NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS})")
        print(f"numba threading layer: {numba.config.THREADING_LAYER}")
        print(f"numba cache dir: {CACHE_DIR or 'next to the fastgd sources (__pycache__)'}")
    except ImportError:
        print("numba threads: numba not installed")
    print(f"cpu count: {os.cpu_count()}")
    return 0
