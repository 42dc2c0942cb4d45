"""Eight-lane vector IR for the numba kernels: what numba's vectorisers do not
produce (its SLP vectoriser is off, and its loop vectoriser does not turn
explicit lanes or floating-point reductions into SIMD). IEEE ``fmul``/``fadd``
without fast-math flags: the same bits as the scalar lanes they spell out.
"""

from __future__ import annotations

from llvmlite import ir  # numba's own dependency
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic


def _shuffle_mask(*lanes):
    return ir.Constant(ir.VectorType(ir.IntType(32), len(lanes)), list(lanes))


# How far ahead of each vector load the streaming row kernels prefetch, in
# bytes: a row kernel's dependent adds leave too few loads in flight for the
# hardware prefetchers (benchmarks/NOTES.md item 15: GD d=64 15.0 -> 22
# GB/s on two cores of the Xeon VM; per-sample SGD, a sequential chain,
# became slower and keeps the plain loads).
PREFETCH_BYTES = 2048


def _prefetch(builder, ptr, elt_bytes):
    """Ask for the line ``PREFETCH_BYTES`` after ``ptr`` (a hint: never faults)."""
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                        "llvm.prefetch.p0")
    ahead = builder.gep(ptr, [ir.Constant(ir.IntType(64), PREFETCH_BYTES // elt_bytes)])
    builder.call(fn, [builder.bitcast(ahead, i8p), i32(0), i32(3), i32(1)])


def _lane_tree_intrinsic(prefetch):
    """``_lane_tree``, or with ``prefetch`` ``_lane_tree_ahead``: the same
    arithmetic, each vector load preceded by a prefetch ``PREFETCH_BYTES``
    ahead (for passes that read the rows in order)."""
    def lane_tree(typingctx, X, i, params):
        return _lane_tree_codegen(X, i, params, prefetch)

    lane_tree.__name__ = lane_tree.__qualname__ = "_lane_tree_ahead" if prefetch else "_lane_tree"
    return intrinsic(lane_tree)


def _lane_tree_codegen(X, i, params, prefetch):
    """``_dot_lanes`` without the intercept, as one vector of ``LANES`` lanes.

    Lane ``l`` starts from +0.0 and adds ``X[i, j]·params[j]`` for
    ``j ≡ l (mod 8)`` in increasing ``j`` (a vector multiply and a vector add
    per group of 8 features, then the last ``d % 8`` one lane at a time);
    the result is ``((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))``.
    Written as LLVM vector IR because numba's loop vectoriser does not turn
    the lanes into SIMD (and its SLP vectoriser is off). IEEE ``fmul`` and
    ``fadd`` without fast-math flags: the same bits as the scalar lanes.
    """
    if not (isinstance(X, types.Array) and X.ndim == 2 and X.layout == "C"
            and isinstance(params, types.Array) and params.ndim == 1 and params.layout == "C"
            and X.dtype == params.dtype and X.dtype in (types.float32, types.float64)):
        raise TypingError("_lane_tree: C-contiguous float X (2-d) and params (1-d) of one dtype")
    dtype = X.dtype

    def codegen(context, builder, signature, args):
        x_arg, i_arg, params_arg = args
        elt = context.get_value_type(dtype)
        align = context.get_abi_sizeof(elt)
        x_arr = context.make_array(signature.args[0])(context, builder, x_arg)
        w_arr = context.make_array(signature.args[2])(context, builder, params_arg)
        d = builder.extract_value(x_arr.shape, 1)
        i = context.cast(builder, i_arg, signature.args[1], types.int64)
        row = builder.gep(x_arr.data, [builder.mul(i, d)], inbounds=True)
        return _tree(builder, _row_lanes(builder, row, w_arr.data, d, elt, align, prefetch), elt)

    return dtype(X, i, params), codegen


def _row_lanes(builder, row, w_data, d, elt, align, prefetch):
    """The 8 lanes of ``_lane_tree`` for the row at ``row`` (before the tree):
    lane ``l`` adds ``row[j]·w[j]`` for ``j ≡ l (mod 8)`` from +0.0, a vector
    multiply and add per group of 8 features, then the last ``d % 8`` features
    one lane each, in order; with ``prefetch`` each group's load is preceded
    by a prefetch ``PREFETCH_BYTES`` ahead."""
    vec = ir.VectorType(elt, 8)
    i64 = ir.IntType(64)
    acc = cgutils.alloca_once(builder, vec)
    builder.store(ir.Constant(vec, [ir.Constant(elt, 0.0)] * 8), acc)
    groups = builder.udiv(d, ir.Constant(i64, 8))
    with cgutils.for_range(builder, groups) as loop:
        j = builder.mul(loop.index, ir.Constant(i64, 8))
        if prefetch:
            _prefetch(builder, builder.gep(row, [j], inbounds=True), align)
        xs = builder.load(builder.bitcast(builder.gep(row, [j], inbounds=True), vec.as_pointer()),
                          align=align, typ=vec)
        ws = builder.load(builder.bitcast(builder.gep(w_data, [j], inbounds=True), vec.as_pointer()),
                          align=align, typ=vec)
        builder.store(builder.fadd(builder.load(acc, typ=vec), builder.fmul(xs, ws)), acc)
    base = builder.mul(groups, ir.Constant(i64, 8))
    with cgutils.for_range(builder, builder.sub(d, base)) as loop:
        j = builder.add(base, loop.index)
        term = builder.fmul(builder.load(builder.gep(row, [j], inbounds=True), typ=elt),
                            builder.load(builder.gep(w_data, [j], inbounds=True), typ=elt))
        lanes = builder.load(acc, typ=vec)
        lane = builder.fadd(builder.extract_element(lanes, loop.index), term)
        builder.store(builder.insert_element(lanes, lane, loop.index), acc)
    return builder.load(acc, typ=vec)


_lane_tree = _lane_tree_intrinsic(prefetch=False)
_lane_tree_ahead = _lane_tree_intrinsic(prefetch=True)


def _check_row_and_vector(name, X, vector):
    if not (isinstance(X, types.Array) and X.ndim == 2 and X.layout == "C"
            and isinstance(vector, types.Array) and vector.ndim == 1 and vector.layout == "C"
            and X.dtype == vector.dtype and X.dtype in (types.float32, types.float64)):
        raise TypingError(f"{name}: C-contiguous float X (2-d) and vector (1-d) of one dtype")


def _tree(builder, lanes, elt):
    """``((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`` of an 8-lane vector."""
    vec = ir.VectorType(elt, 8)
    vec4 = ir.VectorType(elt, 4)
    pairs = builder.fadd(builder.shuffle_vector(lanes, ir.Constant(vec, ir.Undefined), _shuffle_mask(0, 2, 4, 6)),
                         builder.shuffle_vector(lanes, ir.Constant(vec, ir.Undefined), _shuffle_mask(1, 3, 5, 7)))
    quads = builder.fadd(builder.shuffle_vector(pairs, ir.Constant(vec4, ir.Undefined), _shuffle_mask(0, 2)),
                         builder.shuffle_vector(pairs, ir.Constant(vec4, ir.Undefined), _shuffle_mask(1, 3)))
    return builder.fadd(builder.extract_element(quads, ir.Constant(ir.IntType(32), 0)),
                        builder.extract_element(quads, ir.Constant(ir.IntType(32), 1)))


def _two_vector_loop(context, builder, signature, args):
    """The 16-lane loop of ``_axpy_squares16``: lane ``l`` takes
    ``j ≡ l (mod 16)`` in increasing ``j`` (two vectors of 8, so that the adds
    form two chains, not one); then lanes ``l`` and ``l + 8`` are added and
    the pairwise tree of 8 is taken."""
    dtype = signature.args[0].dtype
    elt = context.get_value_type(dtype)
    align = context.get_abi_sizeof(elt)
    vec = ir.VectorType(elt, 8)
    i64 = ir.IntType(64)
    x_arr = context.make_array(signature.args[0])(context, builder, args[0])
    w_arr = context.make_array(signature.args[2])(context, builder, args[2])
    d = builder.extract_value(x_arr.shape, 1)
    i = context.cast(builder, args[1], signature.args[1], types.int64)
    row = builder.gep(x_arr.data, [builder.mul(i, d)], inbounds=True)
    step = context.cast(builder, args[3], signature.args[3], dtype)
    splat = ir.Constant(vec, ir.Undefined)
    for lane in range(8):
        splat = builder.insert_element(splat, step, ir.Constant(ir.IntType(32), lane))
    zero = ir.Constant(vec, [ir.Constant(elt, 0.0)] * 8)
    acc0 = cgutils.alloca_once(builder, vec)
    acc1 = cgutils.alloca_once(builder, vec)
    builder.store(zero, acc0)
    builder.store(zero, acc1)

    def group(j, acc):
        x_ptr = builder.bitcast(builder.gep(row, [j], inbounds=True), vec.as_pointer())
        w_ptr = builder.bitcast(builder.gep(w_arr.data, [j], inbounds=True), vec.as_pointer())
        xs = builder.load(x_ptr, align=align, typ=vec)
        ws = builder.fadd(builder.load(w_ptr, align=align, typ=vec), builder.fmul(xs, splat))
        builder.store(ws, w_ptr, align=align)
        builder.store(builder.fadd(builder.load(acc, typ=vec), builder.fmul(ws, ws)), acc)

    pairs = builder.udiv(d, ir.Constant(i64, 16))
    with cgutils.for_range(builder, pairs) as loop:
        j = builder.mul(loop.index, ir.Constant(i64, 16))
        group(j, acc0)
        group(builder.add(j, ir.Constant(i64, 8)), acc1)
    base = builder.mul(pairs, ir.Constant(i64, 16))
    extra = builder.icmp_unsigned(">=", builder.sub(d, base), ir.Constant(i64, 8))
    with builder.if_then(extra):
        group(base, acc0)
    base = builder.select(extra, builder.add(base, ir.Constant(i64, 8)), base)
    # The last d % 8 features: lanes 8.. of the pair when a group of 8 went before, else 0..
    target = builder.select(extra, acc1, acc0)
    with cgutils.for_range(builder, builder.sub(d, base)) as loop:
        j = builder.add(base, loop.index)
        x = builder.load(builder.gep(row, [j], inbounds=True), typ=elt)
        w_ptr = builder.gep(w_arr.data, [j], inbounds=True)
        w_new = builder.fadd(builder.load(w_ptr, typ=elt), builder.fmul(x, step))
        builder.store(w_new, w_ptr)
        term = builder.fmul(w_new, w_new)
        lanes = builder.load(target, typ=vec)
        lane = builder.fadd(builder.extract_element(lanes, loop.index), term)
        builder.store(builder.insert_element(lanes, lane, loop.index), target)
    return _tree(builder, builder.fadd(builder.load(acc0, typ=vec), builder.load(acc1, typ=vec)), elt)


@intrinsic
def _axpy_squares16(typingctx, X, i, coef, step):
    """``coef += step · X[i]``, returning the new ``coef``'s sum of squares in 16 lanes."""
    _check_row_and_vector("_axpy_squares16", X, coef)

    def codegen(context, builder, signature, args):
        return _two_vector_loop(context, builder, signature, args)

    return X.dtype(X, i, coef, step), codegen


@intrinsic
def _one_feature_lanes(typingctx, X, y, w, start, groups, lanes):
    """The vector body of ``_accumulate_lanes``: ``groups`` groups of 8 rows
    from ``start``, row ``start + 8·g + l`` into lane ``l``.

    ``lanes[0:8]`` (float64) gain ``r²`` and ``lanes[8:16]`` gain
    ``(x + x)·r``, with ``r = x·w − y`` in the training dtype and each term
    widened to float64 before its add: the scalar lanes' arithmetic, one
    vector operation for all eight (numba leaves the eight scalar chains
    unvectorised: float32 ran at 3.2 ns/sample on one core, bound by the
    instructions, not by the read).
    """
    if not (isinstance(X, types.Array) and X.ndim == 2 and X.layout == "C"
            and isinstance(y, types.Array) and y.ndim == 1 and y.layout == "C" and X.dtype == y.dtype
            and X.dtype in (types.float32, types.float64)
            and isinstance(lanes, types.Array) and lanes.ndim == 1 and lanes.dtype == types.float64):
        raise TypingError("_one_feature_lanes: C-contiguous float X (n, 1) and y of one dtype, float64 lanes")
    dtype = X.dtype

    def codegen(context, builder, signature, args):
        x_arg, y_arg, w_arg, start_arg, groups_arg, lanes_arg = args
        elt = context.get_value_type(dtype)
        wide = ir.DoubleType()
        align = context.get_abi_sizeof(elt)
        vec = ir.VectorType(elt, 8)
        wvec = ir.VectorType(wide, 8)
        i64 = ir.IntType(64)
        x_arr = context.make_array(signature.args[0])(context, builder, x_arg)
        y_arr = context.make_array(signature.args[1])(context, builder, y_arg)
        out = context.make_array(signature.args[5])(context, builder, lanes_arg)
        w = context.cast(builder, w_arg, signature.args[2], dtype)
        start = context.cast(builder, start_arg, signature.args[3], types.int64)
        groups = context.cast(builder, groups_arg, signature.args[4], types.int64)
        splat = ir.Constant(vec, ir.Undefined)
        for lane in range(8):
            splat = builder.insert_element(splat, w, ir.Constant(ir.IntType(32), lane))
        cost_ptr = builder.bitcast(out.data, wvec.as_pointer())
        grad_ptr = builder.bitcast(builder.gep(out.data, [ir.Constant(i64, 8)], inbounds=True), wvec.as_pointer())
        cost_acc = cgutils.alloca_once(builder, wvec)
        grad_acc = cgutils.alloca_once(builder, wvec)
        builder.store(builder.load(cost_ptr, align=8, typ=wvec), cost_acc)
        builder.store(builder.load(grad_ptr, align=8, typ=wvec), grad_acc)
        with cgutils.for_range(builder, groups) as loop:
            i = builder.add(start, builder.mul(loop.index, ir.Constant(i64, 8)))
            xs = builder.load(builder.bitcast(builder.gep(x_arr.data, [i], inbounds=True), vec.as_pointer()),
                              align=align, typ=vec)
            ys = builder.load(builder.bitcast(builder.gep(y_arr.data, [i], inbounds=True), vec.as_pointer()),
                              align=align, typ=vec)
            r = builder.fsub(builder.fmul(xs, splat), ys)
            cost = builder.fmul(r, r)
            grad = builder.fmul(builder.fadd(xs, xs), r)
            if dtype == types.float32:
                cost = builder.fpext(cost, wvec)
                grad = builder.fpext(grad, wvec)
            builder.store(builder.fadd(builder.load(cost_acc, typ=wvec), cost), cost_acc)
            builder.store(builder.fadd(builder.load(grad_acc, typ=wvec), grad), grad_acc)
        builder.store(builder.load(cost_acc, typ=wvec), cost_ptr, align=8)
        builder.store(builder.load(grad_acc, typ=wvec), grad_ptr, align=8)
        return context.get_dummy_value()

    return types.none(X, y, w, start, groups, lanes), codegen


@intrinsic
def _bare_read(typingctx, values, start, groups):
    """The sum of ``values[start : start + 32·groups]`` (float64) in four
    vectors of 8 independent lanes: a read of memory with the adds out of
    its way (the bench's bandwidth probes; eight scalar chains were bound
    by the adds on a 2-core Xeon VM, 7.1 GB/s against 9.4 for this)."""
    if not (isinstance(values, types.Array) and values.ndim == 1 and values.layout == "C"
            and values.dtype == types.float64):
        raise TypingError("_bare_read: a C-contiguous float64 array")

    def codegen(context, builder, signature, args):
        values_arg, start_arg, groups_arg = args
        elt = ir.DoubleType()
        vec = ir.VectorType(elt, 8)
        i64 = ir.IntType(64)
        arr = context.make_array(signature.args[0])(context, builder, values_arg)
        start = context.cast(builder, start_arg, signature.args[1], types.int64)
        groups = context.cast(builder, groups_arg, signature.args[2], types.int64)
        zero = ir.Constant(vec, [ir.Constant(elt, 0.0)] * 8)
        accs = [cgutils.alloca_once(builder, vec) for _ in range(4)]
        for acc in accs:
            builder.store(zero, acc)
        with cgutils.for_range(builder, groups) as loop:
            base = builder.add(start, builder.mul(loop.index, ir.Constant(i64, 32)))
            for k, acc in enumerate(accs):
                ptr = builder.gep(arr.data, [builder.add(base, ir.Constant(i64, 8 * k))], inbounds=True)
                part = builder.load(builder.bitcast(ptr, vec.as_pointer()), align=8, typ=vec)
                builder.store(builder.fadd(builder.load(acc, typ=vec), part), acc)
        total = builder.fadd(builder.fadd(builder.load(accs[0], typ=vec), builder.load(accs[1], typ=vec)),
                             builder.fadd(builder.load(accs[2], typ=vec), builder.load(accs[3], typ=vec)))
        return _tree(builder, total, elt)

    return types.float64(values, start, groups), codegen


def _gram_kernel(builder, load_column, load_source, sources, out_rows, chunk0, chunks, nrows, add_out,
                 prefetch=None):
    """One register tile of ``_gram_chunk``: ``len(sources)`` rows of the output
    by ``chunks`` vectors of 8 columns from column ``8·chunk0``, summed over
    ``nrows`` rows from +0.0 in registers (row after row), then added to
    ``out``. ``sources``: per output row, the feature whose value multiplies
    the columns (an IR index), ``"one"`` (the columns themselves: 1·x = x) or
    ``"y"``. ``prefetch(r, chunks)``, if given, runs in each row's step."""
    vec = ir.VectorType(ir.DoubleType(), 8)
    zero = ir.Constant(vec, [ir.Constant(ir.DoubleType(), 0.0)] * 8)
    accs = [[cgutils.alloca_once(builder, vec) for _ in range(chunks)] for _ in sources]
    for row in accs:
        for acc in row:
            builder.store(zero, acc)
    with cgutils.for_range(builder, nrows) as loop:
        r = loop.index
        indices = [builder.add(chunk0, ir.Constant(chunk0.type, c)) for c in range(chunks)]
        if prefetch is not None:
            prefetch(r, indices)
        columns = [load_column(r, index) for index in indices]
        for row, source in zip(accs, sources):
            factor = None if isinstance(source, str) and source == "one" else load_source(r, source)
            for acc, column in zip(row, columns):
                term = column if factor is None else builder.fmul(factor, column)
                builder.store(builder.fadd(builder.load(acc, typ=vec), term), acc)
    for row, out_row in zip(accs, out_rows):
        for c, acc in enumerate(row):
            add_out(out_row, builder.add(chunk0, ir.Constant(chunk0.type, c)), builder.load(acc, typ=vec))


# How many rows ahead the one-vector Gram pass prefetches into L1.
GRAM_AHEAD = 64


@intrinsic
def _gram_chunk(typingctx, A, a0, y, y0, nrows, d, out):
    """The Gram sums of ``nrows`` rows (``A[a0 + r]``, ``y[y0 + r]``) added to
    ``out`` (float64, ``(w + 2) × (w + 2)``, ``w = A.shape[1]``, a multiple of
    8; columns ``d..w-1`` of ``A`` are zeros or unused):

    * ``out[j, k] += Σ A[r, j]·A[r, k]`` for ``j < d`` and the vectors of 8
      columns ``k`` from the one holding ``j`` on (the upper triangle and some
      of the lower near the diagonal),
    * ``out[w, k] += Σ A[r, k]`` and ``out[w + 1, k] += Σ y[r]·A[r, k]``,
    * ``out[w, w + 1] += Σ y[r]`` and ``out[w + 1, w + 1] += Σ y[r]·y[r]``.

    Each value is a float64 product (float32 inputs widened first) added, row
    after row, to a register sum that starts at +0.0; the chunk's sum is then
    added to ``out`` (IEEE ``fmul``/``fadd``, no FMA, no fast-math: the same
    bits on every run). The register tiles are 4 output rows by up to 4
    vectors of 8 columns (16 accumulators); for ``w == 8`` one tile of 10 rows
    (the 8 features, 1 and y) by one vector. ``Σ y`` and ``Σ y²`` take row
    ``8·g + l`` into lane ``l`` (the last ``nrows % 8`` rows into lanes
    0, 1, ...), added as the pairwise tree of ``_tree``.
    """
    if not (isinstance(A, types.Array) and A.ndim == 2 and A.layout == "C"
            and A.dtype in (types.float32, types.float64)
            and isinstance(y, types.Array) and y.ndim == 1 and y.layout == "C"
            and y.dtype in (types.float32, types.float64)
            and isinstance(out, types.Array) and out.ndim == 2 and out.layout == "C"
            and out.dtype == types.float64):
        raise TypingError("_gram_chunk: C-contiguous float A (2-d) and y (1-d), float64 out (2-d)")

    def codegen(context, builder, signature, args):
        a_arg, a0_arg, y_arg, y0_arg, n_arg, d_arg, out_arg = args
        f64 = ir.DoubleType()
        vec = ir.VectorType(f64, 8)
        i64 = ir.IntType(64)
        a_elt = context.get_value_type(signature.args[0].dtype)
        y_elt = context.get_value_type(signature.args[2].dtype)
        a_arr = context.make_array(signature.args[0])(context, builder, a_arg)
        y_arr = context.make_array(signature.args[2])(context, builder, y_arg)
        o_arr = context.make_array(signature.args[6])(context, builder, out_arg)
        a0 = context.cast(builder, a0_arg, signature.args[1], types.int64)
        y0 = context.cast(builder, y0_arg, signature.args[3], types.int64)
        nrows = context.cast(builder, n_arg, signature.args[4], types.int64)
        d = context.cast(builder, d_arg, signature.args[5], types.int64)
        w = builder.extract_value(a_arr.shape, 1)
        q = builder.extract_value(o_arr.shape, 1)
        n_chunks = builder.udiv(w, ir.Constant(i64, 8))
        a_align = context.get_abi_sizeof(a_elt)
        y_align = context.get_abi_sizeof(y_elt)

        def widen(value, elt, typ):
            return value if elt == f64 else builder.fpext(value, typ)

        def splat(value):
            v = builder.insert_element(ir.Constant(vec, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(v, ir.Constant(vec, ir.Undefined), ir.Constant(
                ir.VectorType(ir.IntType(32), 8), [0] * 8))

        def row_ptr(r):
            return builder.gep(a_arr.data, [builder.mul(builder.add(a0, r), w)], inbounds=True)

        def load_column(r, chunk):
            ptr = builder.gep(row_ptr(r), [builder.mul(chunk, ir.Constant(i64, 8))], inbounds=True)
            loaded = builder.load(builder.bitcast(ptr, ir.VectorType(a_elt, 8).as_pointer()), align=a_align,
                                  typ=ir.VectorType(a_elt, 8))
            return widen(loaded, a_elt, vec)

        def load_y(r):
            value = builder.load(builder.gep(y_arr.data, [builder.add(y0, r)], inbounds=True), typ=y_elt)
            return widen(value, y_elt, f64)

        def load_source(r, source):
            if isinstance(source, str):  # "y"
                return splat(load_y(r))
            value = builder.load(builder.gep(row_ptr(r), [source], inbounds=True), typ=a_elt)
            return splat(widen(value, a_elt, f64))

        def out_ptr(row, col):
            return builder.gep(o_arr.data, [builder.add(builder.mul(row, q), col)], inbounds=True)

        def add_out(row, chunk, total):
            ptr = builder.bitcast(out_ptr(row, builder.mul(chunk, ir.Constant(i64, 8))), vec.as_pointer())
            builder.store(builder.fadd(builder.load(ptr, align=8, typ=vec), total), ptr, align=8)

        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        prefetch_fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0")

        def prefetcher(distance, locality, columns=True, with_y=False):
            """Prefetch what row ``r + distance`` will need (no fault past the end)."""

            def prefetch(r, chunks):
                ahead = builder.add(r, distance)
                if columns:
                    row = builder.gep(a_arr.data, [builder.mul(builder.add(a0, ahead), w)])
                    for chunk in chunks:
                        ptr = builder.gep(row, [builder.mul(chunk, ir.Constant(i64, 8))])
                        builder.call(prefetch_fn, [builder.bitcast(ptr, i8p), i32(0), i32(locality), i32(1)])
                if with_y:
                    ptr = builder.gep(y_arr.data, [builder.add(y0, ahead)])
                    builder.call(prefetch_fn, [builder.bitcast(ptr, i8p), i32(0), i32(locality), i32(1)])

            return prefetch

        row_one = w
        row_y = builder.add(w, ir.Constant(i64, 1))
        zero64 = ir.Constant(i64, 0)

        def grouped(first_chunk, emit):
            """Column groups of up to 4 vectors from ``first_chunk`` to the last."""
            groups = builder.udiv(builder.add(builder.sub(n_chunks, first_chunk), ir.Constant(i64, 3)),
                                  ir.Constant(i64, 4))
            with cgutils.for_range(builder, groups) as loop:
                chunk0 = builder.add(first_chunk, builder.mul(loop.index, ir.Constant(i64, 4)))
                left = builder.sub(n_chunks, chunk0)
                for c in (1, 2, 3):
                    with builder.if_then(builder.icmp_signed("==", left, ir.Constant(i64, c))):
                        emit(chunk0, c)
                with builder.if_then(builder.icmp_signed(">=", left, ir.Constant(i64, 4))):
                    emit(chunk0, 4)

        one_vector = builder.icmp_signed("==", w, ir.Constant(i64, 8))
        with builder.if_else(one_vector) as (small, large):
            with small:
                sources = [ir.Constant(i64, j) for j in range(8)] + ["one", "y"]
                rows = [ir.Constant(i64, j) for j in range(8)] + [row_one, row_y]
                # One pass over the rows: the rows GRAM_AHEAD on come into L1 meanwhile.
                _gram_kernel(builder, load_column, load_source, sources, rows, zero64, 1, nrows, add_out,
                             prefetcher(ir.Constant(i64, GRAM_AHEAD), 3, with_y=True))
            with large:
                tiles = builder.udiv(builder.add(d, ir.Constant(i64, 3)), ir.Constant(i64, 4))
                with cgutils.for_range(builder, tiles) as tile:
                    j0 = builder.mul(tile.index, ir.Constant(i64, 4))
                    sources = [builder.add(j0, ir.Constant(i64, t)) for t in range(4)]
                    # The first row of tiles reads every column: it brings the
                    # next chunk's rows into L2 meanwhile (the others prefetch
                    # their own rows, already in L1).
                    ahead = builder.select(builder.icmp_signed("==", tile.index, zero64), nrows, zero64)

                    def emit(chunk0, c, sources=sources, ahead=ahead):
                        _gram_kernel(builder, load_column, load_source, sources, sources, chunk0, c, nrows,
                                     add_out, prefetcher(ahead, 2))

                    grouped(builder.udiv(j0, ir.Constant(i64, 8)), emit)

                def emit_extra(chunk0, c):
                    _gram_kernel(builder, load_column, load_source, ["one", "y"], [row_one, row_y], chunk0, c,
                                 nrows, add_out, prefetcher(nrows, 2, columns=False, with_y=True))

                grouped(zero64, emit_extra)

        # Σ y and Σ y² in 8 lanes of rows.
        zero = ir.Constant(vec, [ir.Constant(f64, 0.0)] * 8)
        sum_acc = cgutils.alloca_once(builder, vec)
        square_acc = cgutils.alloca_once(builder, vec)
        builder.store(zero, sum_acc)
        builder.store(zero, square_acc)
        y_vec = ir.VectorType(y_elt, 8)
        groups = builder.udiv(nrows, ir.Constant(i64, 8))
        with cgutils.for_range(builder, groups) as loop:
            ptr = builder.gep(y_arr.data, [builder.add(y0, builder.mul(loop.index, ir.Constant(i64, 8)))],
                              inbounds=True)
            ys = widen(builder.load(builder.bitcast(ptr, y_vec.as_pointer()), align=y_align, typ=y_vec), y_elt, vec)
            builder.store(builder.fadd(builder.load(sum_acc, typ=vec), ys), sum_acc)
            builder.store(builder.fadd(builder.load(square_acc, typ=vec), builder.fmul(ys, ys)), square_acc)
        base = builder.mul(groups, ir.Constant(i64, 8))
        with cgutils.for_range(builder, builder.sub(nrows, base)) as loop:
            value = load_y(builder.add(base, loop.index))
            for acc, term in ((sum_acc, value), (square_acc, builder.fmul(value, value))):
                lanes = builder.load(acc, typ=vec)
                builder.store(builder.insert_element(lanes, builder.fadd(builder.extract_element(lanes, loop.index),
                                                                         term), loop.index), acc)
        for (row, col), acc in (((row_one, row_y), sum_acc), ((row_y, row_y), square_acc)):
            ptr = out_ptr(row, col)
            builder.store(builder.fadd(builder.load(ptr, typ=f64), _tree(builder, builder.load(acc, typ=vec), f64)),
                          ptr)
        return context.get_dummy_value()

    return types.none(A, a0, y, y0, nrows, d, out), codegen


def _rows_tree(builder, rows, elt):
    """``_tree`` of each of 8 vectors at once: lane ``k`` of the result is the
    pairwise tree of ``rows[k]`` (the same adds on the same pairs: 7 vector
    adds and 14 two-vector shuffles instead of 8 trees)."""
    vec = ir.VectorType(elt, 8)
    evens = _shuffle_mask(0, 2, 4, 6, 8, 10, 12, 14)
    odds = _shuffle_mask(1, 3, 5, 7, 9, 11, 13, 15)
    level = list(rows)
    while len(level) > 1:
        level = [builder.fadd(builder.shuffle_vector(a, b, evens), builder.shuffle_vector(a, b, odds))
                 for a, b in zip(level[0::2], level[1::2])]
    assert level[0].type == vec
    return level[0]


def _terms_tree(builder, terms):
    """``((t0 + t1) + (t2 + t3)) + ((t4 + t5) + (t6 + t7))``."""
    pairs = [builder.fadd(a, b) for a, b in zip(terms[0::2], terms[1::2])]
    quads = [builder.fadd(a, b) for a, b in zip(pairs[0::2], pairs[1::2])]
    return builder.fadd(quads[0], quads[1])


@intrinsic
def _gradient_block_lanes(typingctx, X, y, params, fit_intercept, start, stop, out):
    """The default-mode mse sums of rows start..stop-1 for ``d >= 8`` features,
    with the gradient: ``out[0] += Σ r²``, ``out[1 + j] += Σ 2 x_j r``,
    ``out[1 + d] += Σ 2 r`` (with an intercept), ``out`` float64.

    Each row's prediction is ``_lane_tree`` (then ``+ b``) and the cost adds
    ``r²`` row after row: the same bits as the cost-only pass. The gradient
    takes the rows in groups of 8 from ``start``: per feature the 8 terms
    ``x_j·(r + r)`` (equal to ``(x_j + x_j)·r``: doubling is exact), widened
    to float64, are added as the pairwise tree, then added to ``out[1 + j]``;
    the last ``(stop - start) % 8`` rows add their terms one by one. ``Σ 2 r``
    takes row ``8·g + l`` into lane ``l`` (float64), added as the pairwise
    tree at the end. A fixed order: the same bits on every run.
    """
    if not (isinstance(X, types.Array) and X.ndim == 2 and X.layout == "C"
            and isinstance(y, types.Array) and y.ndim == 1 and y.layout == "C"
            and isinstance(params, types.Array) and params.ndim == 1 and params.layout == "C"
            and X.dtype == y.dtype == params.dtype and X.dtype in (types.float32, types.float64)
            and isinstance(out, types.Array) and out.ndim == 1 and out.layout == "C"
            and out.dtype == types.float64):
        raise TypingError("_gradient_block_lanes: C-contiguous float X (2-d), y and params of one dtype, "
                          "float64 out")
    dtype = X.dtype

    def codegen(context, builder, signature, args):
        x_arg, y_arg, w_arg, fi_arg, start_arg, stop_arg, out_arg = args
        elt = context.get_value_type(dtype)
        f64 = ir.DoubleType()
        align = context.get_abi_sizeof(elt)
        vec = ir.VectorType(elt, 8)
        wvec = ir.VectorType(f64, 8)
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        x_arr = context.make_array(signature.args[0])(context, builder, x_arg)
        y_arr = context.make_array(signature.args[1])(context, builder, y_arg)
        w_arr = context.make_array(signature.args[2])(context, builder, w_arg)
        o_arr = context.make_array(signature.args[6])(context, builder, out_arg)
        fit_intercept = context.cast(builder, fi_arg, signature.args[3], types.boolean)
        start = context.cast(builder, start_arg, signature.args[4], types.int64)
        stop = context.cast(builder, stop_arg, signature.args[5], types.int64)
        d = builder.extract_value(x_arr.shape, 1)
        groups = builder.udiv(d, ir.Constant(i64, 8))
        base = builder.mul(groups, ir.Constant(i64, 8))
        eight = ir.Constant(i64, 8)
        zero_wvec = ir.Constant(wvec, [ir.Constant(f64, 0.0)] * 8)
        b = builder.load(builder.gep(w_arr.data, [builder.select(fit_intercept, d, ir.Constant(i64, 0))],
                                     inbounds=True), typ=elt)
        grad = builder.gep(o_arr.data, [ir.Constant(i64, 1)], inbounds=True)

        def widen(value, typ):
            return value if elt == f64 else builder.fpext(value, typ)

        def splat(value):
            v = builder.insert_element(ir.Constant(vec, ir.Undefined), value, i32(0))
            return builder.shuffle_vector(v, ir.Constant(vec, ir.Undefined), ir.Constant(ir.VectorType(i32, 8),
                                                                                         [0] * 8))

        def row_ptr(i):
            return builder.gep(x_arr.data, [builder.mul(i, d)], inbounds=True)

        def load_vec(ptr, typ=vec):
            return builder.load(builder.bitcast(ptr, typ.as_pointer()), align=align if typ == vec else 8, typ=typ)

        def lanes_of(i):
            return _row_lanes(builder, row_ptr(i), w_arr.data, d, elt, align, True)

        cost = cgutils.alloca_once(builder, f64)
        builder.store(builder.load(o_arr.data, typ=f64), cost)
        bias = cgutils.alloca_once(builder, wvec)
        builder.store(zero_wvec, bias)
        n_groups = builder.sdiv(builder.sub(stop, start), eight)
        with cgutils.for_range(builder, n_groups) as outer:
            first = builder.add(start, builder.mul(outer.index, eight))
            rows = [builder.add(first, ir.Constant(i64, k)) for k in range(8)]
            preds = _rows_tree(builder, [lanes_of(i) for i in rows], elt)
            preds = builder.select(fit_intercept, builder.fadd(preds, splat(b)), preds)
            r = builder.fsub(preds, load_vec(builder.gep(y_arr.data, [first], inbounds=True)))
            squares = builder.fmul(r, r)
            total = builder.load(cost, typ=f64)
            for k in range(8):
                total = builder.fadd(total, widen(builder.extract_element(squares, i32(k)), f64))
            builder.store(total, cost)
            twice = builder.fadd(r, r)
            builder.store(builder.fadd(builder.load(bias, typ=wvec), widen(twice, wvec)), bias)
            factors = [splat(builder.extract_element(twice, i32(k))) for k in range(8)]
            row_ptrs = [row_ptr(i) for i in rows]
            with cgutils.for_range(builder, groups) as loop:
                j = builder.mul(loop.index, eight)
                terms = [widen(builder.fmul(load_vec(builder.gep(p, [j], inbounds=True)), f), wvec)
                         for p, f in zip(row_ptrs, factors)]
                ptr = builder.gep(grad, [j], inbounds=True)
                builder.store(builder.fadd(load_vec(ptr, wvec), _terms_tree(builder, terms)),
                              builder.bitcast(ptr, wvec.as_pointer()), align=8)
            with cgutils.for_range(builder, builder.sub(d, base)) as loop:
                j = builder.add(base, loop.index)
                terms = [widen(builder.fmul(builder.load(builder.gep(p, [j], inbounds=True), typ=elt),
                                            builder.extract_element(twice, i32(k))), f64)
                         for k, p in enumerate(row_ptrs)]
                ptr = builder.gep(grad, [j], inbounds=True)
                builder.store(builder.fadd(builder.load(ptr, typ=f64), _terms_tree(builder, terms)), ptr)
        # The last rows one by one: row 8·g + l into lane l of Σ 2 r.
        tail_start = builder.add(start, builder.mul(n_groups, eight))
        with cgutils.for_range(builder, builder.sub(stop, tail_start)) as loop:
            i = builder.add(tail_start, loop.index)
            pred = _tree(builder, lanes_of(i), elt)
            pred = builder.select(fit_intercept, builder.fadd(pred, b), pred)
            r = builder.fsub(pred, builder.load(builder.gep(y_arr.data, [i], inbounds=True), typ=elt))
            builder.store(builder.fadd(builder.load(cost, typ=f64), widen(builder.fmul(r, r), f64)), cost)
            twice = builder.fadd(r, r)
            lanes = builder.load(bias, typ=wvec)
            lane = builder.fadd(builder.extract_element(lanes, loop.index), widen(twice, f64))
            builder.store(builder.insert_element(lanes, lane, loop.index), bias)
            row = row_ptr(i)
            factor = splat(twice)
            with cgutils.for_range(builder, groups) as inner:
                j = builder.mul(inner.index, eight)
                term = widen(builder.fmul(load_vec(builder.gep(row, [j], inbounds=True)), factor), wvec)
                ptr = builder.gep(grad, [j], inbounds=True)
                builder.store(builder.fadd(load_vec(ptr, wvec), term), builder.bitcast(ptr, wvec.as_pointer()),
                              align=8)
            with cgutils.for_range(builder, builder.sub(d, base)) as inner:
                j = builder.add(base, inner.index)
                term = widen(builder.fmul(builder.load(builder.gep(row, [j], inbounds=True), typ=elt), twice), f64)
                ptr = builder.gep(grad, [j], inbounds=True)
                builder.store(builder.fadd(builder.load(ptr, typ=f64), term), ptr)
        builder.store(builder.load(cost, typ=f64), o_arr.data)
        with builder.if_then(fit_intercept):
            ptr = builder.gep(grad, [d], inbounds=True)
            builder.store(builder.fadd(builder.load(ptr, typ=f64), _tree(builder, builder.load(bias, typ=wvec), f64)),
                          ptr)
        return context.get_dummy_value()

    return types.none(X, y, params, fit_intercept, start, stop, out), codegen
