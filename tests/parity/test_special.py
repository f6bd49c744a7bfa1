"""Parity of the special layers: NonlinearityLayer, BiasLayer, ScaleLayer,
ExpressionLayer, the learned and randomized rectifiers, InverseLayer and the spatial
transformers; and the export's refusals for them."""
import numpy as np
import pytensor.tensor as T
import pytest
from hypothesis import assume, given, settings, strategies as st

import forge
from forge.export import ExportError
from forge import layers as L, nonlinearities as nl

from .helpers import assert_parity
from .strategies import ELEMENTWISE, fn_id, SETTINGS, nonlinearities, parameter, shapes


def shared_axes_for(draw, ndim, allow_all=False):
    """A drawn ``shared_axes``: 'auto', one axis or a set of axes; with ``allow_all``,
    'all' too, and sets may hold every axis."""
    mode = draw(st.sampled_from(["auto", "all", "int", "tuple"] if allow_all
                                else ["auto", "int", "tuple"]))
    if mode in ("auto", "all"):
        return mode
    if mode == "int":
        return draw(st.integers(0, ndim - 1))
    return tuple(draw(st.sets(st.integers(0, ndim - 1),
                              max_size=ndim if allow_all else ndim - 1)))


def param_shape(input_shape, shared_axes):
    """The shape of a parameter repeated along ``shared_axes`` of the input."""
    ndim = len(input_shape)
    axes = {"auto": (0,) + tuple(range(2, ndim)), "all": tuple(range(ndim))}.get(
        shared_axes, (shared_axes,) if isinstance(shared_axes, int) else shared_axes)
    return tuple(input_shape[a] for a in range(ndim) if a not in axes)


class TestNonlinearityLayer:
    @pytest.mark.parametrize("fn", ELEMENTWISE + [nl.softmax], ids=fn_id)
    def test_every_nonlinearity(self, fn, bundle_path):
        layer = L.NonlinearityLayer(L.InputLayer((None, 7)), nonlinearity=fn)
        # a wide input range exercises the overflow-prone branches (exp, softplus)
        assert_parity(layer, bundle_path(), scale=6.0, batch=5)

    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        trailing = data.draw(shapes(1, 3))
        layer = L.NonlinearityLayer(L.InputLayer([None] + trailing),
                                    nonlinearity=data.draw(nonlinearities(len(trailing) + 1)))
        assert_parity(layer, bundle_path(), scale=data.draw(st.sampled_from([0.1, 1.0, 10.0])))


class TestBiasAndScaleLayer:
    @settings(**SETTINGS)
    @given(data=st.data(), kind=st.sampled_from(["bias", "scale"]))
    def test_parity(self, data, kind, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        trailing = data.draw(shapes(1, 3))
        shared_axes = shared_axes_for(data.draw, len(trailing) + 1)
        l_in = L.InputLayer([None] + trailing)
        shape = param_shape(l_in.shape, shared_axes)
        assume(None not in shape)  # a parameter cannot span the free batch axis
        value = parameter(data.draw, shape, rng)
        if kind == "bias":
            layer = L.BiasLayer(l_in, b=value, shared_axes=shared_axes)
        else:
            layer = L.ScaleLayer(l_in, scales=value, shared_axes=shared_axes)
        assert_parity(layer, bundle_path())


class TestExpressionLayer:
    @pytest.mark.parametrize("fn", [nl.rectify, nl.tanh, nl.LeakyRectify(0.2), nl.softplus],
                             ids=fn_id)
    def test_named_function(self, fn, bundle_path):
        layer = L.ExpressionLayer(L.InputLayer((None, 3, 4)), fn)
        assert_parity(layer, bundle_path())


class TestParametricRectifierLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        trailing = data.draw(shapes(1, 3))
        shared_axes = shared_axes_for(data.draw, len(trailing) + 1, allow_all=True)
        l_in = L.InputLayer([None] + trailing)
        shape = param_shape(l_in.shape, shared_axes)
        assume(None not in shape)
        layer = L.ParametricRectifierLayer(l_in, alpha=parameter(data.draw, shape, rng),
                                           shared_axes=shared_axes)
        assert_parity(layer, bundle_path())

    def test_prelu_on_a_dense_layer(self, bundle_path):
        assert_parity(L.prelu(L.DenseLayer(L.InputLayer((None, 6)), num_units=4)),
                      bundle_path())


class TestRandomizedRectifierLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_deterministic_parity(self, data, bundle_path):
        trailing = data.draw(shapes(1, 3))
        lower = data.draw(st.floats(0, 1))
        upper = data.draw(st.floats(lower, 1.5))
        layer = L.RandomizedRectifierLayer(
            L.InputLayer([None] + trailing), lower=lower, upper=upper,
            shared_axes=data.draw(st.sampled_from(["auto", "all", 0])))
        assert_parity(layer, bundle_path())


def _inverted_layer(data, l_in, kind):
    """A layer of ``kind`` on a 4-D input ``l_in`` (None, c, h, w) to invert."""
    fn = data.draw(st.sampled_from([nl.linear, nl.rectify, nl.tanh, nl.sigmoid, nl.elu,
                                    nl.softplus, nl.LeakyRectify(0.2), nl.selu,
                                    nl.ScaledTanH(0.6, 1.7), nl.ultra_fast_sigmoid, T.exp]))
    if kind == "dense":
        lead = data.draw(st.integers(1, 2))
        fn = data.draw(st.sampled_from([fn, nl.softmax])) if lead == 1 else fn
        return L.DenseLayer(l_in, num_units=data.draw(st.integers(1, 4)),
                            num_leading_axes=lead, nonlinearity=fn)
    if kind == "conv":
        size = data.draw(st.integers(1, 3))
        pads = [0, 1, "full"] + (["same"] if size % 2 else [])  # 'same' needs odd sizes
        return L.Conv2DLayer(l_in, num_filters=data.draw(st.integers(1, 3)) * 2,
                             filter_size=size, stride=data.draw(st.integers(1, 2)),
                             pad=data.draw(st.sampled_from(pads)),
                             num_groups=data.draw(st.sampled_from([1, 2])),
                             flip_filters=data.draw(st.booleans()), nonlinearity=fn)
    if kind == "dilated":
        return L.DilatedConv2DLayer(l_in, num_filters=2, filter_size=2, dilation=2,
                                    nonlinearity=fn)
    if kind == "pool":
        mode = data.draw(st.sampled_from(["max", "average_inc_pad", "average_exc_pad"]))
        size = data.draw(st.integers(1, 3))
        ignore_border = data.draw(st.booleans())
        pad = data.draw(st.integers(0, size - 1)) if ignore_border else 0
        return L.Pool2DLayer(l_in, size, stride=data.draw(st.integers(1, 3)), pad=pad,
                             ignore_border=ignore_border, mode=mode)
    if kind == "nonlinearity":
        return L.NonlinearityLayer(l_in, fn)
    if kind == "scale":
        return L.ScaleLayer(l_in, scales=np.linspace(0.5, 2, 4, dtype="float32"))
    if kind == "bias":
        return L.BiasLayer(l_in)
    if kind == "transposed":
        n = data.draw(st.sampled_from([2, 3]))
        incoming = l_in if n == 2 else L.ReshapeLayer(l_in, ([0], 2, 2, [2], [3]))
        groups = data.draw(st.sampled_from([1, 2]))
        size = data.draw(st.integers(1, 3))
        return L.TransposedConv2DLayer(
            l_in, num_filters=2 * data.draw(st.integers(1, 2)), filter_size=size,
            stride=data.draw(st.integers(1, 2)), crop=data.draw(st.sampled_from(
                [0, "full"] + (["same"] if size % 2 else []))), num_groups=groups,
            flip_filters=data.draw(st.booleans()), nonlinearity=fn) if n == 2 else \
            L.TransposedConv3DLayer(incoming, 3, (2, 1, 2), stride=(1, 2, 2), crop=(1, 0, 0),
                                    flip_filters=data.draw(st.booleans()), nonlinearity=fn)
    if kind == "upscale":
        n = data.draw(st.integers(1, 3))
        incoming = {1: L.ReshapeLayer(l_in, ([0], [1], -1)), 2: l_in,
                    3: L.ReshapeLayer(l_in, ([0], 2, 2, [2], [3]))}[n]
        return getattr(L, f"Upscale{n}DLayer")(
            incoming, tuple(data.draw(st.integers(1, 3)) for _ in range(n)),
            mode=data.draw(st.sampled_from(["repeat", "dilate"])))
    if kind == "dimshuffle":
        return L.DimshuffleLayer(l_in, data.draw(st.sampled_from(
            [(0, 2, 1, 3), (0, 3, "x", 2, 1), (0, "x", 3, 1, 2, "x")])))
    if kind == "pad":
        return L.PadLayer(l_in, data.draw(st.sampled_from([1, (0, 2), [(1, 0), (2, 3)]])),
                          val=data.draw(st.sampled_from([0, 1.5])),
                          batch_ndim=data.draw(st.integers(1, 2)))
    if kind == "slice":
        return L.SliceLayer(l_in, data.draw(st.sampled_from(
            [1, -1, slice(1, None), slice(None, None, 2), slice(3, 0, -2)])),
            axis=data.draw(st.sampled_from([1, 2, 3, -1, -2, -3])))  # not the batch axis
    if kind in ("featurepool", "globalpool"):
        function = data.draw(st.sampled_from([T.max, T.mean, T.min, T.sum]))
        if kind == "globalpool":
            return L.GlobalPoolLayer(l_in, function)
        return L.FeaturePoolLayer(l_in, data.draw(st.sampled_from([1, 2, 4])),
                                  axis=data.draw(st.sampled_from([1, 3, -1])),
                                  pool_function=function)
    return L.FlattenLayer(l_in) if kind == "flatten" else L.ReshapeLayer(l_in, ([0], -1, 2))


class TestInverseLayer:
    @pytest.mark.parametrize("kind", ["dense", "conv", "dilated", "pool", "nonlinearity",
                                      "scale", "bias", "flatten", "reshape", "transposed",
                                      "upscale", "dimshuffle", "pad", "slice", "featurepool",
                                      "globalpool"])
    @settings(**{**SETTINGS, "max_examples": 12})
    @given(data=st.data())
    def test_parity(self, data, kind, bundle_path):
        l_in = L.InputLayer((None, 4, data.draw(st.integers(4, 6)), 4))
        layer = _inverted_layer(data, l_in, kind)
        # the canonical use (back through the layer's own output) or a separate input
        if data.draw(st.booleans()):
            incoming = layer
        else:
            incoming = L.InputLayer((None,) + layer.output_shape[1:])
        assert_parity(L.InverseLayer(incoming, layer), bundle_path())

    def test_max_unpooling_with_ties(self, bundle_path):
        l_in = L.InputLayer((None, 1, 4, 4))
        l_pool = L.MaxPool2DLayer(l_in, 2, stride=1)
        x = np.round(np.random.default_rng(0).standard_normal((2, 1, 4, 4))).astype("f4")
        assert_parity(L.InverseLayer(l_pool, l_pool), bundle_path(), feeds=[x])

    @pytest.mark.parametrize("function", [T.max, T.min], ids=fn_id)
    @pytest.mark.parametrize("kind", ["featurepool", "globalpool"])
    def test_max_and_min_with_ties(self, function, kind, bundle_path):
        l_in = L.InputLayer((None, 4, 2, 3))
        layer = (L.FeaturePoolLayer(l_in, 2, pool_function=function) if kind == "featurepool"
                 else L.GlobalPoolLayer(l_in, function))
        x = np.round(np.random.default_rng(1).standard_normal((2, 4, 2, 3))).astype("f4")
        assert_parity(L.InverseLayer(layer, layer), bundle_path(), feeds=[x])


class TestTransformerLayer:
    @pytest.mark.parametrize("tps", [False, True], ids=["affine", "tps"])
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, tps, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        rows, cols = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
        fixed = data.draw(st.booleans())
        l_in = L.InputLayer((None, data.draw(st.integers(1, 3)))
                            + ((rows, cols) if fixed else (None, None)))
        factor = data.draw(st.sampled_from([1, 2, 0.5, (1, 0.75), (1.5, 1)]))
        pairs = data.draw(st.sampled_from([4, 9, 16])) if tps else 3
        l_feat = L.InputLayer((None, 5))
        W = (data.draw(st.sampled_from([0.05, 0.3, 1.0])) * rng.standard_normal(
            (5, 2 * pairs))).astype("f4")
        b = np.zeros(2 * pairs, "f4") if tps else np.array([1, 0, 0, 0, 1, 0], "f4")
        l_loc = L.DenseLayer(l_feat, 2 * pairs, W=W, b=b, nonlinearity=None)
        border_mode = data.draw(st.sampled_from(["nearest", "mirror", "wrap"]))
        assume(all(int(s // f) >= 1 for s, f in zip(
            (rows, cols), factor if isinstance(factor, tuple) else (factor, factor))))
        if tps:
            precompute = data.draw(st.sampled_from(["auto", False]))
            layer = L.TPSTransformerLayer(l_in, l_loc, downsample_factor=factor,
                                          control_points=pairs, border_mode=border_mode,
                                          precompute_grid=precompute)
        else:
            layer = L.TransformerLayer(l_in, l_loc, downsample_factor=factor,
                                       border_mode=border_mode)
        x = rng.standard_normal((3,) + (l_in.shape[1], rows, cols)).astype("f4")
        assert_parity(layer, bundle_path(), feeds=[x, rng.standard_normal((3, 5)).astype("f4")])


class TestExportRefusals:
    def test_inverse_of_an_unsupported_layer(self, bundle_path):
        l_in = L.InputLayer((None, 2, 5))
        wta = L.FeatureWTALayer(l_in, 2)
        with pytest.raises(ExportError,
                           match=r"layer 'output' \(InverseLayer\): the inverse of a "
                                 r"FeatureWTALayer cannot be exported; bundles invert "
                                 r"DenseLayer"):
            forge.export(L.InverseLayer(wta, wta), bundle_path())

    def test_inverse_through_an_unsupported_nonlinearity(self, bundle_path):
        dense = L.DenseLayer(L.InputLayer((None, 3)), 2, nonlinearity=T.sqr)
        with pytest.raises(ExportError,
                           match=r"inverting a DenseLayer: cannot export the inverse through "
                                 r"its nonlinearity 'sqr'"):
            forge.export(L.InverseLayer(dense, dense), bundle_path())

    def test_vendor_aliases_export_as_forge_layers(self, bundle_path):
        from forge.layers import cuda_convnet, dnn

        l_in = L.InputLayer((None, 2, 7, 7))
        net = cuda_convnet.MaxPool2DCCLayer(dnn.Conv2DDNNLayer(l_in, 3, 2), 3, stride=2)
        manifest = forge.export(net, bundle_path())
        assert [e["type"] for e in manifest["layers"]] == [
            "InputLayer", "Conv2DLayer", "MaxPool2DLayer"]
        assert manifest["parity"]["max_rel_error"] <= 1e-5
