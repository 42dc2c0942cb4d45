"""The command line, run in-process through ``fastgd.cli.main``: version,
argument checks that come before any work, one-line warnings and errors,
``--lr auto``, runaway training, ``info``, and the extras (matplotlib,
torch, scikit-learn) being absent."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastgd
from fastgd import _autolr, _registry, bench, datasets
from fastgd.cli import main
from fastgd.cli import train as _cli_train
from fastgd.errors import BackendFallbackWarning, DivergenceWarning

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _value(stdout, name):
    match = re.search(rf"^{name} = (\S+)", stdout, re.MULTILINE)
    assert match, stdout
    return float(match.group(1))


def _lr(stdout):
    match = re.search(r"^method: .*, lr ([^\s,]+)", stdout, re.MULTILINE)
    assert match, stdout
    return float(match.group(1))


def _block_imports(monkeypatch, *names):
    """Make ``import name`` (and of its submodules) fail, as when it is not installed."""
    for key in [k for k in sys.modules if k.split(".")[0] in names] + list(names):
        monkeypatch.setitem(sys.modules, key, None)


def _usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr()


# -- version --------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"fastgd {fastgd.__version__}\n"
    assert fastgd.__version__ == "0.1.0"


def test_version_from_the_entry_points():
    commands = [[sys.executable, "-m", "fastgd", "--version"]]
    script = os.path.join(os.path.dirname(sys.executable), "fastgd")
    if os.path.isfile(script):  # the console script of the installed package
        commands.append([script, "--version"])
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert (done.returncode, done.stdout) == (0, "fastgd 0.1.0\n"), (command, done.stderr)


# -- train: defaults and --lr auto --------------------------------------------


def test_plain_train_converges(capsys):
    assert main(["train"]) == 0
    out = capsys.readouterr().out
    true = float(re.search(r"^w = \S+\s+\(true (\S+)\)", out, re.MULTILINE).group(1))
    assert abs(_value(out, "w") - true) < 1e-2, out
    assert "(auto)" in out and "method: gd," in out and "epochs 10" in out


@pytest.mark.parametrize(
    "method, intercept", [("gd", False), ("gd", True), ("minibatch", True), ("sgd", False)]
)
def test_auto_lr_is_the_estimator_rule(method, intercept, capsys):
    argv = ["train", "--n", "3000", "--features", "3", "--method", method, "--epochs", "2", "--no-progress"]
    assert main(argv + (["--fit-intercept"] if intercept else [])) == 0
    X, _, _ = datasets.make_linear(3000, 3, noise=0.1, seed=0)
    expected = _autolr.auto_lr(X, intercept, method == "gd", 0.0)
    assert _lr(capsys.readouterr().out) == pytest.approx(expected, rel=1e-5)  # printed with 6 digits


def test_estimator_uses_the_same_auto_lr():
    pytest.importorskip("sklearn")
    from fastgd import estimator

    assert estimator._auto_lr is _autolr.auto_lr


@pytest.mark.parametrize("full_batch", [True, False])
def test_auto_lr_in_passes_equals_all_at_once(full_batch):
    X = np.random.default_rng(0).standard_normal((3 * _autolr._ROWS_AT_ONCE + 5, 2))
    norms = (X * X).sum(axis=1) + 1.0
    scale = norms.mean() if full_batch else norms.max()
    assert _autolr.auto_lr(X, True, full_batch, 0.5) == pytest.approx(1.0 / (2.0 * scale + 0.5), rel=1e-12)


def test_explicit_lr_and_bad_lr(capsys):
    assert main(["train", "--n", "100", "--lr", "0.05", "--epochs", "1", "--no-progress"]) == 0
    assert _lr(capsys.readouterr().out) == 0.05
    for bad in ("0", "-1", "nan", "fast"):
        assert "--lr" in _usage_error(["train", "--lr", bad], capsys).err


# -- train: argument checks before any work ------------------------------------


def test_batch_size_needs_minibatch(capsys):
    for method in ("gd", "sgd"):
        err = _usage_error(["train", "--method", method, "--batch-size", "8"], capsys).err
        assert "--batch-size" in err and "minibatch" in err
    assert main(["train", "--n", "200", "--method", "minibatch", "--epochs", "1", "--no-progress"]) == 0
    assert "minibatch (batch 32)" in capsys.readouterr().out


def test_unknown_backend_is_rejected_before_the_data(capsys, monkeypatch):
    monkeypatch.setattr(datasets, "_make_linear", lambda *a, **k: pytest.fail("data generated"))
    captured = _usage_error(["train", "--backend", "foo"], capsys)
    assert "--backend" in captured.err and "'foo'" in captured.err and captured.out == ""
    monkeypatch.undo()
    assert main(["train", "--backend", "NumPy", "--n", "100", "--epochs", "1", "--no-progress"]) == 0
    assert "backend numpy" in capsys.readouterr().out


def test_fallback_warning_is_one_clean_line(capsys, monkeypatch):
    # cuda as a machine without a GPU or the simulator has it (the suite runs the simulator).
    monkeypatch.setitem(_registry._loaded, "cuda", (None, "no CUDA GPU found"))
    monkeypatch.setattr(_registry, "_warned", set())  # the registry warns once per name and process
    with warnings.catch_warnings():
        warnings.simplefilter("default", BackendFallbackWarning)  # shown, as outside pytest
        assert main(["train", "--backend", "cuda", "--n", "100", "--epochs", "1", "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("fastgd: warning: backend 'cuda' is unavailable (") and "using '" in err[0]


# -- train: bad --data ------------------------------------------------------------


@pytest.mark.parametrize(
    "X, y, expected",
    [
        (np.float64(3.0), np.zeros(3), "X.npy has shape ()"),
        (np.zeros((10, 2, 2)), np.zeros(10), "X.npy has shape (10, 2, 2)"),
        (np.zeros((0, 2)), np.zeros(0), "X.npy has shape (0, 2)"),
        (np.zeros((10, 2)), np.zeros((10, 2)), "y.npy has shape (10, 2)"),
        (np.zeros((10, 2)), np.zeros(9), "X.npy has 10 samples"),
    ],
)
def test_bad_data_shapes_are_one_line(tmp_path, capsys, X, y, expected):
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    assert main(["train", "--data", str(tmp_path), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and expected in captured.err, captured.err
    assert captured.err.startswith("fastgd train: error: --data ") and captured.out == ""


# -- train: --plot checked before training --------------------------------------


def _plot_error(argv, capsys):
    assert main(["train", "--n", "100", "--epochs", "1", "--no-progress"] + argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "", "the error must come before the data and the training"
    assert captured.err.count("\n") == 1 and captured.err.startswith("fastgd train: error: --plot ")
    return captured.err


def test_plot_path_is_checked_before_training(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    assert "does not exist" in _plot_error(["--plot", str(tmp_path / "missing" / "loss.png")], capsys)
    assert "unknown image type .foo" in _plot_error(["--plot", str(tmp_path / "loss.foo")], capsys)
    assert "no file suffix" in _plot_error(["--plot", str(tmp_path / "loss")], capsys)
    assert "is a folder" in _plot_error(["--plot", str(tmp_path)], capsys)
    # Root may write anywhere, so an unwritable folder is what os.access says it is.
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: False if mode == os.W_OK else real_access(path, mode)
    )
    assert "cannot write" in _plot_error(["--plot", str(tmp_path / "loss.png")], capsys)


def test_plot_without_matplotlib_names_the_extra(tmp_path, capsys, monkeypatch):
    _block_imports(monkeypatch, "matplotlib")
    err = _plot_error(["--plot", str(tmp_path / "loss.png")], capsys)
    assert "--plot needs matplotlib: pip install 'fastgd[plot]'" in err


# -- train: runaway loss ------------------------------------------------------------


def test_runaway_loss_exits_3_with_a_hint(capsys):
    assert main(["train", "--lr", "100", "--n", "1000", "--epochs", "20", "--no-progress"]) == 3
    captured = capsys.readouterr()
    assert "final cost = " in captured.out and "w = " in captured.out
    assert re.fullmatch(
        r"fastgd train: the loss grew from \S+ to \S+: lower --lr \(try --lr 10\)\n", captured.err
    )


def test_divergence_warning_alone_exits_3(capsys, monkeypatch):
    """A fit that warns DivergenceWarning (whatever its own rule) ends the command with 3."""
    original = fastgd.fit

    def warning_fit(*args, **kwargs):
        result = original(*args, **kwargs)
        warnings.warn("the loss ran away", DivergenceWarning, stacklevel=2)
        return result

    monkeypatch.setattr(fastgd, "fit", warning_fit)
    assert main(["train", "--n", "1000", "--epochs", "3", "--no-progress"]) == 3
    assert "lower --lr" in capsys.readouterr().err


def test_non_finite_loss_exits_3_with_the_last_finite_state(capsys):
    assert main(["train", "--lr", "1e6", "--n", "1000", "--epochs", "300", "--no-progress"]) == 3
    captured = capsys.readouterr()
    assert "diverged at epoch" in captured.err and "the last finite one" in captured.out
    assert captured.err.splitlines()[-1].endswith("to inf: lower --lr (try --lr 100000)")


# -- info ---------------------------------------------------------------------------


def test_info_tells_the_build_tool_from_the_extension(capsys, monkeypatch):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^Cython \(build tool\): \S+", out, re.MULTILINE)
    assert "Cython: " not in out
    cython_backend = {row.name: row for row in fastgd.backends()}["cython"]
    if cython_backend.available:
        assert re.search(r"^fastgd_ext \(compiled extension\): available \(", out, re.MULTILINE)
    _block_imports(monkeypatch, "fastgd_ext")
    assert main(["info"]) == 0
    assert re.search(
        r"^fastgd_ext \(compiled extension\): not available \(", capsys.readouterr().out, re.MULTILINE
    )


# -- bench without its optional dependencies ---------------------------------------


def test_bench_skips_missing_peers_with_a_note(tmp_path, capsys, monkeypatch):
    _block_imports(monkeypatch, "torch", "sklearn")
    monkeypatch.setattr(bench, "small_problems", lambda repeats=5: None)  # no subprocess timings
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "--backend",
            "numpy",
            "--sizes",
            "100",
            "--features",
            "1",
            "--dtypes",
            "float64",
            "--repeats",
            "1",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "fastgd bench: skipping the torch peer" in err and "pip install torch" in err
    assert "fastgd bench: skipping the sklearn peer" in err and "pip install 'fastgd[sklearn]'" in err
    assert json.loads(out.read_text())["settings"]["peers"] == ["numpy-vec"]


def test_bench_plot_without_matplotlib_fails_before_measuring(tmp_path, capsys, monkeypatch):
    _block_imports(monkeypatch, "matplotlib")
    monkeypatch.setattr(bench, "run_matrix", lambda **kwargs: pytest.fail("measured before checking --plot"))
    assert main(["bench", "--backend", "numpy", "--plot", str(tmp_path / "b.png")]) == 2
    assert (
        capsys.readouterr().err
        == "fastgd bench: error: --plot needs matplotlib: pip install 'fastgd[plot]'\n"
    )


# -- the cli module itself ------------------------------------------------------------


def test_train_module_checks_run_before_run(monkeypatch, capsys):
    monkeypatch.setattr(_cli_train, "run", lambda args: pytest.fail("run() before the checks"))
    _usage_error(["train", "--batch-size", "4"], capsys)
