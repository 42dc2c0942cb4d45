"""``fastgd bench``: kernel microbenchmarks against the machine and the peers.

One run measures a matrix of kernels (the cost+gradient pass ``sums``, a
full-batch ``gd`` epoch, a per-sample ``sgd`` epoch, its ``sgd-exact`` twin and
a ``minibatch`` epoch of 64-sample batches) × sizes × dtypes × feature counts ×
backends, the peers that are installed (numpy vectorised, ``torch.optim.SGD``
over ``nn.Linear``, scikit-learn's ``SGDRegressor``) on the same data, and the
machine's bare read bandwidth (a numba ``prange`` sum over the same arrays).

Every figure is a wall-clock time: one warm-up call, then ``repeats`` timed
calls; the median is the figure, ``spread`` is ``(max - min) / median``.
``GB/s`` counts ``X`` and ``y`` read once per call; ``fraction_of_bandwidth``
divides it by the bare read's GB/s on the same arrays in the same run; a ratio
against a peer is ``peer median / backend median`` (above 1: fastgd is faster).

It also times the small problems: the tutorial's run through ``fastgd`` and
through ``fastgd.reference``, ``import fastgd`` and the first fit in a fresh
process with a warm compile cache. ``--json`` adds ``targets``: the issue's
goals with this run's figures (from medians, and from the fastest repeats,
which suffer less from other load on the machine; the load average is
recorded too).

The heavy imports (tqdm, numba for the bandwidth probe, torch, scikit-learn,
matplotlib) happen here, when the command runs, never on ``import fastgd``.

Examples
--------
>>> from fastgd import bench
>>> report = bench.run_matrix(sizes=[64], features=[1], dtypes=["float64"],
...                           backends=["numpy"], peers=[], repeats=1, progress=False)
>>> sorted(report)[:2]
['machine', 'results']
"""

from __future__ import annotations

import argparse
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
SLOW = {("backend", "numpy", "sgd"), ("backend", "numpy", "sgd-exact"), ("peer", "numpy-vec", "sgd"),
        ("peer", "torch", "sgd")}
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
    "bandwidth": "bare parallel read of X and y (numba prange sum)",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (under a minute)")
    parser.add_argument("--json", metavar="PATH", help="write every figure, the machine and versions here")
    parser.add_argument("--plot", metavar="PATH", help="draw throughput against size per backend (matplotlib)")
    parser.add_argument("--backend", metavar="NAME", help="measure only this backend (cuda only when named)")
    parser.add_argument("--sizes", metavar="N,N,...", help="numbers of samples (default 1e4,1e5,1e6,1e7)")
    parser.add_argument("--features", metavar="D,D,...", help="numbers of features (default 1,8,64)")
    parser.add_argument("--dtypes", metavar="T,T", default="float64,float32", help="float64 and/or float32")
    parser.add_argument("--repeats", type=int, metavar="R", help="timed calls per figure (default 5; quick 3)")
    parser.add_argument("--no-peers", action="store_true", help="skip numpy, torch and scikit-learn")


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
        sizes=sizes, features=features, dtypes=dtypes, backends=backends,
        peers=peers, repeats=repeats, quick=quick, progress=True,
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
PEER_INSTALL = {"numpy-vec": "pip install numpy", "torch": "pip install torch",
                "sklearn": "pip install 'fastgd[sklearn]'"}


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
    return [f"skipping the {peer} peer ({PEER_LABELS[peer]}): {PEER_MODULES[peer]} is not installed; "
            f"{PEER_INSTALL[peer]}" for peer in PEERS if peer not in peers]


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


def _backend_call(module: Any, kernel: str, X: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    """One epoch (or one sums pass) of ``kernel`` on the kernel interface, with
    the engine's own arrays (fastgd._engine.Training)."""
    from fastgd import _checks
    from fastgd._state import Training

    n, d = X.shape
    fit_intercept = _intercept(kernel, d)
    full_batch = kernel == "gd"
    batch = {"sums": None, "gd": None, "sgd": 1, "sgd-exact": 1, "minibatch": MINIBATCH}[kernel]
    exact = kernel == "sgd-exact"
    lr = _rates(d).get(kernel, 0.1)
    problem = _checks.Problem(X, y, np.zeros(d + int(fit_intercept), dtype=X.dtype), False, fit_intercept)
    opts = _checks.options(lr=lr, epochs=1, batch_size=batch, momentum=0.0, dampening=0.0, nesterov=False,
                           weight_decay=0.0, shuffle=False, seed=None, exact=exact, callback=None)
    a = Training(problem, opts, None)
    if kernel == "sums":
        return lambda: module.sums(X, y, a.params, False, False, True, a.loss_spec)
    costs = np.empty(1, dtype=np.float64)
    rates = opts.rates(0, 1)
    order = np.empty(0, dtype=np.int64)
    if full_batch:
        a.grad[:] = (module.sums(X, y, a.params, fit_intercept, False, True, a.loss_spec)[1:] / n).astype(X.dtype)

    def call():
        finite = module.run_epochs(X, y, a.params, a.grad, a.velocity, a.steps, a.previous, a.hyper, False,
                                   fit_intercept, exact, full_batch, n if full_batch else batch, order, costs,
                                   a.stop, rates, a.loss_spec, a.decayed, a.average, a.averaged)
        if finite != 1:
            raise RuntimeError(f"bench: {module.NAME} {kernel} diverged")

    return call


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
            xb = X[start:start + MINIBATCH]
            r = xb @ w - y[start:start + MINIBATCH]
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
            loss = loss_fn(model(Xt[start:start + batch]).squeeze(1), yt[start:start + batch])
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
    estimator = SGDRegressor(loss="squared_error", penalty=None, learning_rate="constant",
                             eta0=2 * _rates(d)[kernel], max_iter=1, tol=None, shuffle=False,
                             fit_intercept=_intercept(kernel, d), average=False)

    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X, y)

    return call


def _bandwidth_call(X: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    global _bare_read
    if _bare_read is None:
        import numba

        # fastmath: this probe only has to read as fast as the machine can (its
        # sum is thrown away); not cached, it compiles in about a second.
        def bare_read(flat_x, y):
            total = 0.0
            for i in numba.prange(flat_x.shape[0]):
                total += flat_x[i]
            for i in numba.prange(y.shape[0]):
                total += y[i]
            return total

        _bare_read = numba.njit(parallel=True, fastmath=True)(bare_read)
    flat_x = X.reshape(-1)
    probe = _bare_read
    return lambda: probe(flat_x, y)


_bare_read: Any = None


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
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
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
) -> Dict[str, Any]:
    """Measure everything; return the report that ``--json`` writes.

    ``results`` holds one record per (implementation, kernel, dtype,
    features, samples); ``skipped`` says what was left out and why.
    """
    backends = list(select_backends() if backends is None else backends)
    peers = list(available_peers() if peers is None else peers)
    budget = budget_s if budget_s is not None else (QUICK_BUDGET_S if quick else BUDGET_S)
    max_x_bytes = QUICK_MAX_X_BYTES if quick else MAX_X_BYTES
    started = time.time()
    load_before = _loadavg()

    # Every (dtype, d, n) block of measurements, in increasing n so that slow
    # implementations can be skipped before they blow the budget.
    shapes: List[Tuple[str, int, int]] = []
    for dtype in dtypes:
        for d in features:
            runs = sorted({_rows_for(n, d, dtype, max_x_bytes) for n in sizes})
            shapes.extend((dtype, d, n) for n in runs)
    impls: List[Tuple[str, str, Optional[str]]] = [("bandwidth", "bandwidth", None)]
    impls += [("backend", name, kernel) for name in backends for kernel in kernels]
    impls += [("peer", peer, kernel) for peer in peers for kernel in PEER_KERNELS[peer] if kernel in kernels]

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(shapes) * len(impls), desc="fastgd bench", unit="figure", leave=False)
    results: List[Dict[str, Any]] = []
    skipped: List[Dict[str, Any]] = []
    last: Dict[tuple, tuple] = {}  # (impl, kernel, dtype, d) -> (n, median seconds)
    try:
        for dtype, d, n in shapes:
            X, y = _data(n, d, dtype)
            nbytes = X.nbytes + y.nbytes
            for kind, impl, kernel in impls:
                if bar is not None:
                    bar.set_postfix_str(f"{impl} {kernel or ''} {dtype} d={d} n={n}")
                    bar.update()
                key = (kind, impl, kernel, dtype, d)
                rows = n
                if (kind, impl, kernel) in SLOW:
                    rows = min(n, QUICK_SLOW_ROWS if quick else SLOW_ROWS)
                if key in last and kind != "bandwidth":
                    prev_n, prev_fastest = last[key]
                    projected = prev_fastest * rows / prev_n * (repeats + 1)
                    if projected > budget:
                        skipped.append(dict(impl=impl, kernel=kernel, dtype=dtype, n_features=d, n_samples=n,
                                            reason=f"projected {projected:.1f} s over the {budget:g} s budget"))
                        continue
                Xr, yr = (X, y) if rows == n else (X[:rows], y[:rows])
                if kind == "bandwidth":
                    call = _bandwidth_call(X, y)
                elif kind == "backend":
                    call = _backend_call(_kernel_module(impl), kernel, Xr, yr)
                else:
                    call = {"numpy-vec": _numpy_call, "torch": _torch_call, "sklearn": _sklearn_call}[impl](kernel, Xr, yr)
                times = _measure(call, repeats)
                median = statistics.median(times)
                last[key] = (rows, min(times))
                results.append(dict(
                    kind=kind, impl=impl, kernel=kernel or "read", dtype=dtype, n_features=d, n_samples=n,
                    rows_run=rows, fit_intercept=_intercept(kernel or "", d), bytes=nbytes * rows // n,
                    repeats=repeats, times_s=times, median_s=median, min_s=min(times), max_s=max(times),
                    spread=(max(times) - min(times)) / median if median > 0 else 0.0,
                    ns_per_sample=median / rows * 1e9, min_ns_per_sample=min(times) / rows * 1e9,
                    gb_per_s=nbytes * rows // n / median / 1e9 if median > 0 else 0.0,
                ))
    finally:
        if bar is not None:
            bar.close()
    _add_ratios(results)
    small_figures = small_problems(repeats) if small else None
    report = {
        "machine": machine_info(),
        "settings": dict(sizes=list(sizes), features=list(features), dtypes=list(dtypes), backends=backends,
                         peers=peers, kernels=list(kernels), repeats=repeats, quick=quick,
                         minibatch=MINIBATCH, max_x_bytes=max_x_bytes, budget_s=budget,
                         learning_rates={str(d): _rates(d) for d in features}),
        "results": results,
        "skipped": skipped,
        "small": small_figures,
        "targets": targets(results, small=small_figures),
        "load_average": {"before": load_before, "after": _loadavg()},
        "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
        "elapsed_s": time.time() - started,
    }
    return report


def _add_ratios(results: List[Dict[str, Any]]) -> None:
    """``fraction_of_bandwidth`` (bare read median / this median, on the same
    arrays) and ``ratios`` (peer ns per sample / this ns per sample) on each record."""
    by_shape: Dict[tuple, Dict[tuple, Dict[str, Any]]] = {}
    for record in results:
        shape = (record["dtype"], record["n_features"], record["n_samples"])
        by_shape.setdefault(shape, {})[(record["kind"], record["impl"], record["kernel"])] = record
    for records in by_shape.values():
        bare = records.get(("bandwidth", "bandwidth", "read"))
        for (kind, _impl, kernel), record in records.items():
            frac = None
            if bare is not None and record["rows_run"] == record["n_samples"] and record["median_s"] > 0:
                frac = bare["median_s"] / record["median_s"]
            record["fraction_of_bandwidth"] = frac
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
    found = [r for r in results if r["kind"] == "backend" and r["impl"] == impl and r["kernel"] == kernel and r["dtype"] == dtype
             and r["n_features"] == d and (n is None or r["n_samples"] == n)]
    return max(found, key=lambda r: r["n_samples"]) if found else None


def _min_ratio(record: Dict[str, Any], results: List[Dict[str, Any]], peer: str) -> Optional[float]:
    kernel = "sgd" if record["kernel"] == "sgd-exact" else record["kernel"]
    for other in results:
        if (other["kind"], other["impl"], other["kernel"], other["dtype"], other["n_features"], other["n_samples"]) == (
                "peer", peer, kernel, record["dtype"], record["n_features"], record["n_samples"]):
            return other["min_ns_per_sample"] / record["min_ns_per_sample"]
    return None


def _min_fraction(record: Dict[str, Any], results: List[Dict[str, Any]]) -> Optional[float]:
    for other in results:
        if other["kind"] == "bandwidth" and (other["dtype"], other["n_features"], other["n_samples"]) == (
                record["dtype"], record["n_features"], record["n_samples"]):
            return other["min_s"] / record["min_s"]
    return None


def targets(results: List[Dict[str, Any]], backend: str = "numba",
            small: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """The issue's targets with the figures of this run, at the largest size measured.

    ``measured`` comes from the medians; ``measured_from_min`` from the fastest
    repeat of each side (less sensitive to other load on the machine).
    """
    out = []

    def add(name, goal, value, value_min, met, record):
        at = record if isinstance(record, str) else \
            f"{record['dtype']} d={record['n_features']} n={record['n_samples']}"
        out.append(dict(target=name, goal=goal, measured=value, measured_from_min=value_min, met=met, at=at))

    for dtype in ("float64", "float32"):
        for d in (1, 8, 64):
            gd = _find(results, backend, "gd", dtype, d)
            if gd is None:
                continue
            frac = gd.get("fraction_of_bandwidth")
            add(f"gd epoch {dtype} d={d}: fraction of bare read bandwidth", ">= 0.90", frac,
                _min_fraction(gd, results), None if frac is None else frac >= 0.9, gd)
            ratio = gd["ratios"].get("numpy-vec")
            add(f"gd epoch {dtype} d={d}: speed-up over numpy vectorised", ">= 10", ratio,
                _min_ratio(gd, results, "numpy-vec"), None if ratio is None else ratio >= 10, gd)
    sgd = _find(results, backend, "sgd", "float64", 1)
    if sgd is not None:
        add("sgd epoch float64 d=1 (default mode): ns per sample", "<= 2", sgd["ns_per_sample"],
            sgd["min_ns_per_sample"], sgd["ns_per_sample"] <= 2, sgd)
    exact = _find(results, backend, "sgd-exact", "float64", 1)
    if exact is not None:
        add("sgd epoch float64 d=1 (exact=True): ns per sample", "reference order", exact["ns_per_sample"],
            exact["min_ns_per_sample"], None, exact)
    wanted = (("sgd", "sklearn", 6, "sgd epoch float64 d=64 with intercept: speed-up over sklearn SGDRegressor"),
              ("minibatch", "numpy-vec", 8, "minibatch 64x64 float64: speed-up over a numpy loop"),
              ("minibatch", "torch", 200, "minibatch 64x64 float64: speed-up over a torch.optim.SGD loop"))
    for kernel, peer, goal, name in wanted:
        candidates = [r for r in results if r["kind"] == "backend" and r["impl"] == backend and r["kernel"] == kernel
                      and r["dtype"] == "float64" and r["n_features"] == 64 and peer in r["ratios"]]
        if candidates:
            record = max(candidates, key=lambda r: r["n_samples"])
            ratio = record["ratios"][peer]
            add(name, f">= {goal}", ratio, _min_ratio(record, results, peer), ratio >= goal, record)
    if small is not None:
        add("tutorial run: fastgd.reference time / fastgd time", ">= 1", small["tutorial_ratio"],
            small["tutorial_reference_min_s"] / small["tutorial_fastgd_min_s"], small["tutorial_ratio"] >= 1,
            "3 samples, 100 epochs")
        add("import fastgd (s)", "< 0.2", small["import_s"], small["import_min_s"], small["import_s"] < 0.2,
            "fresh process")
        add("first fit in a new process, warm cache (s)", "< 1", small["first_fit_s"], small["first_fit_min_s"],
            small["first_fit_s"] < 1, "fresh process, 1000 samples, 10 epochs")
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
        threads["numba_layer"] = numba.threading_layer() if _bare_read is not None else config.THREADING_LAYER
    except (ImportError, ValueError):
        threads["numba"] = None
    blas: List[Dict[str, Any]] = []
    try:
        from threadpoolctl import threadpool_info

        blas = [{k: pool.get(k) for k in ("internal_api", "num_threads", "architecture", "version")}
                for pool in threadpool_info()]
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
        "env": {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "FASTGD_BACKEND")},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


# --- output ------------------------------------------------------------------

def format_table(report: Dict[str, Any]) -> str:
    """The results as a plain-text table, one line per figure, then the targets."""
    machine = report["machine"]
    lines = [
        f"fastgd bench — {machine['date'][:10]} — {machine['cpu']}, {machine['cores']} cores, "
        f"numba threads {machine['threads'].get('numba')}, load {report['load_average']['before']}",
        f"{'kernel':<10} {'impl':<9} {'dtype':<7} {'d':>3} {'n':>9} {'median ms':>10} {'spread':>7} "
        f"{'ns/sample':>10} {'GB/s':>7} {'%bw':>5}  ratios (peer time / this)",
    ]
    order = {k: i for i, k in enumerate(("read",) + KERNELS)}
    records = sorted(report["results"], key=lambda r: (r["dtype"], r["n_features"], order.get(r["kernel"], 99),
                                                       r["n_samples"], r["kind"] != "backend", r["impl"]))
    for r in records:
        frac = r.get("fraction_of_bandwidth")
        ratios = "  ".join(f"{peer} {value:.1f}x" for peer, value in r.get("ratios", {}).items())
        lines.append(
            f"{r['kernel']:<10} {r['impl']:<9} {r['dtype']:<7} {r['n_features']:>3} {r['n_samples']:>9} "
            f"{r['median_s'] * 1e3:>10.3f} {r['spread']:>6.0%} {r['ns_per_sample']:>10.2f} {r['gb_per_s']:>7.2f} "
            f"{'' if frac is None else f'{frac:.0%}':>5}  {ratios}"
        )
    if report.get("skipped"):
        lines.append(f"skipped {len(report['skipped'])} figures over the time budget (see --json)")
    if report.get("targets"):
        lines.append("targets:")
        for t in report["targets"]:
            value = "n/a" if t["measured"] is None else f"{t['measured']:.3g}"
            if t.get("measured_from_min") is not None:
                value += f" (from fastest repeats: {t['measured_from_min']:.3g})"
            state = {True: "met", False: "MISSED", None: ""}[t["met"]]
            lines.append(f"  {t['target']}: {value} (goal {t['goal']}) {state} [{t['at']}]")
    return "\n".join(lines)


def plot(report: Dict[str, Any], path: str) -> None:
    """Throughput (samples per second) against size, one panel per kernel, a line per implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kernels = ["read"] + [k for k in KERNELS if any(r["kernel"] == k for r in report["results"])]
    fig, axes = plt.subplots(1, len(kernels), figsize=(4.2 * len(kernels), 4), squeeze=False)
    for ax, kernel in zip(axes[0], kernels):
        lines: Dict[tuple, List[tuple]] = {}
        for r in report["results"]:
            if r["kernel"] == kernel:
                lines.setdefault((r["impl"], r["dtype"], r["n_features"]), []).append(
                    (r["n_samples"], r["n_samples"] / r["median_s"]))
        for (impl, dtype, d), points in sorted(lines.items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                    linestyle="-" if dtype == "float64" else "--", label=f"{impl} {dtype} d={d}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(kernel)
        ax.set_xlabel("samples")
        ax.set_ylabel("samples / s")
        if lines:
            ax.legend(fontsize=6)
    fig.suptitle(f"fastgd bench, {report['machine']['cpu']}, {report['machine']['date'][:10]}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
