"""The base class of forge's ops: what differs between the PyTensor versions forge runs on."""
from pytensor.graph.op import Op


class ForgeOp(Op):
    """An op whose subclasses give their output shapes as :meth:`output_shapes`.

    PyTensor up to 3.2 calls ``infer_shape(fgraph, node, shapes)``; 3.3 leaves out
    ``fgraph``. This class takes either and passes ``node`` and ``shapes`` on.
    """

    def infer_shape(self, *args):
        node, shapes = args[-2:]
        return self.output_shapes(node, shapes)

    def output_shapes(self, node, shapes):
        """One shape (a tuple of size expressions) per output, from the inputs'."""
        raise NotImplementedError
