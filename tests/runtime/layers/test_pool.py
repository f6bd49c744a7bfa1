"""Pooling layers through real bundles, against the direct-loop oracles, with each kernel
implementation."""
import numpy as np
import pytest

from runtime import BundleError

from .. import oracles
from ..helpers import BundleBuilder, build_layer, check_layer

pytestmark = pytest.mark.usefixtures("kernel_backend")

MODES = ["max", "average_inc_pad", "average_exc_pad"]


def pool_config(pool_size, stride, pad, ignore_border=True, mode="max"):
    return {"pool_size": list(pool_size), "stride": list(stride), "pad": list(pad),
            "ignore_border": ignore_border, "mode": mode}


class TestPoolLayers:
    @pytest.mark.parametrize("type_name, shape, pool_size, stride, pad, ignore_border", [
        ("Pool1DLayer", (2, 3, 9), (3,), (2,), (1,), True),
        ("Pool1DLayer", (2, 3, 8), (3,), (2,), (0,), False),
        ("Pool2DLayer", (2, 3, 7, 6), (3, 2), (2, 3), (1, 1), True),
        ("Pool2DLayer", (1, 2, 7, 5), (2, 3), (2, 1), (0, 0), False),
        ("Pool2DLayer", (2, 1, 5, 5), (2, 2), (3, 3), (0, 0), False),
        ("Pool3DLayer", (2, 2, 5, 4, 3), (2, 3, 2), (1, 2, 2), (1, 0, 1), True),
        ("Pool3DLayer", (1, 2, 3, 4, 5), (2, 2, 2), (2, 2, 2), (0, 0, 0), False),
    ])
    @pytest.mark.parametrize("mode", MODES)
    def test_match_theanos_pool(self, type_name, shape, pool_size, stride, pad, ignore_border,
                                mode):
        check_layer(type_name, pool_config(pool_size, stride, pad, ignore_border, mode), {},
                    [shape], lambda x: oracles.pool(x, pool_size, stride, pad, ignore_border,
                                                    mode))

    @pytest.mark.parametrize("type_name, nd", [("MaxPool1DLayer", 1), ("MaxPool2DLayer", 2),
                                               ("MaxPool3DLayer", 3)])
    def test_max_pool_layers(self, type_name, nd):
        shape = (2, 3) + (5,) * nd
        check_layer(type_name, pool_config((2,) * nd, (2,) * nd, (0,) * nd, False), {},
                    [shape], lambda x: oracles.pool(x, (2,) * nd, (2,) * nd, (0,) * nd, False))
        with pytest.raises(BundleError, match="mode must be one of max, got 'average_inc_pad'"):
            build_layer(type_name, pool_config((2,) * nd, (2,) * nd, (0,) * nd,
                                               mode="average_inc_pad"))

    @pytest.mark.parametrize("config, match", [
        (pool_config((2, 2), (1, 1), (2, 0)), "pad must be smaller than pool_size"),
        (pool_config((2, 2), (1, 1), (1, 0), False), "padding works only with ignore_border"),
        (pool_config((2, 2), (1, 1), (0, 0), mode="sum"), "mode must be one of max, average"),
        (pool_config((2,), (1, 1), (0, 0)), "pool_size must be a list of 2 int"),
        (pool_config((2, 2), (1, 1), (0, 0), ignore_border=1), "ignore_border must be a bool"),
    ])
    def test_refuse_what_theano_refuses(self, config, match):
        with pytest.raises(BundleError, match=match):
            build_layer("Pool2DLayer", config)


@pytest.mark.parametrize("function", ["mean", "max", "min", "sum"])
def test_global_pool_layer(function):
    check_layer("GlobalPoolLayer", {"pool_function": function}, {}, [(2, 3, 4, 5)],
                lambda x: oracles.global_pool(x, function))


@pytest.mark.parametrize("type_name, scale", [("Upscale1DLayer", [3]),
                                              ("Upscale2DLayer", [2, 3]),
                                              ("Upscale3DLayer", [1, 2, 2])])
@pytest.mark.parametrize("mode", ["repeat", "dilate"])
def test_upscale_layers(type_name, scale, mode):
    shape = (2, 2) + (3,) * len(scale)
    check_layer(type_name, {"scale_factor": scale, "mode": mode}, {}, [shape],
                lambda x: oracles.upscale(x, scale, mode))


def test_upscale_refuses_a_zero_factor_and_another_rank():
    with pytest.raises(BundleError, match="scale_factor must be a list of 2 int"):
        build_layer("Upscale2DLayer", {"scale_factor": [0, 2], "mode": "repeat"})
    layer = build_layer("Upscale2DLayer", {"scale_factor": [2, 2], "mode": "repeat"})
    with pytest.raises(ValueError, match="needs a 4-dimensional input"):
        layer(np.zeros((1, 2, 3)))


@pytest.mark.parametrize("function", ["max", "mean", "min", "sum"])
@pytest.mark.parametrize("axis", [1, 2])
def test_feature_pool_layer(function, axis):
    check_layer("FeaturePoolLayer", {"pool_size": 2, "axis": axis, "pool_function": function},
                {}, [(2, 6, 4)], lambda x: oracles.feature_pool(x, 2, axis, function))


@pytest.mark.parametrize("axis", [1, 2])
def test_feature_wta_layer(axis):
    check_layer("FeatureWTALayer", {"pool_size": 3, "axis": axis}, {}, [(2, 6, 6)],
                lambda x: oracles.feature_wta(x, 3, axis))


def test_feature_layers_refuse_bad_configs():
    with pytest.raises(BundleError, match="pool_function must be one of max, mean, min, sum"):
        build_layer("FeaturePoolLayer", {"pool_size": 2, "axis": 1, "pool_function": "median"})
    with pytest.raises(BundleError, match="pool_size must be a positive int"):
        build_layer("FeatureWTALayer", {"pool_size": 0, "axis": 1})


class TestSpatialPyramidPoolingLayer:
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("size", [(8, 8), (7, 9)])
    def test_matches_lasagnes_definition(self, mode, size):
        check_layer("SpatialPyramidPoolingLayer", {"pool_dims": [4, 2, 1], "mode": mode}, {},
                    [(2, 3) + size], lambda x: oracles.spatial_pyramid_pool(x, [4, 2, 1], mode))

    def test_a_declared_size_the_pooling_does_not_give_is_a_bundle_error(self):
        # 'fast' pools a 5 x 5 input into 4 x 4 for p = 3; a bundle saying 9 is wrong
        b = BundleBuilder()
        b.input("x", [None, 1, 5, 5])
        b.layer("SpatialPyramidPoolingLayer", ["x"], {"pool_dims": [3], "mode": "max"},
                shape=[None, 1, 9], name="spp")
        with pytest.raises(BundleError, match=r"computed shape \(1, 1, 16\)"):
            b.load()(np.zeros((1, 1, 5, 5)))

    def test_refuses_empty_pool_dims(self):
        with pytest.raises(BundleError, match="pool_dims must be a non-empty list"):
            build_layer("SpatialPyramidPoolingLayer", {"pool_dims": [], "mode": "max"})

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("size", [(8, 8), (7, 9), (1, 3), (2, 5)])
    def test_kaiming_matches_he_et_al(self, mode, size):
        # sizes smaller than the number of bins give overlapping bins, still d x d
        config = {"pool_dims": [4, 2, 1], "mode": mode, "implementation": "kaiming"}
        out = check_layer("SpatialPyramidPoolingLayer", config, {}, [(2, 3) + size],
                          lambda x: oracles.spatial_pyramid_bins(x, [4, 2, 1], mode),
                          declared=[[None, 3, None, None]])
        assert out.shape == (2, 3, 21)

    def test_implementation_defaults_to_fast_and_is_checked(self):
        layer = build_layer("SpatialPyramidPoolingLayer", {"pool_dims": [2], "mode": "max"})
        assert layer.implementation == "fast"
        with pytest.raises(BundleError, match="implementation must be one of fast, kaiming, "
                                              "got 'he'"):
            build_layer("SpatialPyramidPoolingLayer",
                        {"pool_dims": [2], "mode": "max", "implementation": "he"})
