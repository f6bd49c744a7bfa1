"""FORGE_KERNELS picks the convolution and pooling kernels; numba is imported only when a
layer that uses them is built (``numba``) or makes a call large enough (``auto``)."""
import json
import os
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

import runtime
from runtime import kernels
from runtime.kernels import _auto, _numba, _numpy

from ..helpers import BundleBuilder
from ..profile_cnn import readme_cnn

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _conv_builder(channels, side, filters, weight):
    """A bundle of one 3x3 convolution (rectify) of ``filters`` over a ``channels`` x
    ``side`` x ``side`` input, every weight ``weight``."""
    b = BundleBuilder()
    x = b.input("x", [None, channels, side, side])
    b.layer("Conv2DLayer", [x], {
        "num_filters": filters, "filter_size": [3, 3], "stride": [1, 1],
        "pad": [[0, 0], [0, 0]], "dilation": [1, 1], "num_groups": 1, "untie_biases": False,
        "flip_filters": True, "nonlinearity": {"name": "rectify"}},
        {"W": np.full((filters, channels, 3, 3), weight, np.float32), "b": None},
        shape=[None, filters, side - 2, side - 2], name="conv")
    return b


def conv_builder():
    return _conv_builder(1, 5, 2, 1.0)


def readme_conv2_builder():
    """The README CNN's second convolution: 12.5 million multiply-adds a sample."""
    return _conv_builder(64, 26, 32, 0.01)


def block_numba(monkeypatch):
    """Make ``import numba`` fail and ``find_spec('numba')`` return None, as when it is
    not installed."""
    monkeypatch.setitem(sys.modules, "numba", None)


def spy_on_kernel(monkeypatch, kernel="conv"):
    """Replace numpy's and numba's ``kernel`` by spies (``auto`` selecting numba without
    loading it); returns the list of the kernel modules' names they are called in."""
    picked = []
    for module in (_numpy, _numba):
        def spy(*args, module=module, **kwargs):
            picked.append(module.__name__.rsplit(".", 1)[1])
            return np.zeros(1)
        monkeypatch.setattr(module, kernel, spy)
    monkeypatch.setattr(kernels, "select", lambda: _numba)
    return picked


class TestSelect:
    @pytest.mark.parametrize("value", ["numpy", " NumPy "])
    def test_numpy_when_asked(self, monkeypatch, value):
        monkeypatch.setenv("FORGE_KERNELS", value)
        assert kernels.select() is _numpy

    def test_auto_without_numba_is_numpy(self, monkeypatch):
        monkeypatch.delenv("FORGE_KERNELS", raising=False)
        block_numba(monkeypatch)
        assert not kernels.numba_installed()
        assert kernels.select() is _numpy

    def test_numba_without_numba_says_what_to_install(self, monkeypatch):
        monkeypatch.setenv("FORGE_KERNELS", "numba")
        block_numba(monkeypatch)
        with pytest.raises(ImportError, match=r"numba is not installed: pip install "
                                              r"'forge-nn\[fast\]'"):
            kernels.select()

    def test_loading_a_conv_model_then_fails_with_that_message(self, monkeypatch, tmp_path):
        path = conv_builder().write(tmp_path / "conv.npz")
        monkeypatch.setenv("FORGE_KERNELS", "numba")
        block_numba(monkeypatch)
        with pytest.raises(ImportError, match=r"forge-nn\[fast\]"):
            runtime.load(path)

    def test_refuses_an_unknown_value(self, monkeypatch):
        monkeypatch.setenv("FORGE_KERNELS", "fast")
        with pytest.raises(RuntimeError, match="FORGE_KERNELS='fast' is not one of auto, "
                                               "numpy, numba"):
            kernels.select()

    @pytest.mark.parametrize("value", ["", "auto", "numba"])
    def test_numba_when_installed(self, monkeypatch, value):
        pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")
        monkeypatch.setenv("FORGE_KERNELS", value)
        assert kernels.select() is _numba

    def test_auto_falls_back_with_a_warning_when_numba_will_not_import(self, monkeypatch):
        monkeypatch.delenv("FORGE_KERNELS", raising=False)
        monkeypatch.setattr(kernels, "numba_installed", lambda: True)
        monkeypatch.setattr(kernels, "_auto_failed", threading.Event())
        monkeypatch.setattr(_numba, "_loaded", False)
        block_numba(monkeypatch)
        with pytest.warns(RuntimeWarning, match="running convolution and pooling with numpy"):
            assert kernels.select() is _numpy
        assert kernels.select() is _numpy  # and does not try again
        assert kernels.layer_kernels() is _numpy


class TestLayerKernels:
    @pytest.mark.parametrize("value, module", [("numpy", _numpy), ("auto", _auto)])
    def test_by_the_variable(self, monkeypatch, value, module):
        pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")
        monkeypatch.setenv("FORGE_KERNELS", value)
        assert kernels.layer_kernels() is module

    def test_numba_forces_numba(self, monkeypatch):
        pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")
        monkeypatch.setenv("FORGE_KERNELS", "numba")
        assert kernels.layer_kernels() is _numba

    def test_auto_without_numba_is_numpy(self, monkeypatch):
        monkeypatch.delenv("FORGE_KERNELS", raising=False)
        block_numba(monkeypatch)
        assert kernels.layer_kernels() is _numpy

    @pytest.mark.parametrize("batch, expected", [(1, "_numpy"), (3, "_numba")])
    def test_auto_picks_by_the_work(self, monkeypatch, batch, expected):
        """12.5 million multiply-adds a sample: batch 1 is below AUTO_MIN_WORK, 3 above."""
        picked = spy_on_kernel(monkeypatch)
        x, W = np.zeros((batch, 64, 26, 26), np.float32), np.zeros((32, 64, 3, 3), np.float32)
        assert (_auto.conv_work(x, W) >= kernels.AUTO_MIN_WORK) == (batch > 1)
        _auto.conv(x, W)
        assert picked == [expected]

    def test_every_call_goes_to_numba_within_the_context(self, monkeypatch):
        """``numba_for_every_call`` sends a batch-1 call (below AUTO_MIN_WORK) to numba's
        kernel, in this thread only, and only until the context ends."""
        picked = spy_on_kernel(monkeypatch)
        x, W = np.zeros((1, 64, 26, 26), np.float32), np.zeros((32, 64, 3, 3), np.float32)
        with kernels.numba_for_every_call():
            _auto.conv(x, W)
            other = threading.Thread(target=_auto.conv, args=(x, W))
            other.start()
            other.join()
        _auto.conv(x, W)
        assert picked == ["_numba", "_numpy", "_numpy"]

    def test_auto_pools_by_the_work(self, monkeypatch):
        """Pooling's threshold is AUTO_MIN_POOL_WORK (input elements x window size)."""
        monkeypatch.setattr(kernels, "AUTO_MIN_POOL_WORK", 100)
        monkeypatch.setattr(kernels, "AUTO_MIN_WORK", 1)  # the other kernels' threshold
        monkeypatch.setattr(kernels, "select", lambda: pytest.fail("small pool went to numba"))
        x = np.arange(8.0).reshape(1, 2, 2, 2)  # 8 elements x 4: below 100
        np.testing.assert_array_equal(_auto.pool(x, (2, 2)), _numpy.pool(x, (2, 2)))
        np.testing.assert_array_equal(_auto.spatial_pyramid_pool(x, [1]),
                                      _numpy.spatial_pyramid_pool(x, [1]))
        selected = []
        monkeypatch.setattr(kernels, "select", lambda: selected.append(1) or _numpy)
        big = np.ones((1, 2, 8, 8))  # 128 elements x 4
        np.testing.assert_array_equal(_auto.pool(big, (2, 2)), _numpy.pool(big, (2, 2)))
        np.testing.assert_array_equal(_auto.spatial_pyramid_pool(big, [1]),
                                      _numpy.spatial_pyramid_pool(big, [1]))
        assert selected == [1, 1]

    def test_readme_cnn_pool_is_numpy_at_batch_1_and_numba_at_64(self):
        """Its max-pool (32 x 24 x 24 inputs, 3 x 3 windows): 166 thousand comparisons an
        item, numba's (split over the cores) from batch 26."""
        work = 32 * 24 * 24 * 9
        assert work < kernels.AUTO_MIN_POOL_WORK <= 64 * work

    def test_auto_multiplies_on_numba_only_once_numba_runs(self, monkeypatch):
        """A dense product never imports numba; once numba's kernels run in the process,
        one of AUTO_MIN_WORK multiply-adds or more runs there (and any one within
        numba_for_every_call, which also runs a block of 8 items first, to compile the
        product large batches take), a smaller one on numpy."""
        picked = spy_on_kernel(monkeypatch, "dense")
        monkeypatch.setattr(kernels, "select", lambda: pytest.fail("dense imported numba"))
        W = np.zeros((4608, 128), np.float32)  # the README CNN's first dense layer
        big, small = np.zeros((64, 4608), np.float32), np.zeros((1, 4608), np.float32)
        assert small.shape[0] * W.size < kernels.AUTO_MIN_WORK <= big.shape[0] * W.size
        monkeypatch.setattr(_numba, "_loaded", False)
        _auto.dense(big, W)
        with kernels.numba_for_every_call():
            _auto.dense(small, W)
        monkeypatch.setattr(_numba, "_loaded", True)
        _auto.dense(big, W)
        _auto.dense(small, W)
        with kernels.numba_for_every_call():
            _auto.dense(small, W)
        assert picked == ["_numpy", "_numpy", "_numba", "_numpy", "_numba", "_numba"]

    def test_a_single_items_function_keeps_the_dense_rule(self, monkeypatch):
        """numpy's function for a product below AUTO_MIN_WORK, whose calls go through
        dense (numba's direct product, once numba runs) within numba_for_every_call;
        none for a larger one, whose every call goes through dense."""
        W = np.asfortranarray(np.ones((4608, 128), np.float32))
        one = _auto.dense_one(W)
        x = np.ones((1, 4608), np.float32)
        np.testing.assert_array_equal(one(x), _numpy.dense(x, W))
        picked = spy_on_kernel(monkeypatch, "dense")
        monkeypatch.setattr(_numba, "_loaded", True)
        one(x)
        with kernels.numba_for_every_call():
            one(x)
        assert picked == ["_numba", "_numba"]  # a block of 8 zero items first, then x
        monkeypatch.setattr(kernels, "AUTO_MIN_WORK", W.size)
        assert _auto.dense_one(W) is None

    def test_offers_every_kernel(self):
        assert _auto.__all__ == _numpy.__all__
        assert all(callable(getattr(_auto, name)) for name in _numpy.__all__)


class TestDenseKernels:
    @pytest.mark.parametrize("value, module", [("numpy", _numpy), ("auto", _auto),
                                               ("numba", _auto)])
    def test_by_the_variable(self, monkeypatch, value, module):
        pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")
        monkeypatch.setenv("FORGE_KERNELS", value)
        assert kernels.dense_kernels() is module

    def test_numpy_without_numba(self, monkeypatch):
        monkeypatch.setenv("FORGE_KERNELS", "numba")
        block_numba(monkeypatch)
        assert kernels.dense_kernels() is _numpy

    @pytest.mark.parametrize("value", ["auto", "numba"])
    def test_a_dense_model_never_imports_numba(self, tmp_path, value):
        """Even at batch 64, and under FORGE_KERNELS=numba: an MLP alone multiplies
        faster on OpenBLAS, and keeps numpy's cold start."""
        pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")
        b = BundleBuilder()
        x = b.input("x", [None, 300])
        b.layer("DenseLayer", [x], {"num_units": 100, "num_leading_axes": 1,
                                    "nonlinearity": {"name": "rectify"}},
                {"W": np.ones((300, 100), np.float32), "b": None}, shape=[None, 100],
                name="d")
        path = b.write(tmp_path / "dense.npz")
        code = (f"import runtime, numpy as np\nm = runtime.load({str(path)!r})\n"
                f"m.warm_up()\nassert m(np.ones((64, 300), np.float32)).shape == (64, 100)")
        assert "numba" not in modules_after(code, FORGE_KERNELS=value)


def modules_after(code, **env):
    """Top-level modules a fresh interpreter has loaded after running ``code``."""
    script = (f"import sys, json\n{code}\nprint(json.dumps(sorted(k for k, v in "
              "sys.modules.items() if v is not None)))")
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONSTARTUP", "FORGE_KERNELS")}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=dict(environ, **env))
    assert result.returncode == 0, result.stderr
    return {m.split(".")[0] for m in json.loads(result.stdout.strip().splitlines()[-1])}


class TestNumbaLoadsLazily:
    def test_not_on_import(self):
        assert "numba" not in modules_after("import runtime, runtime.kernels, runtime.layers")

    @pytest.mark.parametrize("value, batch, loaded", [
        ("numpy", 4, False), ("auto", 1, False), ("auto", 4, True), ("numba", 1, True)])
    def test_on_loading_a_model_with_convolutions(self, tmp_path, value, batch, loaded):
        """``auto``: a batch-1 prediction of the README CNN's big convolution never imports
        numba (the cold start of a small prediction is numpy's); batch 4 does."""
        if value != "numpy":
            pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")
        path = readme_conv2_builder().write(tmp_path / "conv.npz")
        code = (f"import runtime, numpy as np\nm = runtime.load({str(path)!r})\n"
                f"y = m(np.ones(({batch}, 64, 26, 26)))\nassert y.shape == ({batch}, 32, 24, 24)")
        assert ("numba" in modules_after(code, FORGE_KERNELS=value)) is loaded

    @pytest.mark.parametrize("builder", [readme_conv2_builder, conv_builder, readme_cnn])
    def test_warm_up_loads_every_kernel_a_large_call_needs(self, tmp_path, builder):
        """``auto``: after ``Model.warm_up`` (batch 1), numba is imported and a batch-64
        call compiles or loads no kernel signature that the warm-up did not (for the
        whole README CNN too, whose dense layer takes numba's direct product at 64)."""
        pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")
        path = builder().write(tmp_path / "conv.npz")
        code = (
            "import runtime, numpy as np\n"
            f"m = runtime.load({str(path)!r})\n"
            "m.warm_up()\n"
            "import sys\nassert 'numba' in sys.modules, 'warm-up did not import numba'\n"
            "from runtime.kernels import _numba\n"
            "def signatures():\n"
            "    return {n: len(getattr(_numba, n).signatures) for n in _numba._KERNELS}\n"
            "before = signatures()\n"
            "assert sum(before.values()), 'warm-up compiled no kernel'\n"
            "spec = m.inputs[0]\n"
            "m(np.ones((64,) + spec.shape[1:], np.float32))\n"
            "assert signatures() == before, (before, signatures())\n")
        assert "numba" in modules_after(code, FORGE_KERNELS="auto")

    def test_warm_up_of_a_model_without_convolutions_imports_nothing(self, tmp_path):
        b = BundleBuilder()
        x = b.input("x", [None, 3])
        b.layer("DenseLayer", [x], {"num_units": 2, "num_leading_axes": 1,
                                    "nonlinearity": {"name": "rectify"}},
                {"W": np.ones((3, 2), np.float32), "b": None}, shape=[None, 2], name="d")
        path = b.write(tmp_path / "dense.npz")
        code = f"import runtime\nruntime.load({str(path)!r}).warm_up()"
        assert "numba" not in modules_after(code, FORGE_KERNELS="auto")


def test_a_conv_model_runs_the_same_without_numba(tmp_path):
    """With numba missing (blocked in a fresh interpreter), FORGE_KERNELS=auto runs the
    numpy kernels and gives what the numpy kernels give here."""
    path = conv_builder().write(tmp_path / "conv.npz")
    x = np.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code = (f"import sys\nsys.modules['numba'] = None\nimport runtime, numpy as np\n"
            f"model = runtime.load({str(path)!r})\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, model(np.load({str(tmp_path / 'x.npy')!r})))")
    assert "numba" not in modules_after(code, FORGE_KERNELS="auto")
    expected = np.maximum(_numpy.conv(x, np.ones((2, 1, 3, 3), np.float32)), 0)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-6)
