"""Score bundles on Dask: :func:`predict` maps a Dask array or DataFrame through a model.

An optional integration (``pip install 'forge-nn[dask]'``): ``import runtime`` never
imports this module, and this module is the only part of the runtime that imports Dask.

Each task receives the bundle's *path* and a fingerprint of its manifest, never the
weights. The first task in a process loads the bundle and keeps it in a per-process cache
(:func:`cached_model`, keyed by path, size, modification time and inode); every later task in
that process reuses it. Workers therefore need the bundle at the same path (a shared or
copied file); a worker whose file differs from the one :func:`predict` read refuses to
score with it.

Examples
--------
>>> import dask.array as da
>>> from runtime import dask as rdask
>>> x = da.random.random((100_000, 64), chunks=(10_000, 64)).astype("float32")
>>> result = rdask.predict("digits.npz", x)                # doctest: +SKIP
>>> result["output"].compute(scheduler="threads").shape    # doctest: +SKIP
(100000, 10)
>>> frame = rdask.predict("digits.npz", ddf)               # doctest: +SKIP
>>> list(frame.columns)[:3]                                # doctest: +SKIP
['0', '1', '2']
"""
import collections
import hashlib
import json
import os
import threading

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("runtime.dask needs Dask: pip install 'forge-nn[dask]' "
                      "(dask[array,dataframe] and distributed)") from exc

from .errors import BundleError, InputError
from .model import load

__all__ = ["predict", "cached_model", "cache_info", "output_columns", "CACHE_SIZE"]

#: Models kept per process (least recently used first out).
CACHE_SIZE = 4

_cache = collections.OrderedDict()  # (path, size, mtime_ns, ino, ctime_ns) -> (model, fp)
_stats = collections.defaultdict(lambda: {"loads": 0, "calls": 0})
_lock = threading.Lock()


def _fingerprint(manifest):
    """A digest of the whole manifest, which lists every array's sha256."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cached_model(path, fingerprint=None):
    """This process's :class:`~runtime.Model` for ``path``, loaded on first use.

    Returns ``(model, fingerprint)``. The cache key is the absolute path with the file's
    size and modification time, so a replaced file is loaded again. With
    ``fingerprint``, a model whose manifest differs raises :class:`BundleError`.
    """
    path = os.path.abspath(os.fspath(path))
    stat = os.stat(path)
    # the inode and ctime change when forge's atomic write replaces the file, even where
    # the new one has the same size and (coarse) mtime
    key = (path, stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)
    with _lock:
        _stats[path]["calls"] += 1
        if key in _cache:
            _cache.move_to_end(key)
        else:
            model = load(path)
            _cache[key] = (model, _fingerprint(model.manifest))
            _stats[path]["loads"] += 1
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
        model, found = _cache[key]
    if fingerprint is not None and found != fingerprint:
        raise BundleError(f"bundle {path!r} on this worker (manifest fingerprint {found}) "
                          f"is not the one predict() read (fingerprint {fingerprint}); "
                          "give every worker the same file")
    return model, found


def cache_info():
    """``{path: {"loads": n, "calls": m}}`` for this process (``client.run(cache_info)``
    asks every worker)."""
    with _lock:
        return {path: dict(counts) for path, counts in _stats.items()}


def output_columns(model, names, shapes):
    """DataFrame column names for the outputs ``names`` with per-row ``shapes``.

    One output of shape ``(k,)`` with ``k`` labels in the metadata gets the labels;
    otherwise an output gets ``name`` (one value per row) or ``name_0``, ``name_1``, ...
    over its values flattened in C order.
    """
    labels = model.metadata.get("labels")
    if (len(names) == 1 and isinstance(labels, list) and len(shapes[0]) == 1
            and len(labels) == shapes[0][0]):
        return [str(label) for label in labels]
    columns = []
    for name, shape in zip(names, shapes):
        size = int(np.prod(shape))
        columns += [name] if shape == () else [f"{name}_{j}" for j in range(size)]
    return columns


# -- the tasks -----------------------------------------------------------------------

def _run_block(path, fingerprint, feeds, names):
    model, _ = cached_model(path, fingerprint)
    return model.run(feeds, names)


def _run_partition(frame, path, fingerprint, input_spec, columns, names, out_columns):
    import pandas as pd

    model, _ = cached_model(path, fingerprint)
    rows = len(frame)
    x = frame[columns].to_numpy(dtype=input_spec.dtype).reshape(
        (rows,) + tuple(input_spec.shape[1:]))
    results = model.run({input_spec.name: x}, names)
    values = [results[name].reshape(rows, -1) for name in names]
    if len({v.dtype for v in values}) == 1:
        return pd.DataFrame(np.concatenate(values, axis=1), index=frame.index,
                            columns=out_columns)
    parts, start = {}, 0
    for v in values:
        for j in range(v.shape[1]):
            parts[out_columns[start + j]] = v[:, j]
        start += v.shape[1]
    return pd.DataFrame(parts, index=frame.index)


# -- building the collections --------------------------------------------------------

def _input_spec(model, input_name):
    specs = {s.name: s for s in model.inputs}
    if input_name is None:
        if len(specs) != 1:
            raise InputError(f"the model has inputs {list(specs)}; pass input_name=... "
                             "or a dict of input name -> Dask array")
        return model.inputs[0]
    if input_name not in specs:
        raise InputError(f"unknown input_name {input_name!r}; the model's inputs are "
                         f"{list(specs)}")
    return specs[input_name]


def _probe(model, shapes, names):
    """Run one row of zeros to learn each output's per-row shape and dtype."""
    specs = {s.name: s for s in model.inputs}
    feeds = {name: np.zeros((1,) + tuple(shape), specs[name].dtype if name in specs else "f4")
             for name, shape in shapes.items()}
    results = model.run(feeds, names)
    return [(results[n].shape[1:], results[n].dtype) for n in names]


def _predict_arrays(path, fp, model, arrays, names):
    first = next(iter(arrays.values()))
    rows = first.chunks[0]
    for name, a in arrays.items():
        if a.ndim < 1 or a.shape[0] != first.shape[0]:
            raise InputError(f"input {name!r} has shape {a.shape}; every input needs "
                             f"the same batch size ({first.shape[0]}) on axis 0")
    arrays = {name: a.rechunk((rows,) + tuple((n,) for n in a.shape[1:]))
              for name, a in arrays.items()}
    probed = _probe(model, {n: a.shape[1:] for n, a in arrays.items()}, names)
    blocks = {name: a.to_delayed().ravel() for name, a in arrays.items()}
    runs = [dask.delayed(_run_block, pure=True)(
        path, fp, {name: b[i] for name, b in blocks.items()}, names)
        for i in range(len(rows))]
    result = {}
    for name, (shape, dtype) in zip(names, probed):
        meta = np.empty((0,) * (1 + len(shape)), dtype)
        result[name] = da.concatenate(
            [da.from_delayed(run[name], (n,) + shape, dtype=dtype, meta=meta)
             for run, n in zip(runs, rows)], axis=0)
    return result


def _predict_frame(path, fp, model, frame, names, spec, columns):
    import pandas as pd

    columns = list(frame.columns) if columns is None else list(columns)
    width = int(np.prod(spec.shape[1:]))
    if None in spec.shape[1:] or width != len(columns):
        raise InputError(f"input {spec.name!r} takes rows of shape "
                         f"{tuple(spec.shape[1:])}, but {len(columns)} feature columns "
                         f"were given: {columns[:8]}")
    probed = _probe(model, {spec.name: spec.shape[1:]}, names)
    out_columns = output_columns(model, names, [shape for shape, _ in probed])
    dtypes = [dtype for shape, dtype in probed for _ in range(int(np.prod(shape)))]
    meta = pd.DataFrame({c: np.empty(0, dtype) for c, dtype in zip(out_columns, dtypes)})
    meta.index = frame._meta.index
    return frame.map_partitions(_run_partition, path, fp, spec, columns, names,
                                out_columns, meta=meta)


_clients = {}  # address -> the Client predict() opened for it


def _client(client):
    if not isinstance(client, str):
        return client
    if client not in _clients or _clients[client].status != "running":
        from distributed import Client

        _clients[client] = Client(client, timeout="30s")  # the default, as Client(address)
    return _clients[client]


def predict(bundle_path, data, outputs=None, input_name=None, client=None, columns=None):
    """Score ``data`` with the bundle at ``bundle_path``; return Dask collections.

    Parameters
    ----------
    bundle_path : str or os.PathLike
        The bundle. Workers open it by this (absolute) path, once per process.
    data : dask.array.Array, dict of str to dask.array.Array, or dask.dataframe.DataFrame
        An array whose axis 0 is the batch (chunked as you like; the other axes are
        rechunked to one chunk each), a dict of such arrays by input name (for several
        inputs; they are given the first array's row chunks), or a DataFrame with one
        row per sample.
    outputs : list of str, optional
        Layers to return, as in :meth:`runtime.Model.run` (default: the declared
        outputs).
    input_name : str, optional
        The input ``data`` feeds (needed when the model has several inputs).
    client : distributed.Client or str, optional
        Persist the result on this cluster and return collections backed by that
        client's futures: gather them with ``client.compute(...)``, or ``.compute()``
        while it is the default client. For an address, ``Client(address)`` is opened
        once per process and becomes the default client, as it always does. Default: lazy collections, computed
        by whichever scheduler you pick (``.compute(scheduler="threads")``, an active
        ``Client``, ...).
    columns : list of str, optional
        The DataFrame's feature columns, in the model's input order (default: all).

    Returns
    -------
    dict of str to dask.array.Array, or dask.dataframe.DataFrame
        For arrays: one array per output with the input's row chunks, the output's
        per-row shape and dtype. For a DataFrame: the outputs as columns (see
        :func:`output_columns`), with the input's partitions and index.
    """
    path = os.path.abspath(os.fspath(bundle_path))
    model, fp = cached_model(path)
    names = [s.name for s in model.outputs] if outputs is None else outputs
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise InputError(f"outputs must be a list of layer names, got {outputs!r}")
    names = list(dict.fromkeys(names))
    if isinstance(data, da.Array):
        result = _predict_arrays(path, fp, model,
                                 {_input_spec(model, input_name).name: data}, names)
    elif isinstance(data, dict):
        result = _predict_arrays(path, fp, model, {n: da.asarray(a) for n, a in data.items()},
                                 names)
    else:
        import dask.dataframe as dd

        if not isinstance(data, dd.DataFrame):
            raise TypeError(f"data must be a Dask array, a dict of them, or a Dask "
                            f"DataFrame, got {type(data).__name__}")
        result = _predict_frame(path, fp, model, data, names,
                                _input_spec(model, input_name), columns)
    client = _client(client)
    if client is None:
        return result
    if isinstance(result, dict):
        return dict(zip(result, client.persist(list(result.values()))))
    return client.persist(result)
