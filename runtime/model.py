"""A loaded bundle you can call: :func:`load`, :class:`Model` and :class:`TensorSpec`."""
import copy
import dataclasses
import os
from collections.abc import Mapping

import numpy as np

from . import bundle, kernels
from .errors import BundleError, InputError
from .layers import layer_class

__all__ = ["load", "Model", "TensorSpec"]


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A model input or output.

    Attributes
    ----------
    name : str
        The layer's name: the key in ``run``'s feeds and results.
    shape : tuple of int or None
        The size of each axis; None for a free axis (usually the batch).
    dtype : numpy.dtype
        The dtype the runtime converts inputs to, or computes outputs in.
    """

    name: str
    shape: tuple
    dtype: np.dtype

    def __str__(self):
        return f"{self.name}: {self.dtype.name} {_shape_text(self.shape)}"


def _shape_text(shape):
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + (
        ",)" if len(shape) == 1 else ")")


def _axes(count):
    return f"{count} axis" if count == 1 else f"{count} axes"


def _spec(entry):
    return TensorSpec(entry["name"], tuple(entry["shape"]), np.dtype(entry["dtype"]))


def _read_only(array, dtype):
    array = array.astype(dtype, copy=False)
    array.flags.writeable = False
    return array


def load(path, verify=True, mmap=False):
    """Load a bundle from ``path`` (or a binary file object); ``verify=False`` skips the
    sha256 checks; ``mmap=True`` memory-maps the weights read-only instead of copying
    them (see :func:`runtime.bundle.read_bundle` and ``docs/edge.md``).

    Raises :class:`BundleError` for anything wrong with the file.

    >>> import runtime
    >>> model = runtime.load(bundle_path)                # doctest: +SKIP
    >>> model.inputs                                     # doctest: +SKIP
    [TensorSpec(name='input', shape=(None, 64), dtype=dtype('float32'))]
    """
    manifest, arrays = bundle.read_bundle(path, verify=verify, mmap=mmap)
    return Model(manifest, arrays, path=path)


class Model:
    """A network from a bundle, evaluated with numpy.

    Build one with :func:`load`. A model holds no state that changes between calls, so
    one instance can serve any number of threads.

    Parameters
    ----------
    manifest : dict
        A manifest (see ``docs/bundle-format.md``); validated again here.
    arrays : dict of str to numpy.ndarray
        The arrays the manifest lists. They are converted to the model's dtype and
        made read-only (in place when they already have that dtype).
    path : str, os.PathLike or file object, optional
        Where the bundle came from, for messages (``Model.path`` is None for a file
        object).

    Examples
    --------
    A one-layer model built in memory (``runtime.load(path)`` is the usual way):

    >>> from runtime.bundle import array_digest
    >>> W = np.array([[1, 0, 2], [0, 1, 2]], dtype=np.float32)
    >>> manifest = {
    ...     "format": "forge-bundle", "format_version": 1, "dtype": "float32",
    ...     "inputs": [{"name": "x", "shape": [None, 2], "dtype": "float32"}],
    ...     "outputs": [{"name": "y", "shape": [None, 3], "dtype": "float32"}],
    ...     "layers": [
    ...         {"name": "x", "type": "InputLayer", "inputs": [], "params": {},
    ...          "config": {"shape": [None, 2]}, "output_shape": [None, 2]},
    ...         {"name": "y", "type": "DenseLayer", "inputs": ["x"],
    ...          "config": {"num_units": 3, "num_leading_axes": 1,
    ...                     "nonlinearity": {"name": "rectify"}},
    ...          "params": {"W": "y.W", "b": None}, "output_shape": [None, 3]}],
    ...     "arrays": {"y.W": {"shape": [2, 3], "dtype": "float32",
    ...                        "sha256": array_digest(W)}}}
    >>> model = Model(manifest, {"y.W": W})
    >>> model([[1, -2]])
    array([[1., 0., 0.]], dtype=float32)
    >>> model.run({"x": [[3, 1]]}, outputs=["x", "y"])
    {'x': array([[3., 1.]], dtype=float32), 'y': array([[3., 1., 8.]], dtype=float32)}
    >>> model.inputs
    [TensorSpec(name='x', shape=(None, 2), dtype=dtype('float32'))]
    """

    def __init__(self, manifest, arrays, *, path=None):
        self.path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
        try:
            bundle.validate_manifest(manifest)
            bundle.check_arrays(manifest, arrays, digests=False)
            self._manifest = copy.deepcopy(manifest)
            self._dtype = np.dtype(manifest.get("dtype", "float32"))
            params = {key: _read_only(a, self._dtype) for key, a in arrays.items()}
            self._layers = {}
            for entry in manifest["layers"]:
                layer = layer_class(entry["type"]).from_config(
                    entry["name"], entry["config"],
                    {p: None if key is None else params[key]
                     for p, key in entry["params"].items()},
                    entry["inputs"])
                self._layers[entry["name"]] = layer
        except BundleError as exc:
            if self.path is None:
                raise
            raise BundleError(f"bundle {self.path!r}: {exc}") from None
        self._shapes = {e["name"]: tuple(e["output_shape"]) for e in manifest["layers"]}
        self._inputs = tuple(_spec(s) for s in manifest["inputs"])
        self._outputs = tuple(_spec(s) for s in manifest["outputs"])
        # each layer's distinct sources, once: a layer may read one source twice
        self._sources = {name: tuple(dict.fromkeys(layer.inputs))
                         for name, layer in self._layers.items()}
        self._input_specs = {s.name: s for s in self._inputs}
        self._default_names = [s.name for s in self._outputs]
        self._default_steps = self._steps(self._default_names)

    # -- what the bundle declares ----------------------------------------------------

    @property
    def inputs(self):
        """list of TensorSpec: the inputs ``run`` takes, in the bundle's order."""
        return list(self._inputs)

    @property
    def outputs(self):
        """list of TensorSpec: the outputs ``run`` returns by default."""
        return list(self._outputs)

    @property
    def dtype(self):
        """numpy.dtype: the compute dtype (float32 unless the bundle says float64)."""
        return self._dtype

    @property
    def format_version(self):
        """int: the bundle's format version."""
        return self._manifest["format_version"]

    @property
    def metadata(self):
        """dict: the user's metadata (a copy), e.g. ``{"labels": [...]}``."""
        return copy.deepcopy(self._manifest.get("metadata", {}))

    @property
    def manifest(self):
        """dict: the whole manifest (a copy)."""
        return copy.deepcopy(self._manifest)

    @property
    def layers(self):
        """dict: layer name -> callable layer, in topological order."""
        return dict(self._layers)

    # -- running ---------------------------------------------------------------------

    def __call__(self, x):
        """Run a one-input, one-output model on ``x`` and return the output array."""
        if len(self._inputs) != 1 or len(self._outputs) != 1:
            raise TypeError(
                f"model(x) needs a model with one input and one output; this one has "
                f"inputs {[s.name for s in self._inputs]} and outputs "
                f"{[s.name for s in self._outputs]}: use model.run({{name: array, ...}}, "
                "outputs=[...]) instead")
        (source,), (target,) = self._inputs, self._outputs
        values = self._execute({source.name: _convert(source, x)}, self._default_steps)
        result = values[target.name]
        return result if result.flags.writeable else result.copy()

    def run(self, feeds, outputs=None):
        """Evaluate the layers ``outputs`` need and return them by name.

        Parameters
        ----------
        feeds : dict of str to array_like
            One array per input the requested outputs depend on, keyed by input name.
            Any real numeric dtype is converted to the input's declared dtype.
        outputs : list of str, optional
            Layers to return: any layer, not only the declared outputs (for
            intermediate features). Default: the declared outputs.

        Returns
        -------
        dict of str to numpy.ndarray
            One fresh array per requested name, in the requested order.

        Raises
        ------
        InputError
            An unknown output name; a missing or unexpected input; an input of the
            wrong rank, the wrong size on a fixed axis, or a non-numeric dtype; or
            inputs whose free axes the layers cannot combine.
        """
        if outputs is None:
            names, steps = self._default_names, self._default_steps
        else:
            names = self._check_output_names(outputs)
            steps = self._steps(names)
        values = self._execute(self._check_feeds(feeds, steps.inputs), steps)
        return {name: values[name] if values[name].flags.writeable else values[name].copy()
                for name in names}

    def warm_up(self):
        """Run every layer once on zeros (each free axis of size 1), so that the first
        real call pays for nothing but its own work.

        Under ``FORGE_KERNELS=auto`` with numba installed, small calls run numpy's
        kernels and large ones import numba on the first call and load (or, on a CPU
        its cache was not built for, compile) each kernel then: hundreds of
        milliseconds, or seconds, inside someone's request. This run goes through
        numba's kernels for every layer that has them
        (:func:`runtime.kernels.numba_for_every_call`), so all of that happens here;
        a model without convolution or pooling imports nothing. The service calls it
        before a model serves.

        >>> model.warm_up()                              # doctest: +SKIP
        """
        feeds = {spec.name: np.zeros([1 if n is None else n for n in spec.shape], spec.dtype)
                 for spec in self._inputs}
        with kernels.numba_for_every_call():
            self.run(feeds, outputs=list(self._layers))

    def _execute(self, values, steps):
        """Run ``steps`` (see :meth:`_steps`) on ``values`` (the converted feeds by input
        name), adding each layer's result; returns ``values``."""
        # IEEE results (inf, nan), as in PyTensor. A new errstate each call: as a
        # decorator one instance would serve every thread, and numpy 1.x keeps the state
        # it restores on the instance
        with np.errstate(all="ignore"):
            for name, layer, sources, done, tail in steps:
                try:
                    result = layer(*[values[s] for s in sources])
                except (ValueError, IndexError) as exc:
                    shapes = ", ".join(str(values[s].shape) for s in sources)
                    raise InputError(f"layer {name!r} ({type(layer).__name__}) cannot take "
                                     f"input of shape {shapes}: {exc}") from exc
                # the usual case, an array with a free batch axis, checked without a loop
                if (type(result) is not np.ndarray or result.shape[1:] != tail  # noqa: E721
                        or not result.ndim):
                    result = self._checked(name, layer, result)
                values[name] = result
                for source in done:
                    del values[source]  # free memory as soon as possible
        return values

    def _steps(self, names):
        """What ``run`` does to compute ``names``: one ``(name, layer, sources, done,
        tail)`` per layer they depend on, in topological order, ``done`` being the sources
        no later step reads (freed after this one) and ``tail`` the declared shape after a
        free batch axis (None without one); inputs are fed, not computed. The list's
        ``inputs`` attribute is the inputs it reads."""
        needed, stack = set(), list(names)
        while stack:
            name = stack.pop()
            if name not in needed:
                needed.add(name)
                stack.extend(self._layers[name].inputs)
        plan = [name for name in self._layers if name in needed]
        last_use = {source: step for step, name in enumerate(plan)
                    for source in self._sources[name]}
        steps = _Steps(
            (name, self._layers[name], self._layers[name].inputs,
             tuple(s for s in self._sources[name] if last_use[s] == step and s not in names),
             self._shapes[name][1:] if self._shapes[name][:1] == (None,) else None)
            for step, name in enumerate(plan) if name not in self._input_specs)
        steps.inputs = [s for s in self._inputs if s.name in needed]
        return steps

    def _check_output_names(self, outputs):
        if isinstance(outputs, str):
            raise InputError(f"outputs must be a list of layer names, got the string "
                             f"{outputs!r}; use outputs=[{outputs!r}]")
        names = list(dict.fromkeys(outputs))
        for name in names:
            if name not in self._layers:
                raise InputError(f"unknown output {name!r}; outputs can name any layer: "
                                 f"{', '.join(self._layers)}")
        return names

    def _check_feeds(self, feeds, needed):
        if not isinstance(feeds, Mapping):
            raise InputError(f"feeds must be a dict of input name -> array, got "
                             f"{type(feeds).__name__}; for a one-input model, model(x) "
                             "also works")
        specs = self._input_specs
        for name in feeds:
            if name not in specs:
                raise InputError(f"unexpected input {name!r}; this model's inputs are "
                                 f"{self._inputs_text()}")
        for spec in needed:
            if spec.name not in feeds:
                raise InputError(f"missing input {spec.name!r} (expected "
                                 f"{spec.dtype.name} {_shape_text(spec.shape)}); this "
                                 f"model's inputs are {self._inputs_text()}")
        return {name: _convert(specs[name], value) for name, value in feeds.items()}

    def _inputs_text(self):
        return "[" + "; ".join(str(s) for s in self._inputs) + "]"

    def _checked(self, name, layer, result):
        """``result`` as an array of the shape the bundle declares for layer ``name``, or
        :class:`BundleError`."""
        result = np.asarray(result)
        declared = self._shapes[name]
        if result.ndim != len(declared) or any(
                d is not None and d != s for d, s in zip(declared, result.shape)):
            raise BundleError(
                f"layer {name!r} ({type(layer).__name__}) computed shape {result.shape}, "
                f"but the bundle declares {_shape_text(declared)}: the bundle and this "
                "runtime disagree about what the layer does")
        return result

    # -- describing ------------------------------------------------------------------

    @property
    def num_params(self):
        """int: the number of scalar parameters (a shared array counts once)."""
        return sum(int(np.prod(r["shape"])) for r in self._manifest["arrays"].values())

    def describe(self):
        """A readable summary: inputs, outputs, and a table of the layers.

        >>> print(model.describe())                      # doctest: +SKIP
        Model 'digits.npz': format_version 1, float32, 2,410 parameters
        ...
        """
        rows = [("layer", "type", "inputs", "output shape", "params")]
        for name, layer in self._layers.items():
            rows.append((name, type(layer).__name__, ", ".join(layer.inputs) or "-",
                         _shape_text(self._shapes[name]), f"{layer.num_params:,}"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [f"Model {self.path or '(in memory)'!r}: format_version "
                 f"{self.format_version}, {self._dtype.name}, {self.num_params:,} parameters"]
        lines += ["inputs:"] + [f"  {s}" for s in self._inputs]
        lines += ["outputs:"] + [f"  {s}" for s in self._outputs]
        lines += ["layers:"] + ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths))
                                .rstrip() for row in rows]
        return "\n".join(lines)

    def __repr__(self):
        return (f"<Model {self.path or '(in memory)'!r} inputs={[str(s) for s in self._inputs]}"
                f" outputs={[str(s) for s in self._outputs]} layers={len(self._layers)}>")


class _Steps(list):
    """A list of ``Model.run`` steps with an ``inputs`` attribute (see ``Model._steps``)."""


def _convert(spec, value):
    """``value`` as a read-only array of ``spec``'s dtype, or :class:`InputError`."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"input {spec.name!r}: expected {spec.dtype.name} "
                         f"{_shape_text(spec.shape)}, got a value that is not an array "
                         f"({exc})") from None
    if array.dtype.kind not in "biuf":
        raise InputError(f"input {spec.name!r}: expected real numbers ({spec.dtype.name} "
                         f"{_shape_text(spec.shape)}), got dtype {array.dtype}")
    if array.ndim != len(spec.shape):
        raise InputError(f"input {spec.name!r}: expected shape {_shape_text(spec.shape)} "
                         f"({_axes(len(spec.shape))}), got shape {_shape_text(array.shape)} "
                         f"({_axes(array.ndim)})")
    if not (spec.shape[:1] == (None,) and array.shape[1:] == spec.shape[1:]):  # a batch
        for axis, (want, got) in enumerate(zip(spec.shape, array.shape)):
            if want is not None and want != got:
                raise InputError(f"input {spec.name!r}: expected shape "
                                 f"{_shape_text(spec.shape)}, got {_shape_text(array.shape)}"
                                 f": axis {axis} must have size {want}, not {got}")
    array = array.astype(spec.dtype, copy=False).view()
    array.setflags(write=False)  # layers must never write into the caller's data
    return array
