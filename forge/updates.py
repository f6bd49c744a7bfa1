"""Gradient-based update rules, for ``pytensor.function(..., updates=...)``.

Each optimizer takes a scalar loss (or a ready list of gradients) and the list of
parameters, and returns an ``OrderedDict`` mapping every shared variable it changes (the
parameters and any state of its own, such as velocities or moment estimates) to its new
value::

    import forge as lasagne
    import pytensor

    params = lasagne.layers.get_all_params(network, trainable=True)
    updates = lasagne.updates.nesterov_momentum(loss, params, learning_rate=0.01)
    train_fn = pytensor.function([input_var, target_var], loss, updates=updates)

Hyperparameters (``learning_rate``, ``momentum``, ``beta1`` ...) may be numbers or
PyTensor expressions, e.g. a shared variable that a schedule changes between epochs.
They are cast to ``floatX``, and every new value is cast back to the dtype of the shared
variable it updates, because PyTensor refuses an update whose dtype differs (a float64
learning rate must not turn a float32 weight update into float64).

:func:`apply_momentum` and :func:`apply_nesterov_momentum` add momentum to any updates
dictionary; :func:`norm_constraint` and :func:`total_norm_constraint` rescale updates or
gradients whose norm is too large.
"""
from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as T
from pytensor.compile import SharedVariable
from pytensor.graph.basic import Variable

__all__ = [
    "get_or_compute_grads",
    "sgd",
    "apply_momentum",
    "momentum",
    "apply_nesterov_momentum",
    "nesterov_momentum",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamax",
    "amsgrad",
    "norm_constraint",
    "total_norm_constraint",
]


def _floatx(value, name):
    """Return hyperparameter `value` as a PyTensor expression of dtype floatX."""
    floatx = pytensor.config.floatX
    if isinstance(value, Variable):
        return value if value.dtype == floatx else T.cast(value, floatx)
    try:
        return T.constant(np.asarray(value, dtype=floatx), name=name)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a number or a PyTensor expression; got {value!r}"
        ) from None


def _like(expression, shared):
    """Cast `expression` to the dtype of the shared variable it is the update for."""
    return expression if expression.dtype == shared.dtype else T.cast(expression,
                                                                      shared.dtype)


def _zeros_like(param, role):
    """Return a shared variable of zeros with `param`'s shape, dtype and static shape.

    Optimizer state (velocities, moment estimates) lives in these; `role` goes into the
    name, e.g. ``W.velocity``, to make the state easy to recognise in a debug print.
    """
    value = param.get_value(borrow=True)
    name = f"{param.name}.{role}" if param.name else role
    return pytensor.shared(np.zeros(value.shape, dtype=value.dtype), name=name,
                           shape=param.type.shape)


def _step_counter():
    """Return a floatX shared scalar counting the steps taken (starts at 0)."""
    return pytensor.shared(np.asarray(0, dtype=pytensor.config.floatX), name="t")


def get_or_compute_grads(loss_or_grads, params):
    """Return the gradients of the loss with respect to `params`.

    Parameters
    ----------
    loss_or_grads : PyTensor scalar or list of PyTensor expressions
        A scalar loss, which is differentiated with ``pytensor.grad``, or one gradient
        expression per parameter, which is returned unchanged.
    params : list of shared variables
        The parameters.

    Returns
    -------
    list of PyTensor expressions
        One gradient per parameter.

    Raises
    ------
    ValueError
        If a parameter is not a shared variable (an update needs one to write to), if
        the number of gradients differs from the number of parameters, or if the loss
        is not a scalar.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import get_or_compute_grads
    >>> w = pytensor.shared(np.float32([1.0, -2.0]), name="w")
    >>> [g] = get_or_compute_grads(T.sum(w ** 2), [w])
    >>> g.eval()
    array([ 2., -4.], dtype=float32)
    """
    params = list(params)
    for index, param in enumerate(params):
        if not isinstance(param, SharedVariable):
            raise ValueError(
                f"params must all be shared variables (the updates write to them); "
                f"params[{index}] is {param!r} of type {type(param).__name__}. For a "
                f"parameter expression, pass the shared variables it is built from."
            )
    if isinstance(loss_or_grads, (list, tuple)):
        if len(loss_or_grads) != len(params):
            raise ValueError(
                f"need one gradient per parameter; got {len(loss_or_grads)} gradient "
                f"expressions for {len(params)} parameters"
            )
        return list(loss_or_grads)
    loss = T.as_tensor_variable(loss_or_grads)
    if loss.ndim != 0:
        raise ValueError(
            f"the loss must be a scalar to differentiate it (aggregate it, e.g. with "
            f"forge.objectives.aggregate); got a {loss.ndim}-dimensional loss {loss!r}"
        )
    return pytensor.grad(loss, params)


def sgd(loss_or_grads, params, learning_rate):
    """Stochastic gradient descent: ``param := param - learning_rate * grad``.

    Parameters
    ----------
    loss_or_grads : PyTensor scalar or list of PyTensor expressions
        A scalar loss, or one gradient per parameter.
    params : list of shared variables
        The parameters to update.
    learning_rate : float or PyTensor scalar
        The step size.

    Returns
    -------
    OrderedDict
        Maps each parameter to its new value.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import sgd
    >>> w = pytensor.shared(np.float32([1.0, -2.0]), name="w")
    >>> loss = T.sum(w ** 2)
    >>> train = pytensor.function([], loss, updates=sgd(loss, [w], learning_rate=0.1))
    >>> float(train())  # the loss before the step
    5.0
    >>> w.get_value()
    array([ 0.8, -1.6], dtype=float32)
    """
    params = list(params)
    grads = get_or_compute_grads(loss_or_grads, params)
    learning_rate = _floatx(learning_rate, "learning_rate")
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        updates[param] = _like(param - learning_rate * grad, param)
    return updates


def apply_momentum(updates, params=None, momentum=0.9):
    """Add classical momentum to existing updates.

    For every parameter, with ``step = updates[param] - param`` the step the given
    updates would take, a velocity accumulates the steps::

        velocity := momentum * velocity + step
        param := param + velocity

    Parameters
    ----------
    updates : dict
        Maps parameters to their new values, e.g. as returned by :func:`sgd`.
    params : list of shared variables, optional
        The parameters to apply momentum to; all keys of `updates` by default.
    momentum : float or PyTensor scalar, optional
        How much of the velocity carries over to the next step (default 0.9).

    Returns
    -------
    OrderedDict
        A copy of `updates` with momentum applied to `params`, plus the updates of the
        new velocity variables.

    See Also
    --------
    momentum : sgd with momentum in one call.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import sgd, apply_momentum
    >>> w = pytensor.shared(np.float32([1.0]), name="w")
    >>> updates = apply_momentum(sgd(T.sum(w ** 2), [w], 0.1), momentum=0.5)
    >>> step = pytensor.function([], [], updates=updates)
    >>> _ = step(); _ = step()
    >>> w.get_value().round(4)  # 1 - 0.2 = 0.8, then 0.8 - 0.16 - 0.5 * 0.2 = 0.54
    array([0.54], dtype=float32)
    """
    if params is None:
        params = list(updates.keys())
    updates = OrderedDict(updates)
    momentum = _floatx(momentum, "momentum")
    for param in params:
        velocity = _zeros_like(param, "velocity")
        new_param = momentum * velocity + updates[param]
        updates[velocity] = _like(new_param - param, velocity)
        updates[param] = _like(new_param, param)
    return updates


def momentum(loss_or_grads, params, learning_rate, momentum=0.9):
    """Stochastic gradient descent with classical momentum.

    ::

        velocity := momentum * velocity - learning_rate * grad
        param := param + velocity

    Parameters
    ----------
    loss_or_grads : PyTensor scalar or list of PyTensor expressions
        A scalar loss, or one gradient per parameter.
    params : list of shared variables
        The parameters to update.
    learning_rate : float or PyTensor scalar
        The step size.
    momentum : float or PyTensor scalar, optional
        How much of the velocity carries over to the next step (default 0.9).

    Returns
    -------
    OrderedDict
        Maps each parameter and each new velocity variable to its new value.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import momentum
    >>> w = pytensor.shared(np.float32([1.0]), name="w")
    >>> updates = momentum(T.sum(w ** 2), [w], learning_rate=0.1, momentum=0.5)
    >>> len(updates)  # w and its velocity
    2
    """
    updates = sgd(loss_or_grads, params, learning_rate)
    return apply_momentum(updates, momentum=momentum)


def apply_nesterov_momentum(updates, params=None, momentum=0.9):
    """Add Nesterov momentum to existing updates.

    With ``step = updates[param] - param`` the step the given updates would take, the
    gradient is in effect read at the point the velocity is about to carry the
    parameter to (in the reformulation that keeps the stored parameter at that
    look-ahead point)::

        velocity := momentum * velocity + step
        param := param + momentum * velocity + step

    Parameters
    ----------
    updates : dict
        Maps parameters to their new values, e.g. as returned by :func:`sgd`.
    params : list of shared variables, optional
        The parameters to apply momentum to; all keys of `updates` by default.
    momentum : float or PyTensor scalar, optional
        How much of the velocity carries over to the next step (default 0.9).

    Returns
    -------
    OrderedDict
        A copy of `updates` with Nesterov momentum applied to `params`, plus the
        updates of the new velocity variables.

    See Also
    --------
    nesterov_momentum : sgd with Nesterov momentum in one call.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import sgd, apply_nesterov_momentum
    >>> w = pytensor.shared(np.float32([1.0]), name="w")
    >>> updates = apply_nesterov_momentum(sgd(T.sum(w ** 2), [w], 0.1), momentum=0.5)
    >>> pytensor.function([], [], updates=updates)()
    []
    >>> w.get_value()  # 1 + 0.5 * (-0.2) - 0.2
    array([0.7], dtype=float32)
    """
    if params is None:
        params = list(updates.keys())
    updates = OrderedDict(updates)
    momentum = _floatx(momentum, "momentum")
    for param in params:
        velocity = _zeros_like(param, "velocity")
        step = updates[param] - param
        new_velocity = momentum * velocity + step
        updates[velocity] = _like(new_velocity, velocity)
        updates[param] = _like(param + momentum * new_velocity + step, param)
    return updates


def nesterov_momentum(loss_or_grads, params, learning_rate, momentum=0.9):
    """Stochastic gradient descent with Nesterov momentum.

    ::

        velocity := momentum * velocity - learning_rate * grad
        param := param + momentum * velocity - learning_rate * grad

    Parameters
    ----------
    loss_or_grads : PyTensor scalar or list of PyTensor expressions
        A scalar loss, or one gradient per parameter.
    params : list of shared variables
        The parameters to update.
    learning_rate : float or PyTensor scalar
        The step size.
    momentum : float or PyTensor scalar, optional
        How much of the velocity carries over to the next step (default 0.9).

    Returns
    -------
    OrderedDict
        Maps each parameter and each new velocity variable to its new value.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import nesterov_momentum
    >>> w = pytensor.shared(np.float32([1.0]), name="w")
    >>> lr = pytensor.shared(np.float32(0.1), name="lr")  # a schedule can change it
    >>> updates = nesterov_momentum(T.sum(w ** 2), [w], learning_rate=lr)
    >>> [u.dtype for u in updates.values()]
    ['float32', 'float32']
    """
    updates = sgd(loss_or_grads, params, learning_rate)
    return apply_nesterov_momentum(updates, momentum=momentum)


def adagrad(loss_or_grads, params, learning_rate=1.0, epsilon=1e-6):
    """Adagrad: per-element step sizes shrinking with the accumulated squared gradient.

    ::

        accu := accu + grad ** 2
        param := param - learning_rate * grad / sqrt(accu + epsilon)

    Parameters
    ----------
    loss_or_grads : PyTensor scalar or list of PyTensor expressions
        A scalar loss, or one gradient per parameter.
    params : list of shared variables
        The parameters to update.
    learning_rate : float or PyTensor scalar, optional
        The step size (default 1.0).
    epsilon : float or PyTensor scalar, optional
        Added inside the square root for numerical stability (default 1e-6).

    Returns
    -------
    OrderedDict
        Maps each parameter and each accumulator to its new value.

    References
    ----------
    Duchi, Hazan and Singer (2011): Adaptive subgradient methods for online learning
    and stochastic optimization. JMLR 12:2121-2159.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import adagrad
    >>> w = pytensor.shared(np.float32([1.0, -2.0]), name="w")
    >>> updates = adagrad(T.sum(w ** 2), [w], learning_rate=0.5)
    >>> pytensor.function([], [], updates=updates)()
    []
    >>> w.get_value().round(4)  # the first step is learning_rate * sign(grad)
    array([ 0.5, -1.5], dtype=float32)
    """
    params = list(params)
    grads = get_or_compute_grads(loss_or_grads, params)
    learning_rate = _floatx(learning_rate, "learning_rate")
    epsilon = _floatx(epsilon, "epsilon")
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        accu = _zeros_like(param, "accu")
        new_accu = accu + grad ** 2
        updates[accu] = _like(new_accu, accu)
        updates[param] = _like(
            param - learning_rate * grad / T.sqrt(new_accu + epsilon), param)
    return updates


def rmsprop(loss_or_grads, params, learning_rate=1.0, rho=0.9, epsilon=1e-6):
    """RMSProp: steps scaled by a moving average of the squared gradient.

    ::

        accu := rho * accu + (1 - rho) * grad ** 2
        param := param - learning_rate * grad / sqrt(accu + epsilon)

    Parameters
    ----------
    loss_or_grads : PyTensor scalar or list of PyTensor expressions
        A scalar loss, or one gradient per parameter.
    params : list of shared variables
        The parameters to update.
    learning_rate : float or PyTensor scalar, optional
        The step size (default 1.0).
    rho : float or PyTensor scalar, optional
        Decay of the moving average (default 0.9).
    epsilon : float or PyTensor scalar, optional
        Added inside the square root for numerical stability (default 1e-6).

    Returns
    -------
    OrderedDict
        Maps each parameter and each accumulator to its new value.

    References
    ----------
    Tieleman and Hinton (2012): Neural Networks for Machine Learning, lecture 6.5
    (Coursera).

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import rmsprop
    >>> w = pytensor.shared(np.float32([1.0]), name="w")
    >>> updates = rmsprop(T.sum(w ** 2), [w], learning_rate=0.01)
    >>> sorted(str(var) for var in updates)
    ['w', 'w.accu']
    """
    params = list(params)
    grads = get_or_compute_grads(loss_or_grads, params)
    learning_rate = _floatx(learning_rate, "learning_rate")
    rho = _floatx(rho, "rho")
    epsilon = _floatx(epsilon, "epsilon")
    one = T.constant(np.asarray(1, dtype=pytensor.config.floatX))
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        accu = _zeros_like(param, "accu")
        new_accu = rho * accu + (one - rho) * grad ** 2
        updates[accu] = _like(new_accu, accu)
        updates[param] = _like(
            param - learning_rate * grad / T.sqrt(new_accu + epsilon), param)
    return updates


def adadelta(loss_or_grads, params, learning_rate=1.0, rho=0.95, epsilon=1e-6):
    """Adadelta: RMSProp with the step rescaled by a moving average of past steps.

    ::

        accu := rho * accu + (1 - rho) * grad ** 2
        step = grad * sqrt(delta_accu + epsilon) / sqrt(accu + epsilon)
        param := param - learning_rate * step
        delta_accu := rho * delta_accu + (1 - rho) * step ** 2

    Parameters
    ----------
    loss_or_grads : PyTensor scalar or list of PyTensor expressions
        A scalar loss, or one gradient per parameter.
    params : list of shared variables
        The parameters to update.
    learning_rate : float or PyTensor scalar, optional
        Scales the step (default 1.0, as in the paper).
    rho : float or PyTensor scalar, optional
        Decay of both moving averages (default 0.95).
    epsilon : float or PyTensor scalar, optional
        Added inside the square roots; it also sets the size of the first steps
        (default 1e-6).

    Returns
    -------
    OrderedDict
        Maps each parameter and each of its two accumulators to its new value.

    References
    ----------
    Zeiler (2012): ADADELTA: An adaptive learning rate method. arXiv:1212.5701.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import adadelta
    >>> w = pytensor.shared(np.float32([1.0]), name="w")
    >>> updates = adadelta(T.sum(w ** 2), [w])
    >>> sorted(str(var) for var in updates)
    ['w', 'w.accu', 'w.delta_accu']
    """
    params = list(params)
    grads = get_or_compute_grads(loss_or_grads, params)
    learning_rate = _floatx(learning_rate, "learning_rate")
    rho = _floatx(rho, "rho")
    epsilon = _floatx(epsilon, "epsilon")
    one = T.constant(np.asarray(1, dtype=pytensor.config.floatX))
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        accu = _zeros_like(param, "accu")
        delta_accu = _zeros_like(param, "delta_accu")
        new_accu = rho * accu + (one - rho) * grad ** 2
        updates[accu] = _like(new_accu, accu)
        step = grad * T.sqrt(delta_accu + epsilon) / T.sqrt(new_accu + epsilon)
        updates[param] = _like(param - learning_rate * step, param)
        new_delta_accu = rho * delta_accu + (one - rho) * step ** 2
        updates[delta_accu] = _like(new_delta_accu, delta_accu)
    return updates


def adam(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999,
         epsilon=1e-8):
    """Adam: steps from bias-corrected moving averages of the gradient and its square.

    With ``t`` the step number (1 for the first step)::

        m := beta1 * m + (1 - beta1) * grad
        v := beta2 * v + (1 - beta2) * grad ** 2
        lr_t = learning_rate * sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        param := param - lr_t * m / (sqrt(v) + epsilon)

    Parameters
    ----------
    loss_or_grads : PyTensor scalar or list of PyTensor expressions
        A scalar loss, or one gradient per parameter.
    params : list of shared variables
        The parameters to update.
    learning_rate : float or PyTensor scalar, optional
        The step size (default 0.001).
    beta1 : float or PyTensor scalar, optional
        Decay of the first-moment average (default 0.9).
    beta2 : float or PyTensor scalar, optional
        Decay of the second-moment average (default 0.999).
    epsilon : float or PyTensor scalar, optional
        Added to the denominator for numerical stability (default 1e-8).

    Returns
    -------
    OrderedDict
        Maps each parameter, its two moment averages and the shared step counter to
        their new values.

    References
    ----------
    Kingma and Ba (2014): Adam: A method for stochastic optimization.
    arXiv:1412.6980.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import adam
    >>> w = pytensor.shared(np.float32([1.0, -2.0]), name="w")
    >>> updates = adam(T.sum(w ** 2), [w], learning_rate=0.1)
    >>> pytensor.function([], [], updates=updates)()
    []
    >>> w.get_value().round(4)  # the first step is learning_rate * sign(grad)
    array([ 0.9, -1.9], dtype=float32)
    """
    params = list(params)
    grads = get_or_compute_grads(loss_or_grads, params)
    learning_rate = _floatx(learning_rate, "learning_rate")
    beta1 = _floatx(beta1, "beta1")
    beta2 = _floatx(beta2, "beta2")
    epsilon = _floatx(epsilon, "epsilon")
    one = T.constant(np.asarray(1, dtype=pytensor.config.floatX))
    t_prev = _step_counter()
    t = t_prev + one
    lr_t = learning_rate * T.sqrt(one - beta2 ** t) / (one - beta1 ** t)
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        m_prev = _zeros_like(param, "m")
        v_prev = _zeros_like(param, "v")
        m = beta1 * m_prev + (one - beta1) * grad
        v = beta2 * v_prev + (one - beta2) * grad ** 2
        updates[m_prev] = _like(m, m_prev)
        updates[v_prev] = _like(v, v_prev)
        updates[param] = _like(param - lr_t * m / (T.sqrt(v) + epsilon), param)
    updates[t_prev] = t
    return updates


def adamax(loss_or_grads, params, learning_rate=0.002, beta1=0.9, beta2=0.999,
           epsilon=1e-8):
    """Adamax: Adam with the second moment replaced by a decaying maximum of ``|grad|``.

    With ``t`` the step number (1 for the first step)::

        m := beta1 * m + (1 - beta1) * grad
        u := max(beta2 * u, |grad|)
        param := param - learning_rate / (1 - beta1 ** t) * m / (u + epsilon)

    Parameters
    ----------
    loss_or_grads : PyTensor scalar or list of PyTensor expressions
        A scalar loss, or one gradient per parameter.
    params : list of shared variables
        The parameters to update.
    learning_rate : float or PyTensor scalar, optional
        The step size (default 0.002).
    beta1 : float or PyTensor scalar, optional
        Decay of the first-moment average (default 0.9).
    beta2 : float or PyTensor scalar, optional
        Decay of the running maximum (default 0.999).
    epsilon : float or PyTensor scalar, optional
        Added to the denominator for numerical stability (default 1e-8).

    Returns
    -------
    OrderedDict
        Maps each parameter, its moment average, its running maximum and the shared
        step counter to their new values.

    References
    ----------
    Kingma and Ba (2014): Adam: A method for stochastic optimization.
    arXiv:1412.6980, section 7.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import adamax
    >>> w = pytensor.shared(np.float32([1.0, -2.0]), name="w")
    >>> updates = adamax(T.sum(w ** 2), [w], learning_rate=0.1)
    >>> pytensor.function([], [], updates=updates)()
    []
    >>> w.get_value().round(4)
    array([ 0.9, -1.9], dtype=float32)
    """
    params = list(params)
    grads = get_or_compute_grads(loss_or_grads, params)
    learning_rate = _floatx(learning_rate, "learning_rate")
    beta1 = _floatx(beta1, "beta1")
    beta2 = _floatx(beta2, "beta2")
    epsilon = _floatx(epsilon, "epsilon")
    one = T.constant(np.asarray(1, dtype=pytensor.config.floatX))
    t_prev = _step_counter()
    t = t_prev + one
    lr_t = learning_rate / (one - beta1 ** t)
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        m_prev = _zeros_like(param, "m")
        u_prev = _zeros_like(param, "u")
        m = beta1 * m_prev + (one - beta1) * grad
        u = T.maximum(beta2 * u_prev, abs(grad))
        updates[m_prev] = _like(m, m_prev)
        updates[u_prev] = _like(u, u_prev)
        updates[param] = _like(param - lr_t * m / (u + epsilon), param)
    updates[t_prev] = t
    return updates


def amsgrad(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999,
            epsilon=1e-8):
    """AMSGrad: Adam dividing by the running maximum of the second-moment average.

    With ``t`` the step number (1 for the first step)::

        m := beta1 * m + (1 - beta1) * grad
        v := beta2 * v + (1 - beta2) * grad ** 2
        v_hat := max(v_hat, v)
        lr_t = learning_rate * sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        param := param - lr_t * m / (sqrt(v_hat) + epsilon)

    Parameters
    ----------
    loss_or_grads : PyTensor scalar or list of PyTensor expressions
        A scalar loss, or one gradient per parameter.
    params : list of shared variables
        The parameters to update.
    learning_rate : float or PyTensor scalar, optional
        The step size (default 0.001).
    beta1 : float or PyTensor scalar, optional
        Decay of the first-moment average (default 0.9).
    beta2 : float or PyTensor scalar, optional
        Decay of the second-moment average (default 0.999).
    epsilon : float or PyTensor scalar, optional
        Added to the denominator for numerical stability (default 1e-8).

    Returns
    -------
    OrderedDict
        Maps each parameter, its three moment variables and the shared step counter
        to their new values.

    References
    ----------
    Reddi, Kale and Kumar (2018): On the convergence of Adam and beyond. ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import amsgrad
    >>> w = pytensor.shared(np.float32([1.0, -2.0]), name="w")
    >>> updates = amsgrad(T.sum(w ** 2), [w], learning_rate=0.1)
    >>> pytensor.function([], [], updates=updates)()
    []
    >>> w.get_value().round(4)
    array([ 0.9, -1.9], dtype=float32)
    """
    params = list(params)
    grads = get_or_compute_grads(loss_or_grads, params)
    learning_rate = _floatx(learning_rate, "learning_rate")
    beta1 = _floatx(beta1, "beta1")
    beta2 = _floatx(beta2, "beta2")
    epsilon = _floatx(epsilon, "epsilon")
    one = T.constant(np.asarray(1, dtype=pytensor.config.floatX))
    t_prev = _step_counter()
    t = t_prev + one
    lr_t = learning_rate * T.sqrt(one - beta2 ** t) / (one - beta1 ** t)
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        m_prev = _zeros_like(param, "m")
        v_prev = _zeros_like(param, "v")
        v_hat_prev = _zeros_like(param, "v_hat")
        m = beta1 * m_prev + (one - beta1) * grad
        v = beta2 * v_prev + (one - beta2) * grad ** 2
        v_hat = T.maximum(v_hat_prev, v)
        updates[m_prev] = _like(m, m_prev)
        updates[v_prev] = _like(v, v_prev)
        updates[v_hat_prev] = _like(v_hat, v_hat_prev)
        updates[param] = _like(param - lr_t * m / (T.sqrt(v_hat) + epsilon), param)
    updates[t_prev] = t
    return updates


def norm_constraint(tensor_var, max_norm, norm_axes=None, epsilon=1e-7):
    """Rescale `tensor_var` so that its norms along `norm_axes` are at most `max_norm`.

    Slices whose norm is already below `max_norm` are left (nearly) unchanged; the
    others are scaled down to norm `max_norm`. Typically applied to the update of a
    weight matrix: ``updates[W] = norm_constraint(updates[W], 3.0)``.

    Parameters
    ----------
    tensor_var : PyTensor tensor
        The tensor to constrain, usually an updated weight.
    max_norm : float or PyTensor scalar
        The largest norm allowed.
    norm_axes : sequence of int, optional
        The axes to compute each norm over. By default: axis 0 for a 2-dimensional
        tensor (dense weights of shape ``(num_inputs, num_units)``, one norm per unit),
        and all axes but the first for 3- to 5-dimensional tensors (convolution
        filters of shape ``(num_filters, channels, ...)``, one norm per filter).
    epsilon : float, optional
        Added to the norm before dividing, for numerical stability (default 1e-7).

    Returns
    -------
    PyTensor tensor
        The constrained tensor, same shape and dtype as `tensor_var`.

    Raises
    ------
    ValueError
        If `norm_axes` is not given and `tensor_var` is not 2- to 5-dimensional.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> from forge.updates import norm_constraint
    >>> W = pytensor.shared(np.float32([[3.0, 0.3], [4.0, 0.4]]), name="W")
    >>> norm_constraint(W, max_norm=1.0).eval().round(4)  # column norms 5 and 0.5
    array([[0.6, 0.3],
           [0.8, 0.4]], dtype=float32)
    """
    tensor_var = T.as_tensor_variable(tensor_var)
    ndim = tensor_var.ndim
    if norm_axes is not None:
        axes = tuple(norm_axes)
    elif ndim == 2:
        axes = (0,)
    elif ndim in (3, 4, 5):
        axes = tuple(range(1, ndim))
    else:
        raise ValueError(
            f"norm_constraint chooses norm_axes itself only for 2- to 5-dimensional "
            f"tensors; got a {ndim}-dimensional tensor, so pass norm_axes explicitly"
        )
    max_norm = _floatx(max_norm, "max_norm")
    epsilon = _floatx(epsilon, "epsilon")
    norms = T.sqrt(T.sum(T.square(tensor_var), axis=axes, keepdims=True))
    target_norms = T.clip(norms, 0, max_norm)
    constrained = tensor_var * (target_norms / (epsilon + norms))
    return _like(constrained, tensor_var)


def total_norm_constraint(tensor_vars, max_norm, epsilon=1e-7, return_norm=False):
    """Rescale several tensors together so that their joint norm is at most `max_norm`.

    The joint norm is the 2-norm of all elements of all tensors, as if concatenated.
    This is the usual "gradient clipping by global norm": apply it to the gradients,
    then pass the result to an optimizer as `loss_or_grads`.

    Parameters
    ----------
    tensor_vars : list of PyTensor tensors
        The tensors to rescale, usually the gradients of all parameters.
    max_norm : float or PyTensor scalar
        The largest joint norm allowed.
    epsilon : float, optional
        Added to the norm before dividing, for numerical stability (default 1e-7).
    return_norm : bool, optional
        Also return the joint norm before rescaling (default False).

    Returns
    -------
    list of PyTensor tensors
        The rescaled tensors, each with the dtype of its input.
    PyTensor scalar
        The joint norm before rescaling; only when ``return_norm=True``.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.updates import total_norm_constraint, sgd
    >>> w = pytensor.shared(np.float32([3.0]), name="w")
    >>> b = pytensor.shared(np.float32([4.0]), name="b")
    >>> loss = T.sum(w ** 2) / 2 + T.sum(b ** 2) / 2  # gradients (3,) and (4,)
    >>> grads, norm = total_norm_constraint(pytensor.grad(loss, [w, b]), 1.0,
    ...                                     return_norm=True)
    >>> float(norm.eval())
    5.0
    >>> [g.eval().round(4) for g in grads]
    [array([0.6], dtype=float32), array([0.8], dtype=float32)]
    >>> updates = sgd(grads, [w, b], learning_rate=1.0)
    """
    tensor_vars = [T.as_tensor_variable(tensor) for tensor in tensor_vars]
    max_norm = _floatx(max_norm, "max_norm")
    epsilon = _floatx(epsilon, "epsilon")
    norm = T.sqrt(sum(T.sum(T.square(tensor)) for tensor in tensor_vars))
    target_norm = T.clip(norm, 0, max_norm)
    multiplier = target_norm / (epsilon + norm)
    scaled = [_like(tensor * multiplier, tensor) for tensor in tensor_vars]
    if return_norm:
        return scaled, norm
    return scaled
