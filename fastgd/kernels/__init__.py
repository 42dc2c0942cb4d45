"""Compute backends: one module per backend, each exposing the same kernels.

Every backend module defines ``NAME`` and three functions with the same
meaning (arrays are handed in already checked, C-contiguous, in the training
dtype; kernels only do arithmetic):

``sums(X, y, params, fit_intercept, exact, want_gradient) -> float64[1 + p]``
    ``[Σ r², Σ 2·x_0·r, ..., Σ 2·x_{d-1}·r, (Σ 2·r)]`` over all samples, where
    ``r = X·w (+ b) − y`` and ``params = [w_0 .. w_{d-1}, (b)]``.

``predict(X, params, fit_intercept, out)``
    ``out[i] = X[i]·w (+ b)``.

``run_epochs(X, y, params, grad, velocity, steps, previous, hyper, nesterov,
fit_intercept, exact, full_batch, batch_size, order, costs, stop) -> int``
    Runs ``len(costs)`` epochs in place. Each epoch takes the epoch's SGD
    steps (for ``full_batch``, one step with ``grad``, which holds the mean
    gradient at ``params`` on entry and on exit), stores the cost over all
    samples in ``costs[e]`` and, when that cost is finite, copies ``params``
    into ``previous``: ``previous`` is always the last state whose cost was
    finite (the caller seeds it with the starting parameters), even when the
    call is interrupted. Returns the number of epochs whose cost is finite:
    it stops at the first one that is not. ``hyper = [lr, momentum, 1 - dampening, weight_decay]``;
    ``steps[0]`` counts steps taken (the first sets the momentum buffer
    ``velocity``); ``order`` is the visiting order, empty for 0..n-1.
    ``stop`` is a one-element int64 flag that another thread may set: a
    kernel that runs without the GIL (``RELEASES_GIL = True``, then it also
    provides ``thread_setup()``) checks it between blocks of samples and
    returns early (the epoch in progress is not counted, ``previous`` keeps
    the last completed one). See fastgd._engine._run_epochs.

``run_steps(X, y, params, grad, velocity, steps, hyper, nesterov, fit_intercept,
exact, batch_size, order, stop) -> bool``
    The SGD steps of one pass over the positions ``order`` (a part of an
    epoch: rows of ``X``, batches of ``batch_size`` consecutive positions),
    without the cost; False when ``stop`` ended it early. The engine feeds
    block-shuffled epochs of memory-mapped data through it one segment at a
    time, so that the order of an epoch is never held whole. Optional: a
    backend without it gets the whole order in ``run_epochs``.

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
(``numba_sparse``, ``cython_sparse``, ``numpy_sparse``; ``fastgd._sparse.kernels_for``
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
