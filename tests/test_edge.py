"""The runtime on a bare edge box: numpy only, bounded memory, memory-mapped weights.

- ``TestCoreInstall`` creates a fresh venv, ``pip install .`` there (numpy is the only
  dependency; pip's cache makes it quick), adds the test tools (pytest, hypothesis) and
  runs the runtime tests in it, against the installed package, with no numba or scipy.
- ``TestMemory`` measures the peak RSS (``VmHWM``) of loading a bundle and making the
  first prediction, in a fresh process with ``FORGE_KERNELS=numpy``.
- ``TestMmap`` covers ``runtime.load(path, mmap=True)``.

``python -m tests.test_edge`` runs the core-install suite outside pytest (``.ci/edge``)
and ``python -m tests.test_edge --memory`` prints the memory table of docs/edge.md.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import venv

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "runtime", "forge", "service"]
#: Runtime tests that need the repository itself or an optional extra, not the install.
EDGE_DESELECT = ["tests/runtime/test_line_budget.py::test_runtime_core_stays_within_its_line_budget"]


def _copy_tree(names, destination):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in names:
        source = ROOT / name
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, destination / name)


def run_core_install_suite(workdir, timeout=300):
    """Build a numpy-only venv in ``workdir`` and run the runtime tests with it.

    Returns ``(returncode, output, installed)``, ``installed`` being the venv's package
    names. Sources and tests are copied, so the installed ``runtime`` is the one tested.
    """
    workdir = pathlib.Path(workdir)
    src, tree = workdir / "src", workdir / "tree"
    src.mkdir()
    tree.mkdir()
    _copy_tree(SOURCES, src)
    _copy_tree(["pyproject.toml", "docs", "tests/__init__.py", "tests/conftest.py",
                "tests/runtime"], tree)
    venv.create(workdir / "venv", with_pip=True)
    python = str(workdir / "venv" / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(pip + ["install", str(src), "pytest", "hypothesis"], check=True,
                   timeout=timeout, capture_output=True)
    listed = subprocess.run(pip[:-1] + ["list", "--format=json"], check=True, text=True,
                            capture_output=True, timeout=60).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FORGE_"))}
    command = [python, "-m", "pytest", "tests/runtime", "-q", "-p", "no:cacheprovider",
               "--ignore=tests/runtime/test_dask.py"]
    command += [f"--deselect={item}" for item in EDGE_DESELECT]
    check = ("import runtime, importlib.util as u; "
             "assert 'site-packages' in runtime.__file__, runtime.__file__; "
             "assert not any(u.find_spec(m) for m in ('numba', 'scipy', 'pytensor'))")
    result = subprocess.run([python, "-c", check], cwd=tree, env=env, text=True,
                            capture_output=True, timeout=60)
    if result.returncode == 0:
        result = subprocess.run(command, cwd=tree, env=env, text=True, capture_output=True,
                                timeout=timeout)
    return result.returncode, result.stdout + result.stderr, installed


_MEMORY_SCRIPT = r"""
import json, sys, time
def status():
    fields = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return fields
import numpy as np
numpy_only = status()["VmHWM"]
import runtime
imported = status()["VmHWM"]
path, mmap = sys.argv[1], sys.argv[2] == "1"
model = runtime.load(path, mmap=mmap)
loaded = status()["VmHWM"]
spec = model.inputs[0]
# not numpy.random: numpy imports it lazily, and its modules would count as the
# prediction's memory
shape = (1,) + tuple(spec.shape[1:])
x = np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape)
model(x)
end = status()
print(json.dumps({"numpy": numpy_only, "runtime": imported, "loaded": loaded,
                  "predicted": end["VmHWM"], "anon": end["RssAnon"], "file": end["RssFile"]}))
"""


def measure_memory(path, mmap=False):
    """Peak RSS (MiB) after ``import numpy``, ``import runtime``, load and one prediction
    (batch 1), in a fresh process with the numpy kernels; plus the final anonymous and
    file-backed RSS."""
    env = dict(os.environ, FORGE_KERNELS="numpy")
    result = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(path), str(int(mmap))],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                            check=True)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["bundle"] = os.path.getsize(path) / 2**20
    return figures


def example_bundles(folder):
    """The digits MLP (re-written aligned) and the benchmark MLP and CNN, in ``folder``."""
    sys.path.insert(0, str(ROOT))
    from runtime.bundle import read_bundle, write_bundle
    from tests.benchmarks import networks

    folder = pathlib.Path(folder)
    manifest, arrays = read_bundle(ROOT / "service" / "models" / "digits.npz")
    write_bundle(folder / "digits.npz", manifest, arrays)
    paths = {"digits MLP (service/models/digits.npz)": folder / "digits.npz"}
    for net in ("mlp", "cnn"):
        paths[f"benchmark {net.upper()} ({networks.DESCRIPTIONS[net].split(':')[0]})"] = (
            networks.write_runtime_bundle(net, networks.make_weights(net),
                                          folder / f"{net}.npz"))
    return paths


def memory_table(folder):
    rows = ["| model | bundle MiB | mmap | numpy | + import runtime | + load | + first "
            "prediction | growth over `import runtime` | target 1.5x bundle | anon / file "
            "RSS at end |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label, path in example_bundles(folder).items():
        for mmap in (False, True):
            f = measure_memory(path, mmap)
            growth = f["predicted"] - f["runtime"]
            rows.append(f"| {label} | {f['bundle']:.2f} | {'yes' if mmap else 'no'} | "
                        f"{f['numpy']:.1f} | {f['runtime']:.1f} | {f['loaded']:.1f} | "
                        f"{f['predicted']:.1f} | {growth:.1f} | {1.5 * f['bundle']:.1f} | "
                        f"{f['anon']:.1f} / {f['file']:.1f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if "--memory" in sys.argv:
        with tempfile.TemporaryDirectory() as folder:
            print(memory_table(folder))
        raise SystemExit(0)
    with tempfile.TemporaryDirectory() as folder:
        code, output, installed = run_core_install_suite(folder)
    print(output[-4000:])
    print("installed:", ", ".join(sorted(installed)))
    raise SystemExit(code)


import numpy as np  # noqa: E402  (below: the pytest part)
import pytest  # noqa: E402

import runtime  # noqa: E402
from runtime.errors import BundleError  # noqa: E402


@pytest.mark.slow
class TestCoreInstall:
    def test_runtime_tests_pass_with_numpy_alone(self, tmp_path):
        code, output, installed = run_core_install_suite(tmp_path)
        assert code == 0, output[-6000:]
        assert "numpy" in installed and "forge-nn" in installed
        assert not installed & {"numba", "scipy", "pytensor", "fastapi", "pydantic",
                                "llvmlite"}, sorted(installed)
        assert " passed" in output and " failed" not in output, output[-2000:]


class TestMemory:
    @pytest.mark.parametrize("net", ["mlp", "cnn"])
    @pytest.mark.parametrize("mmap", [False, True])
    def test_load_and_first_prediction_stay_within_target(self, tmp_path, net, mmap):
        """With ``mmap=True`` loading grows the peak RSS by <= 1.5x the bundle size (+ 0.5
        MiB of buffers) over ``import runtime``. A default load keeps a transposed copy
        of each dense ``W`` (faster products), so it may take up to 2.5x. The first
        prediction adds a fixed cost of a few MiB (OpenBLAS's first-call buffers and
        threads, batch-1 activations, im2col buffers, numpy temporaries) and, with
        ``mmap``, the weights' file pages it reads: the total over ``import runtime`` is
        bounded by the load's allowance plus 5 MiB."""
        from tests.benchmarks import networks

        path = networks.write_runtime_bundle(net, networks.make_weights(net),
                                             tmp_path / f"{net}.npz")
        f = measure_memory(path, mmap)
        factor = 1.5 if mmap else 2.5
        assert f["loaded"] - f["runtime"] <= factor * f["bundle"] + 0.5, f
        assert f["predicted"] - f["runtime"] <= factor * f["bundle"] + 5, f
        if mmap:  # the weights are shared file pages, not private copies
            assert f["anon"] < measure_memory(path, False)["anon"] - 0.5 * f["bundle"], f


class TestMmap:
    @pytest.fixture
    def bundle(self, tmp_path):
        from tests.benchmarks import networks

        return networks.write_runtime_bundle("cnn", networks.make_weights("cnn"),
                                             tmp_path / "cnn.npz")

    def test_mapped_arrays_are_read_only_aligned_and_give_the_same_results(self, bundle):
        from runtime.bundle import read_bundle

        _, copied = read_bundle(bundle)
        _, mapped = read_bundle(bundle, mmap=True)
        for key, array in mapped.items():
            assert isinstance(array, np.memmap), key
            assert array.flags.aligned and not array.flags.writeable, key
            np.testing.assert_array_equal(array, copied[key])
        x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
        np.testing.assert_array_equal(runtime.load(bundle, mmap=True)(x),
                                      runtime.load(bundle)(x))

    def test_a_changed_byte_is_caught_at_load(self, bundle, tmp_path):
        from runtime.bundle import member_data_offset
        import zipfile

        with open(bundle, "rb") as handle, zipfile.ZipFile(handle) as archive:
            info = archive.getinfo("dense_1.W.npy")
            offset = member_data_offset(handle, info) + info.file_size - 4  # last value
        data = bytearray(pathlib.Path(bundle).read_bytes())
        data[offset] ^= 0x40
        bad = tmp_path / "bad.npz"
        bad.write_bytes(bytes(data))
        with pytest.raises(BundleError, match="dense_1.W.*(sha256|CRC)"):
            runtime.load(bad, mmap=True)
        runtime.load(bad, mmap=True, verify=False)  # the structure is fine

    @pytest.mark.parametrize("how", ["compressed", "unaligned"])
    def test_members_that_cannot_be_mapped_are_read_with_a_warning(self, bundle, tmp_path,
                                                                    how):
        import zipfile

        from runtime.bundle import read_bundle

        rewritten = tmp_path / f"{how}.npz"
        with zipfile.ZipFile(bundle) as src, open(rewritten, "wb") as handle, \
                zipfile.ZipFile(handle, "w") as out:
            for info in src.infolist():
                new = zipfile.ZipInfo(info.filename)
                if how == "compressed":
                    new.compress_type = zipfile.ZIP_DEFLATED
                else:  # an extra field that puts the data 1 byte past a 4-byte boundary
                    used = handle.tell() + 30 + len(info.filename) + 4 + 128
                    new.extra = b"\x35\xd9" + bytes([(1 - used) % 4, 0]) + bytes((1 - used) % 4)
                out.writestr(new, src.read(info))
        with pytest.warns(RuntimeWarning, match=f"{how}.*not memory-mapped"):
            _, arrays = read_bundle(rewritten, mmap=True)
        assert not any(isinstance(a, np.memmap) for a in arrays.values())
        x = np.ones((1, 1, 28, 28), np.float32)
        with pytest.warns(RuntimeWarning):
            np.testing.assert_array_equal(runtime.load(rewritten, mmap=True)(x),
                                          runtime.load(bundle)(x))

    def test_a_file_object_is_read_into_memory_with_a_warning(self, bundle):
        with open(bundle, "rb") as handle, pytest.warns(RuntimeWarning, match="needs a path"):
            runtime.load(handle, mmap=True)

    def test_written_members_start_at_64_byte_offsets(self, bundle):
        import zipfile

        from runtime.bundle import member_data_offset

        with open(bundle, "rb") as handle, zipfile.ZipFile(handle) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".npy"):
                    assert member_data_offset(handle, info) % 64 == 0, info.filename
