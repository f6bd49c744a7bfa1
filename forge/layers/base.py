"""The base classes of all layers."""
from collections import OrderedDict

from pytensor.graph.basic import Variable

from .. import utils

__all__ = ["Layer", "MergeLayer"]


def _check_input_shape(shape, layer_name, what="input_shape"):
    if any(d is not None and d <= 0 for d in shape):
        raise ValueError(
            f"every entry of {what} must be a positive integer or None, got "
            f"{what}={shape} (layer name={layer_name!r})"
        )


class Layer:
    """Base class of the layers that have one input.

    A layer knows its input's shape and builds two things: its output shape (plain
    tuple arithmetic, :meth:`get_output_shape_for`) and its output expression
    (:meth:`get_output_for`). The functions of ``forge.layers.helper`` chain these over
    a whole network.

    Parameters
    ----------
    incoming : Layer or tuple
        The layer feeding this one, or the expected input shape (ints, ``None`` for a
        free axis).
    name : str, optional
        Name of the layer; also prefixes its parameters' names (``"dense.W"``).

    Attributes
    ----------
    input_layer : Layer or None
        The incoming layer (``None`` when built from a shape).
    input_shape : tuple
        The incoming shape.
    params : OrderedDict
        Each parameter (a shared variable or an expression) mapped to its set of tags.

    Examples
    --------
    >>> from forge.layers import Layer
    >>> class Double(Layer):
    ...     def get_output_for(self, input, **kwargs):
    ...         return 2 * input
    >>> Double((None, 3)).output_shape
    (None, 3)
    """

    def __init__(self, incoming, name=None):
        if isinstance(incoming, tuple):
            self.input_shape = incoming
            self.input_layer = None
        else:
            self.input_shape = incoming.output_shape
            self.input_layer = incoming
        self.name = name
        self.params = OrderedDict()
        # Keyword arguments that get_output_for understands without naming them in
        # its signature (the helper's unused-kwargs warning consults this list).
        self.get_output_kwargs = []
        _check_input_shape(self.input_shape, name)

    @property
    def output_shape(self):
        """The shape of this layer's output: ints, and ``None`` for free axes."""
        shape = self.get_output_shape_for(self.input_shape)
        if any(isinstance(s, Variable) for s in shape):
            raise ValueError(
                f"{type(self).__name__}.get_output_shape_for() returned a symbolic "
                f"shape {shape}; output shapes must hold ints and None only"
            )
        return shape

    def get_params(self, unwrap_shared=True, **tags):
        """Return this layer's parameters, optionally filtered by tags.

        Parameters
        ----------
        unwrap_shared : bool
            If True (the default), return the shared variables the parameters consist
            of (a parameter given as an expression such as ``T.exp(w)`` yields ``w``).
            If False, return the parameter expressions themselves.
        **tags
            ``tag=True`` keeps only parameters that carry the tag; ``tag=False`` drops
            parameters that carry it. Common tags: ``trainable``, ``regularizable``.

        Returns
        -------
        list
        """
        only = {tag for tag, value in tags.items() if value}
        exclude = {tag for tag, value in tags.items() if not value}
        result = [
            param for param, param_tags in self.params.items()
            if only <= param_tags and not (exclude & param_tags)
        ]
        if unwrap_shared:
            return utils.collect_shared_vars(result)
        return result

    def get_output_shape_for(self, input_shape):
        """Return the output shape for the given input shape.

        The base implementation returns the input shape (shape-preserving layers need
        not override it).
        """
        return input_shape

    def get_output_for(self, input, **kwargs):
        """Return the output expression for the given input expression.

        Parameters
        ----------
        input : PyTensor expression
        **kwargs
            Options passed to every layer by ``get_output`` (e.g.
            ``deterministic=True``); ignore those you do not use.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement get_output_for()")

    def add_param(self, spec, shape, name=None, **tags):
        """Create a parameter, register it with its tags, and return it.

        Parameters
        ----------
        spec : shared variable, PyTensor expression, numpy.ndarray or callable
            See ``forge.utils.create_param``. An expression (``T.exp(w)``, ``W.T``)
            is kept as is: the shared variables inside it become this layer's
            parameters, with these tags.
        shape : tuple of int
            Expected shape.
        name : str, optional
            Name; prefixed with the layer's name (``"dense.W"``) when there is one.
        **tags
            Tags of the parameter; ``trainable`` and ``regularizable`` default to
            True.

        Returns
        -------
        PyTensor shared variable or expression
        """
        if name is not None and self.name is not None:
            name = f"{self.name}.{name}"
        param = utils.create_param(spec, shape, name)
        tags.setdefault("trainable", True)
        tags.setdefault("regularizable", True)
        self.params[param] = {tag for tag, value in tags.items() if value}
        return param

    def __repr__(self):
        name = f" name={self.name!r}" if getattr(self, "name", None) is not None else ""
        try:
            shape = f" output_shape={self.output_shape}"
        except Exception:  # a repr must not fail, even for a half-built layer
            shape = ""
        return f"<{type(self).__name__}{name}{shape}>"


class MergeLayer(Layer):
    """Base class of the layers that have several inputs.

    Parameters
    ----------
    incomings : list of Layer or tuple
        The layers feeding this one, or their expected shapes.
    name : str, optional
        Name of the layer.

    Attributes
    ----------
    input_layers : list of Layer or None
    input_shapes : list of tuple
    """

    def __init__(self, incomings, name=None):
        self.input_shapes = [
            incoming if isinstance(incoming, tuple) else incoming.output_shape
            for incoming in incomings
        ]
        self.input_layers = [
            None if isinstance(incoming, tuple) else incoming for incoming in incomings
        ]
        self.name = name
        self.params = OrderedDict()
        self.get_output_kwargs = []
        for shape in self.input_shapes:
            _check_input_shape(shape, name, what="every input shape")

    @property
    def output_shape(self):
        """The shape of this layer's output: ints, and ``None`` for free axes."""
        shape = self.get_output_shape_for(self.input_shapes)
        if any(isinstance(s, Variable) for s in shape):
            raise ValueError(
                f"{type(self).__name__}.get_output_shape_for() returned a symbolic "
                f"shape {shape}; output shapes must hold ints and None only"
            )
        return shape

    def get_output_shape_for(self, input_shapes):
        """Return the output shape for the list of input shapes."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement get_output_shape_for()"
        )

    def get_output_for(self, inputs, **kwargs):
        """Return the output expression for the list of input expressions."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_output_for()")
