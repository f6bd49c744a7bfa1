"""Loss and evaluation expressions for training networks.

Every loss here is elementwise (or per example): it returns one value per prediction,
and :func:`aggregate` reduces that to the scalar an optimizer in :mod:`forge.updates`
needs. The usual pattern, written with Lasagne's names::

    import forge as lasagne
    import pytensor.tensor as T

    prediction = lasagne.layers.get_output(network)
    loss = lasagne.objectives.categorical_crossentropy(prediction, target_var)
    loss = lasagne.objectives.aggregate(loss, mode="mean")

Accuracy functions return boolean expressions (one per example); take their mean to
get a rate.

Where the predictions are a single column (``shape=(n, 1)``, broadcastable along the
second axis) and the targets are a vector, the targets are turned into a column first,
so ``(n, 1)`` predictions and ``(n,)`` targets give an ``(n, 1)`` loss rather than a
broadcast ``(n, n)`` one.
"""
import numpy as np
import pytensor.tensor as T

__all__ = [
    "binary_crossentropy",
    "categorical_crossentropy",
    "squared_error",
    "binary_hinge_loss",
    "multiclass_hinge_loss",
    "huber_loss",
    "aggregate",
    "binary_accuracy",
    "categorical_accuracy",
]


class RankMismatchError(TypeError, ValueError):
    """Targets and predictions have ranks that no objective can pair up.

    Subclasses both ``ValueError`` (the argument has the wrong value) and ``TypeError``
    (what Lasagne raised for the same mistake), so either ``except`` clause catches it.
    """


def _as_expression(x):
    """Return `x` as a PyTensor variable (numpy arrays and numbers become constants)."""
    return T.as_tensor_variable(x)


def _align_targets(predictions, targets):
    """Return ``(predictions, targets)`` with vector targets made a column when needed.

    Only one case changes anything: predictions of static shape ``(n, 1)`` (one output
    unit) paired with a target vector of shape ``(n,)``. The targets then become an
    ``(n, 1)`` column so that the elementwise loss does not broadcast to ``(n, n)``.
    """
    predictions = _as_expression(predictions)
    targets = _as_expression(targets)
    if predictions.broadcastable == (False, True) and targets.ndim == 1:
        targets = targets.dimshuffle(0, "x")
    return predictions, targets


def _check_class_ranks(predictions, targets, name):
    """Raise unless `targets` are class indices or distributions matching `predictions`.

    Class indices have one dimension fewer than the predictions (the class axis is the
    last one); a one-hot or soft distribution has the same number of dimensions.
    """
    if targets.ndim not in (predictions.ndim, predictions.ndim - 1):
        raise RankMismatchError(
            f"{name} needs targets with the same number of dimensions as the "
            f"predictions (one-hot or a distribution) or one fewer (class indices); "
            f"got {targets.ndim}-dimensional targets for "
            f"{predictions.ndim}-dimensional predictions"
        )


def binary_crossentropy(predictions, targets):
    """Elementwise cross-entropy between predicted probabilities and binary targets.

    .. math:: L = -t \\log(p) - (1 - t) \\log(1 - p)

    Parameters
    ----------
    predictions : PyTensor tensor
        Predicted probabilities in (0, 1), typically a sigmoid output. Clip them away
        from 0 and 1 (for example to ``[1e-7, 1 - 1e-7]``) if they can saturate.
    targets : PyTensor tensor or array
        Targets in [0, 1] (usually exactly 0 or 1), same shape as `predictions`, or a
        vector when `predictions` is an ``(n, 1)`` column.

    Returns
    -------
    PyTensor tensor
        The loss for every element.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.objectives import binary_crossentropy
    >>> p, t = T.vector("p"), T.vector("t")
    >>> f = pytensor.function([p, t], binary_crossentropy(p, t))
    >>> f(np.float32([0.9, 0.2]), np.float32([1, 0])).round(4)
    array([0.1054, 0.2231], dtype=float32)
    """
    predictions, targets = _align_targets(predictions, targets)
    return -(targets * T.log(predictions) + (1 - targets) * T.log1p(-predictions))


def _indices(n):
    """``arange(n)`` with int64 bounds.

    ``T.arange(n)`` stores its start and step as int8 constants; PyTensor's JAX backend
    hands them to ``jnp.arange``, which then overflows for ``n >= 128`` (a batch of 128
    or more class-index targets failed to train on JAX).
    """
    return T.arange(T.constant(0, dtype="int64"), n, T.constant(1, dtype="int64"))


def categorical_crossentropy(predictions, targets):
    """Cross-entropy between predicted class distributions and targets, per example.

    .. math:: L_i = -\\sum_j t_{ij} \\log(p_{ij})

    Parameters
    ----------
    predictions : PyTensor tensor
        Predicted class probabilities, one distribution per row (classes on the last
        axis), typically a softmax output.
    targets : PyTensor tensor or array
        Either integer class indices with one dimension fewer than `predictions`
        (a vector for a matrix of predictions), or a one-hot / soft distribution of
        the same shape as `predictions`.

    Returns
    -------
    PyTensor tensor
        The loss for every example: `predictions` without its last axis.

    Raises
    ------
    ValueError
        If the ranks of `targets` and `predictions` do not match one of the two forms,
        or class-index targets are not integers (the error is also a ``TypeError``, as
        in Lasagne).

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.objectives import categorical_crossentropy
    >>> p, t = T.matrix("p"), T.ivector("t")
    >>> f = pytensor.function([p, t], categorical_crossentropy(p, t))
    >>> probs = np.float32([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4]])
    >>> f(probs, np.int32([0, 2])).round(4)
    array([0.3567, 0.9163], dtype=float32)
    """
    predictions = _as_expression(predictions)
    targets = _as_expression(targets)
    _check_class_ranks(predictions, targets, "categorical_crossentropy")
    if targets.ndim == predictions.ndim:
        return -T.sum(targets * T.log(predictions), axis=-1)
    if not targets.dtype.startswith(("int", "uint")):
        raise RankMismatchError(
            f"categorical_crossentropy reads {targets.ndim}-dimensional targets for "
            f"{predictions.ndim}-dimensional predictions as class indices, so they "
            f"must have an integer dtype; got dtype={targets.dtype}"
        )
    # Class indices: pick the predicted probability of the true class in every row.
    if predictions.ndim == 2:
        return -T.log(predictions[_indices(targets.shape[0]), targets])
    flat_predictions = predictions.reshape((-1, predictions.shape[-1]))
    flat_targets = targets.flatten()
    picked = flat_predictions[_indices(flat_targets.shape[0]), flat_targets]
    return -T.log(picked).reshape(targets.shape, ndim=targets.ndim)


def squared_error(a, b):
    """Elementwise squared difference, :math:`(a - b)^2`.

    Parameters
    ----------
    a, b : PyTensor tensor or array
        Predictions and targets of the same shape (or a vector `b` for an ``(n, 1)``
        column `a`).

    Returns
    -------
    PyTensor tensor
        The squared difference for every element.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.objectives import squared_error
    >>> a, b = T.vector("a"), T.vector("b")
    >>> f = pytensor.function([a, b], squared_error(a, b))
    >>> f(np.float32([1.0, 2.5]), np.float32([0.0, 0.5]))
    array([1., 4.], dtype=float32)
    """
    a, b = _align_targets(a, b)
    return T.square(a - b)


def binary_hinge_loss(predictions, targets, delta=1, log_odds=None, binary=True):
    """Elementwise hinge loss for two-class problems.

    .. math:: L = \\max(0, \\delta - t p)

    with targets :math:`t` in {-1, 1} and predictions :math:`p` on the log-odds scale.

    Parameters
    ----------
    predictions : PyTensor tensor
        Log-odds (a linear output layer) when ``log_odds=True``; probabilities in
        (0, 1) (a sigmoid output layer) when ``log_odds=False``, in which case they are
        turned into log-odds first.
    targets : PyTensor tensor or array
        Targets in {0, 1} when ``binary=True`` (mapped to {-1, 1}), or already in
        {-1, 1} when ``binary=False``.
    delta : scalar, optional
        The margin (default 1).
    log_odds : bool
        Whether `predictions` are log-odds. It must be given: as in Lasagne, leaving
        it at ``None`` raises a ``FutureWarning`` because the default was announced
        to change from ``True`` to ``False``.
    binary : bool, optional
        Whether `targets` are in {0, 1} (default) rather than {-1, 1}.

    Returns
    -------
    PyTensor tensor
        The loss for every element.

    Raises
    ------
    FutureWarning
        If `log_odds` is left at ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.objectives import binary_hinge_loss
    >>> p, t = T.vector("p"), T.vector("t")
    >>> f = pytensor.function([p, t], binary_hinge_loss(p, t, log_odds=True))
    >>> f(np.float32([2.0, 0.5, 0.5]), np.float32([1, 1, 0]))
    array([0. , 0.5, 1.5], dtype=float32)
    """
    if log_odds is None:
        raise FutureWarning(
            "binary_hinge_loss needs an explicit log_odds argument (got "
            "log_odds=None): its default is due to change from True to False. Pass "
            "log_odds=True if the predictions are log-odds (a linear output), "
            "log_odds=False if they are probabilities (a sigmoid output)."
        )
    predictions = _as_expression(predictions)
    if not log_odds:
        predictions = T.log(predictions / (1 - predictions))
    targets = _as_expression(targets)
    if binary:
        targets = 2 * targets - 1
    predictions, targets = _align_targets(predictions, targets)
    return T.maximum(0, delta - predictions * targets)


def multiclass_hinge_loss(predictions, targets, delta=1):
    """Per-example hinge loss between the true class and the best wrong class.

    .. math:: L_i = \\max(0, \\max_{j \\neq t_i} p_{ij} - p_{i t_i} + \\delta)

    Parameters
    ----------
    predictions : PyTensor tensor
        Class scores, classes on the last axis (usually a matrix).
    targets : PyTensor tensor or array
        Integer class indices with one dimension fewer than `predictions`, or a one-hot
        encoding of the same shape (any nonzero entry marks the true class).
    delta : scalar, optional
        The margin (default 1).

    Returns
    -------
    PyTensor tensor
        The loss for every example: `predictions` without its last axis.

    Raises
    ------
    ValueError
        If the ranks of `targets` and `predictions` do not match one of the two forms
        (the error is also a ``TypeError``, as in Lasagne).

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.objectives import multiclass_hinge_loss
    >>> p, t = T.matrix("p"), T.ivector("t")
    >>> f = pytensor.function([p, t], multiclass_hinge_loss(p, t))
    >>> scores = np.float32([[3.0, 1.0, 0.5], [1.0, 1.5, 0.0]])
    >>> f(scores, np.int32([0, 0]))
    array([0. , 1.5], dtype=float32)
    """
    predictions = _as_expression(predictions)
    targets = _as_expression(targets)
    _check_class_ranks(predictions, targets, "multiclass_hinge_loss")
    if targets.ndim == predictions.ndim:
        is_true_class = T.neq(targets, 0)
    else:
        classes = _indices(predictions.shape[-1])
        is_true_class = T.eq(classes, T.shape_padright(targets))
    true_score = T.sum(T.switch(is_true_class, predictions, 0), axis=-1)
    best_wrong_score = T.max(T.switch(is_true_class, -np.inf, predictions), axis=-1)
    return T.maximum(0, best_wrong_score - true_score + delta)


def huber_loss(predictions, targets, delta=1):
    """Elementwise Huber loss: squared near the target, linear beyond `delta`.

    .. math::
        L = \\frac{1}{2} (p - t)^2 \\quad \\text{if } |p - t| \\le \\delta, \\qquad
        L = \\delta (|p - t| - \\delta / 2) \\quad \\text{otherwise}

    Parameters
    ----------
    predictions, targets : PyTensor tensor or array
        Same shapes (or a vector of targets for an ``(n, 1)`` column of predictions).
    delta : scalar, optional
        Where the loss switches from quadratic to linear (default 1).

    Returns
    -------
    PyTensor tensor
        The loss for every element.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.objectives import huber_loss
    >>> p, t = T.vector("p"), T.vector("t")
    >>> f = pytensor.function([p, t], huber_loss(p, t))
    >>> f(np.float32([0.5, 3.0]), np.float32([0.0, 0.0]))
    array([0.125, 2.5  ], dtype=float32)
    """
    predictions, targets = _align_targets(predictions, targets)
    abs_diff = abs(targets - predictions)
    quadratic = 0.5 * T.square(targets - predictions)
    linear = delta * (abs_diff - delta / 2.0)
    return T.switch(abs_diff <= delta, quadratic, linear)


def aggregate(loss, weights=None, mode="mean"):
    """Reduce an elementwise loss to a scalar, optionally weighting the elements.

    Parameters
    ----------
    loss : PyTensor tensor
        The elementwise loss, as returned by the functions of this module.
    weights : PyTensor tensor or array, optional
        Weights broadcastable to `loss`, e.g. a 0/1 mask for padded sequence steps.
    mode : {'mean', 'sum', 'normalized_sum'}, optional
        ``'mean'`` (default): mean of the (weighted) elements. ``'sum'``: their sum.
        ``'normalized_sum'``: their sum divided by the sum of the weights, which must
        then be given.

    Returns
    -------
    PyTensor scalar
        The aggregated loss.

    Raises
    ------
    ValueError
        For an unknown `mode`, or ``mode='normalized_sum'`` without weights.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.objectives import aggregate
    >>> loss, w = T.vector("loss"), T.vector("w")
    >>> f = pytensor.function([loss, w], aggregate(loss, w, mode="normalized_sum"))
    >>> float(f(np.float32([1.0, 2.0, 9.0]), np.float32([1, 1, 0])))
    1.5
    """
    if mode not in ("mean", "sum", "normalized_sum"):
        raise ValueError(
            f"aggregate mode must be 'mean', 'sum' or 'normalized_sum'; "
            f"got mode={mode!r}"
        )
    loss = _as_expression(loss)
    if weights is not None:
        weights = _as_expression(weights)
        loss = loss * weights
    if mode == "mean":
        return loss.mean()
    if mode == "sum":
        return loss.sum()
    if weights is None:
        raise ValueError(
            "aggregate with mode='normalized_sum' divides by the sum of the weights, "
            "so it needs weights; got weights=None"
        )
    return loss.sum() / weights.sum()


def binary_accuracy(predictions, targets, threshold=0.5):
    """Elementwise correctness of thresholded binary predictions.

    A prediction counts as class 1 when it is at least `threshold`.

    Parameters
    ----------
    predictions : PyTensor tensor
        Predicted probabilities (or scores, with a matching `threshold`).
    targets : PyTensor tensor or array
        Targets in {0, 1}, same shape as `predictions` (or a vector for an ``(n, 1)``
        column).
    threshold : scalar, optional
        The decision threshold (default 0.5).

    Returns
    -------
    PyTensor tensor of bool
        True where the thresholded prediction equals the target; take the mean for the
        accuracy.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.objectives import binary_accuracy
    >>> p, t = T.vector("p"), T.vector("t")
    >>> f = pytensor.function([p, t], binary_accuracy(p, t))
    >>> f(np.float32([0.9, 0.4, 0.6]), np.float32([1, 0, 0]))
    array([ True,  True, False])
    """
    predictions, targets = _align_targets(predictions, targets)
    return T.eq(T.ge(predictions, threshold), targets)


def categorical_accuracy(predictions, targets, top_k=1):
    """Per-example correctness of class predictions, optionally within the top `k`.

    Parameters
    ----------
    predictions : PyTensor tensor
        Class scores or probabilities, classes on the last axis.
    targets : PyTensor tensor or array
        Integer class indices with one dimension fewer than `predictions`, or a one-hot
        (or soft) encoding of the same shape, whose argmax is taken as the true class.
    top_k : int, optional
        An example counts as correct when its true class is among the `top_k` highest
        scores (default 1: the best score only).

    Returns
    -------
    PyTensor tensor of bool
        One value per example; take the mean for the accuracy.

    Raises
    ------
    ValueError
        If the ranks of `targets` and `predictions` do not match one of the two forms
        (the error is also a ``TypeError``, as in Lasagne), or `top_k` is not a positive
        integer.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.objectives import categorical_accuracy
    >>> p, t = T.matrix("p"), T.ivector("t")
    >>> scores = np.float32([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    >>> f = pytensor.function([p, t], categorical_accuracy(p, t))
    >>> f(scores, np.int32([0, 1]))
    array([ True, False])
    >>> f2 = pytensor.function([p, t], categorical_accuracy(p, t, top_k=2))
    >>> f2(scores, np.int32([0, 1]))
    array([ True,  True])
    """
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"categorical_accuracy needs a positive integer top_k; "
                         f"got top_k={top_k!r}")
    predictions = _as_expression(predictions)
    targets = _as_expression(targets)
    if targets.ndim == predictions.ndim:
        targets = T.argmax(targets, axis=-1)
    _check_class_ranks(predictions, targets, "categorical_accuracy")
    if top_k == 1:
        return T.eq(T.argmax(predictions, axis=-1), targets)
    best_k = T.argsort(predictions, axis=-1)[..., -int(top_k):]
    return T.any(T.eq(best_k, T.shape_padright(targets)), axis=-1)
