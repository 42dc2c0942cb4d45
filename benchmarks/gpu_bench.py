"""GPU figures for the cuda backend; run by benchmarks/gpu_check.sh.

Prints, and writes as JSON to ``--json`` after every step (so a step that
fails or a run that is cut short keeps what came before):

- device-to-device copy bandwidth (numba device arrays, cuda events);
- the fused cost+gradient reduction's time and GB/s, and its fraction of the
  copy bandwidth (copy counted as read + write bytes);
- time per epoch of full-batch GD, cuda vs the numba CPU backend, on 10^7
  and 10^8 samples, float32 and float64;
- mini-batch SGD (batches of 64, 64 features) and per-sample SGD (one
  feature: the affine-map scan; 8 features + intercept: the one-block chain).

Times per epoch are differences of two fits with different epoch counts, so
the one host-to-device copy per fit and compilation cancel out.

``--quick`` uses tiny sizes, for checking this script on the CUDA simulator.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import fastgd  # noqa: E402

RESULTS: dict = {"steps": {}}
JSON_PATH = None


def save():
    if JSON_PATH:
        tmp = JSON_PATH + ".tmp"
        with open(tmp, "w") as f:
            json.dump(RESULTS, f, indent=2, default=str)
        os.replace(tmp, JSON_PATH)


def step(name):
    """Run one measurement; record its result or its error, never stop the run."""

    def decorate(fn):
        def run(*args, **kw):
            print(f"\n== {name}", flush=True)
            start = time.perf_counter()
            try:
                out = fn(*args, **kw)
                RESULTS["steps"][name] = {"ok": True, **(out or {})}
            except Exception as exc:
                traceback.print_exc()
                RESULTS["steps"][name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            RESULTS["steps"][name]["wall_s"] = round(time.perf_counter() - start, 3)
            for key, value in RESULTS["steps"][name].items():
                print(f"   {key}: {value}", flush=True)
            save()

        return run

    return decorate


def data(n, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d) if d > 1 else n, dtype=np.float64).astype(dtype, copy=False)
    coef = np.linspace(1.0, 2.0, d)
    y = (X @ coef if d > 1 else 2.0 * X) + 0.5
    return X, y.astype(dtype, copy=False)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def per_epoch(backend, X, y, e1, e2, **kw):
    """Seconds per epoch from two fits (e1 and e2 epochs), the e1 fit's time, and the e1 fit."""
    available = {row.name: row for row in fastgd.backends()}[backend]
    if not available.available:
        raise RuntimeError(f"backend {backend} unavailable: {available.reason}")
    with fastgd.use(backend):
        fastgd.fit(X[:64], y[:64], epochs=1, **kw)  # compile
        # Medians of three: each fit also copies the data to the device once.
        short = [timed(lambda: fastgd.fit(X, y, epochs=e1, **kw)) for _ in range(3)]
        long = [timed(lambda: fastgd.fit(X, y, epochs=e2, **kw))[0] for _ in range(3)]
    t1 = float(np.median([t for t, _ in short]))
    return max(float(np.median(long)) - t1, 0.0) / (e2 - e1), t1, short[0][1]


def _event_ms(fn, repeats):
    from numba import cuda

    from fastgd.kernels.cuda_kernels import simulated

    fn()  # warm up / compile
    cuda.synchronize()
    if simulated():  # the simulator's events report 0 ms
        start_s = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - start_s) * 1e3 / repeats
    start, end = cuda.event(), cuda.event()
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / repeats


@step("device")
def device_info():
    from numba import cuda

    from fastgd.kernels import cuda_kernels

    info = {"python": platform.python_version(), "numpy": np.__version__,
            "threads_per_block": cuda_kernels.THREADS_PER_BLOCK, "max_blocks": cuda_kernels.MAX_BLOCKS,
            "simulator": cuda_kernels.simulated()}
    import numba

    info["numba"] = numba.__version__
    try:
        dev = cuda.get_current_device()
        info["name"] = str(getattr(dev, "name", "?"))
        info["compute_capability"] = str(getattr(dev, "compute_capability", "?"))
    except Exception as exc:  # the simulator's fake device has few attributes
        info["name"] = f"? ({exc})"
    return info


@step("copy_bandwidth")
def copy_bandwidth(nbytes):
    from numba import cuda

    count = nbytes // 8
    src = cuda.to_device(np.ones(count))
    dst = cuda.device_array(count)
    ms = _event_ms(lambda: dst.copy_to_device(src), 5)
    RESULTS["copy_GBps"] = 2 * count * 8 / (ms * 1e-3) / 1e9
    return {"bytes": count * 8, "ms": ms, "GBps_read_plus_write": RESULTS["copy_GBps"]}


@step("reduction")
def reduction(sizes, dtypes):
    from numba import cuda

    from fastgd.kernels import cuda_kernels as ck

    out = {}
    for n in sizes:
        for dtype in dtypes:
            X, y = data(n, 1, dtype)
            X2 = X.reshape(-1, 1)
            entry = ck.prepare(X2, y, None)
            params = cuda.to_device(np.array([1.5], dtype=dtype))
            status = cuda.to_device(np.zeros(1, dtype=np.int64))
            partials = entry.scratch("partials", (ck._blocks(n), 2), np.float64)
            totals = entry.scratch("totals", (2,), np.float64)

            def once():
                ck._launch_sums(entry, params, False, 2, status, partials)
                ck._final_sums[1, ck.TPB, 0, ck._REDUCE_BYTES](partials, 2, totals)

            with ck._quiet_launches():
                ms = _event_ms(once, 10)
                got = totals.copy_to_host()
            from fastgd import _registry

            want = _registry.kernel_module("numba").sums(X2, y, np.array([1.5], dtype=dtype), False, False, True)
            gbps = 2 * n * np.dtype(dtype).itemsize / (ms * 1e-3) / 1e9
            key = f"n={n:.0e} {np.dtype(dtype).name}"
            out[key] = {"ms": ms, "GBps": gbps}
            if RESULTS.get("copy_GBps"):
                out[key]["fraction_of_copy"] = gbps / RESULTS["copy_GBps"]
            out[key]["rel_diff_vs_numba"] = float(np.max(np.abs(got - want) / np.abs(want)))
            del entry, X2, X, y
    return out


@step("gd_epoch")
def gd_epoch(sizes, dtypes, epochs):
    out = {}
    e1, e2 = epochs
    for n in sizes:
        for dtype in dtypes:
            X, y = data(n, 1, dtype)
            key = f"n={n:.0e} {np.dtype(dtype).name}"
            row = out[key] = {}
            for backend in ("cuda", "numba"):
                try:
                    sec, first, fit = per_epoch(backend, X, y, e1, e1 + 200 if backend == "cuda" else e1 + 10, lr=0.1)
                    row[f"{backend}_s_per_epoch"] = sec
                    row[f"{backend}_GBps"] = 2 * n * np.dtype(dtype).itemsize / sec / 1e9 if sec else None
                    row[f"{backend}_first_fit_s"] = first
                    row[f"{backend}_w_after_{e1}_epochs"] = float(fit.w)
                except Exception as exc:
                    row[f"{backend}_error"] = f"{type(exc).__name__}: {exc}"
            if "cuda_s_per_epoch" in row and "numba_s_per_epoch" in row and row["cuda_s_per_epoch"]:
                row["speedup"] = row["numba_s_per_epoch"] / row["cuda_s_per_epoch"]
            if row.get("cuda_GBps") and RESULTS.get("copy_GBps"):
                row["cuda_fraction_of_copy"] = row["cuda_GBps"] / RESULTS["copy_GBps"]
            print(f"   {key}: {row}", flush=True)
            save()
            del X, y
    return out


def _compare(name, n, d, epochs, **kw):
    out = {}
    X, y = data(n, d, np.float64)
    e1, e2 = epochs
    for backend in ("cuda", "numba"):
        try:
            sec, first, fit = per_epoch(backend, X, y, e1, e2, **kw)
            out[f"{backend}_s_per_epoch"] = sec
            out[f"{backend}_first_fit_s"] = first
            out[f"{backend}_loss_after_{e1}_epochs"] = float(fit.loss)
        except Exception as exc:
            out[f"{backend}_error"] = f"{type(exc).__name__}: {exc}"
    if out.get("cuda_s_per_epoch") and out.get("numba_s_per_epoch"):
        out["speedup"] = out["numba_s_per_epoch"] / out["cuda_s_per_epoch"]
    out["shape"] = [n, d]
    out["options"] = kw
    return out


@step("minibatch_64x64")
def minibatch(n, epochs):
    return _compare("minibatch", n, 64, epochs, lr=0.01, batch_size=64)


@step("sgd_1_feature_affine_scan")
def sgd_scalar(n, epochs):
    return _compare("sgd", n, 1, epochs, lr=0.001, batch_size=1)


@step("sgd_8_features_intercept")
def sgd_features(n, epochs):
    return _compare("sgd8", n, 8, epochs, lr=0.001, batch_size=1, fit_intercept=True)


def main(argv=None):
    global JSON_PATH
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write results here (updated after every step)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (for the CUDA simulator)")
    args = parser.parse_args(argv)
    JSON_PATH = args.json
    if args.quick:
        sizes, copy_bytes, epochs = [3000], 1 << 16, (1, 2)
        mb_n, sgd_n, sgd8_n = 256, 2000, 64
    else:
        sizes, copy_bytes, epochs = [10**7, 10**8], 1 << 30, (2, 12)
        mb_n, sgd_n, sgd8_n = 1 << 16, 10**7, 20000
    dtypes = [np.float32, np.float64]
    device_info()
    copy_bandwidth(copy_bytes)
    reduction(sizes, dtypes)
    gd_epoch(sizes, dtypes, epochs)
    minibatch(mb_n, (1, 3))
    sgd_scalar(sgd_n, (1, 3))
    sgd_features(sgd8_n, (1, 2))
    failed = [name for name, row in RESULTS["steps"].items() if not row.get("ok")]
    print("\nfailed steps:", failed or "none", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
