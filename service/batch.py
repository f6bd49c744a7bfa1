"""``forge predict`` and ``forge inspect``: batch scoring of files, and what a bundle holds.

numpy and :mod:`runtime` only (no FastAPI, no pydantic), so both commands work on an
edge box with the core install. tqdm draws a progress bar when it is installed; Dask is
imported only for ``--scheduler``.

Inputs: ``.npy`` (one array, for a one-input model), ``.npz`` (one array per model input,
named by the input's name) or ``.csv`` (one row per sample, comma-separated numbers; a
first line holding anything that is not a number is a header and is skipped; each row is
reshaped to the input's per-sample shape). Outputs: ``.npy`` (exactly one output) or
``.npz`` (one array per output, named by the layer's name).

Memory stays bounded by ``batch_size``: ``.npy`` inputs and stored ``.npz`` members are
read a chunk of rows at a time from the file, CSV is parsed line by line, and outputs
are written chunk by chunk into ``.npy`` files (preallocated with ``open_memmap``), then
renamed (``.npy``) or zipped (``.npz``) into place atomically.
"""
import contextlib
import csv
import io
import itertools
import json
import os
import shutil
import sys
import tempfile
import zipfile

import numpy as np

import runtime
from runtime.bundle import member_data_offset, read_bundle
from runtime.errors import BundleError, InputError

__all__ = ["predict_file", "inspect_bundle", "format_inspection", "open_input"]


class _Rows:
    """Rows ``[start, stop)`` of a C-ordered .npy array at ``offset`` in an open file,
    read with ``readinto`` (nothing stays mapped)."""

    def __init__(self, handle, offset, shape, dtype):
        self.handle, self.offset, self.shape, self.dtype = handle, offset, shape, dtype
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize

    def __call__(self, start, stop):
        out = np.empty((stop - start,) + tuple(self.shape[1:]), self.dtype)
        self.handle.seek(self.offset + start * self.row_bytes)
        if self.handle.readinto(memoryview(out).cast("B")) != out.nbytes:
            raise InputError(f"{self.handle.name}: the file ends before row {stop}")
        return out


def _npy_rows(handle, offset, what):
    """A :class:`_Rows` for the .npy data starting at ``offset``, or None for a
    Fortran-ordered array (which np.load reads whole)."""
    handle.seek(offset)
    version = np.lib.format.read_magic(handle)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read_header(handle)
    if dtype.hasobject:
        raise InputError(f"{what} holds Python objects; inputs must be numeric arrays")
    if not shape:
        raise InputError(f"{what} is a scalar; inputs need a batch axis")
    return None if fortran else _Rows(handle, handle.tell(), shape, dtype)


def _csv_rows(path, spec):
    """``(rows, read)`` for a CSV file: one sample per line, optional header line."""
    def lines():
        with open(path, newline="") as f:
            for number, row in enumerate(csv.reader(f), 1):
                if row and any(cell.strip() for cell in row):
                    yield number, row

    def numeric(row):
        try:
            [float(cell) for cell in row]
            return True
        except ValueError:
            return False

    first = next(lines(), None)
    header = first is not None and not numeric(first[1])
    count = sum(1 for _ in lines()) - header
    width = int(np.prod(spec.shape[1:]))
    if None in spec.shape[1:]:
        raise InputError(f"input {spec.name!r} has free axes {spec.shape}; CSV rows need "
                         "a fixed per-sample shape")
    state = {"iter": itertools.islice(lines(), int(header), None), "next": 0}

    def read(start, stop):  # called with consecutive ranges
        assert start == state["next"]
        rows = list(itertools.islice(state["iter"], stop - start))
        state["next"] = stop
        for number, row in rows:
            if len(row) != width:
                raise InputError(f"{path}, line {number}: {len(row)} values; input "
                                 f"{spec.name!r} takes {width} per row {spec.shape[1:]}")
        try:
            values = np.array([row for _, row in rows], dtype=np.float64)
        except ValueError as exc:
            raise InputError(f"{path}: a value is not a number ({exc})") from None
        return values.reshape((len(rows),) + tuple(spec.shape[1:]))

    return count, {spec.name: read}, {spec.name: tuple(spec.shape[1:])}


@contextlib.contextmanager
def open_input(path, model, input_name=None):
    """Yield ``(rows, readers, shapes)``: the number of samples and, per model input, a
    function ``read(start, stop)`` returning those rows (called with consecutive ranges)
    and the per-sample shape."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    specs = {s.name: s for s in model.inputs}
    if ext not in (".npy", ".npz", ".csv"):
        raise InputError(f"input {path!r}: expected a .npy, .npz or .csv file, got {ext!r}")
    if ext in (".npy", ".csv"):
        if input_name is None and len(specs) != 1:
            raise InputError(f"the model has inputs {list(specs)}: give an .npz with one "
                             f"array per input, or name the input with --input")
        spec = specs[input_name] if input_name in specs else model.inputs[0]
        if ext == ".csv":
            yield _csv_rows(path, spec)
            return
    with open(path, "rb") as handle, contextlib.ExitStack() as stack:
        if ext == ".npy":
            reader = _npy_rows(handle, 0, path) or np.load(path)
            readers = {spec.name: reader}
        else:
            archive = stack.enter_context(zipfile.ZipFile(handle))
            members = {i.filename[:-4]: i for i in archive.infolist()
                       if i.filename.endswith(".npy")}
            missing = [name for name in specs if name not in members]
            if missing:
                raise InputError(f"{path}: no array named {missing[0]!r}; the .npz needs "
                                 f"one per model input {list(specs)}, has {list(members)}")
            readers = {}
            for name in specs:
                info = members[name]
                reader = None
                if info.compress_type == zipfile.ZIP_STORED:
                    reader = _npy_rows(handle, member_data_offset(handle, info),
                                       f"{path}[{name!r}]")
                if reader is None:  # compressed (np.savez_compressed): read it whole
                    print(f"forge predict: {path}[{name!r}] is compressed; reading it "
                          "into memory", file=sys.stderr)
                    reader = np.load(io.BytesIO(archive.read(info)), allow_pickle=False)
                readers[name] = reader
        lengths = {name: r.shape[0] for name, r in readers.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"{path}: inputs have different numbers of rows {lengths}")
        yield next(iter(lengths.values())), {
            name: (lambda a, b, r=r: r[a:b]) if isinstance(r, np.ndarray) else r
            for name, r in readers.items()}, {n: tuple(r.shape[1:]) for n, r in readers.items()}


class _Output:
    """The output file, written chunk by chunk into preallocated .npy files."""

    def __init__(self, path, names, rows, probe):
        self.path = os.fspath(path)
        ext = os.path.splitext(self.path)[1].lower()
        if ext not in (".npy", ".npz"):
            raise InputError(f"output {self.path!r}: expected a .npy or .npz file name")
        if ext == ".npy" and len(names) != 1:
            raise InputError(f"a .npy output holds one array, but {len(names)} outputs "
                             f"were asked for ({', '.join(names)}); write an .npz")
        folder = os.path.dirname(os.path.abspath(self.path))
        self.folder = tempfile.mkdtemp(prefix=".forge-predict-", dir=folder)
        self.ext, self.files, self.handles = ext, {}, {}
        for name in names:
            array = probe[name]
            file = os.path.join(self.folder, f"{len(self.files)}.npy")
            mapped = np.lib.format.open_memmap(file, "w+", array.dtype,
                                               (rows,) + array.shape[1:])
            offset, row_bytes = mapped.offset, array[:1].nbytes
            del mapped
            self.files[name] = file
            self.handles[name] = (open(file, "r+b"), offset, row_bytes)

    def write(self, start, results):
        for name, (handle, offset, row_bytes) in self.handles.items():
            handle.seek(offset + start * row_bytes)
            handle.write(np.ascontiguousarray(results[name]).data)

    def commit(self):
        for handle, _, _ in self.handles.values():
            handle.close()
        if self.ext == ".npy":
            os.replace(next(iter(self.files.values())), self.path)
            return
        temp = os.path.join(self.folder, "out.npz")
        with zipfile.ZipFile(temp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, file in self.files.items():
                archive.write(file, name + ".npy")
                os.remove(file)
        os.replace(temp, self.path)

    def discard(self):
        for handle, _, _ in self.handles.values():
            handle.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _progress(rows, enabled):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=rows, unit="rows", disable=not enabled, file=sys.stderr)


def _score_local(model, names, readers, rows, batch_size):
    for start in range(0, rows, batch_size):
        stop = min(start + batch_size, rows)
        yield start, stop, model.run({n: r(start, stop) for n, r in readers.items()}, names)


def _score_dask(bundle, names, readers, rows, batch_size, scheduler):
    """Send windows of chunks to Dask (``scheduler``: "threads" or an address); reading
    and writing stay here, so only the bundle needs to be on the workers."""
    import dask
    import dask.array as da

    from runtime import dask as rdask

    if scheduler == "threads":
        compute = lambda *arrays: dask.compute(*arrays, scheduler="threads")  # noqa: E731
        window = 4
    else:
        from distributed import Client

        client = Client(scheduler, set_as_default=False, timeout="30s")
        compute = lambda *arrays: client.compute(list(arrays), sync=True)  # noqa: E731
        window = 2 * max(1, sum(client.nthreads().values()))
    try:
        step = batch_size * window
        for start in range(0, rows, step):
            stop = min(start + step, rows)
            data = {n: da.from_array(np.asarray(r(start, stop)), chunks=batch_size)
                    for n, r in readers.items()}
            result = rdask.predict(bundle, data, names)
            yield start, stop, dict(zip(names, compute(*result.values())))
    finally:
        if scheduler != "threads":
            client.close()


def predict_file(bundle, input_path, output_path, outputs=None, batch_size=256,
                 scheduler=None, input_name=None, progress=True):
    """Score ``input_path`` with ``bundle`` into ``output_path``; return the row count.

    See the module docstring for the file formats. ``outputs`` names layers as in
    :meth:`runtime.Model.run`; ``scheduler`` ("threads" or a Dask scheduler address)
    sends the scoring to Dask (``pip install 'forge-nn[dask]'``).
    """
    if batch_size < 1:
        raise InputError(f"got batch_size={batch_size}; batch_size must be >= 1")
    model = runtime.load(bundle)
    names = [s.name for s in model.outputs] if outputs is None else list(outputs)
    with open_input(input_path, model, input_name) as (rows, readers, shapes):
        dtypes = {s.name: s.dtype for s in model.inputs}
        probe = model.run({n: np.zeros((1,) + shape, dtypes[n]) for n, shape in shapes.items()},
                          names)  # one row of zeros: the outputs' shapes and dtypes
        sink = _Output(output_path, names, rows, probe)
        bar = _progress(rows, progress)
        try:
            chunks = (_score_local(model, names, readers, rows, batch_size) if scheduler is None
                      else _score_dask(bundle, names, readers, rows, batch_size, scheduler))
            for start, stop, results in chunks:
                sink.write(start, results)
                if bar is not None:
                    bar.update(stop - start)
            sink.commit()
        except BaseException:
            sink.discard()
            raise
        finally:
            if bar is not None:
                bar.close()
    shutil.rmtree(sink.folder, ignore_errors=True)
    return rows


# -- inspect -----------------------------------------------------------------------------

def _spec(spec):
    return {"name": spec.name, "shape": list(spec.shape), "dtype": spec.dtype.name}


def inspect_bundle(path):
    """What a user needs before deploying a bundle, as a JSON-ready dict.

    The digest check result is ``"ok"`` or the error; a bundle whose digests fail is
    still described (read with ``verify=False``).
    """
    path = os.fspath(path)
    try:
        manifest, arrays = read_bundle(path, verify=True)
        digests = "ok"
    except BundleError as exc:
        if "sha256" not in str(exc):
            raise
        digests = f"FAILED: {exc}"
        manifest, arrays = read_bundle(path, verify=False)
    model = runtime.Model(manifest, arrays, path=path)
    layers = [{"name": name, "type": type(layer).__name__, "inputs": list(layer.inputs),
               "output_shape": manifest["layers"][i]["output_shape"],
               "params": layer.num_params}
              for i, (name, layer) in enumerate(model.layers.items())]
    return {"path": path, "size_bytes": os.path.getsize(path),
            "format_version": model.format_version, "dtype": model.dtype.name,
            "digests": digests, "num_params": model.num_params,
            "inputs": [_spec(s) for s in model.inputs],
            "outputs": [_spec(s) for s in model.outputs],
            "layers": layers, "metadata": model.metadata,
            "created": manifest.get("created", {}), "parity": manifest.get("parity")}


def _shape(shape):
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + (
        ",)" if len(shape) == 1 else ")")


def format_inspection(info):
    """:func:`inspect_bundle`'s dict as text."""
    size = info["size_bytes"]
    lines = [f"bundle   {info['path']}",
             f"size     {size:,} bytes ({size / 2**20:.2f} MiB)",
             f"format   forge-bundle version {info['format_version']}, {info['dtype']}",
             f"digests  {info['digests']}",
             f"params   {info['num_params']:,}"]
    parity = info["parity"]
    if parity:
        lines.append(f"parity   max abs error {parity.get('max_abs_error')} at export "
                     f"(tolerance {parity.get('tolerance')})")
    else:
        lines.append("parity   not recorded (exported with check=False, or by hand)")
    for what in ("inputs", "outputs"):
        lines.append(f"{what}:")
        lines += [f"  {s['name']}: {s['dtype']} {_shape(s['shape'])}" for s in info[what]]
    rows = [("layer", "type", "inputs", "output shape", "params")] + [
        (l["name"], l["type"], ", ".join(l["inputs"]) or "-", _shape(l["output_shape"]),
         f"{l['params']:,}") for l in info["layers"]]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines.append("layers:")
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append("metadata: " + (json.dumps(info["metadata"]) if info["metadata"] else "{}"))
    if info["created"]:
        lines.append("created:  " + json.dumps(info["created"]))
    return "\n".join(lines)

