"""Build of the Cython extension ``fastgd_ext._kernels`` (metadata is in pyproject.toml).

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
    extension = Extension(
        "fastgd_ext._kernels",
        ["fastgd_ext/_kernels.pyx"],
        extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math"] + openmp,
        extra_link_args=openmp,
    )
    return cythonize(
        [extension],
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug,
            "wraparound": debug,
            "initializedcheck": debug,
            "cdivision": True,
        },
    )


setup(ext_modules=_extensions())
