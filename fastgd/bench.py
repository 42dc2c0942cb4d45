"""``fastgd bench``: kernel microbenchmarks against the machine and the peers.

One run measures a matrix of kernels (the cost+gradient pass ``sums``, a
full-batch ``gd`` epoch, a per-sample ``sgd`` epoch, its ``sgd-exact`` twin and
a ``minibatch`` epoch of 64-sample batches) × sizes × dtypes × feature counts ×
backends, the peers that are installed (numpy vectorised, ``torch.optim.SGD``
over ``nn.Linear``, scikit-learn's ``SGDRegressor``) on the same data, the
machine's bare read bandwidth, and the rows of ``ROWS``: the issue's targets,
each on data far larger than the last-level cache.

Every figure is a wall-clock time: one warm-up call, then ``repeats`` timed
calls; the median is the figure, ``spread`` is ``(max - min) / median``.
``GB/s`` counts ``X`` and ``y`` read once per call.

The bandwidth probes read one float64 array of ``far_bytes()`` (at least
eight times the last-level cache; four in ``--quick``) as rows of eight
values, summed in 32 vector lanes per thread (_bare_read), so the loop waits on memory
and not on one chain of dependent adds: the all-core probe on every numba
thread, the one-core probe on one; a probe's figure is its fastest call
(load only slows a read down). ``fraction_of_bandwidth`` divides a record's
median GB/s by the probe it is comparable with: the one-core probe for the
sequential kernels (``sgd``, ``sgd-exact``, ``minibatch``: one dependent chain
of steps), the all-core probe for the streaming ones (``sums``, ``gd``). On
data that fits in the cache a kernel may read faster than memory (flagged
``c`` in the table); a target row above ``IMPLAUSIBLE_FRACTION`` of its probe
is "probe implausible", never met (:func:`bandwidth_verdict`). A ratio
against a peer is ``peer median / backend median`` (above 1: fastgd is
faster).

It also times the small problems: the tutorial's run through ``fastgd`` and
through ``fastgd.reference``, ``import fastgd`` and the first fit in a fresh
process with a warm compile cache. ``targets`` holds the goals with this
run's figures (from medians, and from the fastest repeats, which suffer less
from other load on the machine; the load average is recorded too).

The heavy imports (tqdm, numba for the bandwidth probes, torch, scikit-learn,
matplotlib) happen here, when the command runs, never on ``import fastgd``.

Examples
--------
>>> from fastgd import bench
>>> report = bench.run_matrix(sizes=[64], features=[1], dtypes=["float64"], backends=["numpy"],
...                           peers=[], repeats=1, progress=False, small=False, rows=[],
...                           far=1 << 20)
>>> sorted(report)[:3]
['bandwidth', 'elapsed_s', 'load_average']
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import os
import platform
import statistics
import sys
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

KERNELS = ("sums", "gd", "sgd", "sgd-exact", "minibatch")
# One dependent chain of steps (one core); the others stream X on every thread.
SEQUENTIAL_KERNELS = ("sgd", "sgd-exact", "minibatch")
PEERS = ("numpy-vec", "torch", "sklearn")
MINIBATCH = 64
FULL_SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
QUICK_SIZES = (10_000, 100_000)
QUICK_FEATURES = (1, 64)
FULL_FEATURES = (1, 8, 64)
# X is capped at this many bytes (rows are dropped for many features).
MAX_X_BYTES = 400 * 2**20
QUICK_MAX_X_BYTES = 16 * 2**20
# An implementation whose projected time at the next size exceeds this many
# seconds (for warm-up plus repeats) is skipped there, with that reason.
BUDGET_S = 3.0
QUICK_BUDGET_S = 0.3
# Per-sample Python loops (a step per sample in Python) run on at most this
# many rows; their figures are per sample, and ratios compare ns per sample.
SLOW_ROWS = 2000
QUICK_SLOW_ROWS = 300
SLOW = {
    ("backend", "numpy", "sgd"),
    ("backend", "numpy", "sgd-exact"),
    ("peer", "numpy-vec", "sgd"),
    ("peer", "torch", "sgd"),
}
# Which peer measures which kernel, and what it is.
PEER_KERNELS = {
    "numpy-vec": ("sums", "gd", "sgd", "minibatch"),
    "torch": ("gd", "sgd", "minibatch"),
    "sklearn": ("sgd",),
}
PEER_LABELS = {
    "numpy-vec": "numpy vectorised (X @ w, X.T @ r)",
    "torch": "torch.optim.SGD over nn.Linear with nn.MSELoss",
    "sklearn": "sklearn SGDRegressor(constant lr, penalty=None, max_iter=1)",
    "all-core": "bare read of a float64 array far larger than the LLC, 8 sums per thread, every numba thread",
    "one-core": "the same read on one thread",
}
PEER_SHORT = {"numpy-vec": "np", "torch": "torch", "sklearn": "sk", "stream": "stream"}

# The probes and the target rows read at least this many bytes, and at least
# this many times the last-level cache (DEFAULT_LLC_BYTES where it is unknown):
# a probe on a smaller array measures the cache, and on a few kB the thread
# pool's wake-up (the old probe read each kernel's own arrays, one add chain
# per thread: ``--quick`` printed a kernel at 17954 % of it).
FAR_MIN_BYTES = 256 * 2**20
QUICK_FAR_MIN_BYTES = 128 * 2**20
FAR_LLC_MULTIPLE = 8
QUICK_FAR_LLC_MULTIPLE = 4
DEFAULT_LLC_BYTES = 32 * 2**20
# The probes' array is rows of eight float64 (PROBE_LANES), PROBE_CHUNK_ROWS
# rows per parallel chunk (512 KiB); each thread sums its chunks in
# PROBE_ACCUMULATORS independent lanes (four vectors of eight).
PROBE_LANES = 8
PROBE_ACCUMULATORS = 32
PROBE_CHUNK_ROWS = 1 << 13
# Timed calls of each probe at least (about 10 ms each): they divide every fraction.
PROBE_REPEATS = 9
# A kernel cannot read memory much faster than the bare read: above this
# fraction the probe, not the kernel, is wrong (or the data was in cache).
IMPLAUSIBLE_FRACTION = 1.10
# Target rows run on the first of these that is measured (the numpy backend's
# per-sample loops would take minutes on data of far_bytes()).
ROW_BACKENDS = ("numba", "cython")
# Table lines are at most this wide.
TABLE_WIDTH = 100


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (under a minute)")
    parser.add_argument("--json", metavar="PATH", help="write every figure, the machine and versions here")
    parser.add_argument(
        "--plot", metavar="PATH", help="draw throughput against size per backend (matplotlib)"
    )
    parser.add_argument("--backend", metavar="NAME", help="measure only this backend (cuda only when named)")
    parser.add_argument("--sizes", metavar="N,N,...", help="numbers of samples (default 1e4,1e5,1e6,1e7)")
    parser.add_argument("--features", metavar="D,D,...", help="numbers of features (default 1,8,64)")
    parser.add_argument("--dtypes", metavar="T,T", default="float64,float32", help="float64 and/or float32")
    parser.add_argument(
        "--repeats", type=int, metavar="R", help="timed calls per figure (default 5; quick 3)"
    )
    parser.add_argument("--no-peers", action="store_true", help="skip numpy, torch and scikit-learn")
    parser.add_argument(
        "--no-rows",
        action="store_true",
        help="skip the target rows (data far larger than the cache; a 10^7 x 8 Gram fit)",
    )


def _int_list(text: Optional[str], name: str) -> Optional[List[int]]:
    if text is None:
        return None
    try:
        values = [int(float(part)) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"fastgd bench: --{name} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise SystemExit(f"fastgd bench: --{name} needs positive integers, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    quick = bool(args.quick)
    sizes = _int_list(args.sizes, "sizes") or list(QUICK_SIZES if quick else FULL_SIZES)
    features = _int_list(args.features, "features") or list(QUICK_FEATURES if quick else FULL_FEATURES)
    dtypes = [part.strip() for part in args.dtypes.split(",") if part.strip()]
    for name in dtypes:
        if name not in ("float64", "float32"):
            raise SystemExit(f"fastgd bench: --dtypes takes float64 and/or float32, got {name!r}")
    repeats = args.repeats if args.repeats is not None else (3 if quick else 5)
    if repeats < 1:
        raise SystemExit("fastgd bench: --repeats must be >= 1")
    backends = select_backends(args.backend)
    if not backends:
        raise SystemExit(f"fastgd bench: backend {args.backend!r} is not available here")
    if args.plot:
        from fastgd.cli import missing_extra

        # Checked before measuring, not when the figures are ready to draw.
        missing = missing_extra("matplotlib", "plot", "--plot")
        if missing is not None:
            print(f"fastgd bench: error: {missing}", file=sys.stderr)
            return 2
    peers = []
    if not args.no_peers:
        peers = available_peers()
        for note in missing_peer_notes(peers):
            print(f"fastgd bench: {note}", file=sys.stderr)
    report = run_matrix(
        sizes=sizes,
        features=features,
        dtypes=dtypes,
        backends=backends,
        peers=peers,
        repeats=repeats,
        quick=quick,
        progress=True,
        rows=[] if args.no_rows else None,
    )
    print(format_table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        plot(report, args.plot)
        print(f"wrote {args.plot}")
    return 0


# --- what runs ---------------------------------------------------------------


def select_backends(name: Optional[str] = None) -> List[str]:
    """Available backends to measure: every CPU one, or just ``name`` (cuda only when named)."""
    import fastgd

    rows = {info.name: info for info in fastgd.backends()}
    if name is not None:
        name = name.lower()
        if name not in rows:
            raise SystemExit(f"fastgd bench: unknown backend {name!r}; one of {', '.join(rows)}")
        return [name] if rows[name].available else []
    return [info.name for info in rows.values() if info.available and info.name != "cuda"]


# The module each peer needs, and how to install it (torch is in no extra of
# fastgd's but the test one: it is a peer to compare against, nothing more).
PEER_MODULES = {"numpy-vec": "numpy", "torch": "torch", "sklearn": "sklearn"}
PEER_INSTALL = {
    "numpy-vec": "pip install numpy",
    "torch": "pip install torch",
    "sklearn": "pip install 'fastgd[sklearn]'",
}


def available_peers() -> List[str]:
    """The peers whose module is installed (found, not imported: torch takes seconds)."""
    import importlib.util

    found = []
    for peer in PEERS:
        try:
            spec = importlib.util.find_spec(PEER_MODULES[peer])
        except (ImportError, ValueError):  # a broken or half-imported package
            spec = None
        if spec is not None:
            found.append(peer)
    return found


def missing_peer_notes(peers: Sequence[str]) -> List[str]:
    """One line per peer not in ``peers``: that it is skipped, and how to install it."""
    return [
        f"skipping the {peer} peer ({PEER_LABELS[peer]}): {PEER_MODULES[peer]} is not installed; "
        f"{PEER_INSTALL[peer]}"
        for peer in PEERS
        if peer not in peers
    ]


def _kernel_module(name: str) -> Any:
    from fastgd import _registry

    module, reason = _registry.load(name)
    if module is None:
        raise RuntimeError(f"backend {name} is unavailable: {reason}")
    return module


def _data(n: int, d: int, dtype: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    X: np.ndarray = rng.standard_normal((n, d), dtype=np.float64 if dtype == "float64" else np.float32)
    coef: np.ndarray = rng.standard_normal(d).astype(X.dtype)
    y = X @ coef + np.asarray(0.5, dtype=X.dtype)
    y += rng.standard_normal(n, dtype=X.dtype) * np.asarray(0.1, dtype=X.dtype)
    return np.ascontiguousarray(X), np.ascontiguousarray(y)


def _rates(d: int) -> Dict[str, float]:
    """Learning rates that keep every kernel stable on standard-normal data."""
    return {"sums": 0.1, "gd": 0.1, "sgd": 0.01 / d, "sgd-exact": 0.01 / d, "minibatch": 0.05 / d}


def _intercept(kernel: str, d: int) -> bool:
    # The tutorial's model for one feature; an intercept otherwise (the
    # scikit-learn comparison).
    return d > 1 and kernel in ("sgd", "sgd-exact")


def _backend_call(
    module: Any, kernel: str, X: np.ndarray, y: np.ndarray, fit_intercept: Optional[bool] = None
) -> Callable[[], Any]:
    """One epoch (or one sums pass) of ``kernel`` on the kernel interface, with
    the engine's own arrays (fastgd._engine.Training); ``fit_intercept``
    defaults to the matrix's choice (``_intercept``)."""
    n, d = X.shape
    if fit_intercept is None:
        fit_intercept = _intercept(kernel, d)
    full_batch = kernel == "gd"
    batch = {"sums": None, "gd": None, "sgd": 1, "sgd-exact": 1, "minibatch": MINIBATCH}[kernel]
    handle, a, rates = _one_epoch_fit(
        module, X, y, fit_intercept, _rates(d).get(kernel, 0.1), batch, kernel == "sgd-exact"
    )
    if kernel == "sums":
        return lambda: handle.sums(a.params, True, exact=False)
    costs = np.empty(1, dtype=np.float64)
    order = np.empty(0, dtype=np.int64)
    if full_batch:
        a.grad[:] = (handle.sums(a.params, True)[1:] / n).astype(X.dtype)

    def call():
        if handle.run_epochs(a, order, costs, rates) != 1:
            raise RuntimeError(f"bench: {module.NAME} {kernel} diverged")

    return call


def _one_epoch_fit(
    module: Any, X: Any, y: np.ndarray, fit_intercept: bool, lr: float, batch_size: Optional[int], exact: bool
) -> Tuple[Any, Any, np.ndarray]:
    """The handle, the state and the rates of a one-epoch fit from zero (plain
    SGD options) on ``module``, as fastgd/_engine.py's ``run`` makes them."""
    from fastgd import _checks
    from fastgd._backend import Handle, Plan
    from fastgd._state import Training

    d = X.shape[1]
    problem = _checks.Problem(X, y, np.zeros(d + int(fit_intercept), dtype=X.dtype), False, fit_intercept)
    opts = _checks.options(lr=lr, epochs=1, batch_size=batch_size, exact=exact)
    state = Training(problem, opts, None)
    handle = Handle(module, X, y, Plan.of(X, fit_intercept, opts), state.loss_spec)
    return handle, state, opts.rates(0, 1)


def _statistics_epoch_call(
    module: Any, kernel: str, X: np.ndarray, y: np.ndarray, fit_intercept: bool
) -> Tuple[Callable[[], Any], Callable[[], Any]]:
    """One epoch of ``kernel`` as a long fit runs it when its costs come from
    the Gram statistics (fastgd/_engine.py's ``_stepped_epoch``): the steps
    (``run_steps``), then the cost from :class:`fastgd._gram.QuadraticCost`;
    and the statistics' pass the fit makes once."""
    from fastgd import _gram
    from fastgd._orders import NATURAL

    batch = {"sgd": 1, "sgd-exact": 1, "minibatch": MINIBATCH}[kernel]
    handle, a, rates = _one_epoch_fit(module, X, y, fit_intercept, _rates(X.shape[1])[kernel], batch, False)
    a.hyper[0] = rates[0]

    def stream(at: np.ndarray) -> np.ndarray:
        return handle.sums(at, True)

    form = _gram.QuadraticCost(module.gram(X, y, fit_intercept), X.shape[0], a.params, stream)

    def call() -> float:
        handle.run_steps(a, NATURAL)
        cost = form.cost(a.params)
        if not np.isfinite(cost):
            raise RuntimeError(f"bench: {module.NAME} {kernel} diverged")
        return cost

    return call, lambda: module.gram(X, y, fit_intercept)


def _numpy_call(kernel: str, X: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    n, d = X.shape
    lr = X.dtype.type(_rates(d)[kernel])
    two = X.dtype.type(2.0)
    w = np.zeros(d, dtype=X.dtype)
    b = np.zeros(1, dtype=X.dtype)
    fit_intercept = _intercept(kernel, d)

    def sums():
        r = X @ w - y
        return float(r @ r), two * (X.T @ r)

    def gd():
        r = X @ w - y
        w[:] -= lr * (two / n) * (X.T @ r)
        r = X @ w - y
        return float(r @ r) / n

    def sgd():
        for i in range(n):
            r = X[i] @ w + b[0] - y[i]
            w[:] -= lr * two * r * X[i]
            if fit_intercept:
                b[0] -= lr * two * r
        r = X @ w + b[0] - y
        return float(r @ r) / n

    def minibatch():
        for start in range(0, n, MINIBATCH):
            xb = X[start : start + MINIBATCH]
            r = xb @ w - y[start : start + MINIBATCH]
            w[:] -= lr * (two / xb.shape[0]) * (xb.T @ r)
        r = X @ w - y
        return float(r @ r) / n

    return {"sums": sums, "gd": gd, "sgd": sgd, "minibatch": minibatch}[kernel]


def _torch_call(kernel: str, X: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    import torch

    n, d = X.shape
    tdtype = torch.float64 if X.dtype == np.float64 else torch.float32
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)
    model = torch.nn.Linear(d, 1, bias=_intercept(kernel, d)).to(tdtype)
    with torch.no_grad():
        model.weight.zero_()
        if model.bias is not None:
            model.bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=_rates(d)[kernel])
    loss_fn = torch.nn.MSELoss()
    batch = {"gd": n, "sgd": 1, "minibatch": MINIBATCH}[kernel]

    def call():
        for start in range(0, n, batch):
            optimizer.zero_grad()
            loss = loss_fn(model(Xt[start : start + batch]).squeeze(1), yt[start : start + batch])
            loss.backward()
            optimizer.step()
        with torch.no_grad():  # the epoch's cost over all samples, as fastgd computes it
            return float(loss_fn(model(Xt).squeeze(1), yt))

    return call


def _sklearn_call(kernel: str, X: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDRegressor

    d = X.shape[1]
    # scikit-learn's squared loss is half of fastgd's: eta0 = 2 lr takes the same steps.
    estimator = SGDRegressor(
        loss="squared_error",
        penalty=None,
        learning_rate="constant",
        eta0=2 * _rates(d)[kernel],
        max_iter=1,
        tol=None,
        shuffle=False,
        fit_intercept=_intercept(kernel, d),
        average=False,
    )

    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X, y)

    return call


PEER_CALLS: Dict[str, Callable[[str, np.ndarray, np.ndarray], Callable[[], Any]]] = {
    "numpy-vec": _numpy_call,
    "torch": _torch_call,
    "sklearn": _sklearn_call,
}


# --- the bandwidth probes ----------------------------------------------------


def _size_bytes(text: str) -> int:
    """sysfs cache sizes: ``32768K``, ``2M``, ``512``."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    if text and text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def llc_bytes() -> Optional[int]:
    """The last-level cache of CPU 0 in bytes (Linux sysfs, else glibc's sysconf), or None."""
    root = "/sys/devices/system/cpu/cpu0/cache"
    best = (0, 0)  # (level, bytes)
    try:
        names = [name for name in os.listdir(root) if name.startswith("index")]
    except OSError:
        names = []
    for name in names:
        fields = {}
        try:
            for field in ("level", "type", "size"):
                with open(os.path.join(root, name, field), encoding="utf-8") as handle:
                    fields[field] = handle.read().strip()
            level, size = int(fields["level"]), _size_bytes(fields["size"])
        except (OSError, ValueError):
            continue
        if fields["type"] != "Instruction" and (level, size) > best:
            best = (level, size)
    if best[1] > 0:
        return best[1]
    try:
        size = os.sysconf("SC_LEVEL3_CACHE_SIZE")  # glibc; 0 or -1 where unknown
    except (AttributeError, ValueError, OSError):
        return None
    return size if size > 0 else None


def far_bytes(quick: bool = False, llc: Optional[int] = None) -> int:
    """Bytes of the probes' array and of each target row's ``X`` and ``y``: far
    larger than the last-level cache (``llc``, else :func:`llc_bytes`), and at
    most a sixteenth of the memory."""
    llc = llc or llc_bytes() or DEFAULT_LLC_BYTES
    wanted = (
        max(QUICK_FAR_MIN_BYTES, QUICK_FAR_LLC_MULTIPLE * llc)
        if quick
        else max(FAR_MIN_BYTES, FAR_LLC_MULTIPLE * llc)
    )
    memory = _memory_bytes()
    return min(wanted, memory // 16) if memory else wanted


_probes: Any = None


def _probe_functions() -> Tuple[Callable[..., Any], Callable[..., Any]]:
    """The compiled bare reads (every numba thread, one thread): compiled once,
    not cached (about a second)."""
    global _probes
    if _probes is None:
        import numba

        from fastgd.kernels._numba_lanes import _bare_read

        chunk = PROBE_CHUNK_ROWS

        # rows: (m, 8) float64; partial[c]: the sum of chunk c, read as four
        # vectors of eight independent lanes (_bare_read), so that the adds
        # never limit the read: eight scalar chains read at 7.1 GB/s on one
        # core of the 2-core Xeon VM where a vectorised kernel read 9.4
        # (2026-12-02); one scalar chain at about half of that. No fastmath.
        # With parallel=False, prange is range: one thread.
        def bare_read(rows, partial):
            values = rows.reshape(-1)
            m = values.shape[0]
            span = chunk * PROBE_LANES
            for c in numba.prange(partial.shape[0]):
                start = c * span
                count = min(m, start + span) - start
                total = _bare_read(values, start, count // 32)
                for k in range(start + count // 32 * 32, start + count):
                    total += values[k]
                partial[c] = total

        _probes = (numba.njit(parallel=True)(bare_read), numba.njit(bare_read))
    return _probes


def measure_probes(nbytes: int, repeats: int = PROBE_REPEATS) -> Dict[str, Dict[str, Any]]:
    """The all-core (``"all"``) and one-core (``"one"``) bare reads of about
    ``nbytes``: ``repeats`` (at least ``PROBE_REPEATS``) timed calls of each,
    alternating, after one warm-up call of each."""
    import numba

    functions = dict(zip(("all", "one"), _probe_functions()))
    rows = np.ones((max(1, nbytes // (8 * PROBE_LANES)), PROBE_LANES))
    partial = np.zeros(-(-rows.shape[0] // PROBE_CHUNK_ROWS))
    times: Dict[str, List[float]] = {name: [] for name in functions}
    for name, function in functions.items():
        partial[:] = 0.0
        function(rows, partial)
        if partial.sum() != rows.size:  # ones: the exact count of values read
            raise RuntimeError(f"bench: the {name}-core read probe did not read its whole array")
    for _ in range(max(repeats, PROBE_REPEATS)):
        for name, function in functions.items():
            start = time.perf_counter()
            function(rows, partial)
            times[name].append(time.perf_counter() - start)
    threads = {"all": numba.get_num_threads(), "one": 1}
    out = {}
    for name, label in (("all", "all-core"), ("one", "one-core")):
        record: Dict[str, Any] = dict(
            kind="bandwidth",
            impl=label,
            kernel="read",
            dtype="float64",
            threads=threads[name],
            accumulators=PROBE_ACCUMULATORS,
            bytes=rows.nbytes,
            repeats=len(times[name]),
            times_s=times[name],
        )
        record.update(_timing(times[name], rows.size, rows.nbytes))
        record["max_gb_per_s"] = rows.nbytes / min(times[name]) / 1e9
        out[name] = record
    return out


def probe_for(kernel: str) -> str:
    """The probe a kernel compares with: ``"one"`` for the sequential ones, else ``"all"``."""
    return "one" if kernel in SEQUENTIAL_KERNELS else "all"


def fraction_of(nbytes: int, seconds: float, probe: Dict[str, Any]) -> Optional[float]:
    """GB/s of reading ``nbytes`` in ``seconds`` over the probe's GB/s, None without a time.

    The probe's figure is its fastest repeat: other load on the machine only
    slows a read down, so the fastest repeat is the closest to what the memory
    can do (a probe's median on the shared dev VM was at times half of it).
    The fraction of a kernel's median (or fastest repeat) is then never
    flattered by a probe that happened to be slowed down.
    """
    if seconds <= 0 or probe["min_s"] <= 0:
        return None
    return (nbytes / seconds) / (probe["bytes"] / probe["min_s"])


def bandwidth_verdict(fraction: Optional[float], goal: float) -> Tuple[Optional[bool], str]:
    """``(met, status)`` of a fraction of a read probe against ``goal``.

    Above ``IMPLAUSIBLE_FRACTION`` the probe read slower than a kernel that
    does more than read: the probe is wrong (or the data was cached), so the
    goal is not met whatever the fraction says.

    Examples
    --------
    >>> bandwidth_verdict(0.93, 0.9), bandwidth_verdict(0.5, 0.9), bandwidth_verdict(179.54, 0.9)
    ((True, 'met'), (False, 'MISSED'), (False, 'probe implausible'))
    """
    if fraction is None:
        return None, "n/a"
    if fraction > IMPLAUSIBLE_FRACTION:
        return False, "probe implausible"
    return (True, "met") if fraction >= goal else (False, "MISSED")


def _timing(times: Sequence[float], rows: int, nbytes: int) -> Dict[str, Any]:
    """The figures of ``times`` (seconds) of calls over ``rows`` samples and ``nbytes`` bytes."""
    median, fastest, slowest = statistics.median(times), min(times), max(times)
    return dict(
        median_s=median,
        min_s=fastest,
        max_s=slowest,
        spread=(slowest - fastest) / median if median > 0 else 0.0,
        ns_per_sample=median / rows * 1e9,
        min_ns_per_sample=fastest / rows * 1e9,
        gb_per_s=nbytes / median / 1e9 if median > 0 else 0.0,
    )


def _measure(call: Callable[[], Any], repeats: int) -> List[float]:
    call()  # warm-up: compilation, caches, page faults
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


# --- small problems ------------------------------------------------------------

_IMPORT_CODE = "import time; t = time.perf_counter(); import fastgd; print(time.perf_counter() - t)"
_FIRST_FIT_CODE = (
    "import time; t = time.perf_counter(); import fastgd; "
    "fastgd.gd([0.5 * i for i in range(1000)], [1.5 * i for i in range(1000)], lr=1e-6, epochs=10); "
    "print(time.perf_counter() - t)"
)


def _subprocess_seconds(code: str) -> float:
    import subprocess
    import sys

    import fastgd

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastgd.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        [root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def small_problems(repeats: int = 5) -> Dict[str, Any]:
    """The tutorial's run (3 samples, 100 epochs) through fastgd and through
    fastgd.reference; ``import fastgd`` and the first fit in a fresh process
    (after one warm-up process, so the compile cache is warm)."""
    import fastgd
    import fastgd.reference as reference

    x, y = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]
    out: Dict[str, Any] = {}
    for name, function in (("tutorial_fastgd_s", fastgd.gd), ("tutorial_reference_s", reference.gd)):
        times = _measure(functools.partial(function, x, y, w0=1.0, lr=0.01, epochs=100), max(repeats, 5))
        out[name] = statistics.median(times)
        out[name.replace("_s", "_min_s")] = min(times)
    _subprocess_seconds(_FIRST_FIT_CODE)  # warms the compile cache
    for name, code in (("import_s", _IMPORT_CODE), ("first_fit_s", _FIRST_FIT_CODE)):
        times = [_subprocess_seconds(code) for _ in range(3)]
        out[name] = statistics.median(times)
        out[name.replace("_s", "_min_s")] = min(times)
    out["tutorial_ratio"] = out["tutorial_reference_s"] / out["tutorial_fastgd_s"]
    return out


# --- the target rows -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    """One figure with a goal (issue 15's table): what runs, on what data, against what.

    ``kernel`` names the measurement in ``ROW_MEASURES`` (a matrix kernel's
    epoch, or ``"gram"``). ``probe`` ("all" or "one"): the goal is that
    fraction of the all-core or one-core read probe's GB/s; None: the goal is
    the measurement's ratio (``peer``'s time / this time). The data has
    ``n_samples`` rows (``quick_n_samples`` in ``--quick``), or, where that is
    None, as many as fill ``far_bytes()`` with ``X`` and ``y``.
    """

    label: str
    kernel: str
    dtype: str
    n_features: int
    goal: Optional[float]  # None: measured and shown, no goal set
    probe: Optional[str] = None
    fit_intercept: bool = False
    n_samples: Optional[int] = None
    quick_n_samples: Optional[int] = None
    epochs: int = 1
    peer: Optional[str] = None
    note: str = ""
    # "statistics": the epoch of a long fit, whose cost comes from the Gram
    # statistics (fastgd/_gram.py's QuadraticCost: one read of X per epoch);
    # their pass, made once per fit, is reported beside it.
    costs: str = "stream"

    def samples(self, quick: bool, far: int) -> int:
        n = self.quick_n_samples if quick and self.quick_n_samples else self.n_samples
        if n is None:
            itemsize = 8 if self.dtype == "float64" else 4
            n = max(1, far // ((self.n_features + 1) * itemsize))
        return n

    def goal_text(self) -> str:
        if self.goal is None:
            return "no goal"
        if self.probe is not None:
            return f">= {self.goal:.0%} of the {self.probe}-core read"
        return f">= {self.goal:g}x {self.peer or ''}".rstrip()

    def goal_short(self) -> str:
        """The goal in at most 8 characters: ``>=85%a`` (all-core), ``>=65%1`` (one-core), ``>=30x``."""
        if self.goal is None:
            return "-"
        if self.probe is not None:
            return f">={self.goal:.0%}{'a' if self.probe == 'all' else '1'}"
        return f">={self.goal:g}x"


# Issue 15's table, in an order that lets rows of the same shape share data.
# A new row: append a Row; a new kind of measurement: a function in ROW_MEASURES.
ROWS: List[Row] = [
    Row("gd epoch", "gd", "float32", 1, 0.85, probe="all", peer="numpy-vec"),
    Row("gd epoch", "gd", "float64", 8, 0.90, probe="all", peer="numpy-vec"),
    Row("gd epoch", "gd", "float64", 64, 0.90, probe="all", peer="numpy-vec"),
    Row(
        "sgd epoch",
        "sgd",
        "float64",
        64,
        0.65,
        probe="one",
        fit_intercept=True,
        peer="sklearn",
        note="default mode, an epoch of a long fit: the steps, the cost from the statistics",
        costs="statistics",
    ),
    Row(
        "minibatch",
        "minibatch",
        "float64",
        64,
        0.75,
        probe="one",
        peer="numpy-vec",
        note="batches of 64, an epoch of a long fit: the steps, the cost from the statistics",
        costs="statistics",
    ),
    Row(
        "gram",
        "gram",
        "float64",
        8,
        30.0,
        fit_intercept=True,
        n_samples=10**7,
        quick_n_samples=2 * 10**6,
        epochs=100,
        peer="stream",
        note="100 GD epochs, solver='gram' against solver='stream', the same fit",
    ),
    # Issue 13: one SGDRegressor epoch (fit with max_iter=1, defaults, shuffle=False) against scikit-learn's.
    Row(
        "SGDRegr",
        "sgd-regressor",
        "float64",
        1,
        20.0,
        n_samples=1 << 22,
        quick_n_samples=1 << 20,
        peer="sklearn",
        note="fit(max_iter=1), defaults, shuffle=False",
    ),
    Row(
        "SGDRegr",
        "sgd-regressor",
        "float64",
        8,
        None,
        n_samples=1 << 20,
        quick_n_samples=1 << 17,
        peer="sklearn",
        note="fit(max_iter=1), defaults, shuffle=False",
    ),
    Row(
        "SGDRegr",
        "sgd-regressor",
        "float64",
        64,
        4.0,
        n_samples=1 << 18,
        quick_n_samples=1 << 14,
        peer="sklearn",
        note="fit(max_iter=1), defaults, shuffle=False",
    ),
    # Issue 16: an epoch on sparse CSR X (density 1e-3) against scikit-learn's SGDRegressor epoch on the same
    # matrix (n_samples=0: _sparse_row makes its own data).
    Row(
        "sparse sgd",
        "sparse-sgd",
        "float64",
        100_000,
        5.0,
        fit_intercept=True,
        n_samples=0,
        peer="sklearn",
        note="CSR, density 1e-3, per-sample SGD",
    ),
    Row(
        "sparse gd",
        "sparse-gd",
        "float64",
        100_000,
        None,
        fit_intercept=True,
        n_samples=0,
        peer="sklearn",
        note="CSR, density 1e-3, full-batch GD; sklearn's is an SGD epoch",
    ),
]
# The Gram row's fits: its learning rate, and how close the two fits must be
# (normwise relative, on the losses, w and b; fastgd/_gram.py's 1e-9).
GRAM_LR = 0.1
GRAM_RTOL = 1e-9


@dataclasses.dataclass
class RowContext:
    """What every row measurement gets besides its row and data."""

    backend: str
    peers: Sequence[str]
    repeats: int
    probes: Dict[str, Dict[str, Any]]
    quick: bool
    far: int


def run_rows(rows: Sequence[Row], context: RowContext, bar: Any = None) -> List[Dict[str, Any]]:
    """One record per row: the row, its data, its figures (``ROW_MEASURES``),
    ``measured``/``measured_from_min`` (a fraction of the probe, or a ratio),
    ``met`` and ``status``."""
    out = []
    data: Dict[tuple, Tuple[np.ndarray, np.ndarray]] = {}
    for row in rows:
        n = row.samples(context.quick, context.far)
        if bar is not None:
            bar.set_postfix_str(f"row {row.label} {row.dtype} d={row.n_features} n={n}")
            bar.update()
        key = (n, row.n_features, row.dtype)
        if key not in data:
            data.clear()  # one data set at a time: each is far larger than the cache
            data[key] = _data(n, row.n_features, row.dtype)
        X, y = data[key]
        record = dict(
            row=row.label,
            kind="row",
            kernel=row.kernel,
            impl=context.backend,
            dtype=row.dtype,
            n_features=row.n_features,
            n_samples=n,
            rows_run=n,
            fit_intercept=row.fit_intercept,
            epochs=row.epochs,
            bytes=X.nbytes + y.nbytes,
            repeats=context.repeats,
            probe=row.probe,
            goal=row.goal,
            goal_text=row.goal_text(),
            goal_short=row.goal_short(),
            note=row.note,
            peer=None,
            peer_ratio=None,
            peer_min_ratio=None,
        )
        record.update(ROW_MEASURES[row.kernel](row, X, y, context))
        out.append(record)
    return out


def _epoch_row(row: Row, X: np.ndarray, y: np.ndarray, context: RowContext) -> Dict[str, Any]:
    """One epoch of ``row.kernel``, as a fraction of its probe, and the peer's time on the same data."""
    n = X.shape[0]
    nbytes = X.nbytes + y.nbytes
    module = _kernel_module(context.backend)
    extra: Dict[str, Any] = {}
    if row.costs == "statistics" and hasattr(module, "gram") and X.dtype == np.float64:
        call, statistics_pass = _statistics_epoch_call(module, row.kernel, X, y, row.fit_intercept)
        extra = dict(costs="statistics", statistics_times_s=_measure(statistics_pass, 1))
    else:
        call = _backend_call(module, row.kernel, X, y, row.fit_intercept)
    times = _measure(call, context.repeats)
    out: Dict[str, Any] = dict(times_s=times, **_timing(times, n, nbytes), **extra)
    if row.probe is not None:
        probe = context.probes[row.probe]
        frac = fraction_of(nbytes, out["median_s"], probe)
        min_frac = fraction_of(nbytes, out["min_s"], probe)
        met, status = bandwidth_verdict(frac, row.goal)
        out.update(
            bandwidth_probe=row.probe,
            fraction_of_bandwidth=frac,
            min_fraction_of_bandwidth=min_frac,
            measured=frac,
            measured_from_min=min_frac,
            met=met,
            status=status,
        )
    if row.peer in context.peers:
        rows_run = (
            min(n, QUICK_SLOW_ROWS if context.quick else SLOW_ROWS)
            if ("peer", row.peer, row.kernel) in SLOW
            else n
        )
        peer_times = _measure(PEER_CALLS[row.peer](row.kernel, X[:rows_run], y[:rows_run]), context.repeats)
        peer = _timing(peer_times, rows_run, nbytes * rows_run // n)
        out.update(
            peer=row.peer,
            peer_times_s=peer_times,
            peer_ns_per_sample=peer["ns_per_sample"],
            peer_ratio=peer["ns_per_sample"] / out["ns_per_sample"],
            peer_min_ratio=peer["min_ns_per_sample"] / out["min_ns_per_sample"],
        )
    if row.probe is None:  # a goal on the peer's ratio
        ratio = out.get("peer_ratio")
        met = None if ratio is None else ratio >= row.goal
        out.update(
            measured=ratio,
            measured_from_min=out.get("peer_min_ratio"),
            met=met,
            status={True: "met", False: "MISSED", None: "n/a"}[met],
        )
    return out


def _relative_difference(got: Any, expected: Any) -> float:
    """The largest normwise relative difference of the losses, ``w`` and ``b`` of two fits."""
    worst = 0.0
    for a, b in ((got.losses, expected.losses), (got.w, expected.w), (got.b, expected.b)):
        a, b = np.atleast_1d(np.asarray(a, dtype=np.float64)), np.atleast_1d(np.asarray(b, dtype=np.float64))
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        if a.shape != b.shape:
            return float("inf")
        if b.size:
            worst = max(worst, float(np.max(np.abs(a - b))) / (scale if scale > 0 else 1.0))
    return worst


def _gram_row(row: Row, X: np.ndarray, y: np.ndarray, context: RowContext) -> Dict[str, Any]:
    """``row.epochs`` full-batch GD epochs through ``fastgd.gd`` with
    ``solver="gram"`` against ``solver="stream"``: the speed-up, and whether
    both give the same fit (within ``GRAM_RTOL``)."""
    import fastgd

    fits: Dict[str, Any] = {}

    def fit(solver: str) -> None:
        fits[solver] = fastgd.gd(
            X, y, lr=GRAM_LR, epochs=row.epochs, fit_intercept=row.fit_intercept, solver=solver
        )

    with fastgd.use(context.backend):
        stream = _measure(functools.partial(fit, "stream"), context.repeats)
        gram = _measure(functools.partial(fit, "gram"), context.repeats)
    n = X.shape[0]
    out: Dict[str, Any] = dict(times_s=gram, **_timing(gram, n, X.nbytes + y.nbytes))
    stream_figures = _timing(stream, n, X.nbytes + y.nbytes)
    ratio = stream_figures["median_s"] / out["median_s"]
    min_ratio = stream_figures["min_s"] / out["min_s"]
    difference = _relative_difference(fits["gram"], fits["stream"])
    same = difference <= GRAM_RTOL
    met = same and ratio >= row.goal
    out.update(
        peer="stream",
        peer_times_s=stream,
        peer_median_s=stream_figures["median_s"],
        peer_ns_per_sample=stream_figures["ns_per_sample"],
        peer_ratio=ratio,
        peer_min_ratio=min_ratio,
        max_relative_difference=difference,
        same_result=same,
        measured=ratio,
        measured_from_min=min_ratio,
        met=met,
        status="met" if met else ("MISSED" if same else "result differs"),
    )
    return out


def _sgd_regressor_row(row: Row, X: np.ndarray, y: np.ndarray, context: RowContext) -> Dict[str, Any]:
    """One epoch as a user times it: ``SGDRegressor(max_iter=1, shuffle=False).fit(X, y)``
    (validation, the epoch, the attributes), fastgd's against scikit-learn's."""
    import warnings

    from fastgd.sgd_regressor import SGDRegressor

    def fitter(make: Callable[[], Any]) -> Callable[[], Any]:
        def fit() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # max_iter=1 with tol: a ConvergenceWarning
                make().fit(X, y)

        return fit

    ours = fitter(lambda: SGDRegressor(max_iter=1, shuffle=False, backend=context.backend))
    ours()  # compiles on first use
    times = _measure(ours, context.repeats)
    n = X.shape[0]
    out: Dict[str, Any] = dict(
        times_s=times, **_timing(times, n, X.nbytes + y.nbytes), measured=None, measured_from_min=None
    )
    met: Optional[bool] = None
    if "sklearn" in context.peers:
        from sklearn.linear_model import SGDRegressor as Peer

        peer_times = _measure(fitter(lambda: Peer(max_iter=1, shuffle=False)), context.repeats)
        peer = _timing(peer_times, n, X.nbytes + y.nbytes)
        ratio = peer["ns_per_sample"] / out["ns_per_sample"]
        met = None if row.goal is None else ratio >= row.goal
        out.update(
            peer="sklearn",
            peer_times_s=peer_times,
            peer_ns_per_sample=peer["ns_per_sample"],
            peer_ratio=ratio,
            peer_min_ratio=peer["min_ns_per_sample"] / out["min_ns_per_sample"],
            measured=ratio,
            measured_from_min=peer["min_ns_per_sample"] / out["min_ns_per_sample"],
        )
    out.update(met=met, status={True: "met", False: "MISSED", None: "n/a"}[met])
    return out


# The sparse rows' data: SPARSE_ROWS rows (QUICK_SPARSE_ROWS in --quick; fewer
# when far_bytes() is smaller) of which SPARSE_DENSITY of the entries are stored.
SPARSE_DENSITY = 1e-3
SPARSE_ROWS = 100_000
QUICK_SPARSE_ROWS = 20_000


def _sparse_row(row: Row, X: np.ndarray, y: np.ndarray, context: RowContext) -> Dict[str, Any]:
    """One epoch (``run_epochs``: the steps and the cost pass) on CSR data of
    ``row.n_features`` columns (``row.kernel``: "sparse-sgd" per-sample, or
    "sparse-gd" full-batch), against scikit-learn's ``SGDRegressor`` epoch
    (``fit`` with ``max_iter=1``, constant rate, no penalty) on the same
    matrix, and against reading the matrix's bytes once (numpy sums of
    ``data``, ``indices``, ``indptr`` and ``y``: ``read_fraction`` is that
    time over the epoch's). The rows' dense ``X`` and ``y`` are not used."""
    from fastgd import _sparse, datasets

    d = row.n_features
    n = min(
        QUICK_SPARSE_ROWS if context.quick else SPARSE_ROWS,
        max(1000, context.far // (12 * max(1, int(SPARSE_DENSITY * d)))),
    )
    Xs, ys, _ = datasets.make_sparse_linear(n, d, SPARSE_DENSITY, noise=0.1, seed=0, dtype=row.dtype)
    C = _sparse.as_csr(Xs)[0]
    ys = np.ascontiguousarray(ys)
    module = _sparse.kernel_module_for(_kernel_module(context.backend))
    full_batch = row.kernel == "sparse-gd"
    lr = 0.1 if full_batch else 1e-3  # |x_i|^2 is about 1e-3 d: per-sample steps need lr < 1 / (2e-3 d)
    handle, a, rates = _one_epoch_fit(module, C, ys, row.fit_intercept, lr, None if full_batch else 1, False)
    costs, order = np.empty(1), np.empty(0, dtype=np.int64)
    if full_batch:
        a.grad[:] = handle.sums(a.params, True)[1:] / n

    def epoch() -> None:
        if handle.run_epochs(a, order, costs, rates) != 1:
            raise RuntimeError(f"bench: {module.NAME} {row.kernel} diverged")

    nbytes = C.data.nbytes + C.indices.nbytes + C.indptr.nbytes + ys.nbytes
    times = _measure(epoch, context.repeats)
    read = _timing(
        _measure(lambda: (C.data.sum(), C.indices.sum(), C.indptr.sum(), ys.sum()), context.repeats),
        n,
        nbytes,
    )
    out: Dict[str, Any] = dict(times_s=times, **_timing(times, n, nbytes))
    one = context.probes.get("one")
    out.update(
        n_samples=n,
        rows_run=n,
        bytes=nbytes,
        nnz=C.nnz,
        density=SPARSE_DENSITY,
        read_median_s=read["median_s"],
        read_fraction=read["median_s"] / out["median_s"],
        fraction_of_bandwidth=None if one is None else fraction_of(nbytes, out["median_s"], one),
        measured=None,
        measured_from_min=None,
    )
    met: Optional[bool] = None
    if "sklearn" in context.peers:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import SGDRegressor

        # scikit-learn's squared loss is half of fastgd's: eta0 = 2 lr takes the same steps.
        peer_model = SGDRegressor(
            penalty=None,
            learning_rate="constant",
            eta0=2e-3,
            max_iter=1,
            tol=None,
            shuffle=False,
            fit_intercept=row.fit_intercept,
        )

        def peer_epoch() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                peer_model.fit(Xs, ys)

        peer = _timing(_measure(peer_epoch, context.repeats), n, nbytes)
        ratio, min_ratio = peer["median_s"] / out["median_s"], peer["min_s"] / out["min_s"]
        met = None if row.goal is None else ratio >= row.goal
        out.update(
            peer="sklearn",
            peer_median_s=peer["median_s"],
            peer_ns_per_sample=peer["ns_per_sample"],
            peer_ratio=ratio,
            peer_min_ratio=min_ratio,
            measured=ratio,
            measured_from_min=min_ratio,
        )
    out.update(met=met, status={True: "met", False: "MISSED", None: "n/a"}[met])
    return out


ROW_MEASURES: Dict[str, Callable[[Row, np.ndarray, np.ndarray, RowContext], Dict[str, Any]]] = {
    "sums": _epoch_row,
    "gd": _epoch_row,
    "sgd": _epoch_row,
    "sgd-exact": _epoch_row,
    "minibatch": _epoch_row,
    "gram": _gram_row,
    "sgd-regressor": _sgd_regressor_row,
    "sparse-sgd": _sparse_row,
    "sparse-gd": _sparse_row,
}


# --- the matrix --------------------------------------------------------------


def _rows_for(n: int, d: int, dtype: str, max_x_bytes: int) -> int:
    itemsize = 8 if dtype == "float64" else 4
    return max(1, min(n, max_x_bytes // (d * itemsize)))


def run_matrix(
    sizes: Sequence[int],
    features: Sequence[int] = FULL_FEATURES,
    dtypes: Sequence[str] = ("float64", "float32"),
    backends: Optional[Sequence[str]] = None,
    peers: Optional[Sequence[str]] = None,
    kernels: Sequence[str] = KERNELS,
    repeats: int = 5,
    quick: bool = False,
    progress: bool = True,
    budget_s: Optional[float] = None,
    small: bool = True,
    rows: Optional[Sequence["Row"]] = None,
    far: Optional[int] = None,
) -> Dict[str, Any]:
    """Measure everything; return the report that ``--json`` writes.

    ``results`` holds one record per (implementation, kernel, dtype,
    features, samples); ``bandwidth`` the two read probes; ``rows`` one record
    per target row (``rows``, default ``ROWS``, on the first of
    ``ROW_BACKENDS`` measured); ``skipped`` says what was left out and why.
    ``far``: bytes of the probes' array and of the rows' data sized to it
    (default :func:`far_bytes`).
    """
    backends = list(select_backends() if backends is None else backends)
    peers = list(available_peers() if peers is None else peers)
    rows = list(ROWS if rows is None else rows)
    budget = budget_s if budget_s is not None else (QUICK_BUDGET_S if quick else BUDGET_S)
    max_x_bytes = QUICK_MAX_X_BYTES if quick else MAX_X_BYTES
    llc = llc_bytes()
    far = far if far is not None else far_bytes(quick, llc)
    started = time.time()
    load_before = _loadavg()

    # Every (dtype, d, n) block of measurements, in increasing n so that slow
    # implementations can be skipped before they blow the budget.
    shapes: List[Tuple[str, int, int]] = []
    for dtype in dtypes:
        for d in features:
            runs = sorted({_rows_for(n, d, dtype, max_x_bytes) for n in sizes})
            shapes.extend((dtype, d, n) for n in runs)
    impls: List[Tuple[str, str, str]] = [("backend", name, kernel) for name in backends for kernel in kernels]
    impls += [("peer", peer, kernel) for peer in peers for kernel in PEER_KERNELS[peer] if kernel in kernels]
    row_backend = next((name for name in ROW_BACKENDS if name in backends), None)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=1 + len(shapes) * len(impls) + len(rows), desc="fastgd bench", unit="figure", leave=False
        )
    results: List[Dict[str, Any]] = []
    skipped: List[Dict[str, Any]] = []
    last: Dict[tuple, tuple] = {}  # (impl, kernel, dtype, d) -> (n, median seconds)
    try:
        if bar is not None:
            bar.set_postfix_str(f"bandwidth probes, {far / 2**20:.0f} MiB")
        probes = measure_probes(far, repeats)
        if bar is not None:
            bar.update()
        for dtype, d, n in shapes:
            X, y = _data(n, d, dtype)
            nbytes = X.nbytes + y.nbytes
            for kind, impl, kernel in impls:
                if bar is not None:
                    bar.set_postfix_str(f"{impl} {kernel} {dtype} d={d} n={n}")
                    bar.update()
                key = (kind, impl, kernel, dtype, d)
                rows_run = n
                if (kind, impl, kernel) in SLOW:
                    rows_run = min(n, QUICK_SLOW_ROWS if quick else SLOW_ROWS)
                if key in last:
                    prev_n, prev_fastest = last[key]
                    projected = prev_fastest * rows_run / prev_n * (repeats + 1)
                    if projected > budget:
                        skipped.append(
                            dict(
                                impl=impl,
                                kernel=kernel,
                                dtype=dtype,
                                n_features=d,
                                n_samples=n,
                                reason=f"projected {projected:.1f} s over the {budget:g} s budget",
                            )
                        )
                        continue
                Xr, yr = (X, y) if rows_run == n else (X[:rows_run], y[:rows_run])
                if kind == "backend":
                    call = _backend_call(_kernel_module(impl), kernel, Xr, yr)
                else:
                    call = PEER_CALLS[impl](kernel, Xr, yr)
                times = _measure(call, repeats)
                last[key] = (rows_run, min(times))
                record = dict(
                    kind=kind,
                    impl=impl,
                    kernel=kernel,
                    dtype=dtype,
                    n_features=d,
                    n_samples=n,
                    rows_run=rows_run,
                    fit_intercept=_intercept(kernel, d),
                    bytes=nbytes * rows_run // n,
                    repeats=repeats,
                    times_s=times,
                )
                record.update(_timing(times, rows_run, nbytes * rows_run // n))
                results.append(record)
            del X, y
        context = RowContext(
            backend=row_backend or "", peers=peers, repeats=repeats, probes=probes, quick=quick, far=far
        )
        row_records = run_rows(rows, context, bar) if row_backend is not None else []
        if row_backend is None and rows:
            skipped.extend(
                dict(
                    row=row.label,
                    kernel=row.kernel,
                    dtype=row.dtype,
                    n_features=row.n_features,
                    reason=f"target rows run on {' or '.join(ROW_BACKENDS)}, not measured here",
                )
                for row in rows
            )
    finally:
        if bar is not None:
            bar.close()
    _add_ratios(results, probes, llc)
    small_figures = small_problems(repeats) if small else None
    report = {
        "machine": machine_info(),
        "settings": dict(
            sizes=list(sizes),
            features=list(features),
            dtypes=list(dtypes),
            backends=backends,
            peers=peers,
            kernels=list(kernels),
            repeats=repeats,
            quick=quick,
            minibatch=MINIBATCH,
            max_x_bytes=max_x_bytes,
            budget_s=budget,
            learning_rates={str(d): _rates(d) for d in features},
            row_backend=row_backend,
            rows=[dataclasses.asdict(row) for row in rows],
        ),
        "bandwidth": dict(
            probes,
            llc_bytes=llc,
            far_bytes=far,
            implausible_fraction=IMPLAUSIBLE_FRACTION,
            sequential_kernels=list(SEQUENTIAL_KERNELS),
        ),
        "results": results,
        "rows": row_records,
        "skipped": skipped,
        "small": small_figures,
        "targets": targets(results, backend=row_backend or "numba", small=small_figures, rows=row_records),
        "load_average": {"before": load_before, "after": _loadavg()},
        "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
        "elapsed_s": time.time() - started,
    }
    return report


def _add_ratios(results: List[Dict[str, Any]], probes: Dict[str, Dict[str, Any]], llc: Optional[int]) -> None:
    """On each record: ``bandwidth_probe`` (the probe it compares with),
    ``fraction_of_bandwidth`` (its median GB/s over that probe's, see
    :func:`fraction_of`) and ``min_fraction_of_bandwidth`` (its fastest
    repeat's), ``in_cache`` (its ``X`` and ``y`` fit in the last-level cache:
    it may read faster than memory), and ``ratios`` (peer ns per sample / this
    ns per sample)."""
    by_shape: Dict[tuple, Dict[tuple, Dict[str, Any]]] = {}
    for record in results:
        shape = (record["dtype"], record["n_features"], record["n_samples"])
        by_shape.setdefault(shape, {})[(record["kind"], record["impl"], record["kernel"])] = record
    for records in by_shape.values():
        for (kind, _impl, kernel), record in records.items():
            probe = probe_for(kernel)
            record["bandwidth_probe"] = probe
            record["fraction_of_bandwidth"] = fraction_of(record["bytes"], record["median_s"], probes[probe])
            record["min_fraction_of_bandwidth"] = fraction_of(record["bytes"], record["min_s"], probes[probe])
            record["in_cache"] = llc is not None and record["bytes"] <= llc
            ratios = {}
            if kind == "backend":
                peer_kernel = "sgd" if kernel == "sgd-exact" else kernel
                for peer in PEERS:
                    other = records.get(("peer", peer, peer_kernel))
                    if other is not None and record["ns_per_sample"] > 0:
                        ratios[peer] = other["ns_per_sample"] / record["ns_per_sample"]
            record["ratios"] = ratios


def _find(results, impl, kernel, dtype, d, n=None):
    """The record of the largest size (or ``n``) for these keys, or None."""
    found = [
        r
        for r in results
        if r["kind"] == "backend"
        and r["impl"] == impl
        and r["kernel"] == kernel
        and r["dtype"] == dtype
        and r["n_features"] == d
        and (n is None or r["n_samples"] == n)
    ]
    return max(found, key=lambda r: r["n_samples"]) if found else None


def _min_ratio(record: Dict[str, Any], results: List[Dict[str, Any]], peer: str) -> Optional[float]:
    kernel = "sgd" if record["kernel"] == "sgd-exact" else record["kernel"]
    for other in results:
        if (
            other["kind"],
            other["impl"],
            other["kernel"],
            other["dtype"],
            other["n_features"],
            other["n_samples"],
        ) == ("peer", peer, kernel, record["dtype"], record["n_features"], record["n_samples"]):
            return other["min_ns_per_sample"] / record["min_ns_per_sample"]
    return None


def _shape(dtype: str, d: int, n: Optional[int] = None, intercept: bool = False) -> str:
    """``f64 d=64+b n=516k``: dtype, features (+b: an intercept) and samples, short."""
    text = f"{dtype.replace('float', 'f')} d={d}{'+b' if intercept else ''}"
    return text if n is None else f"{text} n={_count(n)}"


def targets(
    results: List[Dict[str, Any]],
    backend: str = "numba",
    small: Optional[Dict[str, Any]] = None,
    rows: Sequence[Dict[str, Any]] = (),
) -> List[Dict[str, Any]]:
    """The goals with the figures of this run: the target rows' (``rows``,
    from :func:`run_rows`), then the matrix's at the largest size measured
    and the small problems'.

    ``measured`` comes from the medians; ``measured_from_min`` from the fastest
    repeat of each side (less sensitive to other load on the machine); ``met``
    is True, False or None (nothing to meet), ``status`` says it in a word
    ("probe implausible" for a fraction of a probe above
    ``IMPLAUSIBLE_FRACTION``); ``unit`` is "fraction", "x", "ns" or "s".
    """
    out = []

    def add(name, short, goal, value, value_min, met, record, unit, source="matrix", status=None, where=None):
        if isinstance(record, str):
            at, where = record, where or record
        else:
            at = f"{record['dtype']} d={record['n_features']} n={record['n_samples']}"
            where = _shape(
                record["dtype"], record["n_features"], record["n_samples"], record.get("fit_intercept", False)
            )
        if status is None:
            status = {True: "met", False: "MISSED", None: ""}[met]
        out.append(
            dict(
                target=name,
                short=short,
                goal=goal,
                measured=value,
                measured_from_min=value_min,
                met=met,
                status=status,
                at=at,
                where=where,
                unit=unit,
                source=source,
            )
        )

    for row in rows:
        unit = "fraction" if row["probe"] is not None else "x"
        add(
            f"{row['row']} {row['dtype']} d={row['n_features']}: {row['goal_text']}"
            + (f" ({row['note']})" if row["note"] else ""),
            row["row"],
            row["goal_text"],
            row["measured"],
            row["measured_from_min"],
            row["met"],
            row,
            unit,
            "row",
            row["status"],
        )
    for dtype in ("float64", "float32"):
        for d in (1, 8, 64):
            gd = _find(results, backend, "gd", dtype, d)
            ratio = None if gd is None else gd["ratios"].get("numpy-vec")
            if ratio is not None:
                add(
                    f"gd epoch {dtype} d={d}: speed-up over numpy vectorised",
                    "gd: x numpy-vec",
                    ">= 10",
                    ratio,
                    _min_ratio(gd, results, "numpy-vec"),
                    ratio >= 10,
                    gd,
                    "x",
                )
    sgd = _find(results, backend, "sgd", "float64", 1)
    if sgd is not None:
        add(
            "sgd epoch float64 d=1 (default mode): ns per sample",
            "sgd: ns/sample",
            "<= 2",
            sgd["ns_per_sample"],
            sgd["min_ns_per_sample"],
            sgd["ns_per_sample"] <= 2,
            sgd,
            "ns",
        )
    exact = _find(results, backend, "sgd-exact", "float64", 1)
    if exact is not None:
        add(
            "sgd epoch float64 d=1 (exact=True): ns per sample",
            "sgd-exact: ns/sample",
            "ref order",
            exact["ns_per_sample"],
            exact["min_ns_per_sample"],
            None,
            exact,
            "ns",
        )
    wanted = (
        (
            "sgd",
            "sklearn",
            6,
            "sgd epoch float64 d=64 with intercept: speed-up over sklearn SGDRegressor",
            "sgd: x sklearn",
        ),
        (
            "minibatch",
            "numpy-vec",
            8,
            "minibatch 64x64 float64: speed-up over a numpy loop",
            "minibatch: x numpy-vec",
        ),
        (
            "minibatch",
            "torch",
            200,
            "minibatch 64x64 float64: speed-up over a torch.optim.SGD loop",
            "minibatch: x torch",
        ),
    )
    for kernel, peer, goal, name, short in wanted:
        candidates = [
            r
            for r in results
            if r["kind"] == "backend"
            and r["impl"] == backend
            and r["kernel"] == kernel
            and r["dtype"] == "float64"
            and r["n_features"] == 64
            and peer in r["ratios"]
        ]
        if candidates:
            record = max(candidates, key=lambda r: r["n_samples"])
            ratio = record["ratios"][peer]
            add(
                name,
                short,
                f">= {goal}",
                ratio,
                _min_ratio(record, results, peer),
                ratio >= goal,
                record,
                "x",
            )
    if small is not None:
        add(
            "tutorial run: fastgd.reference time / fastgd time",
            "tutorial: x reference",
            ">= 1",
            small["tutorial_ratio"],
            small["tutorial_reference_min_s"] / small["tutorial_fastgd_min_s"],
            small["tutorial_ratio"] >= 1,
            "3 samples, 100 epochs",
            "x",
            "small",
            where="n=3, 100 epochs",
        )
        add(
            "import fastgd (s)",
            "import fastgd",
            "< 0.2",
            small["import_s"],
            small["import_min_s"],
            small["import_s"] < 0.2,
            "fresh process",
            "s",
            "small",
        )
        add(
            "first fit in a new process, warm cache (s)",
            "first fit, warm cache",
            "< 1",
            small["first_fit_s"],
            small["first_fit_min_s"],
            small["first_fit_s"] < 1,
            "fresh process, 1000 samples, 10 epochs",
            "s",
            "small",
            where="n=1000, 10 epochs",
        )
    return out


# --- machine and versions ----------------------------------------------------


def _loadavg() -> Optional[List[float]]:
    try:
        return [float(v) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> Optional[int]:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def machine_info() -> Dict[str, Any]:
    """CPU, cores, memory, versions, thread counts and the date."""
    from importlib import metadata

    import fastgd

    versions = {"python": platform.python_version(), "fastgd": fastgd.__version__}
    for package in ("numpy", "numba", "llvmlite", "torch", "scikit-learn", "matplotlib", "tqdm"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    threads: Dict[str, Any] = {}
    try:
        import numba

        threads["numba"] = numba.get_num_threads()
        config: Any = numba.config
        threads["numba_layer"] = numba.threading_layer() if _probes is not None else config.THREADING_LAYER
    except (ImportError, ValueError):
        threads["numba"] = None
    blas: List[Dict[str, Any]] = []
    try:
        from threadpoolctl import threadpool_info

        blas = [
            {k: pool.get(k) for k in ("internal_api", "num_threads", "architecture", "version")}
            for pool in threadpool_info()
        ]
    except ImportError:
        pass
    threads["blas"] = blas
    torch = sys.modules.get("torch")  # only when a peer imported it (None: blocked, not installed)
    if torch is not None:
        threads["torch"] = torch.get_num_threads()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "platform": platform.platform(),
        "versions": versions,
        "threads": threads,
        "env": {
            k: os.environ.get(k)
            for k in (
                "NUMBA_NUM_THREADS",
                "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS",
                "OPENBLAS_CORETYPE",
                "OPENBLAS_L2_SIZE",
                "FASTGD_BACKEND",
            )
        },
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


# --- output ------------------------------------------------------------------


def _count(n: int) -> str:
    """A count in at most 5 characters: 300, 10k, 32.8k, 1.05M, 10M."""
    value, suffix = float(n), ""
    for bigger in ("k", "M", "G"):
        if float(f"{value:.3g}") < 1000:
            break
        value, suffix = value / 1000, bigger
    return f"{value:.3g}{suffix}"


def _x(ratio: float) -> str:
    """A ratio in at most 4 characters: 0.05, 2.4, 130, 33k, 1.2M."""
    if ratio >= 999.5e3:
        return f"{ratio / 1e6:.2g}M"
    if ratio >= 999.5:
        return f"{ratio / 1e3:.0f}k"
    if ratio >= 9.95:
        return f"{ratio:.0f}"
    return f"{ratio:.1f}" if ratio >= 0.095 else f"{ratio:.2f}"


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 100 else (f"{ms:.1f}" if ms < 1e5 else f"{ms:.0f}")


def _spread(spread: float) -> str:
    return f"{spread:.0%}" if spread < 9.995 else "999+"


def _ns(ns: float) -> str:
    return f"{ns:.2f}" if ns < 1000 else f"{ns:.0f}"


def _bw(fraction: Optional[float], probe: Optional[str], in_cache: bool = False) -> str:
    """``93%a`` (of the all-core read), ``62%1`` (one-core), ``c``: data in the
    cache, ``!``: implausible (above IMPLAUSIBLE_FRACTION on data out of cache)."""
    if fraction is None or probe is None:
        return ""
    flag = "c" if in_cache else ("!" if fraction > IMPLAUSIBLE_FRACTION else "")
    return f"{fraction:.0%}{'a' if probe == 'all' else '1'}{flag}"


def _value(value: Optional[float], unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "fraction":
        return f"{value:.0%}"
    if unit == "x":
        return f"{_x(value)}x"
    return f"{value:.3g} {unit}"


def format_table(report: Dict[str, Any]) -> str:
    """The report as plain text at most ``TABLE_WIDTH`` characters wide: the
    probes, one line per matrix figure, the target rows, the other targets."""
    machine = report["machine"]
    load = report["load_average"]["before"]
    tail = f", {machine['cores']} cores, numba threads {machine['threads'].get('numba')}, load " + (
        "n/a" if not load else " ".join(f"{v:.1f}" for v in load)
    )
    head = f"fastgd bench — {machine['date'][:10]} — "
    lines = [head + machine["cpu"][: max(8, TABLE_WIDTH - len(head) - len(tail))] + tail]
    bandwidth = report.get("bandwidth")
    if bandwidth:
        llc = bandwidth.get("llc_bytes")
        lines.append(
            f"read probes: {bandwidth['all']['bytes'] / 2**20:.0f} MiB of float64 (LLC "
            f"{'unknown' if llc is None else f'{llc / 2**20:.0f} MiB'}), {PROBE_ACCUMULATORS} vector lanes "
            f"per thread, {bandwidth['all']['repeats']} calls"
        )
        for name in ("all", "one"):
            probe = bandwidth[name]
            threads = f"{probe['threads']} thread{'s' if probe['threads'] != 1 else ''}"
            lines.append(
                f"  {probe['impl']} ({threads}): {probe['max_gb_per_s']:.1f} GB/s (fastest call, the "
                f"figure), median {probe['gb_per_s']:.1f}, spread {probe['spread']:.0%}"
            )
        if bandwidth["all"]["max_gb_per_s"] < bandwidth["one"]["max_gb_per_s"]:
            lines.append(
                "  (the all-core read was slower than the one-core read: other load on the machine?)"
            )
    lines += [
        "%bw: GB/s (X, y read once) over the all-core (a) or one-core (1) read; c: X, y fit in the LLC",
        f"(can beat memory); !: over {IMPLAUSIBLE_FRACTION:.0%}, implausible; peers: their time / ours "
        "(np numpy-vec, sk sklearn)",
        f"{'kernel':<9} {'impl':<9} {'dt':<3} {'d':>3} {'n':>6} {'ms':>8} {'sprd':>4} {'ns/smp':>8} {'GB/s':>5} "
        f"{'%bw':>8} peers",
    ]
    order = {k: i for i, k in enumerate(KERNELS)}
    records = sorted(
        report["results"],
        key=lambda r: (
            r["dtype"],
            r["n_features"],
            order.get(r["kernel"], 99),
            r["n_samples"],
            r["kind"] != "backend",
            r["impl"],
        ),
    )
    for r in records:
        peers = " ".join(
            f"{PEER_SHORT.get(peer, peer)} {_x(value)}" for peer, value in r.get("ratios", {}).items()
        )
        bw = _bw(r.get("fraction_of_bandwidth"), r.get("bandwidth_probe"), r.get("in_cache", False))
        lines.append(
            f"{r['kernel']:<9} {r['impl']:<9} {r['dtype'].replace('float', 'f'):<3} {r['n_features']:>3} "
            f"{_count(r['n_samples']):>6} {_ms(r['median_s']):>8} {_spread(r['spread']):>4} {_ns(r['ns_per_sample']):>8} "
            f"{r['gb_per_s']:>5.1f} {bw:>8} {peers}".rstrip()
        )
    budget_skips = [s for s in report.get("skipped", []) if "row" not in s]
    row_skips = [s for s in report.get("skipped", []) if "row" in s]
    if budget_skips:
        lines.append(f"skipped {len(budget_skips)} figures over the time budget (see --json)")
    if report.get("rows"):
        lines += [
            f"target rows on {report['rows'][0]['impl']}, data far larger than the LLC; goal: of the all-core (a) "
            "or one-core (1) read",
            f"{'row':<10} {'dt':<3} {'d':>5} {'n':>6} {'ms':>8} {'ns/smp':>8} {'%bw':>8} {'best':>5} {'peer':<10} "
            f"{'goal':<7} status",
        ]
        for r in report["rows"]:
            unit = "fraction" if r["probe"] is not None else "x"
            bw = _bw(r.get("fraction_of_bandwidth"), r["probe"])
            best = "" if r["measured_from_min"] is None else _value(r["measured_from_min"], unit)
            peer = (
                ""
                if r["peer_ratio"] is None
                else f"{PEER_SHORT.get(r['peer'], r['peer'])} {_x(r['peer_ratio'])}"
            )
            d = f"{r['n_features']}{'+b' if r['fit_intercept'] else ''}"
            lines.append(
                f"{r['row']:<10} {r['dtype'].replace('float', 'f'):<3} {d:>5} {_count(r['n_samples']):>6} "
                f"{_ms(r['median_s']):>8} {_ns(r['ns_per_sample']):>8} {bw:>8} {best:>5} {peer:<10} "
                f"{r['goal_short']:<7} {r['status']}"
            )
        for r in report["rows"]:
            if r.get("statistics_times_s"):
                pass_s = min(r["statistics_times_s"])
                lines.append(
                    f"  {r['row']} d={r['n_features']}: costs from the statistics; their pass, once per "
                    f"fit: {_ms(pass_s)} ms ({pass_s / r['median_s']:.1f} epochs)"
                )
    if row_skips:
        lines.append(f"target rows skipped: {row_skips[0]['reason']}")
    others = [t for t in report.get("targets", []) if t.get("source") != "row"]
    if others:
        lines.append(f"  {'other targets':<22} {'at':<18} {'median':>8} {'fastest':>8} {'goal':<9} status")
        for t in others:
            lines.append(
                f"  {t['short']:<22} {t['where']:<18} {_value(t['measured'], t['unit']):>8} "
                f"{_value(t['measured_from_min'], t['unit']):>8} {t['goal']:<9} {t['status']}".rstrip()
            )
    return "\n".join(lines)


def plot(report: Dict[str, Any], path: str) -> None:
    """Throughput (samples per second) against size, one panel per kernel, a
    line per implementation, dotted: the read probe the kernel compares with
    (on the same bytes per sample), stars: the target rows; then a panel of the
    target rows' figures over their goals (1: just met)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.get("rows") or []
    kernels = [k for k in KERNELS + ("gram",) if any(r["kernel"] == k for r in report["results"] + rows)]
    panels = len(kernels) + bool(rows)
    fig, axes = plt.subplots(1, max(1, panels), figsize=(4.2 * max(1, panels), 4), squeeze=False)
    bandwidth = report.get("bandwidth") or {}
    for ax, kernel in zip(axes[0], kernels):
        lines: Dict[tuple, List[tuple]] = {}
        for r in report["results"]:
            if r["kernel"] == kernel:
                lines.setdefault((r["impl"], r["dtype"], r["n_features"]), []).append(
                    (r["n_samples"], r["n_samples"] / r["median_s"])
                )
        for (impl, dtype, d), points in sorted(lines.items()):
            points.sort()
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                linestyle="-" if dtype == "float64" else "--",
                label=f"{impl} {dtype} d={d}",
            )
        probe = bandwidth.get(probe_for(kernel))
        for dtype, d in sorted({(dtype, d) for _, dtype, d in lines} if probe else ()):
            sizes = sorted(
                {n for (_, dt, dd), points in lines.items() if (dt, dd) == (dtype, d) for n, _ in points}
            )
            per_sample = (d + 1) * (8 if dtype == "float64" else 4)
            rate = probe["max_gb_per_s"] * 1e9 / per_sample
            ax.plot(
                [sizes[0], sizes[-1]],
                [rate, rate],
                linestyle=":",
                color="grey",
                linewidth=1,
                label=f"{probe['impl']} read, {dtype} d={d}",
            )
        for r in rows:
            if r["kernel"] == kernel:
                ax.plot(
                    [r["n_samples"]],
                    [r["n_samples"] / r["median_s"]],
                    marker="*",
                    markersize=10,
                    linestyle="none",
                    label=f"row: {r['impl']} {r['dtype']} d={r['n_features']}",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(kernel)
        ax.set_xlabel("samples")
        ax.set_ylabel("samples / s")
        ax.legend(fontsize=5)
    if rows:
        ax = axes[0][-1]
        labels = [f"{r['row']} {r['dtype'].replace('float', 'f')} d={r['n_features']}" for r in rows]
        values = [
            0.0 if r["measured"] is None or r["goal"] is None else r["measured"] / r["goal"] for r in rows
        ]
        ax.barh(range(len(rows)), values, color=["tab:green" if r["met"] else "tab:red" for r in rows])
        ax.axvline(1.0, color="black", linewidth=1)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(labels, fontsize=6)
        ax.set_xlabel("measured / goal (green: met)")
        ax.set_title("target rows")
    fig.suptitle(f"fastgd bench, {report['machine']['cpu']}, {report['machine']['date'][:10]}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
