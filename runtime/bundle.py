"""Read, write and validate Forge bundles: the reference for ``docs/bundle-format.md``.

A bundle is a zip archive holding ``manifest.json`` and one ``<key>.npy`` member per
array. This module knows the file format only; what the layers mean is
:mod:`runtime.layers`' business.

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> from runtime.bundle import read_bundle, write_bundle
>>> folder = tempfile.TemporaryDirectory()
>>> manifest = {
...     "format": "forge-bundle", "format_version": 1, "dtype": "float32",
...     "inputs": [{"name": "x", "shape": [None, 2], "dtype": "float32"}],
...     "outputs": [{"name": "y", "shape": [None, 2], "dtype": "float32"}],
...     "layers": [
...         {"name": "x", "type": "InputLayer", "inputs": [], "config": {"shape": [None, 2]},
...          "params": {}, "output_shape": [None, 2]},
...         {"name": "y", "type": "BiasLayer", "inputs": ["x"], "config": {"shared_axes": [0]},
...          "params": {"b": "y.b"}, "output_shape": [None, 2]}]}
>>> path = os.path.join(folder.name, "tiny.npz")
>>> write_bundle(path, manifest, {"y.b": np.array([1.0, 2.0], dtype=np.float32)})
>>> manifest["arrays"]["y.b"]["shape"]
[2]
>>> _, arrays = read_bundle(path)
>>> arrays["y.b"]
array([1., 2.], dtype=float32)
>>> folder.cleanup()
"""
import hashlib
import json
import math
import os
import re
import secrets
import struct
import warnings
import zipfile
import zlib

import numpy as np

from .errors import BundleError

__all__ = [
    "FORMAT", "FORMAT_VERSION", "SUPPORTED_VERSIONS", "MANIFEST_MEMBER", "NAME_PATTERN",
    "write_bundle", "read_bundle", "validate_manifest", "check_arrays", "array_digest",
    "member_data_offset",
]

FORMAT = "forge-bundle"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MANIFEST_MEMBER = "manifest.json"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*")
COMPUTE_DTYPES = ("float32", "float64")

_MAX_MANIFEST_BYTES = 64 << 20
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the same content gives the same bytes
_PADDING_EXTRA_ID = 0xD935  # a zip extra field holding alignment padding (as zipalign)
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
                RuntimeError, NotImplementedError, ValueError)
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string"}


def array_digest(array):
    """The sha256 (hex) of an array's C-ordered bytes, as stored in the manifest.

    >>> array_digest(np.zeros(0, dtype=np.float32))[:12]
    'e3b0c44298fc'
    """
    array = np.asarray(array)
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    return hashlib.sha256(array).hexdigest()


# -- validation ----------------------------------------------------------------------

def _fail(message):
    raise BundleError(message)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_name(name, what):
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        _fail(f"{what} {name!r} is not a valid name (it must match "
              f"^{NAME_PATTERN.pattern}$)")


def _check_type(mapping, key, kind, where, required=True):
    if key not in mapping:
        if required:
            _fail(f"{where} has no {key!r} key")
        return
    if not isinstance(mapping[key], kind) or isinstance(mapping[key], bool):
        _fail(f"{where}: {key!r} must be {_JSON_TYPES[kind]}, "
              f"got {type(mapping[key]).__name__} {mapping[key]!r:.60}")


def _check_shape(shape, where, free_axes):
    ok = isinstance(shape, list) and all(
        (_is_int(s) and s >= 0) or (free_axes and s is None) for s in shape)
    if not ok:
        allowed = "non-negative ints and null" if free_axes else "non-negative ints"
        _fail(f"{where}: shape must be a list of {allowed}, got {shape!r}")


def _numeric_dtype(name, where):
    try:
        dtype = np.dtype(name) if isinstance(name, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "biufc" or dtype.name != name:
        _fail(f"{where}: dtype must name a numeric numpy dtype such as 'float32', "
              f"got {name!r}")
    return dtype


def _check_specs(specs, what, layers_by_name):
    if not specs:
        _fail(f"'{what}' is empty; a model needs at least one")
    seen = set()
    for i, spec in enumerate(specs):
        where = f"{what}[{i}]"
        if not isinstance(spec, dict):
            _fail(f"{where} must be an object, got {spec!r:.60}")
        _check_type(spec, "name", str, where)
        name = spec["name"]
        if name in seen:
            _fail(f"{where}: {name!r} is listed twice in '{what}'")
        seen.add(name)
        if name not in layers_by_name:
            _fail(f"{where} names {name!r}, which is not a layer in this bundle")
        _check_shape(spec.get("shape"), f"{what} {name!r}", free_axes=True)
        _numeric_dtype(spec.get("dtype"), f"{what} {name!r}")
    return seen


def _check_layer(i, layer, seen, all_names, arrays, used):
    if not isinstance(layer, dict):
        _fail(f"layers[{i}] must be an object, got {layer!r:.60}")
    _check_type(layer, "name", str, f"layers[{i}]")
    name = layer["name"]
    _check_name(name, "layer name")
    where = f"layer {name!r}"
    if name in seen:
        _fail(f"{where} is defined twice")
    for key, kind in (("type", str), ("inputs", list), ("config", dict), ("params", dict),
                      ("output_shape", list)):
        _check_type(layer, key, kind, where)
    _check_shape(layer["output_shape"], f"{where} output_shape", free_axes=True)
    for source in layer["inputs"]:
        if isinstance(source, str) and source in seen:
            continue
        if source == name:
            _fail(f"{where} reads itself")
        if isinstance(source, str) and source in all_names:
            _fail(f"{where} reads {source!r}, which comes after it; layers must be "
                  "listed in topological order")
        _fail(f"{where} reads {source!r}, which is not a layer in this bundle")
    for param, key in layer["params"].items():
        if key is None:
            continue
        if not isinstance(key, str) or key not in arrays:
            _fail(f"{where}: parameter {param!r} refers to array {key!r}, which is not "
                  "in the manifest's 'arrays'")
        used.add(key)


def validate_manifest(manifest):
    """Check a manifest's structure; raise :class:`BundleError` on the first problem.

    Checks the format name and version (first, since other versions may differ in
    everything else), required keys and their types, names, the topological order of
    ``layers``, and that ``inputs``, ``outputs`` and ``params`` refer to existing layers
    and arrays. It does not look at layer types or configs: building the layers does.
    """
    if not isinstance(manifest, dict):
        _fail(f"the manifest must be a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != FORMAT:
        _fail(f"'format' is {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("format_version")
    supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
    if not _is_int(version):
        _fail(f"'format_version' must be an integer, got {version!r}")
    if version not in SUPPORTED_VERSIONS:
        hint = " (written by a newer forge; upgrade the runtime)" if version > max(
            SUPPORTED_VERSIONS) else ""
        _fail(f"unsupported format_version {version}{hint}; this runtime reads "
              f"format_version {supported}")
    for key, kind in (("inputs", list), ("outputs", list), ("layers", list),
                      ("arrays", dict)):
        _check_type(manifest, key, kind, "the manifest")
    for key in ("created", "metadata", "parity"):
        _check_type(manifest, key, dict, "the manifest", required=False)
    if manifest.get("dtype", "float32") not in COMPUTE_DTYPES:
        _fail(f"'dtype' must be one of {', '.join(COMPUTE_DTYPES)}, "
              f"got {manifest['dtype']!r}")

    arrays = manifest["arrays"]
    for key, record in arrays.items():
        _check_name(key, "array key")
        if not isinstance(record, dict):
            _fail(f"array {key!r}: its record must be an object, got {record!r:.60}")
        _check_shape(record.get("shape"), f"array {key!r}", free_axes=False)
        _numeric_dtype(record.get("dtype"), f"array {key!r}")
        digest = record.get("sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            _fail(f"array {key!r}: sha256 must be 64 lowercase hex digits, "
                  f"got {digest!r:.80}")

    layers = manifest["layers"]
    all_names = {layer.get("name") for layer in layers
                 if isinstance(layer, dict) and isinstance(layer.get("name"), str)}
    by_name, used = {}, set()
    for i, layer in enumerate(layers):
        _check_layer(i, layer, by_name, all_names, arrays, used)
        by_name[layer["name"]] = layer
    unused = sorted(set(arrays) - used)
    if unused:
        _fail(f"array(s) {', '.join(map(repr, unused))} are not used by any layer")

    input_names = _check_specs(manifest["inputs"], "inputs", by_name)
    _check_specs(manifest["outputs"], "outputs", by_name)
    for spec in manifest["inputs"]:
        layer = by_name[spec["name"]]
        if layer["type"] != "InputLayer":
            _fail(f"inputs names {spec['name']!r}, which is a {layer['type']}, "
                  "not an InputLayer")
        declared = layer["config"].get("shape")
        if declared is not None and declared != spec["shape"]:
            _fail(f"input {spec['name']!r}: shape {spec['shape']} in 'inputs' differs "
                  f"from the InputLayer's shape {declared}")
    for name, layer in by_name.items():
        if layer["type"] == "InputLayer" and name not in input_names:
            _fail(f"InputLayer {name!r} is missing from 'inputs'")


def check_arrays(manifest, arrays, *, digests=True):
    """Check that ``arrays`` are exactly the manifest's arrays, with their shape, dtype
    and (if ``digests``) sha256. Raise :class:`BundleError` naming the first bad one."""
    records = manifest["arrays"]
    missing = sorted(set(records) - set(arrays))
    extra = sorted(set(arrays) - set(records))
    if missing:
        _fail(f"array(s) {', '.join(map(repr, missing))} listed in the manifest are missing")
    if extra:
        _fail(f"array(s) {', '.join(map(repr, extra))} are not listed in the manifest")
    for key, record in records.items():
        array = arrays[key]
        if array.dtype.name != record["dtype"] or list(array.shape) != record["shape"]:
            _fail(f"array {key!r} is {array.dtype.name} {list(array.shape)}, but the "
                  f"manifest says {record['dtype']} {record['shape']}")
        if digests and array_digest(array) != record["sha256"]:
            _fail(f"array {key!r} does not match its sha256 in the manifest (the array "
                  "or the manifest was modified after writing)")


# -- writing -------------------------------------------------------------------------

def _prepare(key, value):
    """A C-contiguous little-endian copy-if-needed of one array, or BundleError."""
    _check_name(key, "array key")
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":
        _fail(f"array {key!r} has dtype {array.dtype}; bundles hold numeric arrays only "
              "(no object, string or structured arrays, nothing pickled)")
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return array if array.flags.c_contiguous else array.copy(order="C")


def _member_info(name):
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _aligned_info(name, offset, zip64):
    """A member starting at ``offset`` whose data (after the .npy header, itself padded to
    64 bytes) starts at a multiple of 64 in the file, by padding the local header's extra
    field: ``load(mmap=True)`` then maps arrays at aligned addresses."""
    info = _member_info(name)
    used = offset + 30 + len(name.encode()) + 4 + (20 if zip64 else 0)
    info.extra = struct.pack("<HH", _PADDING_EXTRA_ID, -used % 64) + bytes(-used % 64)
    return info


def _open_temp(folder, base):
    """Create a new, empty temporary file next to the destination; return (fd, path)."""
    while True:
        temp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue


def _fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on Windows; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bundle(path, manifest, arrays):
    """Write a bundle atomically, filling in ``manifest["arrays"]``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination. The bundle is written to a temporary file in the same folder,
        flushed and fsynced, then renamed over ``path``: readers see the old file or
        the new one, never a part. The temporary file is removed on any failure.
    manifest : dict
        Everything but ``"arrays"``, which this function sets (in place) to each
        array's shape, dtype and sha256. The completed manifest must pass
        :func:`validate_manifest`.
    arrays : dict of str to numpy.ndarray
        Numeric arrays by key; stored C-ordered and little-endian as ``<key>.npy``.

    Raises
    ------
    BundleError
        The manifest or an array cannot go into a bundle (an object array, a name that
        does not match :data:`NAME_PATTERN`, a layer reading a missing layer, ...).
    OSError
        The file system failed; the destination is unchanged.
    """
    path = os.fspath(path)
    try:
        stored = {key: _prepare(key, value) for key, value in arrays.items()}
        manifest["arrays"] = {
            key: {"shape": list(a.shape), "dtype": a.dtype.name, "sha256": array_digest(a)}
            for key, a in stored.items()}
        validate_manifest(manifest)
        try:
            text = json.dumps(manifest, indent=2, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            _fail(f"the manifest is not plain JSON: {exc}")
    except BundleError as exc:
        raise BundleError(f"cannot write bundle {path!r}: {exc}") from None

    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = _open_temp(folder, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w") as archive:
                archive.writestr(_member_info(MANIFEST_MEMBER), text.encode("utf-8"))
                for key, array in stored.items():
                    big = array.nbytes >= 1 << 31
                    info = _aligned_info(key + ".npy", handle.tell(), big)
                    with archive.open(info, "w", force_zip64=big) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


# -- reading -------------------------------------------------------------------------

def _refuse_constant(name):
    _fail(f"manifest.json contains {name}, which is not JSON")


def _no_duplicate_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            _fail(f"manifest.json repeats the key {key!r} in one object")
        result[key] = value
    return result


def _read_manifest(archive, info):
    if info.file_size > _MAX_MANIFEST_BYTES:
        _fail(f"manifest.json is {info.file_size} bytes, over the "
              f"{_MAX_MANIFEST_BYTES >> 20} MiB limit")
    try:
        raw = archive.read(info)
    except _READ_ERRORS as exc:
        _fail(f"cannot read manifest.json ({type(exc).__name__}: {exc})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(f"manifest.json is not UTF-8 text ({exc})")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        _fail(f"manifest.json is not valid JSON ({exc})")
    except RecursionError:
        _fail("manifest.json is nested too deeply to be a bundle manifest")


def _read_header(member, name):
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(member)
    _fail(f"member {name!r} uses .npy format version {version}, which bundles do not use")


def _member_header(archive, info, key, record):
    """Check a member's .npy header against the manifest; return its size and
    ``(shape, fortran_order, dtype)``."""
    name = info.filename
    try:
        with archive.open(info) as member:
            shape, fortran, dtype = _read_header(member, name)
            header_size = member.tell()
        if dtype.hasobject:
            _fail(f"member {name!r} holds an object array (pickled Python objects); "
                  "bundles never contain pickles")
        if dtype.name != record["dtype"] or list(shape) != record["shape"]:
            _fail(f"member {name!r} holds {dtype.name} {list(shape)}, but the manifest "
                  f"says array {key!r} is {record['dtype']} {record['shape']}")
        expected = header_size + math.prod(shape) * dtype.itemsize
        if info.file_size != expected:
            _fail(f"member {name!r} is {info.file_size} bytes, expected {expected} for "
                  f"{dtype.name} {list(shape)} (truncated or padded)")
        return header_size, (shape, fortran, dtype)
    except _READ_ERRORS as exc:
        _fail(f"cannot read member {name!r} ({type(exc).__name__}: {exc})")


def _read_array(archive, info, key, record):
    """One member as an array, after checking its header against the manifest."""
    _member_header(archive, info, key, record)
    try:
        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    except _READ_ERRORS as exc:
        _fail(f"cannot read member {info.filename!r} ({type(exc).__name__}: {exc})")


def member_data_offset(handle, info):
    """Where a stored (uncompressed) zip member's bytes start in the open file ``handle``.

    The local file header repeats the name and may carry a different extra field than
    the central directory, so its two lengths are read from the file itself.
    """
    handle.seek(info.header_offset)
    header = handle.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        _fail(f"member {info.filename!r} has no valid local file header")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


def _map_array(archive, handle, info, key, record, verify):
    """A stored member as a read-only ``np.memmap`` of ``handle``, or None when it cannot
    be mapped (compressed, empty, Fortran-ordered or at an unaligned offset). With
    ``verify``, its sha256 is checked first by streaming the member in 1 MiB pieces."""
    header_size, (shape, fortran, dtype) = _member_header(archive, info, key, record)
    if info.compress_type != zipfile.ZIP_STORED or fortran or math.prod(shape) == 0:
        return None
    try:
        offset = member_data_offset(handle, info) + header_size
        if offset % dtype.alignment:  # written before members were aligned: copy it
            return None
        if verify:
            digest = hashlib.sha256()
            with archive.open(info) as member:
                member.read(header_size)
                while piece := member.read(1 << 20):
                    digest.update(piece)
            if digest.hexdigest() != record["sha256"]:
                _fail(f"array {key!r} does not match its sha256 in the manifest (the "
                      "array or the manifest was modified after writing)")
        return np.memmap(handle, dtype=dtype, mode="r", offset=offset, shape=shape)
    except _READ_ERRORS as exc:
        _fail(f"cannot map member {info.filename!r} ({type(exc).__name__}: {exc})")


def _read(source, verify, mmap=False):
    if mmap and not isinstance(source, (str, os.PathLike)):
        warnings.warn("mmap=True needs a path; the bundle is read from the file object "
                      "into memory", RuntimeWarning, stacklevel=4)
        mmap = False
    if not mmap:
        return _read_archive(source, verify, None)
    try:
        handle = open(source, "rb")
    except OSError as exc:
        _fail(f"cannot open it ({exc.strerror or exc})")
    with handle:  # the maps hold their own reference to the file
        return _read_archive(handle, verify, handle)


def _read_archive(source, verify, handle):
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        _fail("not a zip archive (the file is truncated, or is not a bundle)")
    except OSError as exc:
        _fail(f"cannot open it ({exc.strerror or exc})")
    with archive:
        infos = {}
        for info in archive.infolist():
            if info.filename in infos:
                _fail(f"the zip archive holds two members named {info.filename!r}")
            infos[info.filename] = info
        if MANIFEST_MEMBER not in infos:
            listed = ", ".join(sorted(infos)[:5]) or "none"
            _fail(f"no {MANIFEST_MEMBER} member (members: {listed}); is this a forge "
                  "bundle?")
        manifest = _read_manifest(archive, infos.pop(MANIFEST_MEMBER))
        validate_manifest(manifest)
        expected = {key + ".npy": key for key in manifest["arrays"]}
        missing = sorted(set(expected) - set(infos))
        extra = sorted(set(infos) - set(expected))
        if missing:
            _fail(f"member(s) {', '.join(map(repr, missing))} listed in the manifest "
                  "are missing from the archive")
        if extra:
            _fail(f"unexpected member(s) {', '.join(map(repr, extra))}, not listed in "
                  "the manifest")
        arrays = {}
        for name, key in expected.items():
            record = manifest["arrays"][key]
            mapped = handle and _map_array(archive, handle, infos[name], key, record, verify)
            arrays[key] = (_read_array(archive, infos[name], key, record) if mapped is None
                           else mapped)
    check_arrays(manifest, arrays, digests=verify and handle is None)
    copied = [k for k, a in arrays.items() if handle and not isinstance(a, np.memmap)]
    if verify and copied:  # the mapped arrays were checked while streaming them
        check_arrays({"arrays": {k: manifest["arrays"][k] for k in copied}},
                     {k: arrays[k] for k in copied})
    if any(arrays[k].size for k in copied):
        warnings.warn(f"bundle members {', '.join(copied[:5])} are compressed, "
                      "Fortran-ordered or unaligned (written before forge aligned them): "
                      "read into memory, not memory-mapped",
                      RuntimeWarning, stacklevel=5)
    return manifest, arrays


def read_bundle(path, verify=True, mmap=False):
    """Read and check a bundle; return ``(manifest, arrays)``.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        The ``.npz`` bundle.
    verify : bool
        Check every array's sha256 (a hash over all the weights; the structure, shapes
        and dtypes are always checked).
    mmap : bool
        Memory-map each stored (uncompressed) member read-only instead of copying it
        (``path`` must be a path). Digests are still checked at load, eagerly, by
        streaming each member through a 1 MiB buffer. Compressed, empty or
        Fortran-ordered members are read into memory, with a ``RuntimeWarning``.

    Returns
    -------
    manifest : dict
        The parsed, validated ``manifest.json``.
    arrays : dict of str to numpy.ndarray
        Every array by key, as stored (not yet converted to the compute dtype).

    Raises
    ------
    BundleError
        Any problem with the file: it cannot be opened, is not a zip archive or is
        truncated, has no or a malformed manifest, an unsupported ``format_version``,
        missing or unexpected members, an object (pickled) array, or an array that does
        not match its shape, dtype or digest. The message starts with the path.
    """
    where = repr(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else repr(path)
    try:
        return _read(path, verify, mmap)
    except BundleError as exc:
        raise BundleError(f"bundle {where}: {exc}") from exc.__cause__
