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


@intrinsic
def _lane_tree(typingctx, X, i, params):
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
        vec = ir.VectorType(elt, 8)
        i64 = ir.IntType(64)
        x_arr = context.make_array(signature.args[0])(context, builder, x_arg)
        w_arr = context.make_array(signature.args[2])(context, builder, params_arg)
        d = builder.extract_value(x_arr.shape, 1)
        i = context.cast(builder, i_arg, signature.args[1], types.int64)
        row = builder.gep(x_arr.data, [builder.mul(i, d)], inbounds=True)
        acc = cgutils.alloca_once(builder, vec)
        builder.store(ir.Constant(vec, [ir.Constant(elt, 0.0)] * 8), acc)
        groups = builder.udiv(d, ir.Constant(i64, 8))
        with cgutils.for_range(builder, groups) as loop:
            j = builder.mul(loop.index, ir.Constant(i64, 8))
            xs = builder.load(builder.bitcast(builder.gep(row, [j], inbounds=True), vec.as_pointer()),
                              align=align, typ=vec)
            ws = builder.load(builder.bitcast(builder.gep(w_arr.data, [j], inbounds=True), vec.as_pointer()),
                              align=align, typ=vec)
            builder.store(builder.fadd(builder.load(acc, typ=vec), builder.fmul(xs, ws)), acc)
        base = builder.mul(groups, ir.Constant(i64, 8))
        # The last d % 8 features go to lanes 0, 1, ... in order.
        with cgutils.for_range(builder, builder.sub(d, base)) as loop:
            j = builder.add(base, loop.index)
            term = builder.fmul(builder.load(builder.gep(row, [j], inbounds=True), typ=elt),
                                builder.load(builder.gep(w_arr.data, [j], inbounds=True), typ=elt))
            lanes = builder.load(acc, typ=vec)
            lane = builder.fadd(builder.extract_element(lanes, loop.index), term)
            builder.store(builder.insert_element(lanes, lane, loop.index), acc)
        return _tree(builder, builder.load(acc, typ=vec), elt)

    return dtype(X, i, params), codegen


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
