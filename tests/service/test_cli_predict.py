"""``forge predict`` and ``forge inspect`` (service/batch.py): formats, names, memory."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import runtime
from service import cli
from tests.runtime.helpers import BundleBuilder, mlp_builder

REPO_ROOT = Path(__file__).resolve().parents[2]
DIGITS = REPO_ROOT / "service" / "models" / "digits.npz"


def by_chunks(model, feeds, names, batch):
    rows = len(next(iter(feeds.values())))
    parts = [model.run({n: a[i:i + batch] for n, a in feeds.items()}, names)
             for i in range(0, rows, batch)]
    return {n: np.concatenate([p[n] for p in parts]) for n in names}


@pytest.fixture
def x():
    return np.random.default_rng(0).random((1000, 64), dtype=np.float32)


def forge(*argv):
    return cli.main([str(a) for a in argv])


class TestPredict:
    def test_npy_to_npy_in_chunks_with_a_progress_bar(self, tmp_path, x, capsys):
        np.save(tmp_path / "x.npy", x)
        assert forge("predict", DIGITS, tmp_path / "x.npy", "-o", tmp_path / "y.npy",
                     "--batch-size", 300) == 0
        expected = by_chunks(runtime.load(DIGITS), {"pixels": x}, ["probs"], 300)["probs"]
        np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)
        err = capsys.readouterr().err
        assert "1000 rows" in err
        if pytest.importorskip("tqdm", reason="tqdm not installed (no progress bar)"):
            assert "rows/s" in err
        assert sorted(os.listdir(tmp_path)) == ["x.npy", "y.npy"]  # no temporary left

    def test_npz_output_named_by_layers_with_intermediates(self, tmp_path, x):
        np.save(tmp_path / "x.npy", x)
        assert forge("predict", DIGITS, tmp_path / "x.npy", "-o", tmp_path / "y.npz",
                     "--outputs", "hidden1", "probs", "--no-progress") == 0
        with np.load(tmp_path / "y.npz") as out:
            assert list(out) == ["hidden1", "probs"]
            expected = by_chunks(runtime.load(DIGITS), {"pixels": x}, ["hidden1", "probs"],
                                 256)
            for name in out:
                np.testing.assert_array_equal(out[name], expected[name])
        with zipfile.ZipFile(tmp_path / "y.npz") as archive:
            assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())

    @pytest.mark.parametrize("compressed", [False, True])
    def test_npz_input_one_array_per_model_input(self, tmp_path, compressed, capsys):
        b = BundleBuilder()
        b.input("a", [None, 2])
        b.input("b", [None, 3])
        b.layer("ConcatLayer", ["a", "b"], {"axis": 1, "cropping": None}, shape=[None, 5],
                name="joined")
        bundle = b.write(tmp_path / "two.npz")
        a = np.arange(14, dtype=np.float32).reshape(7, 2)
        c = -np.arange(21, dtype=np.float64).reshape(7, 3)
        (np.savez_compressed if compressed else np.savez)(tmp_path / "in.npz", b=c, a=a)
        assert forge("predict", bundle, tmp_path / "in.npz", "-o", tmp_path / "out.npy",
                     "--batch-size", 3, "--no-progress") == 0
        np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), np.hstack([a, c]))
        assert ("is compressed" in capsys.readouterr().err) == compressed

    @pytest.mark.parametrize("header", [True, False])
    def test_csv_with_or_without_header(self, tmp_path, header):
        bundle = mlp_builder()[0].write(tmp_path / "mlp.npz")
        data = np.random.default_rng(3).random((25, 4))
        np.savetxt(tmp_path / "x.csv", data, delimiter=",",
                   header="a,b,c,d" if header else "", comments="")
        assert forge("predict", bundle, tmp_path / "x.csv", "-o", tmp_path / "y.npy",
                     "--batch-size", 10, "--no-progress") == 0
        model = runtime.load(bundle)
        expected = by_chunks(model, {"input": data.astype(np.float32)}, ["output"], 10)
        np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected["output"],
                                   rtol=1e-6, atol=1e-7)

    def test_threaded_dask_scheduler_gives_the_same_file(self, tmp_path, x):
        pytest.importorskip("dask.array", reason="dask not installed (optional [dask] extra)")
        np.save(tmp_path / "x.npy", x)
        for name, extra in (("local", []), ("dask", ["--scheduler", "threads"])):
            assert forge("predict", DIGITS, tmp_path / "x.npy", "-o", tmp_path / f"{name}.npz",
                         "--outputs", "probs", "hidden2", "--batch-size", 100,
                         "--no-progress", *extra) == 0
        with np.load(tmp_path / "local.npz") as a, np.load(tmp_path / "dask.npz") as b:
            for name in ("probs", "hidden2"):
                np.testing.assert_array_equal(a[name], b[name])

    @pytest.mark.parametrize("argv, message", [
        (["-o", "{tmp}/y.npy", "--outputs", "probs", "hidden1"], "holds one array"),
        (["-o", "{tmp}/y.txt"], "expected a .npy or .npz"),
        (["-o", "{tmp}/y.npy", "--outputs", "nope"], "unknown output 'nope'"),
        (["-o", "{tmp}/y.npy", "--batch-size", "0"], "batch_size must be >= 1"),
    ])
    def test_errors_exit_2_and_leave_nothing_behind(self, tmp_path, x, argv, message, capsys):
        np.save(tmp_path / "x.npy", x)
        argv = [a.format(tmp=tmp_path) for a in argv]
        assert forge("predict", DIGITS, tmp_path / "x.npy", "--no-progress", *argv) == 2
        assert message in capsys.readouterr().err
        assert os.listdir(tmp_path) == ["x.npy"]

    def test_csv_row_of_the_wrong_width_names_the_line(self, tmp_path, capsys):
        bundle = mlp_builder()[0].write(tmp_path / "mlp.npz")
        (tmp_path / "x.csv").write_text("1,2,3,4\n1,2,3\n")
        assert forge("predict", bundle, tmp_path / "x.csv", "-o", tmp_path / "y.npy",
                     "--no-progress") == 2
        assert "line 2: 3 values" in capsys.readouterr().err

    def test_memory_is_bounded_by_the_batch_not_the_file(self, tmp_path):
        """A 64 MiB input scored in 4096-row chunks: the peak RSS grows by far less."""
        bundle = mlp_builder()[0].write(tmp_path / "mlp.npz")
        rows = 4 << 20  # 4M rows x 4 float32 = 64 MiB in, 32 MiB out
        np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.float32, (rows, 4))[:] = 0.5
        script = (
            "import sys\n"
            "from service.batch import predict_file\n"
            "def peak():\n"
            "    return int([l for l in open('/proc/self/status') if l.startswith('VmHWM')]"
            "[0].split()[1]) // 1024\n"
            "import runtime; runtime.load(sys.argv[1])(__import__('numpy').zeros((4096, 4)))\n"
            "before = peak()\n"
            "predict_file(sys.argv[1], sys.argv[2], sys.argv[3], batch_size=4096, "
            "progress=False)\n"
            "print(before, peak())\n")
        result = subprocess.run(
            [sys.executable, "-c", script, bundle, tmp_path / "x.npy", tmp_path / "y.npy"],
            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
        assert result.returncode == 0, result.stderr
        before, after = map(int, result.stdout.split())
        assert after - before < 24, f"peak RSS grew {after - before} MiB for 96 MiB of data"
        out = np.load(tmp_path / "y.npy", mmap_mode="r")
        assert out.shape == (rows, 2) and np.all(out[-5:] == out[0])


class TestInspect:
    def test_text_report(self, capsys):
        assert forge("inspect", DIGITS) == 0
        out = capsys.readouterr().out
        for text in ("digests  ok", "forge-bundle version 1", "pixels: float32 (None, 64)",
                     "probs: float32 (None, 10)", "hidden1    DenseLayer", "16,640",
                     "max abs error", f"{DIGITS.stat().st_size:,} bytes", '"labels"'):
            assert text in out, text

    def test_json_report(self, capsys):
        assert forge("inspect", DIGITS, "--json") == 0
        info = json.loads(capsys.readouterr().out)
        model = runtime.load(DIGITS)
        assert info["size_bytes"] == DIGITS.stat().st_size
        assert info["num_params"] == model.num_params == sum(l["params"] for l in info["layers"])
        assert info["inputs"] == [{"name": "pixels", "shape": [None, 64], "dtype": "float32"}]
        assert [l["name"] for l in info["layers"]] == list(model.layers)
        assert info["parity"]["max_abs_error"] <= 1e-5
        assert info["metadata"]["labels"] == [str(i) for i in range(10)]

    def test_a_tampered_array_is_reported_and_exits_1(self, tmp_path, capsys):
        builder, _ = mlp_builder()
        manifest, arrays = builder.build()
        from runtime.bundle import write_bundle
        write_bundle(tmp_path / "m.npz", manifest, arrays)
        manifest["arrays"]["dense_1.W"]["sha256"] = "0" * 64
        data = (tmp_path / "m.npz").read_bytes()
        with zipfile.ZipFile(tmp_path / "bad.npz", "w") as out, \
                zipfile.ZipFile(tmp_path / "m.npz") as src:
            for info in src.infolist():
                body = (json.dumps(manifest).encode() if info.filename == "manifest.json"
                        else src.read(info))
                out.writestr(info.filename, body)
        assert data  # the good file was written
        assert forge("inspect", tmp_path / "bad.npz") == 1
        assert "digests  FAILED" in capsys.readouterr().out

    def test_not_a_bundle_exits_2(self, tmp_path, capsys):
        (tmp_path / "x.npz").write_bytes(b"nope")
        assert forge("inspect", tmp_path / "x.npz") == 2
        assert "not a zip archive" in capsys.readouterr().err
