"""fastgd.datasets: the tutorial's data and make_linear (shapes, determinism
across threads and block scheduling, files written block by block, bounded
memory, argument errors)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastgd import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 1000 elements, so that small data sets span many blocks."""
    monkeypatch.setattr(datasets, "_BLOCK_ELEMENTS", 1000)


def test_tutorial():
    assert datasets.tutorial() == ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])


def test_shapes_one_feature_is_1d():
    X, y, coef = datasets.make_linear(50, coef=2.0, intercept=1.0)
    assert X.shape == (50,) and y.shape == (50,)
    assert isinstance(coef, float) and coef == 2.0
    np.testing.assert_allclose(y, 2.0 * X + 1.0, rtol=0, atol=1e-12)


def test_shapes_many_features():
    X, y, coef = datasets.make_linear(40, 3, intercept=-0.5, seed=3)
    assert X.shape == (40, 3) and y.shape == (40,) and coef.shape == (3,)
    assert X.dtype == y.dtype == np.float64 and coef.dtype == np.float64
    np.testing.assert_allclose(y, X @ coef - 0.5, rtol=1e-12, atol=1e-12)


def test_noise_and_statistics():
    X, y, coef = datasets.make_linear(200_000, 2, coef=[1.0, -2.0], noise=0.5, seed=1)
    residual = y - X @ coef
    assert abs(residual.std() - 0.5) < 0.01
    assert abs(X.mean()) < 0.01 and abs(X.std() - 1.0) < 0.01


def test_float32():
    X, y, coef = datasets.make_linear(1000, 2, noise=0.1, dtype="float32")
    assert X.dtype == y.dtype == np.float32 and coef.dtype == np.float64
    np.testing.assert_allclose(y, X.astype(np.float64) @ coef, atol=0.6)


def test_seed_reproducible_and_distinct():
    a = datasets.make_linear(100, 2, seed=5)
    b = datasets.make_linear(100, 2, seed=5)
    c = datasets.make_linear(100, 2, seed=6)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("d", [1, 3])
def test_bytes_equal_for_any_thread_count(small_blocks, dtype, d):
    kw = dict(n_features=d, intercept=0.25, noise=0.3, seed=11, dtype=dtype)
    one = datasets._make_linear(10_007, threads=1, **kw)
    for threads in (2, 3):
        other = datasets._make_linear(10_007, threads=threads, **kw)
        assert one[0].tobytes() == other[0].tobytes()
        assert one[1].tobytes() == other[1].tobytes()


def test_blocks_are_independent_streams(small_blocks):
    # Each block has its own streams: the first rows do not depend on how
    # many samples follow, even when the cut falls inside a block.
    X, y, _ = datasets.make_linear(5_000, 2, noise=1.0, seed=2)
    for m in (1, 499, 500, 501, 2_750):
        Xm, ym, _ = datasets.make_linear(m, 2, noise=1.0, seed=2)
        assert Xm.tobytes() == X[:m].tobytes() and ym.tobytes() == y[:m].tobytes()


def test_progress_hook(small_blocks):
    seen = []
    datasets._make_linear(2_345, threads=2, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (2_345, 2_345)
    assert [s[0] for s in seen] == sorted(s[0] for s in seen) and len(seen) == 3


@pytest.mark.parametrize("d", [1, 4])
def test_out_files_equal_in_memory(tmp_path, small_blocks, d):
    kw = dict(n_features=d, intercept=1.5, noise=0.2, seed=9, dtype="float32")
    X, y, coef = datasets._make_linear(3_001, threads=2, out=tmp_path / "data", **kw)
    Xm, ym, coefm = datasets._make_linear(3_001, threads=1, **kw)
    assert isinstance(X, np.memmap) and isinstance(y, np.memmap)
    assert not X.flags.writeable and not y.flags.writeable
    assert X.tobytes() == Xm.tobytes() and y.tobytes() == ym.tobytes()
    assert np.array_equal(coef, coefm)
    assert sorted(os.listdir(tmp_path / "data")) == ["X.npy", "y.npy"]
    loaded = np.load(tmp_path / "data" / "X.npy")
    assert loaded.dtype == np.float32 and loaded.shape == Xm.shape and loaded.tobytes() == Xm.tobytes()


def test_out_replaces_files_without_truncating_open_maps(tmp_path):
    X1, _, _ = datasets.make_linear(1000, seed=1, out=str(tmp_path))
    first = np.array(X1)
    X2, _, _ = datasets.make_linear(500, seed=2, out=str(tmp_path))
    assert X2.shape == (500,)
    assert np.array_equal(X1, first)  # the old mapping still reads the old file
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(n_samples=0), ValueError, "n_samples"),
        (dict(n_samples=2.5), TypeError, "n_samples"),
        (dict(n_samples=10, n_features=0), ValueError, "n_features"),
        (dict(n_samples=10, n_features=2, coef=[1.0]), ValueError, "coef"),
        (dict(n_samples=10, n_features=2, coef=1.0), ValueError, "coef"),
        (dict(n_samples=10, coef=float("nan")), ValueError, "coef"),
        (dict(n_samples=10, intercept=float("inf")), ValueError, "intercept"),
        (dict(n_samples=10, noise=-1.0), ValueError, "noise"),
        (dict(n_samples=10, seed=-1), ValueError, "seed"),
        (dict(n_samples=10, seed=1.5), TypeError, "seed"),
        (dict(n_samples=10, dtype="int32"), ValueError, "dtype"),
        (dict(n_samples=10, dtype="nonsense"), TypeError, "dtype"),
        (dict(n_samples=10, out=3), TypeError, "out"),
    ],
)
def test_errors_name_the_argument(kwargs, error, name):
    with pytest.raises(error, match=name):
        datasets.make_linear(**kwargs)


def test_memory_bounded_while_writing(tmp_path):
    """Writing 320 MB of .npy files raises the peak RSS by far less than that.

    The memory held is a few blocks per thread, whatever the number of samples.

    Blocks are written with pwrite, so written pages sit in the page cache,
    not in this process: a version that held the arrays (or wrote through a
    memory map) would raise ru_maxrss by about the file size.
    """
    script = textwrap.dedent(
        f"""
        import resource
        from fastgd import datasets
        datasets.make_linear(100_000, out={str(tmp_path / "warm")!r})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        X, y, _ = datasets._make_linear(20_000_000, noise=0.1, threads=2, out={str(tmp_path / "big")!r})
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(before, after, X.nbytes + y.nbytes)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=ROOT)
    before_kib, after_kib, nbytes = map(int, out.stdout.split())
    assert nbytes == 320_000_000
    grown = (after_kib - before_kib) * 1024
    # Each thread holds about 40 MB of block buffers and temporaries (2 here).
    assert grown < 128 * 2**20, f"peak RSS grew by {grown / 2**20:.0f} MiB while writing 320 MB"
    assert os.path.getsize(tmp_path / "big" / "X.npy") >= 160_000_000
