"""Sparse X (SPEC §10): every CPU backend on scipy.sparse input against the
reference on ``X.toarray()`` — bit for bit with ``exact=True``, to 1e-9 in the
default mode — over formats, dtypes, index dtypes and the optimizer options;
the structure's corner cases; memory-mapped CSR out of core; the estimator;
cuda's refusal (on numba's CUDA simulator, in this process: conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastgd
from fastgd import _checks, _orders, _sparse, datasets, reference
from helpers import OPTIMIZERS, assert_bitwise_equal, assert_close

sparse = pytest.importorskip("scipy.sparse")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU_BACKENDS = ("numba", "cython", "numpy")
FORMATS = ("csr", "csc", "coo", "csr_array", "coo_array")


def _available(backend):
    info = {row.name: row for row in fastgd.backends()}[backend]
    if not info.available:
        pytest.skip(f"backend {backend} unavailable: {info.reason}")


@pytest.fixture(params=CPU_BACKENDS)
def backend(request):
    _available(request.param)
    with fastgd.use(request.param):
        yield request.param


def sparse_problem(seed=0, n=40, d=9, density=0.3, dtype=np.float64, empty_row=True, empty_column=True):
    """A small sparse regression problem with an empty row and an all-zero column."""
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((n, d)) * (rng.random((n, d)) < density)
    if empty_row:
        dense[n // 3] = 0.0
    if empty_column:
        dense[:, d // 2] = 0.0
    y = dense @ rng.standard_normal(d) + 0.3 + 0.1 * rng.standard_normal(n)
    return dense.astype(dtype), y.astype(dtype)


def as_format(dense, fmt, index_dtype=np.int32):
    """``dense`` as scipy.sparse ``fmt`` with ``index_dtype`` indices."""
    if fmt.endswith("_array"):
        X = {"csr_array": sparse.csr_array, "coo_array": sparse.coo_array}[fmt](dense)
    else:
        X = sparse.csr_matrix(dense).asformat(fmt)
    if fmt.startswith("coo"):
        X.row = X.row.astype(index_dtype)
        X.col = X.col.astype(index_dtype)
    else:
        X.indices = X.indices.astype(index_dtype)
        X.indptr = X.indptr.astype(index_dtype)
    return X


def _outcome(module, X, y, kw, **extra):
    """The fit, or the state a DivergenceError holds and its epoch (a runaway's warning is not the point here)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fastgd.DivergenceWarning)
            return module.fit(X, y, **kw, **extra), None
    except fastgd.DivergenceError as exc:
        return exc.fit, exc.epoch


# -- the grid: formats x dtypes x index dtypes x batch modes, every CPU backend --------------

MODES = {"gd": dict(batch_size=None), "sgd": dict(batch_size=1), "minibatch": dict(batch_size=7)}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64], ids=["int32", "int64"])
@pytest.mark.parametrize("mode", MODES)
def test_float64_equals_the_reference_on_the_dense_array(backend, fmt, index_dtype, mode):
    dense, y = sparse_problem()
    X = as_format(dense, fmt, index_dtype)
    kw = dict(lr=0.05, epochs=3, fit_intercept=True, **MODES[mode])
    expected = reference.fit(dense, y, **kw)
    assert_bitwise_equal(fastgd.fit(X, y, exact=True, **kw), expected)
    assert_close(fastgd.fit(X, y, **kw), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64], ids=["int32", "int64"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", ["plain", "weight_decay", "everything"])
def test_float32_trains_as_float32_with_the_dense_kernels_bits(backend, index_dtype, mode, options):
    """float32 sparse X trains in float32: with exact=True the same bits as the
    same backend on the dense float32 array; by default within float32 rounding."""
    dense, y = sparse_problem(dtype=np.float32)
    X = as_format(dense, "csr", index_dtype)
    kw = dict(lr=0.05, epochs=3, fit_intercept=True, **MODES[mode], **OPTIMIZERS[options])
    expected = fastgd.fit(dense, y, exact=True, **kw)
    got = fastgd.fit(X, y, exact=True, **kw)
    assert got.w.dtype == np.float32
    assert_bitwise_equal(got, expected)
    assert_close(fastgd.fit(X, y, **kw), reference.fit(dense, y, **kw), rtol=1e-4, atol=1e-5)


# -- every option ----------------------------------------------------------------------------

OPTIONS = dict(
    **{name: kw for name, kw in OPTIMIZERS.items()},
    average=dict(average=True),
    average_from_5=dict(average=5, momentum=0.5),
    decay_weights_only=dict(weight_decay=0.1, decay_intercept=False),
    huber=dict(loss="huber", delta=0.5),
    l1=dict(loss="l1", weight_decay=0.01),
    schedule=dict(lr=[0.05, 0.02, 0.0, 0.01]),
    callable_rate=dict(lr=fastgd.schedules.step(0.05, 2, 0.5), weight_decay=0.02),
    shuffled=dict(shuffle=True, seed=3, weight_decay=0.01),
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("option", OPTIONS)
def test_every_option_equals_the_reference(backend, mode, option):
    dense, y = sparse_problem(seed=1)
    X = sparse.csr_matrix(dense)
    kw = dict(lr=0.05, epochs=4, fit_intercept=True, **MODES[mode])
    kw.update(OPTIONS[option])
    expected = reference.fit(dense, y, **kw)
    assert_bitwise_equal(reference.fit(X, y, **kw), expected)  # the oracle reads CSR rows the same
    assert_bitwise_equal(fastgd.fit(X, y, exact=True, **kw), expected)
    assert_close(fastgd.fit(X, y, **kw), expected, rtol=1e-9, atol=1e-12)


def test_weight_decay_runs_long_and_stays_within_tolerance(backend):
    """The default mode's scale factor over thousands of steps (several folds of the scale)."""
    dense, y = sparse_problem(seed=2, n=300, d=20)
    X = sparse.csr_matrix(dense)
    for kw in (dict(batch_size=1), dict(batch_size=4)):
        kw.update(lr=0.3, weight_decay=0.9, epochs=6, fit_intercept=True)
        # lr * weight_decay = 0.27: the scale falls below its floor every few hundred steps.
        expected = reference.fit(dense, y, **kw)
        assert_close(fastgd.fit(X, y, **kw), expected, rtol=1e-9, atol=1e-12)


# -- the structure's corner cases ----------------------------------------------------------


def _structures():
    rng = np.random.default_rng(7)
    dense, y = sparse_problem(seed=7, n=12, d=6)
    csr = sparse.csr_matrix(dense)
    # Unsorted column indices within each row (the same matrix).
    shuffled = csr.copy()
    for i in range(shuffled.shape[0]):
        a, b = shuffled.indptr[i], shuffled.indptr[i + 1]
        perm = rng.permutation(b - a) + a
        shuffled.indices[a:b] = shuffled.indices[perm]
        shuffled.data[a:b] = shuffled.data[perm]
    shuffled.has_sorted_indices = False
    # Duplicates in COO: each stored value split in three parts that sum (in stored order) to it.
    coo = csr.tocoo()
    parts = [coo.data * 0.5, coo.data * 0.25, coo.data - coo.data * 0.5 - coo.data * 0.25]
    order = rng.permutation(3 * coo.nnz)
    dup = sparse.coo_matrix(
        (np.concatenate(parts)[order], (np.tile(coo.row, 3)[order], np.tile(coo.col, 3)[order])),
        shape=coo.shape,
    )
    # Explicit zeros stored (signed ones included).
    explicit = csr.copy()
    explicit.data[::3] = 0.0
    explicit.data[1::5] = -0.0
    return {
        "unsorted": (shuffled, y),
        "coo-duplicates": (dup, y),
        "explicit-zeros": (explicit, y),
        "all-empty": (sparse.csr_matrix((12, 6)), y),
        "one-row": (csr[:1], y[:1]),
        "one-column": (csr[:, :1], y),
    }


STRUCTURES = _structures()


@pytest.mark.parametrize("name", STRUCTURES)
@pytest.mark.parametrize("mode", MODES)
def test_structures_equal_the_dense_array(backend, name, mode):
    X, y = STRUCTURES[name]
    dense = X.toarray()
    kw = dict(lr=0.05, epochs=3, fit_intercept=True, momentum=0.5, **MODES[mode])
    expected = reference.fit(dense, y, **kw)
    assert_bitwise_equal(fastgd.fit(X, y, exact=True, **kw), expected)
    assert_close(fastgd.fit(X, y, **kw), expected, rtol=1e-9, atol=1e-12)


def test_conversion_sums_duplicates_as_toarray_does():
    X, _ = STRUCTURES["coo-duplicates"]
    rows, _ = _sparse.as_csr(X)
    assert np.array_equal(rows.to_scipy().toarray(), X.toarray())
    assert rows.to_scipy().has_canonical_format


def test_one_dimensional_sparse_array_is_the_scalar_model():
    x = sparse.coo_array(np.array([1.0, 0.0, 3.0]))
    got = fastgd.gd(x, [2.0, 0.0, 6.0], w0=1.0, lr=0.1, epochs=5, exact=True)
    expected = reference.gd([1.0, 0.0, 3.0], [2.0, 0.0, 6.0], w0=1.0, lr=0.1, epochs=5)
    assert isinstance(got.w, float)
    assert_bitwise_equal(got, expected)


# -- validation: no copies, nothing densified, errors name X -----------------------------------


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64], ids=["int32", "int64"])
def test_canonical_csr_is_used_in_place(index_dtype):
    dense, y = sparse_problem()
    X = as_format(dense, "csr", index_dtype)
    problem = _checks.prepare(X, y, None, None, False)
    assert np.shares_memory(problem.X.data, X.data) and np.shares_memory(problem.X.indices, X.indices)
    assert problem.X.indices.dtype == index_dtype and problem.X.indptr.dtype == index_dtype
    assert not problem.X.data.flags.writeable


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_callers_matrix_is_not_modified(fmt):
    dense, y = sparse_problem()
    X = as_format(dense, fmt)
    X_before = X.copy()
    fastgd.sgd(X, y, epochs=2, shuffle=True, seed=0)
    assert type(X) is type(X_before) and (X != X_before).nnz == 0
    if fmt.startswith("coo"):
        assert np.array_equal(X.row, X_before.row) and np.array_equal(X.col, X_before.col)
    else:
        assert np.array_equal(X.indices, X_before.indices)


def test_errors_name_the_argument():
    dense, y = sparse_problem()
    bad = sparse.csr_matrix(dense)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        fastgd.gd(bad, y)
    with pytest.raises(ValueError, match="X is empty"):
        fastgd.gd(sparse.csr_matrix((0, 3)), [])
    with pytest.raises(ValueError, match="different numbers of samples"):
        fastgd.gd(sparse.csr_matrix(dense), y[:-1])
    with pytest.raises(TypeError, match="y is a scipy.sparse.*only X may be sparse"):
        fastgd.gd(sparse.csr_matrix(dense), sparse.csr_matrix(y.reshape(-1, 1)))
    with pytest.raises(ValueError, match=r"xs must have shape \(n, 8\) to match w"):
        fastgd.cost(sparse.csr_matrix(dense), y, np.zeros(8))
    with pytest.raises(TypeError, match="X must be numeric"):
        fastgd.gd(sparse.csr_matrix(dense.astype(complex)), y)
    da = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match="X is scipy.sparse and y a dask array"):
        fastgd.gd(sparse.csr_matrix(dense), da.from_array(y))
    outside = sparse.csr_matrix(dense)
    outside.indices[outside.indptr[1] - 1] = dense.shape[1] + 5  # still sorted: only the bound is wrong
    with pytest.raises(ValueError, match=r"X is not a valid CSR matrix: a column index is outside 0\.\.8"):
        fastgd.gd(outside, y)


def test_cuda_refuses_sparse_x_by_name(cuda):
    """On a GPU or numba's CUDA simulator (conftest.py)."""
    with pytest.raises(ValueError, match="X is sparse: the cuda backend") as info:
        fastgd.gd(sparse.csr_matrix(np.eye(3)), [1.0, 2.0, 3.0])
    assert "toarray" in str(info.value)
    with pytest.raises(ValueError, match="X is sparse: the cuda backend"):
        fastgd.forward(sparse.csr_matrix(np.eye(3)), np.ones(3))
    assert fastgd.gd(np.eye(3), [1.0, 2.0, 3.0], epochs=2).backend == "cuda"


# -- the tutorial functions ---------------------------------------------------------------------


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_forward_cost_gradient_loss_equal_the_dense_ones(backend, fit_intercept):
    dense, y = sparse_problem(seed=4)
    X = sparse.csr_matrix(dense)
    w = np.random.default_rng(4).standard_normal(dense.shape[1])
    b = 0.25 if fit_intercept else None
    for module in (fastgd, reference):
        for name in ("forward", "cost", "gradient"):
            args = (X, w, b) if name == "forward" else (X, y, w, b)
            dense_args = (dense, w, b) if name == "forward" else (dense, y, w, b)
            got, expected = getattr(module, name)(*args), getattr(reference, name)(*dense_args)
            for g, e in zip(
                np.atleast_1d(got) if name != "gradient" or b is None else got,
                np.atleast_1d(expected) if name != "gradient" or b is None else expected,
            ):
                assert np.asarray(g).tobytes() == np.asarray(e).tobytes(), name
        np.testing.assert_array_equal(
            module.loss(X, y, w, b, loss="huber"), reference.loss(dense, y, w, b, loss="huber")
        )


def test_forward_keeps_the_dense_sign_of_a_zero_prediction(backend):
    """All weights negative and an empty row: the dense sum is -0.0 (every term
    is -0.0); one positive weight, or a stored term that is not -0.0, makes it +0.0."""
    X = sparse.csr_matrix(np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, -0.0]]))
    dense = X.toarray()  # SPEC §10's comparison: the -0.0 of the last row is not stored
    for w in ([-1.0, -2.0, -3.0], [-1.0, 2.0, -3.0], [0.0, -0.0, -1.0], [-0.0, -0.0, -0.0]):
        for b in (None, -0.0, 0.0):
            w = np.array(w)
            expected = reference.forward(dense, w, b)
            assert fastgd.forward(X, w, b).tobytes() == expected.tobytes(), (w, b)
            assert reference.forward(X, w, b).tobytes() == expected.tobytes(), (w, b)


# -- divergence, determinism ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_divergence_happens_at_the_same_epoch(backend, mode):
    dense, y = sparse_problem(seed=5)
    X = sparse.csr_matrix(dense)
    kw = dict(lr=3.0, epochs=2000, fit_intercept=True, momentum=0.5, **MODES[mode])
    expected, expected_epoch = _outcome(reference, dense, y, kw)
    got, got_epoch = _outcome(fastgd, X, y, kw, exact=True)
    assert expected_epoch is not None and got_epoch == expected_epoch
    assert_bitwise_equal(got, expected)


def test_an_empty_column_whose_weight_overflows_diverges_as_dense(backend):
    """A weight of an all-zero column that decays out of range (lr·weight_decay
    = 30) makes the dense cost NaN (0·inf): the sparse fit stops there too."""
    dense, y = sparse_problem(seed=6, d=4)
    X = sparse.csr_matrix(dense)
    w0 = np.zeros(4)
    w0[2] = 1e300  # column 2 is all zero
    kw = dict(lr=1.0, epochs=20, weight_decay=30.0, w0=w0, batch_size=None)
    expected, expected_epoch = _outcome(reference, dense, y, kw)
    assert expected_epoch is not None
    got, got_epoch = _outcome(fastgd, X, y, kw, exact=True)
    assert got_epoch == expected_epoch
    assert_bitwise_equal(got, expected)


def test_default_mode_is_deterministic_for_any_thread_count():
    """Large enough for the chunked full-data sums to run in parallel (numba's
    prange, Cython's OpenMP): the same bits for 1 and 2 threads, on both, and
    within 1e-9 of the reference (whose bits the dense exact mode has)."""
    numba = pytest.importorskip("numba")
    _available("numba")
    X, y, _ = datasets.make_sparse_linear(5_000, 300, density=0.2, noise=0.1, seed=9)
    dense = X.toarray()
    kw = dict(lr=0.01, epochs=2, fit_intercept=True, weight_decay=1e-3)
    runs = []
    with fastgd.use("numba"):
        for threads in (1, numba.config.NUMBA_NUM_THREADS, 1):
            numba.set_num_threads(threads)
            runs += [fastgd.sgd(X, y, **kw), fastgd.gd(X, y, **kw), fastgd.minibatch_sgd(X, y, 64, **kw)]
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        expected = [
            fastgd.sgd(dense, y, exact=True, **kw),
            fastgd.gd(dense, y, exact=True, **kw),
            fastgd.minibatch_sgd(dense, y, 64, exact=True, **kw),
        ]
    for a, b in zip(runs[:3], runs[3:6]):
        assert_bitwise_equal(a, b)
    for a, b in zip(runs[:3], runs[6:]):
        assert_bitwise_equal(a, b)
    for a, b in zip(runs[:3], expected):
        assert_close(a, b, rtol=1e-9, atol=1e-12)
    if {row.name: row for row in fastgd.backends()}["cython"].available:
        with fastgd.use("cython"):
            mirrored = [fastgd.sgd(X, y, **kw), fastgd.gd(X, y, **kw), fastgd.minibatch_sgd(X, y, 64, **kw)]
        for a, b in zip(runs[:3], mirrored):
            assert_bitwise_equal(a, b)


# -- cost per step: O(nnz) ----------------------------------------------------------------


@pytest.mark.parametrize("backend_name", ["numba", "cython"])
def test_weight_decay_steps_cost_the_rows_not_d(backend_name):
    """Per-sample SGD with weight decay on d = 10^6: 4,000 steps of 5 stored
    values each. A step over every weight would read 4·10^9 values."""
    _available(backend_name)
    rng = np.random.default_rng(0)
    n, d = 4_000, 1_000_000
    indices = np.sort(rng.choice(d, size=(n, 5)), axis=1)
    X = sparse.csr_matrix(
        (rng.standard_normal(5 * n), indices.ravel(), np.arange(0, 5 * n + 1, 5)), shape=(n, d)
    )
    X.sum_duplicates()
    y = rng.standard_normal(n)
    kw = dict(lr=0.01, weight_decay=1e-3, fit_intercept=True)
    with fastgd.use(backend_name):
        fastgd.sgd(X[:10], y[:10], epochs=1, **kw)  # compile
        start = time.perf_counter()
        fastgd.sgd(X, y, epochs=2, **kw)
        fastgd.minibatch_sgd(X, y, 8, epochs=2, **kw)
        elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.2f} s"


# -- solvers ---------------------------------------------------------------------------------


def test_gram_solver_on_sparse_x(backend):
    dense, y = sparse_problem(seed=8, n=200)
    X = sparse.csr_matrix(dense)
    kw = dict(lr=0.05, epochs=20, fit_intercept=True)
    expected = reference.fit(dense, y, **kw)
    assert_close(fastgd.fit(X, y, solver="gram", **kw), expected, rtol=1e-9, atol=1e-12)
    # "auto" never forms the dense statistics of sparse X: it streams.
    from fastgd import _gram

    opts = _checks.options(lr=0.05, epochs=10**6)
    kernel_module = fastgd._model.kernel_module_for(_sparse.as_csr(X)[0])
    assert _gram.chosen(opts, 10**6, 9, fastgd._registry.kernel_module()) == hasattr(
        fastgd._registry.kernel_module(), "gram"
    )
    assert not _gram.chosen(opts, 10**6, 9, kernel_module)
    wide = sparse.random(10, 20_000, density=1e-3, format="csr", random_state=0)
    with pytest.raises(ValueError, match="solver='gram' on sparse X forms the dense"):
        fastgd.gd(wide, np.ones(10), solver="gram")


# -- memory-mapped CSR ----------------------------------------------------------------------


def test_memory_mapped_csr_trains_as_in_memory(tmp_path, backend):
    X, y, _ = datasets.make_sparse_linear(3_000, 40, density=0.1, noise=0.1, seed=2, out=tmp_path)
    assert _orders.is_memory_mapped(X.data) and _orders.is_memory_mapped(X.indices)
    rows = _checks.prepare(X, y, None, None, False).X  # used in place: still mapped, block-shuffled
    assert _orders.is_memory_mapped(rows.data) and _orders.shuffle_block(rows) == _orders.SHUFFLE_BLOCK
    X_mem = sparse.csr_matrix((np.array(X.data), np.array(X.indices), np.array(X.indptr)), shape=X.shape)
    kw = dict(lr=0.01, epochs=2, fit_intercept=True, batch_size=1)
    assert_bitwise_equal(fastgd.fit(X, y, **kw), fastgd.fit(X_mem, np.array(y), **kw))


def test_memory_mapped_csr_shuffles_block_by_block(tmp_path, monkeypatch, backend):
    """Block-shuffled epochs, fed to the kernels in segments: the reference's
    visits on the same files, bit for bit."""
    X, y, _ = datasets.make_sparse_linear(2_000, 30, density=0.1, noise=0.1, seed=3, out=tmp_path)
    monkeypatch.setattr(_orders, "SHUFFLE_BLOCK", 300)
    monkeypatch.setattr(_orders, "SEGMENT_ROWS", 700)
    kw = dict(lr=0.01, epochs=2, fit_intercept=True, shuffle=True, seed=4, weight_decay=0.01)
    for batch_size in (1, 16):
        expected = reference.fit(X, y, batch_size=batch_size, **kw)
        assert_bitwise_equal(fastgd.fit(X, y, batch_size=batch_size, exact=True, **kw), expected)
        assert_close(fastgd.fit(X, y, batch_size=batch_size, **kw), expected, rtol=1e-9, atol=1e-12)


OUT_OF_CORE = textwrap.dedent(
    """
    import resource, sys, time
    import numpy as np
    import scipy.sparse as sp
    import fastgd

    folder = sys.argv[1]
    arrays = [np.load(f"{folder}/{k}.npy", mmap_mode="r") for k in ("data", "indices", "indptr")]
    X = sp.csr_matrix(tuple(arrays), shape=tuple(np.load(f"{folder}/shape.npy")))
    y = np.load(f"{folder}/y.npy", mmap_mode="r")
    small = X[:100]
    # Compile (or load) the kernels before the limit: LLVM needs memory of its own.
    fastgd.gd(small, y[:100], epochs=1)
    fastgd.sgd(small, y[:100], epochs=1, weight_decay=1e-4)

    def data_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmData:"):
                return int(line.split()[1])

    # RLIMIT_DATA caps private writable memory; read-only file maps do not count.
    headroom = 256 * 2**20
    limit = data_kib() * 1024 + headroom
    resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    try:
        np.zeros((4096, X.shape[1]))  # the control: 4,096 dense rows (0.4 % of X) do not fit
        print("dense-rows-fit")
    except MemoryError:
        print("dense-rows-failed")
    start = time.perf_counter()
    a = fastgd.sgd(X, y, lr=0.05, epochs=1, weight_decay=1e-4)
    b = fastgd.gd(X, y, lr=0.5, epochs=2)
    print(X.nnz, X.shape[0] * X.shape[1] * 8, headroom, a.losses[0], a.loss, b.loss, time.perf_counter() - start)
    """
)


def test_a_million_by_a_million_trains_in_256_mib(tmp_path):
    """10^6 x 10^6 with 10^7 stored values (8 TB dense) trains from its files in
    a process whose private memory is capped 256 MiB above its baseline."""
    datasets.make_sparse_linear(10**6, 10**6, density=1e-5, noise=0.1, seed=0, out=tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", OUT_OF_CORE, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    control, numbers = out.stdout.strip().split("\n")[:2]
    assert control == "dense-rows-failed", "the memory limit does not bind: the test proves nothing"
    nnz, dense_bytes, headroom, first, sgd_loss, gd_loss, seconds = map(float, numbers.split())
    assert 9.9e6 < nnz < 1.01e7 and dense_bytes > 20_000 * headroom
    assert sgd_loss < first and gd_loss < first


# -- make_sparse_linear ----------------------------------------------------------------------


def test_make_sparse_linear_is_the_same_for_any_thread_count_and_on_files(tmp_path):
    kw = dict(density=0.05, coef=None, intercept=0.5, noise=0.1, seed=11)
    one = datasets._make_sparse_linear(20_000, 200, threads=1, **kw)
    many = datasets._make_sparse_linear(20_000, 200, threads=4, **kw)
    on_files = datasets.make_sparse_linear(20_000, 200, out=tmp_path, **kw)
    for X, y, coef in (many, on_files):
        assert np.array_equal(X.indptr, one[0].indptr) and np.array_equal(X.indices, one[0].indices)
        assert np.array_equal(X.data, one[0].data) and np.array_equal(y, one[1])
        assert np.array_equal(coef, one[2])
    X, y, coef = one
    assert X.has_canonical_format and abs(X.nnz / (20_000 * 200) - 0.05) < 0.002
    np.testing.assert_allclose(y, X @ coef + 0.5, atol=0.6)
    assert np.array_equal(np.load(tmp_path / "shape.npy"), [20_000, 200])


def test_make_sparse_linear_options():
    X, y, coef = datasets.make_sparse_linear(
        50, 7, density=1.0, coef=np.arange(7.0), dtype="float32", index_dtype="int64"
    )
    assert X.nnz == 350 and X.dtype == np.float32 and y.dtype == np.float32 and X.indices.dtype == np.int64
    np.testing.assert_allclose(y, X.toarray().astype(np.float64) @ np.arange(7.0), rtol=1e-6)
    X, y, _ = datasets.make_sparse_linear(5, 3, density=0.0, intercept=1.5)
    assert X.nnz == 0 and np.array_equal(y, np.full(5, 1.5))
    with pytest.raises(ValueError, match="density must be in"):
        datasets.make_sparse_linear(5, 3, density=1.5)
    with pytest.raises(ValueError, match="index_dtype"):
        datasets.make_sparse_linear(5, 3, index_dtype="int16")


# -- GDRegressor -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "csr_array"])
@pytest.mark.parametrize("batch_size", [None, 1, 8])
def test_gd_regressor_on_sparse_x(backend, fmt, batch_size):
    GDRegressor = fastgd.GDRegressor
    dense, y = sparse_problem(seed=10, n=60)
    X = as_format(dense, fmt)
    kw = dict(epochs=5, batch_size=batch_size, exact=True, weight_decay=0.01)
    sw = np.random.default_rng(1).uniform(0.0, 2.0, dense.shape[0])
    sw[:3] = 0.0
    for weights in (None, sw):
        got = GDRegressor(**kw).fit(X, y, sample_weight=weights)
        expected = GDRegressor(**kw).fit(dense, y, sample_weight=weights)
        assert np.array_equal(got.coef_, expected.coef_) and got.intercept_ == expected.intercept_
        assert np.array_equal(got.loss_curve_, expected.loss_curve_) and got.lr_ == expected.lr_
        assert np.array_equal(got.predict(X), expected.predict(dense))
        assert got.score(X, y) == expected.score(dense, y)
    got.partial_fit(X, y)
    expected.partial_fit(dense, y)
    assert np.array_equal(got.coef_, expected.coef_)
    assert got.__sklearn_tags__().input_tags.sparse


# -- hypothesis: random sparse problems ------------------------------------------------------------


@st.composite
def sparse_problems(draw):
    n = draw(st.integers(1, 12))
    d = draw(st.integers(1, 6))
    values = st.floats(-8, 8, allow_nan=False, allow_infinity=False, width=64)
    dense = np.array(draw(st.lists(values, min_size=n * d, max_size=n * d))).reshape(n, d)
    mask = np.array(draw(st.lists(st.booleans(), min_size=n * d, max_size=n * d))).reshape(n, d)
    dense = np.where(mask, dense, 0.0)
    y = np.array(draw(st.lists(values, min_size=n, max_size=n)))
    scale = 1.0 + float((dense * dense).sum(axis=1).max())
    kw = dict(
        lr=draw(st.floats(0.001, 0.4)) / scale,
        epochs=draw(st.integers(0, 4)),
        batch_size=draw(st.one_of(st.none(), st.integers(1, n + 2))),
        fit_intercept=draw(st.booleans()),
        momentum=draw(st.sampled_from([0.0, 0.0, 0.5])),
        weight_decay=draw(st.sampled_from([0.0, 1e-3, 0.1])),
        shuffle=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32)),
        loss=draw(st.sampled_from(["mse", "mse", "huber", "l1"])),
    )
    return dense, y, draw(st.sampled_from(["csr", "csc", "coo"])), kw


@pytest.mark.parametrize("backend_name", CPU_BACKENDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=sparse_problems())
def test_hypothesis_exact_bitwise(backend_name, problem):
    _available(backend_name)
    dense, y, fmt, kw = problem
    X = sparse.csr_matrix(dense).asformat(fmt)
    expected, expected_epoch = _outcome(reference, dense, y, kw)
    with fastgd.use(backend_name):
        got, got_epoch = _outcome(fastgd, X, y, kw, exact=True)
        default, default_epoch = _outcome(fastgd, X, y, kw)
    assert got_epoch == expected_epoch
    assert_bitwise_equal(got, expected)
    if expected_epoch is None and default_epoch is None:
        assert_close(default, expected, rtol=1e-9, atol=1e-12)
