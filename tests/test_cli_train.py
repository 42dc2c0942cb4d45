"""``fastgd train`` end to end, run as ``python -m fastgd train`` in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from fastgd import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train(*args, check=True):
    out = subprocess.run(
        [sys.executable, "-m", "fastgd", "train", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def _value(stdout, name):
    match = re.search(rf"^{name} = (\S+)", stdout, re.MULTILINE)
    assert match, stdout
    return float(match.group(1))


def test_synthetic_with_progress_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "loss.png"
    out = train(
        "--n",
        "2e4",
        "--noise",
        "0.01",
        "--intercept",
        "0.5",
        "--fit-intercept",
        "--epochs",
        "40",
        "--lr",
        "0.2",
        "--seed",
        "3",
        "--plot",
        plot,
    )
    X, y, coef = datasets.make_linear(20_000, intercept=0.5, noise=0.01, seed=3)
    assert "20,000 samples x 1 feature (float64)" in out.stdout
    assert abs(_value(out.stdout, "w") - coef) < 1e-3
    assert abs(_value(out.stdout, "b") - 0.5) < 1e-3
    assert _value(out.stdout, "final cost") < 2e-4
    assert re.search(r"[\d.e+]+ samples/s", out.stdout)
    assert "train" in out.stderr and "40/40" in out.stderr  # tqdm's bar, on stderr
    assert "generate" in out.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_npy_folder_minibatch(tmp_path):
    X, y, coef = datasets.make_linear(5_000, 3, noise=0.05, seed=8, dtype="float32", out=tmp_path)
    out = train(
        "--data",
        tmp_path,
        "--method",
        "minibatch",
        "--batch-size",
        "50",
        "--lr",
        "0.05",
        "--epochs",
        "3",
        "--shuffle",
        "--no-progress",
    )
    assert "5,000 samples x 3 features (float32)" in out.stdout and f"from {tmp_path}" in out.stdout
    assert "minibatch (batch 50)" in out.stdout and out.stderr == ""
    w = np.array(re.search(r"^w = \[([^\]]*)\]", out.stdout, re.MULTILINE).group(1).split(), dtype=float)
    np.testing.assert_allclose(w, coef, atol=0.02)


def test_generate_to_folder_then_sgd(tmp_path):
    out = train(
        "--n",
        "3000",
        "--out",
        tmp_path / "d",
        "--dtype",
        "float32",
        "--method",
        "sgd",
        "--lr",
        "0.01",
        "--epochs",
        "2",
        "--no-progress",
    )
    assert sorted(os.listdir(tmp_path / "d")) == ["X.npy", "y.npy"]
    assert np.load(tmp_path / "d" / "X.npy").dtype == np.float32
    assert "method: sgd" in out.stdout and "b = None" in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("--data", "/nonexistent/folder"), "missing"),
        (("--n", "10", "--lr", "-1"), "--lr"),
        (("--n", "10", "--batch-size", "4"), "--batch-size"),
        (("--n", "10", "--backend", "foo"), "--backend"),
        (("--n", "10", "--epochs", "-2"), "epochs"),
    ],
)
def test_errors(args, message):
    out = train(*args, "--no-progress", check=False)
    assert out.returncode == 2 and "fastgd train: error:" in out.stderr and message in out.stderr


def test_bad_number_is_a_usage_error():
    out = train("--n", "1.5", check=False)
    assert out.returncode == 2 and "--n" in out.stderr


def test_divergence_exit_code():
    out = train("--n", "1000", "--lr", "1e6", "--epochs", "300", "--no-progress", check=False)
    assert out.returncode == 3 and "diverged" in out.stderr and "lower --lr (try --lr 100000)" in out.stderr


def test_runaway_exit_code():
    out = train("--n", "1000", "--lr", "100", "--epochs", "20", "--no-progress", check=False)
    assert out.returncode == 3 and "the loss grew from" in out.stderr and "final cost" in out.stdout


def test_import_fastgd_does_not_import_tqdm_or_matplotlib():
    code = (
        "import sys, fastgd, fastgd.cli; fastgd.cli.build_parser();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tqdm', 'matplotlib')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
