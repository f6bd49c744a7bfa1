"""Small helpers shared by the layers, initializers and user code."""
import numbers
import re

import numpy as np
import pytensor
import pytensor.tensor as T
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable

__all__ = [
    "floatX", "shared_empty", "as_theano_expression", "collect_shared_vars", "one_hot",
    "unique", "as_tuple", "compute_norms", "create_param", "int_types", "inspect_kwargs",
    "load_param_values",
]

#: The types that count as integers in shapes and sizes (Python and numpy ints).
int_types = (numbers.Integral, np.integer)


def floatX(arr):
    """Return ``arr`` as a numpy array of dtype ``pytensor.config.floatX``.

    Examples
    --------
    >>> from forge.utils import floatX
    >>> floatX([1, 2]).dtype
    dtype('float32')
    """
    return np.asarray(arr, dtype=pytensor.config.floatX)


def shared_empty(dim=2, dtype=None):
    """Return a shared variable of ``dim`` dimensions holding a single zero.

    Useful as a placeholder whose value is set later (``set_value``).

    Parameters
    ----------
    dim : int
        Number of dimensions; every one has size 1.
    dtype : str or None
        Data type; ``pytensor.config.floatX`` by default.
    """
    if dtype is None:
        dtype = pytensor.config.floatX
    return pytensor.shared(np.zeros((1,) * dim, dtype=dtype))


def as_theano_expression(input):
    """Return ``input`` as a PyTensor expression.

    A PyTensor variable is returned as is; anything numpy can turn into an array
    becomes a constant.

    Raises
    ------
    TypeError
        If ``input`` is neither.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.utils import as_theano_expression
    >>> as_theano_expression(np.ones((2, 3))).ndim
    2
    """
    if isinstance(input, Variable):
        return input
    try:
        return T.constant(input)
    except Exception as exc:
        raise TypeError(
            f"expected a PyTensor expression or something numpy can turn into an "
            f"array, got {type(input).__name__}: {input!r}"
        ) from exc


def collect_shared_vars(expressions):
    """Return the shared variables that one expression or a list of them depend on.

    The variables are listed once each, in the order they are first met when walking
    the expressions in order, each from its output back to its inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.utils import collect_shared_vars
    >>> a = pytensor.shared(np.ones(2), name="a")
    >>> b = pytensor.shared(np.ones(2), name="b")
    >>> [v.name for v in collect_shared_vars([a * T.exp(b), a])]
    ['a', 'b']
    """
    if isinstance(expressions, Variable):
        expressions = [expressions]
    found, seen = [], set()
    for expression in expressions:
        stack = [expression]
        while stack:
            var = stack.pop()
            if var in seen:
                continue
            seen.add(var)
            if isinstance(var, SharedVariable):
                found.append(var)
            elif var.owner is not None:
                # Reversed, so that the first input is walked first.
                stack.extend(reversed(var.owner.inputs))
    return found


def one_hot(x, m=None):
    """One-hot encode a vector of class indices.

    Parameters
    ----------
    x : PyTensor integer vector
        Class indices.
    m : int or scalar expression, optional
        Number of classes; ``max(x) + 1`` by default.

    Returns
    -------
    PyTensor matrix of shape ``(len(x), m)``, in floatX.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.utils import one_hot
    >>> one_hot(np.array([0, 2]), 3).eval()
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    x = as_theano_expression(x)
    if m is None:
        m = T.cast(T.max(x) + 1, "int32")
    return T.eye(m)[T.cast(x, "int32")]


def unique(items):
    """Return the items of ``items`` without repetitions, keeping their first order.

    Examples
    --------
    >>> from forge.utils import unique
    >>> unique([3, 1, 3, 2, 1])
    [3, 1, 2]
    """
    seen = set()
    result = []
    for item in items:
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result


def as_tuple(x, N, t=None):
    """Return ``x`` as a tuple of ``N`` elements.

    Parameters
    ----------
    x : value or iterable
        A single value (repeated ``N`` times) or an iterable of ``N`` values.
    N : int
        Length of the result.
    t : type or tuple of types, optional
        If given, every element must be an instance of it.

    Raises
    ------
    TypeError
        If ``t`` is given and an element is not of that type.
    ValueError
        If ``x`` is an iterable of a length other than ``N``.

    Examples
    --------
    >>> from forge.utils import as_tuple
    >>> as_tuple(3, 2)
    (3, 3)
    >>> as_tuple([1, 2], 2, int)
    (1, 2)
    """
    try:
        result = tuple(x)
    except TypeError:
        result = (x,) * N
    if t is not None and not all(isinstance(v, t) for v in result):
        names = t.__name__ if isinstance(t, type) else " or ".join(s.__name__ for s in t)
        raise TypeError(f"expected a single {names} or an iterable of {N} of them, got {x!r}")
    if len(result) != N:
        raise ValueError(f"expected a single value or an iterable of {N} values, got {x!r}")
    return result


def compute_norms(array, norm_axes=None):
    """Return the L2 norms of the slices of a weight array (numpy or PyTensor).

    Parameters
    ----------
    array : numpy.ndarray or PyTensor expression
        The weights.
    norm_axes : sequence of ints, optional
        Axes to sum over. By default, as Lasagne: none for a vector (the absolute
        values), axis 0 for a matrix (the norm of each column, i.e. of each unit's
        incoming weights), and every axis but the first for 3- to 5-dimensional arrays
        (convolution filters).

    Examples
    --------
    >>> import numpy as np
    >>> from forge.utils import compute_norms
    >>> compute_norms(np.array([[3., 0.], [4., 1.]]))
    array([5., 1.])
    """
    ndim = array.ndim
    if norm_axes is not None:
        sum_over = tuple(norm_axes)
    elif ndim == 1:
        sum_over = ()
    elif ndim == 2:
        sum_over = (0,)
    elif ndim in (3, 4, 5):
        sum_over = tuple(range(1, ndim))
    else:
        raise ValueError(
            f"cannot pick default norm axes for a {ndim}-dimensional array; "
            f"pass norm_axes explicitly"
        )

    if isinstance(array, Variable):
        if not sum_over:
            return T.abs(array)
        return T.sqrt(T.sum(array**2, axis=sum_over))
    if isinstance(array, np.ndarray):
        if not sum_over:
            return np.abs(array)
        return np.sqrt(np.sum(array**2, axis=sum_over))
    raise TypeError(
        f"expected a numpy array or a PyTensor expression, got {type(array).__name__}"
    )


def _describe_shape(shape):
    return f"{len(shape)} dimensions with shape {shape}"


def create_param(spec, shape, name=None):
    """Create or check a parameter of the given shape.

    Parameters
    ----------
    spec : shared variable, PyTensor expression, numpy.ndarray or callable
        * a shared variable or any PyTensor expression is used as is (after checking
          its number of dimensions, and its shape where PyTensor knows it statically);
          it is named ``name`` unless it already has a name;
        * a numpy array (or a number, for ``shape=()``) must have exactly ``shape``
          and becomes a new shared variable;
        * a callable is called with ``shape`` (e.g. a ``forge.init`` initializer) and
          must return a numpy array of that shape or a PyTensor expression.
    shape : tuple of int
        The expected shape; every entry must be positive.
    name : str, optional
        Name for the parameter, used in error messages too.

    Returns
    -------
    PyTensor shared variable or expression

    Raises
    ------
    ValueError
        If the shape has a non-positive entry, or the spec has the wrong shape or
        number of dimensions.
    TypeError
        If the spec is of none of the accepted types.

    Notes
    -----
    As in Lasagne, dimensions of size 1 of a new shared variable are marked
    broadcastable, so expressions that combine the parameter with others broadcast
    along them.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.init import Constant
    >>> from forge.utils import create_param
    >>> W = create_param(Constant(0.5), (3, 2), name="W")
    >>> W.get_value().shape
    (3, 2)
    >>> create_param(np.zeros((3, 2, 1)), (3, 2), name="W")
    Traceback (most recent call last):
    ...
    ValueError: got a 3-dimensional array for parameter 'W', expected 2 dimensions with shape (3, 2)
    """
    shape = tuple(shape)
    what = f"parameter {name!r}" if name is not None else "a parameter"
    if not all(isinstance(s, int_types) and s > 0 for s in shape):
        raise ValueError(
            f"cannot create {what} of shape {shape}: every dimension must be a "
            f"positive integer"
        )
    shape = tuple(int(s) for s in shape)

    source = ""
    if callable(spec) and not isinstance(spec, Variable):
        source = f" from the initializer {spec!r}"
        spec = spec(shape)

    if isinstance(spec, numbers.Number | np.generic) and np.asarray(spec).dtype.kind in "biuf":
        spec = np.asarray(spec)

    if isinstance(spec, np.ndarray):
        if spec.ndim != len(shape):
            raise ValueError(
                f"got a {spec.ndim}-dimensional array{source} for {what}, expected "
                f"{_describe_shape(shape)}"
            )
        if spec.shape != shape:
            raise ValueError(
                f"got an array of shape {spec.shape}{source} for {what}, expected "
                f"shape {shape}"
            )
        static_shape = tuple(1 if s == 1 else None for s in shape)
        return pytensor.shared(spec, name=name, shape=static_shape)

    if isinstance(spec, Variable):
        ndim = getattr(spec, "ndim", None)
        if ndim != len(shape):
            got = "a non-tensor" if ndim is None else f"a {ndim}-dimensional"
            raise ValueError(
                f"got {got} expression {spec}{source} for {what}, expected "
                f"{_describe_shape(shape)}"
            )
        static = spec.type.shape
        if any(s is not None and s != want for s, want in zip(static, shape)):
            raise ValueError(
                f"got an expression of shape {static}{source} for {what}, expected shape "
                f"{shape}"
            )
        if not spec.name:
            spec.name = name
        return spec

    if source:
        raise TypeError(
            f"the initializer {spec!r} returned a {type(spec).__name__} for {what}; "
            f"it must return a numpy array or a PyTensor expression"
        )
    raise TypeError(
        f"cannot create {what} from a {type(spec).__name__} ({spec!r}): expected a "
        f"PyTensor shared variable or expression, a numpy array, or a callable "
        f"initializer"
    )


def inspect_kwargs(func):
    """Return the names of the arguments of ``func`` that have default values.

    Examples
    --------
    >>> from forge.utils import inspect_kwargs
    >>> inspect_kwargs(lambda input, deterministic=False, **kwargs: input)
    ['deterministic']
    """
    import inspect

    parameters = inspect.signature(func).parameters.values()
    return [p.name for p in parameters if p.default is not inspect.Parameter.empty]


_ARRAY_KEY = re.compile(r"arr_(0|[1-9][0-9]*)")


def load_param_values(path):
    """Load parameter values saved the Lasagne way, in their saved order.

    Lasagne-era code saved a network with
    ``np.savez(f, *lasagne.layers.get_all_param_values(net))``, which stores the
    arrays under the keys ``arr_0``, ``arr_1``, ... This reads them back without
    unpickling anything and orders them numerically (``arr_2`` before ``arr_10``), so
    the result can go straight to ``set_all_param_values``.

    Parameters
    ----------
    path : str, os.PathLike or file-like
        The ``.npz`` file.

    Returns
    -------
    list of numpy.ndarray

    Raises
    ------
    ValueError
        If the file holds a key not of the form ``arr_<n>``, or the numbers do not run
        from 0 without gaps, or an array needs unpickling.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from forge.utils import load_param_values
    >>> f = io.BytesIO()
    >>> np.savez(f, *[np.full(2, i) for i in range(12)])
    >>> _ = f.seek(0)
    >>> [int(v[0]) for v in load_param_values(f)]
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    """
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        bad = [k for k in keys if not _ARRAY_KEY.fullmatch(k)]
        if bad:
            raise ValueError(
                f"expected only the keys arr_0, arr_1, ... written by "
                f"np.savez(f, *values), found {sorted(bad)}"
            )
        indices = sorted(int(k[len("arr_"):]) for k in keys)
        if indices != list(range(len(indices))):
            missing = sorted(set(range(max(indices) + 1)) - set(indices))
            raise ValueError(
                f"the keys must run from arr_0 to arr_{len(indices) - 1} without "
                f"gaps; missing {[f'arr_{n}' for n in missing]}"
            )
        return [archive[f"arr_{n}"] for n in indices]
