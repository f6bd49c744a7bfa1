"""Lower a user's function (a nonlinearity, merge function or expression) to a program.

A bundle holds no code, so a function that is not one of the named built-ins is exported
as the PyTensor graph it builds: :func:`lower` calls the function on symbolic inputs,
applies PyTensor's ``canonicalize`` and ``stabilize`` rewrites (never fusion, so no
``Composite`` ops appear; one found in the user's own graph is lowered through its
scalar graph), and walks the graph into a list of numpy operations that
:class:`runtime.program.Program` runs. Shared variables the function closes over are
evaluated now and stored as constants. A graph with an operation outside the runtime's
set is refused with :class:`LoweringError`, which names the operation.

The encoding and the supported operations are documented in ``docs/lowering.md``.

Examples
--------
>>> import pytensor.tensor as T
>>> program = lower(lambda x: T.maximum(x, 0.1 * x), [(None, 3)], "float32")
>>> [ins["op"] for ins in program["code"]]
['constant', 'mul', 'maximum']
>>> lower(lambda x: T.gamma(x), [(None, 3)], "float32")
Traceback (most recent call last):
...
forge.lowering.LoweringError: function '<lambda>' uses the PyTensor operation Gamma, which the runtime cannot run; supported operations: abs, add, ...
"""
import base64

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as T
from pytensor.graph.basic import Constant
from pytensor.graph.rewriting.utils import rewrite_graph
from pytensor.graph.traversal import io_toposort
from pytensor.tensor import basic as tb, elemwise, math as tm, special
from pytensor.tensor import subtensor as ts
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.shape import Reshape, Shape, Shape_i, SpecifyShape

from runtime.bundle import array_digest
from runtime.errors import BundleError
from runtime.program import OPS, Program

__all__ = ["lower", "LoweringError", "MAX_CONSTANT_BYTES", "INLINE_SIZE"]

#: Constants with at most this many (finite) values are stored as readable JSON lists;
#: larger ones as base64 with a sha256.
INLINE_SIZE = 16
#: The most bytes of constants (closed-over arrays included) one program may hold.
MAX_CONSTANT_BYTES = 16 << 20


class LoweringError(ValueError):
    """A function whose graph cannot be written as a runtime program."""


# scalar op class -> runtime op name, for Elemwise nodes and Composite inner graphs
_SCALAR = {getattr(ps, cls): name for cls, name in {
    "Add": "add", "Sub": "sub", "Mul": "mul", "TrueDiv": "true_div", "IntDiv": "int_div",
    "Mod": "mod", "Pow": "pow", "ScalarMaximum": "maximum", "ScalarMinimum": "minimum",
    "Maximum": "maximum", "Minimum": "minimum", "ArcTan2": "arctan2", "LT": "lt", "GT": "gt",
    "LE": "le", "GE": "ge", "EQ": "eq", "NEQ": "neq", "AND": "and", "OR": "or", "XOR": "xor",
    "Neg": "neg", "Exp": "exp", "Log": "log", "Log1p": "log1p", "Expm1": "expm1",
    "Sqrt": "sqrt", "Abs": "abs", "Tanh": "tanh", "Sigmoid": "sigmoid",
    "Softplus": "softplus", "Sign": "sign", "Floor": "floor", "Ceil": "ceil",
    "Trunc": "trunc", "RoundHalfToEven": "round_half_even",
    "RoundHalfAwayFromZero": "round_half_away", "Sin": "sin", "Cos": "cos", "Tan": "tan",
    "ArcSin": "arcsin", "ArcCos": "arccos", "ArcTan": "arctan", "Sinh": "sinh",
    "Cosh": "cosh", "ArcSinh": "arcsinh", "ArcCosh": "arccosh", "ArcTanh": "arctanh",
    "Exp2": "exp2", "Log2": "log2", "Log10": "log10", "Sqr": "sqr",
    "Reciprocal": "reciprocal", "Erf": "erf", "Erfc": "erfc", "Log1mexp": "log1mexp",
    "Invert": "invert", "IsNan": "isnan", "IsInf": "isinf", "Cast": "cast",
    "Identity": "identity", "Second": "second", "Clip": "clip", "Switch": "switch",
}.items() if hasattr(ps, cls)}

# CAReduce scalar op -> reduction
_REDUCE = {ps.Add: "sum", ps.Mul: "prod", ps.ScalarMaximum: "max", ps.ScalarMinimum: "min",
           ps.AND: "all", ps.OR: "any"}

# Integer-vector indexing on the first axis; PyTensor 3.3 folded it into AdvancedSubtensor.
_ADVANCED_SUBTENSOR1 = getattr(ts, "AdvancedSubtensor1", ())


def _op_name(op):
    """The name a refusal shows: the scalar op inside Elemwise/CAReduce, the core op
    inside Blockwise, the op's class otherwise."""
    inner = getattr(op, "scalar_op", None) or getattr(op, "core_op", None)
    return type(inner if inner is not None else op).__name__


def _callable_name(function):
    return getattr(function, "__name__", None) or type(function).__name__


def _one_axis(axis, op):
    if axis is None:
        return None
    axis = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if len(axis) != 1:
        raise _Unsupported(f"{type(op).__name__} over several axes {axis}")
    return int(axis[0])


class _Unsupported(Exception):
    """An op (or a use of one) the runtime has no instruction for."""


class _Writer:
    """Emits instructions, giving each PyTensor variable one slot."""

    def __init__(self, inputs):
        self.code, self.slots, self.constants, self.constant_bytes = [], {}, {}, 0
        self.num_inputs = len(inputs)
        for k, var in enumerate(inputs):
            self.slots[var] = k

    def emit(self, op, inputs, dtype, attrs=None):
        assert op in OPS, op
        self.code.append({"op": op, "inputs": list(inputs), "attrs": attrs or {},
                          "dtype": str(dtype)})
        return self.num_inputs + len(self.code) - 1

    def constant(self, value, dtype):
        """Emit a constant (once per distinct dtype, shape and bytes); return its slot."""
        value = np.asarray(value, dtype=dtype, order="C")  # (ascontiguousarray makes 0-d 1-d)
        key = (value.dtype.str, value.shape, value.tobytes())
        if key not in self.constants:
            self.constants[key] = self._new_constant(value)
        return self.constants[key]

    def _new_constant(self, value):
        self.constant_bytes += value.nbytes
        if self.constant_bytes > MAX_CONSTANT_BYTES:
            raise LoweringError(
                f"the function holds {self.constant_bytes / 2**20:.1f} MiB of constants "
                f"and closed-over arrays, over the {MAX_CONSTANT_BYTES >> 20} MiB a program "
                "may store in the manifest")
        finite = value.dtype.kind != "f" or bool(np.all(np.isfinite(value)))
        if finite and value.size <= INLINE_SIZE:
            attrs = {"shape": list(value.shape), "value": value.tolist()}
        else:
            little = value.astype(value.dtype.newbyteorder("<"), copy=False)
            attrs = {"shape": list(value.shape),
                     "data": base64.b64encode(little.tobytes()).decode(),
                     "sha256": array_digest(value)}
        return self.emit("constant", [], value.dtype, attrs)

    def slot(self, var):
        """The slot of ``var``, emitting a constant for a constant or shared variable."""
        if var not in self.slots:
            if isinstance(var, Constant):
                self.slots[var] = self.constant(var.data, var.dtype)
            elif isinstance(var, pytensor.compile.SharedVariable):
                self.slots[var] = self.constant(np.asarray(var.get_value(borrow=True)),
                                                var.dtype)
            else:
                raise LoweringError(
                    f"the function depends on the variable {var} ({var.type}), which is "
                    "neither one of its inputs, a constant nor a shared variable")
        return self.slots[var]


def _emit_scalar(writer, name, refs, dtype):
    """Emit one elementwise op. Clip is spelled out as PyTensor computes it,
    ``lo if x < lo else hi if x > hi else x`` (np.clip differs for lo > hi and NaN bounds)."""
    if name != "clip":
        return writer.emit(name, refs, dtype)
    x, lo, hi = refs
    upper = writer.emit("switch", [writer.emit("gt", [x, hi], "bool"), hi, x], dtype)
    return writer.emit("switch", [writer.emit("lt", [x, lo], "bool"), lo, upper], dtype)


def _lower_scalar_graph(writer, composite, outer_slots):
    """Emit a Composite's inner scalar graph as elementwise instructions."""
    inner = composite.fgraph
    slots = dict(zip(inner.inputs, outer_slots))
    for node in io_toposort(inner.inputs, inner.outputs):
        name = _SCALAR.get(type(node.op))
        if name is None:
            raise _Unsupported(type(node.op).__name__)
        refs = []
        for var in node.inputs:
            if var not in slots:
                if not isinstance(var, Constant):
                    raise _Unsupported(type(node.op).__name__)
                slots[var] = writer.constant(var.data, var.dtype)
            refs.append(slots[var])
        slots[node.outputs[0]] = _emit_scalar(writer, name, refs, node.outputs[0].dtype)
    return slots[inner.outputs[0]]


def _lower_node(writer, node):
    """Emit the instruction(s) for one apply node; return the output's slot."""
    op, out = node.op, node.outputs[0]
    if len(node.outputs) != 1:
        raise _Unsupported(_op_name(op))
    refs = [writer.slot(v) for v in node.inputs]
    if isinstance(op, elemwise.Elemwise):
        if isinstance(op.scalar_op, ps.Composite):
            if len(op.scalar_op.fgraph.outputs) != 1:
                raise _Unsupported("Composite")
            return _lower_scalar_graph(writer, op.scalar_op, refs)
        name = _SCALAR.get(type(op.scalar_op))
        if name is None:
            raise _Unsupported(_op_name(op))
        return _emit_scalar(writer, name, refs, out.dtype)
    if isinstance(op, elemwise.CAReduce):
        name = _REDUCE.get(type(op.scalar_op))
        if name is None:
            raise _Unsupported(_op_name(op))
        attrs = {"axes": None if op.axis is None else [int(a) for a in op.axis]}
        if name in ("sum", "prod") and getattr(op, "acc_dtype", None):
            attrs["acc_dtype"] = str(op.acc_dtype)
        return writer.emit(name, refs, out.dtype, attrs)
    if isinstance(op, elemwise.DimShuffle):
        return writer.emit("dimshuffle", refs, out.dtype, {"order": list(op.new_order)})
    if isinstance(op, (ts.Subtensor, ts.AdvancedSubtensor)):
        index = [[None if k is None else int(k) + 1 for k in (e.start, e.stop, e.step)]
                 if isinstance(e, slice) else int(e) + 1 for e in op.idx_list]
        if not all(isinstance(e, (int, list)) for e in index):
            raise _Unsupported(type(op).__name__)
        return writer.emit("subtensor", refs, out.dtype, {"index": index})
    if isinstance(op, _ADVANCED_SUBTENSOR1):
        return writer.emit("subtensor", refs, out.dtype, {"index": [1]})
    if isinstance(op, tb.Join):
        if getattr(op, "axis", None) is not None:  # PyTensor 3.3: the axis is the op's
            return writer.emit("join", refs, out.dtype, {"axis": int(op.axis)})
        if not isinstance(node.inputs[0], Constant):
            raise _Unsupported("Join along a symbolic axis")
        return writer.emit("join", refs[1:], out.dtype, {"axis": int(node.inputs[0].data)})
    if isinstance(op, (tm.Argmax, special.Softmax, special.LogSoftmax)):
        name = {tm.Argmax: "argmax", special.Softmax: "softmax",
                special.LogSoftmax: "log_softmax"}[type(op)]
        return writer.emit(name, refs, out.dtype, {"axis": _one_axis(op.axis, op)})
    if isinstance(op, Shape_i):
        return writer.emit("shape_i", refs, out.dtype, {"i": int(op.i)})
    if isinstance(op, SpecifyShape):
        return writer.emit("identity", refs[:1], out.dtype)
    if isinstance(op, tm.Dot) or (isinstance(op, Blockwise) and isinstance(op.core_op, tm.Dot)):
        return writer.emit("dot" if isinstance(op, tm.Dot) else "matmul", refs, out.dtype)
    simple = {Reshape: "reshape", tb.Alloc: "alloc", Shape: "shape",
              tb.MakeVector: "make_vector", tb.TensorFromScalar: "identity",
              tb.ScalarFromTensor: "identity"}
    if type(op) in simple:
        return writer.emit(simple[type(op)], refs, out.dtype)
    raise _Unsupported(_op_name(op))


def _walk(inputs, output):
    writer = _Writer(inputs)
    for node in io_toposort(inputs, [output]):
        writer.slots[node.outputs[0]] = _lower_node(writer, node)
    output_slot = writer.slot(output)
    return {"inputs": [{"ndim": v.ndim, "dtype": v.dtype} for v in inputs],
            "code": writer.code, "output": output_slot}


def lower(function, input_shapes, dtype=None, what="function"):
    """Lower ``function`` to a runtime program (a JSON-serialisable dict).

    Parameters
    ----------
    function : callable
        Called with one symbolic PyTensor variable per entry of ``input_shapes``; must
        return one tensor expression.
    input_shapes : list of tuple
        The shape of each input as forge knows it (ints, None for a free axis). The
        symbolic inputs get its rank, and size 1 where it is 1 (broadcastable).
    dtype : str, optional
        The inputs' dtype (default ``pytensor.config.floatX``). The result is cast to it.
    what : str
        What the function is (``"nonlinearity"``, ``"merge_function"``, ...), for messages.

    Returns
    -------
    dict
        ``{"inputs": [...], "code": [...], "output": slot}``; see ``docs/lowering.md``.

    Raises
    ------
    LoweringError
        The function fails on symbolic inputs, depends on a free variable, or uses an
        operation the runtime cannot run (the message names it and lists those it can).
    """
    dtype = dtype or pytensor.config.floatX
    inputs = [T.tensor(dtype=dtype, shape=tuple(1 if s == 1 else None for s in shape),
                       name=f"input{k}") for k, shape in enumerate(input_shapes)]
    try:
        output = T.as_tensor_variable(function(*inputs))
    except Exception as exc:
        raise LoweringError(f"calling the {what} {_callable_name(function)!r} on "
                            f"symbolic inputs of rank "
                            f"{[len(s) for s in input_shapes]} failed: "
                            f"{type(exc).__name__}: {exc}") from exc
    if output.dtype != dtype:
        output = T.cast(output, dtype)
    try:  # the rewritten graph first (closer to forge's compiled function), then the raw
        rewritten = rewrite_graph(output, include=("canonicalize", "stabilize"), clone=True)
        program = _walk(inputs, rewritten)
    except Exception:  # an op the rewrites introduced, or a failing rewrite
        program = None
    if program is None:
        try:
            program = _walk(inputs, output)
        except _Unsupported as exc:
            raise LoweringError(
                f"{what} {_callable_name(function)!r} uses the PyTensor operation {exc}, "
                "which the runtime cannot "
                f"run; supported operations: {', '.join(sorted(OPS))} "
                "(see docs/lowering.md)") from None
    try:  # the runtime must accept what we wrote (a float16 or complex dtype it lacks)
        Program(program, what)
    except BundleError as exc:
        raise LoweringError(f"{what} {_callable_name(function)!r} cannot be stored: "
                            f"{exc}") from None
    return program
