"""runtime.layers.dense against numpy references."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import BundleError, InputError, kernels

from ..helpers import (REFERENCE_NONLINEARITIES, TOTAL_NONLINEARITIES, BundleBuilder,
                       build_layer, check_layer)


def dense_config(units, lead=1, nonlinearity="linear"):
    return {"num_units": units, "num_leading_axes": lead,
            "nonlinearity": REFERENCE_NONLINEARITIES[nonlinearity][0]}


class TestDenseLayer:
    def test_matches_reference(self):
        rng = np.random.default_rng(0)
        W, b = rng.standard_normal((5, 3)).astype("f4"), rng.standard_normal(3).astype("f4")
        check_layer("DenseLayer", dense_config(3, nonlinearity="tanh"), {"W": W, "b": b},
                    [(4, 5)], lambda x: np.tanh(np.einsum("nk,km->nm", x.astype("f8"), W) + b))

    def test_flattens_trailing_axes(self):
        W = np.arange(12, dtype="f4").reshape(6, 2) / 10
        check_layer("DenseLayer", dense_config(2), {"W": W, "b": None}, [(3, 2, 3)],
                    lambda x: x.reshape(3, 6).astype("f8") @ W)

    @settings(max_examples=40, deadline=None)
    @given(lead=st.integers(1, 3), leading=st.lists(st.integers(0, 3), min_size=3, max_size=3),
           trailing=st.lists(st.integers(1, 3), min_size=1, max_size=2),
           units=st.integers(1, 4), bias=st.booleans(),
           nonlinearity=st.sampled_from(TOTAL_NONLINEARITIES),
           dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 1000))
    def test_random_configurations(self, lead, leading, trailing, units, bias, nonlinearity,
                                   dtype, seed):
        shape = tuple(leading[:lead]) + tuple(trailing)
        rng = np.random.default_rng(seed)
        W = rng.standard_normal((math.prod(trailing), units)).astype(dtype)
        b = rng.standard_normal(units).astype(dtype) if bias else None

        def reference(x):
            flat = x.astype("f8").reshape(*shape[:lead], math.prod(trailing))
            z = np.einsum("...k,km->...m", flat, W.astype("f8"))
            return REFERENCE_NONLINEARITIES[nonlinearity][1](z if b is None else z + b)

        check_layer("DenseLayer", dense_config(units, lead, nonlinearity), {"W": W, "b": b},
                    [shape], reference, dtype=dtype, seed=seed)

    @pytest.mark.parametrize("config, params, match", [
        (dense_config(0), {"W": np.zeros((2, 0)), "b": None}, "num_units must be a positive"),
        (dense_config(3), {"W": np.zeros(3), "b": None}, r"W must have shape \(inputs, 3\)"),
        (dense_config(3), {"W": np.zeros((2, 3)), "b": np.zeros(2)}, r"b must have shape \(3,\)"),
        (dense_config(3, lead=0), {"W": np.zeros((2, 3)), "b": None}, "num_leading_axes must"),
        (dense_config(3, lead=-1), {"W": np.zeros((2, 3)), "b": None}, "num_leading_axes must"),
    ])
    def test_bad_entries(self, config, params, match):
        with pytest.raises(BundleError, match=match):
            build_layer("DenseLayer", config, params)

    def test_one_item_reads_a_transposed_copy_of_W(self, monkeypatch):
        """W's values stored transposed (faster matrix-vector products), read-only, for
        one item, whose function the kernels build once; batches read W itself, the
        layer's parameter."""
        module = kernels.dense_kernels()
        built, read = [], []
        real_one, real_dense = module.dense_one, module.dense
        monkeypatch.setattr(module, "dense_one",
                            lambda W, *a: built.append(W) or real_one(W, *a))
        monkeypatch.setattr(module, "dense",
                            lambda x, W, *a: read.append(W) or real_dense(x, W, *a))
        W = np.arange(6, dtype="f4").reshape(2, 3)
        layer = build_layer("DenseLayer", dense_config(3), {"W": W, "b": None})
        copy = layer._W_one_item
        assert layer.params["W"] is W and copy.flags.f_contiguous
        assert not copy.flags.writeable and not np.shares_memory(copy, W)
        np.testing.assert_array_equal(copy, W)
        assert len(built) == 1 and built[0] is copy
        np.testing.assert_array_equal(layer(np.array([[1, 2]], "f4")), [[6, 9, 12]])
        assert read == []  # the single item never went through dense
        np.testing.assert_array_equal(layer(np.array([[1, 2], [0, 1]], "f4")),
                                      [[6, 9, 12], [3, 4, 5]])
        assert len(read) == 1 and read[0] is W

    @pytest.mark.parametrize("nonlinearity, lead, one", [
        ({"name": "rectify"}, 1, True), ({"name": "rectify"}, 2, False),
        ({"name": "program", "program": {
            "inputs": [{"ndim": 2, "dtype": "float32"}],
            "code": [{"op": "softmax", "inputs": [0], "attrs": {"axis": 0},
                      "dtype": "float32"}], "output": 1}}, 1, False)])
    def test_which_layers_build_a_single_item_function(self, nonlinearity, lead, one):
        """One leading axis and a named nonlinearity; a program may name axes, so its
        single items take dense's (1, units) row."""
        config = dict(dense_config(3, lead), nonlinearity=nonlinearity)
        layer = build_layer("DenseLayer", config, {"W": np.ones((2, 3), "f4"), "b": None})
        assert (layer._one is not None) is one

    @pytest.mark.parametrize("backend", ["numpy", "auto", "numba"])
    @pytest.mark.parametrize("shape, lead", [((40, 300), 1), ((4, 10, 6, 50), 2)])
    def test_large_batches_on_each_kernel(self, monkeypatch, backend, shape, lead):
        """Items that fill blocks of 8, 48 units or more, numba's kernels loaded (as a
        convolution loads them): numba's direct product under auto and numba, numpy's
        under numpy."""
        if backend != "numpy":
            pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")
        from runtime.kernels import _numba

        if kernels.numba_installed():  # the suite also runs without numba
            _numba.load()
        monkeypatch.setenv("FORGE_KERNELS", backend)
        monkeypatch.setattr(kernels, "AUTO_MIN_WORK", 2**10)  # these products are "large"
        calls = []
        real = _numba._dense_direct
        monkeypatch.setattr(_numba, "_dense_direct", lambda *a: calls.append(1) or real(*a))
        rng = np.random.default_rng(1)
        features = math.prod(shape[lead:])
        W = rng.standard_normal((features, 50)).astype("f4")
        b = rng.standard_normal(50).astype("f4")

        def reference(x):
            flat = x.astype("f8").reshape(shape[:lead] + (features,))
            return np.maximum(flat @ W + b, 0)

        check_layer("DenseLayer", dense_config(50, lead, "rectify"), {"W": W, "b": b},
                    [shape], reference)
        assert bool(calls) is (backend != "numpy")
        layer = build_layer("DenseLayer", dense_config(50), {"W": W, "b": b})
        assert layer.kernels is kernels.dense_kernels()

    def test_uses_a_memory_mapped_W_as_it_is(self, tmp_path):
        """A copy would undo runtime.load(mmap=True)'s sharing of the weights."""
        np.arange(6, dtype="f4").reshape(2, 3).tofile(tmp_path / "W.bin")
        W = np.memmap(tmp_path / "W.bin", dtype="f4", mode="r", shape=(2, 3))
        layer = build_layer("DenseLayer", dense_config(3), {"W": W, "b": None})
        assert layer._W_one_item is W
        np.testing.assert_array_equal(layer(np.array([[1, 2]], "f4")), [[6, 9, 12]])

    def test_input_errors(self):
        layer = build_layer("DenseLayer", dense_config(3, lead=2), {"W": np.ones((4, 3)),
                                                                    "b": None})
        with pytest.raises(ValueError, match="got num_leading_axes=2 for a 2-dimensional input"):
            layer(np.zeros((2, 4)))
        with pytest.raises(ValueError, match=r"W has 4 rows, but each item of the input "
                                             r"\(shape \(2, 2, 5\)\) has 5 features"):
            layer(np.zeros((2, 2, 5)))

    def test_free_feature_axis_mismatch_is_an_input_error(self):
        b = BundleBuilder()
        b.input("x", [None, None])
        b.layer("DenseLayer", ["x"], dense_config(2), {"W": np.ones((3, 2)), "b": None},
                shape=[None, 2], name="fc")
        with pytest.raises(InputError, match=r"layer 'fc' \(DenseLayer\) cannot take input of "
                                             r"shape \(1, 4\): W has 3 rows"):
            b.load()(np.zeros((1, 4)))


class TestNINLayer:
    @settings(max_examples=30, deadline=None)
    @given(batch=st.integers(0, 3), channels=st.integers(1, 4),
           spatial=st.lists(st.integers(1, 3), max_size=2), units=st.integers(1, 4),
           bias=st.sampled_from(["none", "tied", "untied"]),
           nonlinearity=st.sampled_from(TOTAL_NONLINEARITIES),
           dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 1000))
    def test_random_configurations(self, batch, channels, spatial, units, bias, nonlinearity,
                                   dtype, seed):
        rng = np.random.default_rng(seed)
        W = rng.standard_normal((channels, units)).astype(dtype)
        b = {"none": None, "tied": rng.standard_normal(units).astype(dtype),
             "untied": rng.standard_normal([units] + spatial).astype(dtype)}[bias]

        def reference(x):
            z = np.einsum("bc...,cu->bu...", x.astype("f8"), W.astype("f8"))
            if bias == "tied":
                z = z + b.reshape([units] + [1] * len(spatial))
            elif bias == "untied":
                z = z + b
            return REFERENCE_NONLINEARITIES[nonlinearity][1](z)

        check_layer("NINLayer", {"num_units": units, "untie_biases": bias == "untied",
                                 "nonlinearity": REFERENCE_NONLINEARITIES[nonlinearity][0]},
                    {"W": W, "b": b}, [[batch, channels] + spatial], reference, dtype=dtype,
                    seed=seed)

    def config(self, untie=False):
        return {"num_units": 2, "untie_biases": untie, "nonlinearity": {"name": "linear"}}

    @pytest.mark.parametrize("untie, W, b, match", [
        (False, np.zeros((3, 2)), np.zeros((2, 4)), r"b must have shape \(2,\)"),
        (True, np.zeros((3, 2)), np.zeros((3, 4)), r"b must have shape \(2, 4\)"),
        (False, np.zeros((3, 4)), None, r"W must have shape \(inputs, 2\)"),
        ("yes", np.zeros((3, 2)), None, "untie_biases must be a bool"),
    ])
    def test_bad_entries(self, untie, W, b, match):
        with pytest.raises(BundleError, match=match):
            build_layer("NINLayer", self.config(untie), {"W": W, "b": b})

    def test_input_errors(self):
        layer = build_layer("NINLayer", self.config(True), {"W": np.ones((3, 2)),
                                                            "b": np.ones((2, 5))})
        with pytest.raises(ValueError, match=r"needs an input with a channel axis"):
            layer(np.zeros(3))
        with pytest.raises(ValueError, match=r"W has 3 rows, but the input .* has 4 channels"):
            layer(np.zeros((1, 4, 5)))
        with pytest.raises(ValueError, match=r"untied biases of shape \(2, 5\) do not fit"):
            layer(np.zeros((1, 3, 6)))
