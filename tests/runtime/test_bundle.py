"""runtime.bundle: writing atomically, reading, and refusing every kind of bad bundle."""
import copy
import hashlib
import io
import json
import os
import pathlib
import pickle
import warnings
import zipfile

import numpy as np
import pytest

from runtime import BundleError
from runtime.bundle import (FORMAT_VERSION, SUPPORTED_VERSIONS, array_digest, check_arrays,
                            read_bundle, validate_manifest, write_bundle)

from .helpers import mlp_builder, read_manifest, rewrite_zip


def npy_bytes(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


class TestWrite:
    def test_round_trip(self, tmp_path):
        builder, params = mlp_builder()
        manifest, arrays = builder.build()
        write_bundle(tmp_path / "m.npz", manifest, arrays)
        got_manifest, got = read_bundle(tmp_path / "m.npz")
        assert got_manifest == manifest
        assert set(got) == set(arrays)
        for key, array in arrays.items():
            np.testing.assert_array_equal(got[key], array)
            assert got[key].dtype == array.dtype

    def test_fills_arrays_with_shape_dtype_and_digest_of_c_ordered_bytes(self, tmp_path):
        builder, _ = mlp_builder()
        manifest, arrays = builder.build()
        arrays["dense_1.W"] = np.asfortranarray(arrays["dense_1.W"])
        write_bundle(tmp_path / "m.npz", manifest, arrays)
        record = manifest["arrays"]["dense_1.W"]
        c_bytes = np.ascontiguousarray(arrays["dense_1.W"]).tobytes()
        assert record == {"shape": [4, 3], "dtype": "float32",
                          "sha256": hashlib.sha256(c_bytes).hexdigest()}
        assert read_manifest(tmp_path / "m.npz")["arrays"] == manifest["arrays"]

    def test_members_are_plain_npy_and_json(self, tmp_path):
        builder, params = mlp_builder()
        path = builder.write(tmp_path / "m.npz")
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            assert names[0] == "manifest.json"
            assert sorted(names[1:]) == ["dense_1.W.npy", "dense_1.b.npy", "output.W.npy",
                                         "output.b.npy"]
            loaded = np.load(io.BytesIO(archive.read("dense_1.W.npy")), allow_pickle=False)
        np.testing.assert_array_equal(loaded, params["W1"])

    def test_same_content_gives_same_bytes(self, tmp_path):
        builder, _ = mlp_builder()
        first = builder.write(tmp_path / "a.npz")
        second = builder.write(tmp_path / "b.npz")
        assert first.read_bytes() == second.read_bytes()

    def test_big_endian_arrays_are_stored_little_endian(self, tmp_path):
        builder, _ = mlp_builder()
        manifest, arrays = builder.build()
        arrays["dense_1.b"] = arrays["dense_1.b"].astype(">f4")
        write_bundle(tmp_path / "m.npz", manifest, arrays)
        _, got = read_bundle(tmp_path / "m.npz")
        assert got["dense_1.b"].dtype.str == "<f4"
        np.testing.assert_array_equal(got["dense_1.b"], arrays["dense_1.b"])

    @pytest.mark.parametrize("bad, message", [
        (np.array([{"a": 1}, None], dtype=object), "dtype object"),
        (np.array(["a", "b"]), "dtype <U1"),
        (np.zeros(2, dtype=[("a", "f4")]), "numeric arrays only"),
    ])
    def test_refuses_non_numeric_arrays(self, tmp_path, bad, message):
        builder, _ = mlp_builder()
        manifest, arrays = builder.build()
        arrays["dense_1.b"] = bad
        with pytest.raises(BundleError, match=message) as info:
            write_bundle(tmp_path / "m.npz", manifest, arrays)
        assert "'dense_1.b'" in str(info.value) and "m.npz" in str(info.value)
        assert list(tmp_path.iterdir()) == []

    def test_refuses_an_invalid_manifest_and_writes_nothing(self, tmp_path):
        builder, _ = mlp_builder()
        manifest, arrays = builder.build()
        manifest["layers"][1]["inputs"] = ["nowhere"]
        with pytest.raises(BundleError, match="reads 'nowhere', which is not a layer"):
            write_bundle(tmp_path / "m.npz", manifest, arrays)
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("metadata", [{"x": float("nan")}, {"x": object()}])
    def test_refuses_metadata_that_is_not_plain_json(self, tmp_path, metadata):
        builder, _ = mlp_builder()
        manifest, arrays = builder.build()
        manifest["metadata"] = metadata
        with pytest.raises(BundleError, match="not plain JSON"):
            write_bundle(tmp_path / "m.npz", manifest, arrays)

    def test_refuses_a_bad_array_key(self, tmp_path):
        builder, _ = mlp_builder()
        manifest, arrays = builder.build()
        arrays["../evil"] = np.zeros(1)
        with pytest.raises(BundleError, match="array key '../evil' is not a valid name"):
            write_bundle(tmp_path / "m.npz", manifest, arrays)


class TestAtomicWrite:
    @pytest.fixture
    def old(self, tmp_path):
        builder, _ = mlp_builder(seed=1)
        path = builder.write(tmp_path / "model.npz")
        return path, path.read_bytes()

    @pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
    def test_a_crash_mid_write_leaves_the_old_bundle_and_no_temp_file(self, old, monkeypatch,
                                                                      error):
        path, before = old
        real = np.lib.format.write_array
        calls = []

        def crash_on_second_array(fp, array, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                fp.write(b"\x93NUMPY half of an array")
                raise error
            return real(fp, array, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", crash_on_second_array)
        builder, _ = mlp_builder(seed=2)
        with pytest.raises(type(error)):
            builder.write(path)
        assert len(calls) == 2
        assert path.read_bytes() == before
        assert sorted(p.name for p in path.parent.iterdir()) == ["model.npz"]
        read_bundle(path)  # still a good bundle

    def test_a_failed_rename_removes_the_temp_file(self, old, monkeypatch):
        path, before = old

        def refuse(src, dst):
            raise PermissionError("read-only destination")

        monkeypatch.setattr(os, "replace", refuse)
        builder, _ = mlp_builder(seed=2)
        with pytest.raises(PermissionError):
            builder.write(path)
        assert path.read_bytes() == before
        assert sorted(p.name for p in path.parent.iterdir()) == ["model.npz"]

    def test_success_replaces_the_file_and_fsyncs(self, old, monkeypatch):
        path, before = old
        synced = []
        real_fsync = os.fsync
        monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
        builder, params = mlp_builder(seed=2)
        builder.write(path)
        assert path.read_bytes() != before and synced
        _, arrays = read_bundle(path)
        np.testing.assert_array_equal(arrays["dense_1.W"], params["W1"])
        assert sorted(p.name for p in path.parent.iterdir()) == ["model.npz"]


class TestRead:
    def test_reads_from_a_file_object(self, mlp):
        path, params = mlp
        _, arrays = read_bundle(io.BytesIO(path.read_bytes()))
        np.testing.assert_array_equal(arrays["output.W"], params["W2"])

    def test_a_recompressed_archive_still_reads(self, mlp, tmp_path):
        path, params = mlp
        packed = tmp_path / "deflated.npz"
        with zipfile.ZipFile(path) as src:
            with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
                for info in src.infolist():
                    dst.writestr(info.filename, src.read(info))
        _, arrays = read_bundle(packed)
        np.testing.assert_array_equal(arrays["dense_1.W"], params["W1"])

    def test_arrays_come_back_as_stored_with_digests_checked(self, mlp):
        path, _ = mlp
        manifest, arrays = read_bundle(path)
        for key, record in manifest["arrays"].items():
            assert array_digest(arrays[key]) == record["sha256"]


class TestTampering:
    """Every way a file can be wrong is refused with a message that names the problem."""

    def refused(self, path, match, verify=True):
        with pytest.raises(BundleError, match=match) as info:
            read_bundle(path, verify=verify)
        assert str(path) in str(info.value)
        return str(info.value)

    def test_changed_array_bytes(self, mlp, tmp_path):
        path, params = mlp
        changed = params["W1"].copy()
        changed[0, 0] += 1
        bad = rewrite_zip(path, tmp_path / "bad.npz",
                          replace={"dense_1.W.npy": npy_bytes(changed)})
        self.refused(bad, r"array 'dense_1.W' does not match its sha256")

    def test_changed_bytes_pass_without_verify_but_shapes_are_still_checked(self, mlp, tmp_path):
        path, params = mlp
        changed = params["W1"] + 1
        bad = rewrite_zip(path, tmp_path / "bad.npz",
                          replace={"dense_1.W.npy": npy_bytes(changed)})
        _, arrays = read_bundle(bad, verify=False)
        np.testing.assert_array_equal(arrays["dense_1.W"], changed)
        worse = rewrite_zip(path, tmp_path / "worse.npz",
                            replace={"dense_1.W.npy": npy_bytes(changed.T.copy())})
        self.refused(worse, r"holds float32 \[3, 4\], but the manifest says array "
                            r"'dense_1.W' is float32 \[4, 3\]", verify=False)

    def test_edited_digest(self, mlp, tmp_path):
        path, _ = mlp
        manifest = read_manifest(path)
        manifest["arrays"]["output.b"]["sha256"] = "0" * 64
        self.refused(rewrite_zip(path, tmp_path / "bad.npz", manifest=manifest),
                     r"array 'output.b' does not match its sha256")

    def test_edited_shape(self, mlp, tmp_path):
        path, _ = mlp
        manifest = read_manifest(path)
        manifest["arrays"]["dense_1.W"]["shape"] = [3, 4]
        self.refused(rewrite_zip(path, tmp_path / "bad.npz", manifest=manifest),
                     r"member 'dense_1.W.npy' holds float32 \[4, 3\], but the manifest says")

    def test_edited_dtype(self, mlp, tmp_path):
        path, _ = mlp
        manifest = read_manifest(path)
        manifest["arrays"]["dense_1.b"]["dtype"] = "float64"
        self.refused(rewrite_zip(path, tmp_path / "bad.npz", manifest=manifest),
                     r"holds float32 \[3\], but the manifest says array 'dense_1.b' is float64")

    def test_truncated_file(self, mlp, tmp_path):
        path, _ = mlp
        data = path.read_bytes()
        for cut in (len(data) // 2, len(data) - 10, 0):
            bad = tmp_path / f"cut{cut}.npz"
            bad.write_bytes(data[:cut])
            self.refused(bad, "not a zip archive")

    def test_truncated_member(self, mlp, tmp_path):
        path, params = mlp
        short = npy_bytes(params["W1"])[:-4]
        bad = rewrite_zip(path, tmp_path / "bad.npz", replace={"dense_1.W.npy": short})
        self.refused(bad, r"member 'dense_1.W.npy' is \d+ bytes, expected \d+ .*truncated")

    def test_pickled_object_array_is_refused_without_unpickling(self, mlp, tmp_path):
        path, _ = mlp
        marker = tmp_path / "pickle-ran"

        class Payload:
            def __reduce__(self):
                return (pathlib.Path.touch, (marker,))

        evil = np.array([Payload(), None], dtype=object)
        data = npy_bytes(evil, allow_pickle=True)
        assert b"touch" in data
        bad = rewrite_zip(path, tmp_path / "bad.npz", replace={"dense_1.b.npy": data})
        self.refused(bad, r"member 'dense_1.b.npy' holds an object array \(pickled")
        assert not marker.exists()
        pickle.loads(pickle.dumps(Payload()))  # the payload does work when unpickled
        assert marker.exists()

    def test_a_member_that_is_not_npy(self, mlp, tmp_path):
        path, _ = mlp
        bad = rewrite_zip(path, tmp_path / "bad.npz", replace={"output.b.npy": b"hello"})
        self.refused(bad, r"cannot read member 'output.b.npy'")

    @pytest.mark.parametrize("version", [2, 0, 99])
    def test_unknown_format_version(self, mlp, tmp_path, version):
        path, _ = mlp
        manifest = read_manifest(path)
        manifest["format_version"] = version
        message = self.refused(rewrite_zip(path, tmp_path / "bad.npz", manifest=manifest),
                               f"unsupported format_version {version}")
        assert "reads format_version 1" in message
        assert SUPPORTED_VERSIONS == (FORMAT_VERSION,) == (1,)

    def test_newer_version_says_to_upgrade(self, mlp, tmp_path):
        path, _ = mlp
        manifest = read_manifest(path)
        manifest["format_version"] = 2
        self.refused(rewrite_zip(path, tmp_path / "bad.npz", manifest=manifest),
                     "newer forge; upgrade the runtime")

    def test_missing_member(self, mlp, tmp_path):
        path, _ = mlp
        bad = rewrite_zip(path, tmp_path / "bad.npz", drop=["output.W.npy"])
        self.refused(bad, r"member\(s\) 'output.W.npy' listed in the manifest are missing")

    def test_extra_member(self, mlp, tmp_path):
        path, _ = mlp
        bad = rewrite_zip(path, tmp_path / "bad.npz", add={"evil.npy": npy_bytes(np.zeros(2))})
        self.refused(bad, r"unexpected member\(s\) 'evil.npy', not listed")

    def test_duplicate_member(self, mlp, tmp_path):
        path, params = mlp
        bad = tmp_path / "bad.npz"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
            rewrite_zip(path, bad, add={"output.W.npy": npy_bytes(params["W2"])})
        self.refused(bad, "two members named 'output.W.npy'")

    def test_missing_manifest(self, mlp, tmp_path):
        path, _ = mlp
        self.refused(rewrite_zip(path, tmp_path / "bad.npz", drop=["manifest.json"]),
                     "no manifest.json member")

    @pytest.mark.parametrize("text, match", [
        (b"{not json", "manifest.json is not valid JSON"),
        (b'{"format": NaN}', "contains NaN, which is not JSON"),
        (b'{"a": 1, "a": 2}', "repeats the key 'a'"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ])
    def test_bad_manifest_text(self, mlp, tmp_path, text, match):
        path, _ = mlp
        bad = rewrite_zip(path, tmp_path / "bad.npz", replace={"manifest.json": text})
        self.refused(bad, match)

    def test_not_a_zip(self, tmp_path):
        bad = tmp_path / "model.npz"
        bad.write_text("this is a text file, not a bundle\n" * 10)
        self.refused(bad, "not a zip archive")

    def test_plain_npz_from_np_savez(self, tmp_path):
        bad = tmp_path / "plain.npz"
        np.savez(bad, W=np.zeros(3))
        self.refused(bad, r"no manifest.json member \(members: W.npy\)")

    def test_missing_file(self, tmp_path):
        self.refused(tmp_path / "nowhere.npz", "cannot open it")

    def test_a_folder(self, tmp_path):
        self.refused(tmp_path, "cannot open it")


def valid_manifest():
    manifest, arrays = mlp_builder()[0].build()
    manifest["arrays"] = {key: {"shape": list(a.shape), "dtype": a.dtype.name,
                                "sha256": array_digest(a)} for key, a in arrays.items()}
    return manifest


def set_in(path, value):
    def edit(m):
        target = m
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def delete(*path):
    def edit(m):
        target = m
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return edit


class TestValidateManifest:
    def test_a_valid_manifest_passes(self):
        validate_manifest(valid_manifest())

    def test_extra_informational_keys_are_allowed(self):
        manifest = valid_manifest()
        manifest["comment"] = "hello"
        manifest["layers"][0]["doc"] = "the input"
        validate_manifest(manifest)

    @pytest.mark.parametrize("edit, match", [
        (set_in(["format"], "npz"), "'format' is 'npz', expected 'forge-bundle'"),
        (delete("format_version"), "'format_version' must be an integer, got None"),
        (set_in(["format_version"], "1"), "must be an integer, got '1'"),
        (set_in(["format_version"], True), "must be an integer, got True"),
        (set_in(["dtype"], "float16"), "'dtype' must be one of float32, float64"),
        (set_in(["dtype"], None), "'dtype' must be one of float32, float64"),
        (delete("layers"), "the manifest has no 'layers' key"),
        (set_in(["inputs"], {}), "'inputs' must be a list, got dict"),
        (set_in(["metadata"], []), "'metadata' must be an object"),
        (set_in(["inputs"], []), "'inputs' is empty"),
        (set_in(["outputs"], []), "'outputs' is empty"),
        (set_in(["layers", 1, "name"], "input"), "layer 'input' is defined twice"),
        (set_in(["layers", 1, "name"], "bad name"), "layer name 'bad name' is not a valid"),
        (set_in(["layers", 1, "name"], "x\n"), r"layer name 'x\\n' is not a valid"),
        (set_in(["layers", 1, "inputs"], ["output"]), "reads 'output', which comes after it"),
        (set_in(["layers", 1, "inputs"], ["dense_1"]), "layer 'dense_1' reads itself"),
        (set_in(["layers", 1, "inputs"], ["ghost"]), "reads 'ghost', which is not a layer"),
        (delete("layers", 1, "config"), "layer 'dense_1' has no 'config' key"),
        (set_in(["layers", 1, "params"], []), "'params' must be an object"),
        (set_in(["layers", 1, "output_shape"], [None, -3]), "output_shape: shape must be"),
        (set_in(["layers", 2, "params", "W"], "ghost.W"),
         "parameter 'W' refers to array 'ghost.W', which is not"),
        (set_in(["layers", 2, "params", "b"], None), r"array\(s\) 'output.b' are not used"),
        (set_in(["outputs", 0, "name"], "ghost"), "outputs\\[0\\] names 'ghost', which is not"),
        (set_in(["outputs", 0, "dtype"], "object"), "dtype must name a numeric numpy dtype"),
        (set_in(["outputs", 0, "dtype"], "f4"), "dtype must name a numeric numpy dtype"),
        (set_in(["inputs", 0, "name"], "dense_1"), "DenseLayer, not an InputLayer"),
        (set_in(["inputs", 0, "shape"], [None, 5]), r"shape \[None, 5\] in 'inputs' differs"),
        (lambda m: m["inputs"].append(dict(m["inputs"][0])), "'input' is listed twice"),
        (lambda m: m["layers"].insert(1, dict(m["layers"][0], name="second")),
         "InputLayer 'second' is missing from 'inputs'"),
        (set_in(["arrays", "output.b", "sha256"], "ABC"), "sha256 must be 64 lowercase hex"),
        (set_in(["arrays", "output.b", "shape"], [2.0]), "shape must be a list of non-neg"),
        (set_in(["arrays", "output.b", "shape"], [None]), "shape must be a list of non-neg"),
        (set_in(["arrays", "output.b"], [2]), "its record must be an object"),
        (set_in(["layers"], [1]), "layers\\[0\\] must be an object"),
        (set_in(["layers", 1, "name"], ["dense_1"]), "'name' must be a string, got list"),
        (set_in(["layers", 1, "inputs"], [["input"]]), r"reads \['input'\], which is not"),
    ])
    def test_refuses(self, edit, match):
        manifest = valid_manifest()
        edit(manifest)
        with pytest.raises(BundleError, match=match):
            validate_manifest(manifest)

    def test_version_is_checked_before_anything_else(self):
        manifest = {"format": "forge-bundle", "format_version": 7, "a future": "layout"}
        with pytest.raises(BundleError, match="unsupported format_version 7"):
            validate_manifest(manifest)


class TestCheckArrays:
    def test_missing_extra_and_mismatched(self):
        manifest = valid_manifest()
        arrays = mlp_builder()[0].build()[1]
        check_arrays(manifest, arrays)
        with pytest.raises(BundleError, match="'output.b' listed in the manifest are missing"):
            check_arrays(manifest, {k: v for k, v in arrays.items() if k != "output.b"})
        with pytest.raises(BundleError, match="'more' are not listed"):
            check_arrays(manifest, dict(arrays, more=np.zeros(1)))
        wrong = copy.copy(arrays)
        wrong["output.b"] = wrong["output.b"].astype(np.float64)
        with pytest.raises(BundleError, match="'output.b' is float64 \\[2\\], but the manifest"):
            check_arrays(manifest, wrong)


def test_array_digest_is_sha256_of_c_ordered_bytes():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    assert array_digest(a.T) == hashlib.sha256(np.ascontiguousarray(a.T).tobytes()).hexdigest()
    assert array_digest(np.float64(2.5)) == hashlib.sha256(np.float64(2.5).tobytes()).hexdigest()


def test_manifest_is_readable_without_numpy(mlp):
    path, _ = mlp
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json").decode("utf-8"))
    assert manifest["format"] == "forge-bundle"
    assert manifest["metadata"] == {"labels": ["no", "yes"]}
