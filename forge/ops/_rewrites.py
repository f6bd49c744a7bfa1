"""A JAX-only graph rewrite that keeps the ops' output shapes concrete.

PyTensor's shape inference replaces ``y.shape`` by the ops' ``infer_shape``
arithmetic (``(n + pad - k) // s + 1``...). That is what the numpy backends want,
but under ``jax.jit`` such arithmetic is traced, and the JAX backend needs concrete
shapes wherever it allocates or reshapes: the gradient of ``y.sum()`` (an ``Alloc``
of ``y``'s shape) or of a ``flatten`` after a pooling (a ``Reshape`` to its shape)
fail to compile. So for the JAX backend only, while the shape feature is still
attached, every use of one of those expressions is pointed back at ``Shape_i`` of
the op's output, which JAX reads off the array.

PyTensor's own ``Reshape`` is treated the same way: ``flatten`` reshapes to
``(..., -1)``, whose inferred last size is a product of input sizes, and the gradient
of a reduction over the result (``GlobalPoolLayer``) or of a later reshape
(``Upscale3DLayer``, ``NINLayer``, ``TransformerLayer``) allocates with it.
"""
from pytensor.compile import optdb
from pytensor.graph.fg import Output
from pytensor.graph.rewriting.basic import GraphRewriter
from pytensor.graph.traversal import ancestors
from pytensor.tensor.shape import Reshape, Shape_i

from .conv import Corr, CorrGradInputs, CorrGradWeights
from .pool import AveragePoolGrad, MaxPoolGrad, MaxPoolGradGrad, Pool

__all__ = []

_OPS = (Corr, CorrGradInputs, CorrGradWeights, Pool, MaxPoolGrad, AveragePoolGrad,
        MaxPoolGradGrad, Reshape)


class ShapesFromOutputs(GraphRewriter):
    """Replace the inferred shapes of the ops' (and reshapes') outputs by ``Shape_i`` of
    the outputs."""

    def apply(self, fgraph):
        shape_feature = getattr(fgraph, "shape_feature", None)
        if shape_feature is None:
            return
        for node in fgraph.toposort():
            if not isinstance(node.op, _OPS) or node not in fgraph.apply_nodes:
                continue
            (output,) = node.outputs
            shape = shape_feature.shape_of.get(output)
            if shape is None:
                continue
            # Uses that the output itself depends on would become cycles.
            upstream = {var.owner for var in ancestors([output]) if var.owner is not None}
            for axis, size in enumerate(shape):
                if size.owner is None or isinstance(size.owner.op, Shape_i):
                    continue  # a constant, or already read off an array
                # Outputs are left alone: a function returning only the shape
                # should not have to compute the op.
                uses = [(client, i) for client, i in fgraph.clients.get(size, [])
                        if not isinstance(client.op, Output) and client not in upstream]
                if not uses:
                    continue
                concrete = Shape_i(axis)(output)
                for client, i in uses:
                    fgraph.change_node_input(client, i, concrete,
                                             reason="forge_ops_shapes_from_outputs")


# Between ShapeOpt (0.1), which attaches the shape feature, and UnShapeOpt (10).
optdb.register("forge_ops_shapes_from_outputs", ShapesFromOutputs(), "jax",
               position=9.9)
