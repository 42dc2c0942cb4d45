"""``fastgd bench``'s estimator rows: one ``SGDRegressor`` epoch against
scikit-learn's on the same data (issue 13's targets).

An epoch is what a user times: ``fit`` with ``max_iter=1`` at default
parameters and ``shuffle=False`` (validation, the epoch, the attributes),
float64, d = 1, 8, 64. Both estimators are warmed up first (numba compiles
on first use).
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Dict, List

import numpy as np

# (features, target speed-up over scikit-learn, or None where the issue sets none)
TARGETS = ((1, 20.0), (8, None), (64, 4.0))
# Values of X per row size: about 16 M (128 MB) in a full run, 1 M in --quick.
FULL_VALUES = 1 << 24
QUICK_VALUES = 1 << 20


def _median_fit_time(cls: Any, X: np.ndarray, y: np.ndarray, repeats: int, **kwargs: Any) -> float:
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=1 with tol: scikit-learn's ConvergenceWarning
        cls(max_iter=1, shuffle=False, **kwargs).fit(X[:1000], y[:1000])
        for _ in range(repeats):
            start = time.perf_counter()
            cls(max_iter=1, shuffle=False, **kwargs).fit(X, y)
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def sgd_regressor_rows(quick: bool = False, repeats: int = 5, backend: str = "numba") -> List[Dict[str, Any]]:
    """One row per feature count: medians of ``repeats`` fits, seconds and ns/sample."""
    try:
        from sklearn.linear_model import SGDRegressor as Peer
    except ImportError:
        return []
    from fastgd.sgd_regressor import SGDRegressor

    rng = np.random.default_rng(0)
    rows = []
    for d, target in TARGETS:
        n = (QUICK_VALUES if quick else FULL_VALUES) // d
        X = rng.normal(size=(n, d))
        y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
        ours = _median_fit_time(SGDRegressor, X, y, repeats, backend=backend)
        theirs = _median_fit_time(Peer, X, y, repeats)
        ratio = theirs / ours
        rows.append({
            "kernel": "SGDRegressor epoch", "n": n, "d": d, "backend": backend,
            "seconds": ours, "ns_per_sample": ours / n * 1e9,
            "sklearn_seconds": theirs, "sklearn_ns_per_sample": theirs / n * 1e9,
            "ratio": ratio, "target_ratio": target,
            "met": None if target is None else bool(ratio >= target),
        })
    return rows


def format_rows(rows: List[Dict[str, Any]]) -> List[str]:
    """The rows as table lines (under 100 columns)."""
    lines = ["SGDRegressor, one epoch (fit, max_iter=1, defaults, shuffle=False), float64:",
             f"{'d':>3} {'n':>10} {'fastgd ns/s':>12} {'sklearn ns/s':>13} {'ratio':>7} {'target':>7}  met"]
    for row in rows:
        target = "-" if row["target_ratio"] is None else f"{row['target_ratio']:.0f}x"
        met = "-" if row["met"] is None else ("yes" if row["met"] else "no")
        lines.append(f"{row['d']:>3} {row['n']:>10,} {row['ns_per_sample']:>12.2f} "
                     f"{row['sklearn_ns_per_sample']:>13.2f} {row['ratio']:>6.1f}x {target:>7}  {met}")
    return lines
