"""Normalization layers: local response, batch, instance and layer normalization."""
import warnings

import pytensor.tensor as T
from pytensor.compile.sharedvalue import SharedVariable

from .. import init, nonlinearities
from .base import Layer
from .conv import _is_int, _positive_int
from .special import BiasLayer, NonlinearityLayer, ScaleLayer

__all__ = [
    "LocalResponseNormalization2DLayer", "BatchNormLayer", "batch_norm",
    "StandardizationLayer", "instance_norm", "layer_norm",
]


def _parse_axes(axes, input_shape, layer_type, named):
    """``axes`` as a sorted tuple of distinct non-negative axes of ``input_shape``.

    ``named`` maps the accepted strings (``'auto'``, ...) to their axes.
    """
    ndim = len(input_shape)
    if isinstance(axes, str):
        if axes not in named:
            choices = ", ".join(repr(name) for name in named)
            raise ValueError(f"{layer_type} axes must be {choices}, an int or a tuple of "
                             f"ints, got axes={axes!r}")
        return tuple(named[axes])
    given = axes
    if _is_int(axes):
        axes = (axes,)
    try:
        axes = tuple(axes)
    except TypeError:
        axes = None
    if axes is None or not all(_is_int(a) for a in axes):
        raise ValueError(f"{layer_type} axes must be an int or a tuple of ints, got "
                         f"axes={given!r}")
    if any(not -ndim <= a < ndim for a in axes):
        raise ValueError(f"{layer_type} got axes={given!r} for a {ndim}-dimensional "
                         f"input; every axis must be in [-{ndim}, {ndim})")
    normalised = tuple(sorted({int(a) % ndim for a in axes}))
    if len(normalised) != len(axes):
        raise ValueError(f"{layer_type} got axes={given!r}, which names an axis twice")
    return normalised


class LocalResponseNormalization2DLayer(Layer):
    """Local response normalization across channels (AlexNet's).

    Each element is divided by a function of the squares of the ``n`` channels
    around it (zero beyond the first and last channel), at the same location::

        out[b, c, i, j] = x[b, c, i, j]
                          / (k + alpha * sum(x[b, c', i, j] ** 2, |c' - c| <= n // 2)) ** beta

    As in Lasagne, ``alpha`` is not divided by ``n``.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape, 4-dimensional ``(batch, channels, rows,
        columns)``.
    alpha : float
        Scale of the sum of squares.
    k : float
        Offset.
    beta : float
        Exponent.
    n : int
        Number of channels summed over; must be odd.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, LocalResponseNormalization2DLayer, get_output
    >>> layer = LocalResponseNormalization2DLayer(InputLayer((None, 3, 1, 1)), alpha=1,
    ...                                           k=1, beta=1, n=3)
    >>> x = np.array([1, 2, 3], dtype="float32").reshape(1, 3, 1, 1)
    >>> get_output(layer, x).eval().ravel()  # 1/(1+1+4), 2/(1+1+4+9), 3/(1+4+9)
    array([0.16666667, 0.13333334, 0.21428572], dtype=float32)
    """

    def __init__(self, incoming, alpha=1e-4, k=2, beta=0.75, n=5, name=None):
        super().__init__(incoming, name=name)
        if len(self.input_shape) != 4:
            raise ValueError(f"LocalResponseNormalization2DLayer needs a 4-dimensional "
                             f"input (batch, channels, rows, columns), got input shape "
                             f"{self.input_shape}")
        n = _positive_int(n, "n")
        if n % 2 == 0:
            raise NotImplementedError(f"LocalResponseNormalization2DLayer only works with "
                                      f"odd n (a window centred on each channel), got n={n}")
        self.alpha, self.k, self.beta, self.n = alpha, k, beta, n

    def get_output_for(self, input, **kwargs):
        half = self.n // 2
        squares = T.sqr(input)
        channels = input.shape[1]
        padded = T.zeros((input.shape[0], channels + 2 * half, input.shape[2],
                          input.shape[3]), dtype=input.dtype)
        padded = T.set_subtensor(padded[:, half:half + channels], squares)
        total = padded[:, 0:channels]
        for offset in range(1, self.n):
            total = total + padded[:, offset:offset + channels]
        scale = (self.k + self.alpha * total) ** self.beta
        return input / scale


class BatchNormLayer(Layer):
    """Batch normalization (Ioffe and Szegedy, 2015).

    Normalizes the input over ``axes`` and then scales and shifts it::

        y = (x - mean) * inv_std * gamma + beta

    In training (``deterministic=False``, the default of ``get_output``) ``mean`` and
    ``inv_std = 1 / sqrt(var + epsilon)`` are the statistics of the mini-batch, and
    the running averages ``self.mean`` and ``self.inv_std`` are moved towards them
    by ``alpha`` each time the compiled function runs. With ``deterministic=True`` the
    running averages are used instead and left alone.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape; the axes not normalized over must be fixed.
    axes : 'auto', int or tuple of int
        The axes to normalize over. ``'auto'`` (the default) means every axis but the
        second: per unit for a dense layer's output, per channel for a convolution's.
    epsilon : float
        Added to the variance before the square root.
    alpha : float
        Weight of the new batch statistics in the running averages' update
        ``average = (1 - alpha) * average + alpha * batch_value``.
    beta : initializer, numpy array, shared variable, expression or None
        The shift (trainable, not regularized); ``None`` for none (0).
    gamma : initializer, numpy array, shared variable, expression or None
        The scale (trainable, regularizable); ``None`` for none (1).
    mean : initializer, numpy array or shared variable
        The running average of the mean (tagged ``trainable=False``,
        ``regularizable=False``).
    inv_std : initializer, numpy array or shared variable
        The running average of the inverse standard deviation (tags as ``mean``).
    name : str, optional
        Name of the layer.

    Notes
    -----
    ``get_output`` passes two keyword arguments to this layer:

    ``batch_norm_use_averages``
        Normalize with the running averages (True) or the batch statistics (False).
        Defaults to the value of ``deterministic``.
    ``batch_norm_update_averages``
        Update the running averages from the batch statistics. Defaults to ``not
        deterministic``.

    **How the averages are updated.** As in Lasagne, through PyTensor's
    ``default_update``: the expression of a training pass holds aliases of
    ``self.mean`` and ``self.inv_std`` (shared variables on the same storage) whose
    ``default_update`` is the new average, so ``pytensor.function`` applies the
    update without an entry in ``updates=``. Any function compiled from a training
    output updates the averages each time it runs (pass
    ``batch_norm_update_averages=False`` for one that must not, e.g. one that only
    reports the training loss, or compile with ``no_default_updates=True``).

    **The explicit path.** To keep every update in the ``updates`` dictionary
    instead, switch the automatic one off and add the two entries yourself. Take the
    layer's input from the same graph walk as the output, so that noise layers below
    it draw once::

        out, x = get_output([network, bn.input_layer], batch_norm_update_averages=False)
        loss = forge.objectives.categorical_crossentropy(out, targets).mean()
        updates = forge.updates.adam(loss, params)
        updates.update(bn.get_averages_updates(x))

    :meth:`get_averages_updates` returns ``{bn.mean: new_mean, bn.inv_std:
    new_inv_std}`` for the layer's input expression ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> from forge.layers import InputLayer, BatchNormLayer, get_output
    >>> l_in = InputLayer((None, 3, 4, 4))
    >>> bn = BatchNormLayer(l_in)
    >>> bn.mean.get_value().shape, bn.output_shape
    ((3,), (None, 3, 4, 4))
    >>> train = pytensor.function([l_in.input_var], get_output(bn))
    >>> x = np.full((2, 3, 4, 4), 5.0, dtype="float32")
    >>> _ = train(x)  # normalizes with the batch statistics and updates the averages
    >>> bn.mean.get_value()  # 0.9 * 0 + 0.1 * 5
    array([0.5, 0.5, 0.5], dtype=float32)
    """

    def __init__(self, incoming, axes="auto", epsilon=1e-4, alpha=0.1,
                 beta=init.Constant(0), gamma=init.Constant(1), mean=init.Constant(0),
                 inv_std=init.Constant(1), name=None):
        super().__init__(incoming, name=name)
        ndim = len(self.input_shape)
        self.axes = _parse_axes(axes, self.input_shape, "BatchNormLayer",
                                {"auto": (0,) + tuple(range(2, ndim))})
        self.epsilon = epsilon
        self.alpha = alpha
        shape = tuple(size for axis, size in enumerate(self.input_shape)
                      if axis not in self.axes)
        if any(size is None for size in shape):
            raise ValueError(f"BatchNormLayer needs specified input sizes for all axes not "
                             f"normalized over, got input shape {self.input_shape} with "
                             f"axes={self.axes}")
        self.beta = (None if beta is None else
                     self.add_param(beta, shape, "beta", trainable=True,
                                    regularizable=False))
        self.gamma = (None if gamma is None else
                      self.add_param(gamma, shape, "gamma", trainable=True,
                                     regularizable=True))
        self.mean = self.add_param(mean, shape, "mean", trainable=False,
                                   regularizable=False)
        self.inv_std = self.add_param(inv_std, shape, "inv_std", trainable=False,
                                      regularizable=False)
        self.get_output_kwargs = ["batch_norm_use_averages", "batch_norm_update_averages"]

    def _batch_statistics(self, input):
        mean = input.mean(self.axes)
        inv_std = 1 / T.sqrt(input.var(self.axes) + self.epsilon)
        return mean, inv_std

    def _new_average(self, average, batch_value):
        new = (1 - self.alpha) * average + self.alpha * batch_value
        # the update must have the stored variable's exact type (dtype and static shape)
        return T.specify_shape(T.cast(new, average.dtype), average.type.shape)

    def get_averages_updates(self, input):
        """The running averages' updates for the input expression ``input``.

        Returns ``{self.mean: new_mean, self.inv_std: new_inv_std}``, ready to merge
        into the ``updates`` of ``pytensor.function`` (see the class notes); use it
        with ``batch_norm_update_averages=False`` so the averages move once per call.
        """
        for what, var in (("mean", self.mean), ("inv_std", self.inv_std)):
            if not isinstance(var, SharedVariable):
                raise ValueError(f"BatchNormLayer can only update running averages held "
                                 f"in shared variables; {what} is the expression {var}")
        mean, inv_std = self._batch_statistics(input)
        return {self.mean: self._new_average(self.mean, mean),
                self.inv_std: self._new_average(self.inv_std, inv_std)}

    def get_output_for(self, input, deterministic=False, batch_norm_use_averages=None,
                       batch_norm_update_averages=None, **kwargs):
        batch_mean, batch_inv_std = self._batch_statistics(input)
        if batch_norm_use_averages is None:
            batch_norm_use_averages = deterministic
        if batch_norm_update_averages is None:
            batch_norm_update_averages = not deterministic
        if batch_norm_use_averages:
            mean, inv_std = self.mean, self.inv_std
        else:
            mean, inv_std = batch_mean, batch_inv_std

        if batch_norm_update_averages:
            for what, var in (("mean", self.mean), ("inv_std", self.inv_std)):
                if not isinstance(var, SharedVariable):
                    raise ValueError(
                        f"BatchNormLayer can only update running averages held in shared "
                        f"variables; {what} is the expression {var} (pass "
                        f"batch_norm_update_averages=False)")
            # Aliases of the stored averages (same storage) carry the update as their
            # default_update; adding them times zero puts them in the graph, so
            # pytensor.function collects the updates, and the rewriter removes the
            # term from the computation.
            running_mean = self.mean.clone()
            running_inv_std = self.inv_std.clone()
            with warnings.catch_warnings():
                # PyTensor 3 deprecates default updates; Lasagne code relies on them.
                warnings.simplefilter("ignore", DeprecationWarning)
                running_mean.default_update = self._new_average(running_mean, batch_mean)
                running_inv_std.default_update = self._new_average(running_inv_std,
                                                                   batch_inv_std)
            mean = mean + 0 * running_mean
            inv_std = inv_std + 0 * running_inv_std

        param_axes = iter(range(input.ndim - len(self.axes)))
        pattern = ["x" if axis in self.axes else next(param_axes)
                   for axis in range(input.ndim)]
        beta = 0 if self.beta is None else self.beta.dimshuffle(pattern)
        gamma = 1 if self.gamma is None else self.gamma.dimshuffle(pattern)
        mean = mean.dimshuffle(pattern)
        inv_std = inv_std.dimshuffle(pattern)
        return (input - mean) * (gamma * inv_std) + beta


def _steal_nonlinearity_and_bias(layer):
    """Switch ``layer``'s nonlinearity to identity and drop its bias (Lasagne's helpers
    do this to the layer they wrap); return the nonlinearity it had, or None."""
    nonlinearity = getattr(layer, "nonlinearity", None)
    if nonlinearity is not None:
        layer.nonlinearity = nonlinearities.identity
    if getattr(layer, "b", None) is not None:
        del layer.params[layer.b]
        layer.b = None
    return nonlinearity


def batch_norm(layer, **kwargs):
    """Insert batch normalization between a layer and its nonlinearity.

    Modifies ``layer`` in place: its nonlinearity becomes the identity and its bias is
    removed (``beta`` takes its role); then a :class:`BatchNormLayer` and, if the
    layer had a nonlinearity, a :class:`NonlinearityLayer` with it are stacked on top.
    The new layers are named after ``layer`` (``name + '_bn'``, ``name +
    '_bn_nonlin'``) when it has a name.

    Parameters
    ----------
    layer : Layer
        The layer to normalize (changed in place).
    **kwargs
        Passed to :class:`BatchNormLayer` (``name`` overrides the generated one).

    Returns
    -------
    BatchNormLayer or NonlinearityLayer
        The topmost new layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer, batch_norm, get_all_layers
    >>> l_in = InputLayer((None, 10))
    >>> net = batch_norm(DenseLayer(l_in, num_units=5, name="fc"))
    >>> [type(layer).__name__ for layer in get_all_layers(net)]
    ['InputLayer', 'DenseLayer', 'BatchNormLayer', 'NonlinearityLayer']
    >>> net.name, net.input_layer.input_layer.b is None
    ('fc_bn_nonlin', True)
    """
    nonlinearity = _steal_nonlinearity_and_bias(layer)
    bn_name = kwargs.pop("name", None) or (getattr(layer, "name", None)
                                           and layer.name + "_bn")
    layer = BatchNormLayer(layer, name=bn_name, **kwargs)
    if nonlinearity is not None:
        layer = NonlinearityLayer(layer, nonlinearity,
                                  name=bn_name and bn_name + "_nonlin")
    return layer


class StandardizationLayer(Layer):
    """Standardize the input over some axes, without learned parameters.

    ``y = (x - mean(x)) / sqrt(var(x) + epsilon)``, the statistics taken over
    ``axes`` separately for each position of the other axes, in training and at
    inference alike. With the default axes (the spatial ones) this is instance
    normalization; over all axes but the batch axis it is layer normalization (see
    :func:`instance_norm` and :func:`layer_norm`).

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    axes : 'auto', 'features', int or tuple of int
        The axes to normalize over: ``'auto'`` (the default) every axis after the
        second, ``'features'`` every axis after the first.
    epsilon : float
        Added to the variance before the square root.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, StandardizationLayer, get_output
    >>> layer = StandardizationLayer(InputLayer((None, 1, 4)), epsilon=0)
    >>> layer.axes
    (2,)
    >>> get_output(layer, np.array([[[0, 0, 2, 2]]], dtype="float32")).eval()
    array([[[-1., -1.,  1.,  1.]]], dtype=float32)
    """

    def __init__(self, incoming, axes="auto", epsilon=1e-4, name=None):
        super().__init__(incoming, name=name)
        ndim = len(self.input_shape)
        self.axes = _parse_axes(axes, self.input_shape, "StandardizationLayer",
                                {"auto": tuple(range(2, ndim)),
                                 "features": tuple(range(1, ndim))})
        self.epsilon = epsilon

    def get_output_for(self, input, **kwargs):
        mean = input.mean(self.axes, keepdims=True)
        std = T.sqrt(input.var(self.axes, keepdims=True) + self.epsilon)
        return (input - mean) / std


def _standardize(layer, axes, learn_scale, learn_bias, suffix, kwargs):
    nonlinearity = _steal_nonlinearity_and_bias(layer)
    std_name = kwargs.pop("name", None) or (getattr(layer, "name", None)
                                            and layer.name + suffix)
    layer = StandardizationLayer(layer, axes=axes, name=std_name, **kwargs)
    if learn_scale:
        layer = ScaleLayer(layer, shared_axes="auto", name=std_name and std_name + "_scale")
    if learn_bias:
        layer = BiasLayer(layer, shared_axes="auto", name=std_name and std_name + "_bias")
    if nonlinearity is not None:
        layer = NonlinearityLayer(layer, nonlinearity,
                                  name=std_name and std_name + "_nonlin")
    return layer


def instance_norm(layer, learn_scale=True, learn_bias=True, **kwargs):
    """Insert instance normalization between a layer and its nonlinearity.

    Like :func:`batch_norm`, modifies ``layer`` (identity nonlinearity, no bias) and
    stacks a :class:`StandardizationLayer` over the spatial axes, a per-channel
    :class:`ScaleLayer` and :class:`BiasLayer` (unless switched off), and a
    :class:`NonlinearityLayer` with the layer's nonlinearity.

    Parameters
    ----------
    layer : Layer
        The layer to normalize (changed in place); usually a convolution.
    learn_scale, learn_bias : bool
        Whether to add the learned per-channel scale and shift.
    **kwargs
        Passed to :class:`StandardizationLayer` (e.g. ``epsilon``; ``name``
        overrides the generated ``layer.name + '_in'``).

    Returns
    -------
    Layer
        The topmost new layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, Conv2DLayer, instance_norm, get_all_layers
    >>> l_in = InputLayer((None, 3, 8, 8))
    >>> net = instance_norm(Conv2DLayer(l_in, num_filters=4, filter_size=3))
    >>> [type(layer).__name__ for layer in get_all_layers(net)][1:]
    ['Conv2DLayer', 'StandardizationLayer', 'ScaleLayer', 'BiasLayer', 'NonlinearityLayer']
    """
    return _standardize(layer, "auto", learn_scale, learn_bias, "_in", kwargs)


def layer_norm(layer, **kwargs):
    """Insert layer normalization between a layer and its nonlinearity.

    Like :func:`instance_norm`, but the :class:`StandardizationLayer` normalizes over
    all axes but the batch axis (``axes='features'``), and the scale and shift are
    always learned.

    Parameters
    ----------
    layer : Layer
        The layer to normalize (changed in place).
    **kwargs
        Passed to :class:`StandardizationLayer` (``name`` overrides the generated
        ``layer.name + '_ln'``).

    Returns
    -------
    Layer
        The topmost new layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer, layer_norm, get_all_layers
    >>> net = layer_norm(DenseLayer(InputLayer((None, 10)), num_units=6))
    >>> [type(layer).__name__ for layer in get_all_layers(net)][1:]
    ['DenseLayer', 'StandardizationLayer', 'ScaleLayer', 'BiasLayer', 'NonlinearityLayer']
    >>> net.input_layer.input_layer.input_layer.axes
    (1,)
    """
    return _standardize(layer, "features", True, True, "_ln", kwargs)
