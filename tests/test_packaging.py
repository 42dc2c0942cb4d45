"""Packaging: the sdist and the dependencies.

The sdist, built from the source tree, holds what building the wheel and
running the tests need (every tests/*.py, conftest.py and helpers.py too; the
LICENSE), not what cythonize generates (fastgd_ext/*.c), and its metadata
carries the SPDX license. Building it takes a few seconds (an isolated build
environment); it runs once for the module.

A plain install (no extras) has numpy, numba and tqdm; what needs an extra
says which one when it is missing.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import subprocess
import sys
import tarfile

import pytest

import fastgd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """(member names relative to the sdist's top folder, PKG-INFO text) of a fresh sdist."""
    if importlib.util.find_spec("build") is None:
        pytest.skip(
            "the 'build' package is not installed (it comes with the test extra: pip install -e '.[test]')"
        )
    out = tmp_path_factory.mktemp("sdist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(out), ROOT],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (archive,) = glob.glob(str(out / "*.tar.gz"))
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        pkg_info = tar.extractfile(f"{top}/PKG-INFO").read().decode("utf-8")
    return {name[len(top) + 1 :] for name in names if name.startswith(top + "/")}, pkg_info


def test_sdist_has_no_generated_c(sdist):
    names, _ = sdist
    assert "fastgd_ext/_kernels.pyx" in names
    assert not [name for name in names if name.endswith(".c")]


def test_sdist_has_the_license(sdist):
    names, pkg_info = sdist
    assert "LICENSE" in names
    assert "License-Expression: MIT" in pkg_info.splitlines()
    assert "License-File: LICENSE" in pkg_info.splitlines()


def test_sdist_has_every_test_file(sdist):
    names, _ = sdist
    here = {f"tests/{os.path.basename(path)}" for path in glob.glob(os.path.join(ROOT, "tests", "*.py"))}
    assert {"tests/conftest.py", "tests/helpers.py"} <= here
    assert here - names == set()
    # What the tests read besides themselves.
    assert {"README.md", "docs/guide.md", "docs/make_api.py", "docs/api.md"} <= names


def _project():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)["project"]


def test_pyproject_license_is_an_spdx_string():
    project = _project()
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]


def test_dependencies_and_extras():
    project = _project()
    core = {
        requirement.split(";")[0].split(">")[0].split("=")[0].strip()
        for requirement in project["dependencies"]
    }
    assert core == {"numpy", "numba", "tqdm"}  # tqdm: the command line's progress bars
    extras = project["optional-dependencies"]
    assert set(extras) == {"plot", "sklearn", "dask", "test"}
    for needed in ("pytest", "hypothesis", "build", "pandas", "torch==2.13.0", "matplotlib"):
        assert needed in extras["test"]


# -- what a plain install lacks -------------------------------------------------


def test_import_fastgd_imports_no_optional_dependency():
    code = (
        "import sys, fastgd, fastgd.cli; fastgd.cli.build_parser(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sklearn', 'matplotlib', 'dask', 'distributed', 'torch', 'pandas', 'tqdm'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_gdregressor_without_sklearn_names_the_extra(monkeypatch):
    for key in [k for k in sys.modules if k.split(".")[0] == "sklearn"] + ["sklearn"]:
        monkeypatch.setitem(sys.modules, key, None)  # what `import sklearn` meets when it is not installed
    monkeypatch.delitem(sys.modules, "fastgd.estimator", raising=False)
    with pytest.raises(ImportError) as info:
        _ = fastgd.GDRegressor
    assert str(info.value) == "GDRegressor needs scikit-learn: pip install 'fastgd[sklearn]'"
