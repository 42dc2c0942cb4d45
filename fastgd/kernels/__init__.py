"""Compute backends: one module per backend, each exposing the same kernels.

Every backend module defines ``NAME`` and these functions with the same
meaning (arrays are handed in already checked, C-contiguous, in the training
dtype; kernels only do arithmetic):

``sums(X, y, params, fit_intercept, exact, want_gradient, loss_spec) -> float64[1 + p]``
    ``[Σ ℓ(r), Σ ℓ'(r)·x_0, ..., Σ ℓ'(r)·x_{d-1}, (Σ ℓ'(r))]`` over all
    samples (for mse ``ℓ(r) = r²``), where ``r = X·w (+ b) − y`` and
    ``params = [w_0 .. w_{d-1}, (b)]``.

``predict(X, params, fit_intercept, out)``
    ``out[i] = X[i]·w (+ b)``.

``run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov,
fit_intercept, exact, path, batch_size, order, costs, stop, rates, loss_spec,
decayed, average, averaged) -> int``
    Runs ``len(costs)`` epochs in place along ``path`` (one of the codes at
    the end of this module: the fit's ``fastgd._backend.Plan.path``, decided
    in Python; a kernel never re-derives it from ``hyper``). Each epoch
    first sets ``hyper[0] = rates[e]``, then takes the epoch's SGD steps (for
    ``FULL_BATCH``, one step with ``grad``, which holds the mean gradient at
    ``params`` on entry and on exit), stores the cost over all samples in
    ``costs[e]`` and, when that cost is finite, copies ``params`` into
    ``previous``: ``previous`` is always the last state whose cost was
    finite (the caller seeds it with the starting parameters), even when the
    call is interrupted. Returns the number of epochs whose cost is finite:
    it stops at the first one that is not. ``hyper = [lr, momentum, 1 −
    dampening, weight_decay]``; ``steps[0]`` counts steps taken (the first
    sets the momentum buffer ``velocity``); ``order`` is the visiting order,
    empty for 0..n-1; ``loss_spec = [loss code, delta, 0.5]``; the first
    ``decayed`` parameters take weight decay; ``average``/``averaged`` hold
    the running mean of the iterates (``fastgd/_state.py``). ``stop`` is a
    one-element int64 flag that another thread may set: a kernel that runs
    without the GIL (``RELEASES_GIL = True``, then it also provides
    ``thread_setup()``) checks it between blocks of samples and returns early
    (the epoch in progress is not counted, ``previous`` keeps the last
    completed one). See fastgd._engine.

``run_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept,
exact, path, batch_size, order, stop, loss_spec, decayed, average, averaged) -> bool``
    The SGD steps of one pass over the positions ``order`` (a part of an
    epoch: rows of ``X``, batches of ``batch_size`` consecutive positions;
    never ``FULL_BATCH``), without the cost; False when ``stop`` ended it
    early. The engine feeds block-shuffled epochs of memory-mapped data
    through it one segment at a time, so that the order of an epoch is never
    held whole. Optional: a backend without it gets the whole order in
    ``run_epochs``.

``prepare(X, y, plan) -> data``
    Optional: data placed once per fit (cuda: the device copies of ``X`` and
    ``y``, and the fit's ``fastgd._backend.Plan``). The fit's
    ``fastgd._backend.Handle`` keeps it, passes it wherever these functions
    take ``X``, and frees it with the fit. The Python layer calls this
    interface only through a Handle.

``gram(X, y, fit_intercept) -> float64[p + 1, p + 1]``
    Optional: ``[A | y]ᵀ[A | y]`` with ``A = [X (1)]``, the statistics of
    ``solver="gram"`` (fastgd/_gram.py); deterministic for any thread count.
    A backend without it gets numpy's.

Sparse X (SPEC §10) has kernel modules of its own, one per CPU backend
(``numba_sparse``, ``cython_sparse``, ``numpy_sparse``; ``fastgd._sparse.kernel_module_for``
maps a backend to its module, and refuses cuda with a ValueError naming X).
They have ``NAME`` (the backend's), ``BLOCK``, the same ``sums``, ``predict``,
``run_epochs`` and ``run_steps`` with the same arguments and meaning, except
that ``X`` is a :class:`fastgd._sparse.CSR` (``data``, ``indices``, ``indptr``,
``n_features``: canonical rows, read-only, ``indices`` int32 or int64), and
no ``gram`` (so ``solver="auto"`` streams). The sums skip the zeros: with
``exact`` the results have the reference's bits on ``X.toarray()``
(fastgd/_sparse.py says why); ``predict`` gives an exactly zero prediction
the dense sum's sign. A step that leaves the weights without gradient alone
costs O(nnz of its rows); numba_sparse.py's docstring says which steps those
are.
"""

# The kernel block (docs/architecture.md): the default mode sums each block of
# BLOCK consecutive samples alone and adds the block sums in block order, so
# the bits never depend on the thread count; stop is read between blocks.
# One number for every CPU kernel module (the Cython extension repeats it as a
# compile-time constant; tests/test_cython.py holds them equal).
BLOCK = 4096
# The default mode's lane dot products: LANES partial sums (spelled out in the
# vector IR of _numba_lanes.py and in fastgd_ext), used from LANES_MIN_FEATURES
# features on (a fixed shape rule, never timing).
LANES = 8
LANES_MIN_FEATURES = 8

# The paths of a fit's epochs (``fastgd._backend.Plan.path``) as the kernels
# receive them; fastgd_ext/_kernels.pyx repeats the numbers.
FULL_BATCH = 0  # one step per epoch with the mean gradient of all samples
PER_SAMPLE = 1  # plain SGD, one sample per step: no momentum, weight decay, averaging; mse
AFFINE = 2  # PER_SAMPLE with one feature, no intercept, default mode: composed affine maps
MINI_BATCH = 3  # everything else: the general step of SPEC §3 on batches
