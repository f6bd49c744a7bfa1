"""The layer base class and the registry that maps bundle type names to classes."""
from types import MappingProxyType

from ..errors import BundleError

__all__ = ["Layer", "register", "layer_class", "known_types", "check", "is_int", "int_list",
           "is_number"]

_REGISTRY = {}


def register(cls):
    """Class decorator: build ``cls`` for layers whose bundle ``type`` is its name."""
    if _REGISTRY.setdefault(cls.__name__, cls) is not cls:
        raise ValueError(f"layer type {cls.__name__!r} is registered twice")
    return cls


def known_types():
    """The layer type names this runtime can build, sorted."""
    return sorted(_REGISTRY)


def layer_class(type_name):
    """The class registered for ``type_name``, or :class:`BundleError` naming it."""
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise BundleError(f"unknown layer type {type_name!r}; this runtime knows "
                          f"{', '.join(known_types())}") from None


def check(condition, message):
    """Raise :class:`BundleError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise BundleError(message)


def is_int(value, minimum=None):
    """Whether ``value`` is an int (not a bool), and at least ``minimum`` if given."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    return ok and (minimum is None or value >= minimum)


def int_list(value, length, minimum, what):
    """``value`` (a JSON list of ``length`` ints >= ``minimum``) as a tuple, or
    :class:`BundleError` naming ``what``."""
    check(isinstance(value, list) and len(value) == length
          and all(is_int(v, minimum) for v in value),
          f"{what} must be a list of {length} int(s) >= {minimum}, got {value!r}")
    return tuple(value)


def is_number(value):
    """Whether ``value`` is a finite int or float (not a bool)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and abs(value) < float("inf"))


class Layer:
    """A callable layer: ``layer(*inputs) -> output``.

    Layers are immutable once built and hold read-only parameters, so one layer can
    serve any number of threads. The constructor validates the configuration (raising
    :class:`BundleError`); ``__call__`` computes the output in the inputs' dtype and
    never writes into its inputs (raising ``ValueError`` for inputs it cannot take).

    Subclasses declare what their bundle entry holds:

    ``config_keys``, ``optional_config``
        The config keys, no others allowed, and those a bundle may leave out (the
        constructor's default applies: keys added to a type after bundles existed).
    ``param_keys``, ``optional_params``
        Parameter names (all required), and those that may be null (absent).
    ``num_inputs``
        The number of inputs, or None for one or more (merge layers).
    """

    config_keys = ()
    optional_config = ()
    param_keys = ()
    optional_params = ()
    num_inputs = 1
    params = MappingProxyType({})

    def __init__(self, name, inputs):
        self.name = name
        self.inputs = tuple(inputs)

    @classmethod
    def from_config(cls, name, config, params, inputs):
        """Build a layer from its bundle entry.

        Parameters
        ----------
        name : str
            The layer's name.
        config : dict
            The entry's ``config``, passed to the constructor as keyword arguments.
        params : dict of str to numpy.ndarray or None
            The entry's parameters as arrays (already in the model's dtype).
        inputs : list of str
            The names of the layers it reads.
        """
        # a class building another's entries (a form of it) names that type
        where = f"layer {name!r} ({getattr(cls, 'bundle_type', cls.__name__)})"
        for what, given, wanted, optional in (
                ("config key", config, cls.config_keys, cls.optional_config),
                ("parameter", params, cls.param_keys, ())):
            missing = [key for key in wanted if key not in given and key not in optional]
            extra = sorted(key for key in given if key not in wanted)
            if missing:
                raise BundleError(f"{where}: missing {what} {missing[0]!r}")
            if extra:
                raise BundleError(f"{where}: unexpected {what} {extra[0]!r}; it takes "
                                  f"{', '.join(wanted) or 'none'}")
        for key in cls.param_keys:
            check(params[key] is not None or key in cls.optional_params,
                  f"{where}: parameter {key!r} is required but null")
        wanted = "one or more" if cls.num_inputs is None else cls.num_inputs
        check(len(inputs) >= 1 if cls.num_inputs is None else len(inputs) == wanted,
              f"{where}: takes {wanted} input(s), got {len(inputs)}")
        try:
            layer = cls(name, inputs, **config, **params)
        except (BundleError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}: {exc}") from None
        layer.params = MappingProxyType({k: v for k, v in params.items() if v is not None})
        return layer

    @property
    def num_params(self):
        """The number of scalar parameters (shared arrays counted in each layer)."""
        return sum(p.size for p in self.params.values())

    def __call__(self, *inputs):
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"
