"""Build of the Cython extensions ``fastgd_ext._kernels`` and ``fastgd_ext._sparse_kernels``
(metadata is in pyproject.toml).

Compiler directives are set here, once, for the whole extension. Set
``FASTGD_BOUNDSCHECK=1`` to build with bounds and wraparound checks on (for
debugging). OpenMP is used when the compiler supports it, else the parallel
loops run serially. No ``-march=native`` and ``-ffp-contract=off``: the exact
paths must round every operation as the reference does (no FMA contraction).
"""

import os
import subprocess
import sys
import sysconfig
import tempfile

from setuptools import Extension, setup


def _openmp_flags():
    """``-fopenmp`` if the C compiler accepts it, else nothing (serial build)."""
    if os.environ.get("FASTGD_NO_OPENMP") == "1":
        return []
    # The compiler setuptools will use: $CC, else the one Python was built with.
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as handle:
            handle.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        try:
            result = subprocess.run(
                [cc, "-fopenmp", source, "-o", os.path.join(tmp, "probe")],
                capture_output=True,
            )
        except OSError:
            return []
    return ["-fopenmp"] if result.returncode == 0 else []


def _extensions():
    from Cython.Build import cythonize

    debug = os.environ.get("FASTGD_BOUNDSCHECK") == "1"
    openmp = _openmp_flags()
    flags = ["-O3", "-ffp-contract=off", "-fno-fast-math"]
    extension = Extension(
        "fastgd_ext._kernels",
        ["fastgd_ext/_kernels.pyx"],
        extra_compile_args=flags + openmp,
        extra_link_args=openmp,
    )
    sparse = Extension(
        "fastgd_ext._sparse_kernels",
        ["fastgd_ext/_sparse_kernels.pyx"],
        extra_compile_args=flags + openmp,
        extra_link_args=openmp,
    )
    # SGDRegressor's per-sample chain is sequential by nature: no OpenMP either.
    sgd_regressor = Extension("fastgd_ext._sgd_regressor", ["fastgd_ext/_sgd_regressor.pyx"], extra_compile_args=flags)
    return cythonize(
        [extension, sparse, sgd_regressor],
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug,
            "wraparound": debug,
            "initializedcheck": debug,
            "cdivision": True,
        },
    )


setup(ext_modules=_extensions())
