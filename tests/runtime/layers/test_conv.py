"""Convolution layers through real bundles, against the direct-loop oracles, with each
kernel implementation."""
import threading

import numpy as np
import pytest

from runtime import BundleError

from .. import oracles
from ..helpers import REFERENCE_NONLINEARITIES, BundleBuilder, build_layer, check_layer

pytestmark = pytest.mark.usefixtures("kernel_backend")


def random(seed, *shapes, dtype="float32"):
    rng = np.random.default_rng(seed)
    return [None if s is None else rng.standard_normal(s).astype(dtype) for s in shapes]


def flip(W, axes):
    return np.flip(W, axis=axes)


def conv_config(nd, num_filters, filter_size, stride=None, pad=None, dilation=None,
                num_groups=1, untie_biases=False, flip_filters=True, nonlinearity="linear"):
    return {"num_filters": num_filters, "filter_size": list(filter_size),
            "stride": list(stride or [1] * nd),
            "pad": [list(p) for p in (pad or [(0, 0)] * nd)],
            "dilation": list(dilation or [1] * nd), "num_groups": num_groups,
            "untie_biases": untie_biases, "flip_filters": flip_filters,
            "nonlinearity": REFERENCE_NONLINEARITIES[nonlinearity][0]}


class TestConvLayers:
    @pytest.mark.parametrize("type_name, input_shape, filter_size, stride, pad", [
        ("Conv1DLayer", (2, 3, 11), (3,), (2,), ((2, 1),)),
        ("Conv2DLayer", (1, 3, 7, 6), (3, 2), (1, 1), ((0, 0), (0, 0))),
        ("Conv2DLayer", (2, 2, 9, 8), (3, 3), (2, 3), ((1, 1), (3, 0))),
        ("Conv3DLayer", (2, 2, 4, 5, 3), (2, 3, 1), (1, 2, 1), ((1, 0), (1, 1), (0, 2))),
    ])
    @pytest.mark.parametrize("flip_filters", [True, False])
    @pytest.mark.parametrize("nonlinearity", ["rectify", "leaky_rectify", "tanh", "linear"])
    def test_matches_the_oracle(self, type_name, input_shape, filter_size, stride, pad,
                                flip_filters, nonlinearity):
        nd = len(filter_size)
        W, b = random(1, (4, input_shape[1]) + filter_size, (4,))
        # Lasagne's convolution flips the filters (flip_filters=True): a true convolution
        used = flip(W, tuple(range(2, nd + 2))) if flip_filters else W
        reference = lambda x: REFERENCE_NONLINEARITIES[nonlinearity][1](  # noqa: E731
            oracles.conv(x, used, b, stride, pad))
        check_layer(type_name, conv_config(nd, 4, filter_size, stride, pad,
                                           flip_filters=flip_filters, nonlinearity=nonlinearity),
                    {"W": W, "b": b}, [input_shape], reference)

    def test_groups_untied_biases_and_dilation(self):
        W, b = random(2, (6, 2, 3, 2), (6, 4, 5))
        config = conv_config(2, 6, (3, 2), pad=[(1, 1), (0, 1)], dilation=(2, 1), num_groups=3,
                             untie_biases=True, flip_filters=False, nonlinearity="rectify")
        check_layer("Conv2DLayer", config, {"W": W, "b": b}, [(2, 6, 6, 5)],
                    lambda x: np.maximum(oracles.conv(x, W, b, None, ((1, 1), (0, 1)), (2, 1), 3),
                                         0))

    def test_float64_without_bias(self):
        W, = random(3, (2, 1, 2, 2), dtype="float64")
        check_layer("Conv2DLayer", conv_config(2, 2, (2, 2), flip_filters=False),
                    {"W": W, "b": None}, [(1, 1, 3, 4)], lambda x: oracles.conv(x, W),
                    dtype="float64")

    def test_a_wrong_channel_count_is_an_input_error(self):
        W, = random(0, (2, 3, 2, 2))
        b = BundleBuilder()
        b.input("x", [None, 4, 5, 5])
        b.layer("Conv2DLayer", ["x"], conv_config(2, 2, (2, 2)), {"W": W, "b": None},
                shape=[None, 2, 4, 4], name="conv")
        with pytest.raises(ValueError, match=r"need 3 input channels, got shape \(1, 4, 5, 5\)"):
            b.load()(np.zeros((1, 4, 5, 5)))

    @pytest.mark.parametrize("change, match", [
        (dict(filter_size=[3]), "filter_size must be a list of 2 int"),
        (dict(stride=[1, 0]), "stride must be a list of 2 int"),
        (dict(pad=[[0, 0], [1]]), r"pad must be a list of 2 \[before, after\] pairs"),
        (dict(num_groups=3), "num_groups must be a positive int dividing num_filters=2"),
        (dict(num_filters=3), r"W must have shape \(num_filters=3"),
        (dict(untie_biases=True), r"b must have shape \(num_filters=2, \*output_spatial\)"),
        (dict(flip_filters="yes"), "flip_filters must be a bool"),
    ])
    def test_refuses_bad_configs(self, change, match):
        W, b = random(0, (2, 1, 3, 3), (2,))
        config = dict(conv_config(2, 2, (3, 3)), **change)
        with pytest.raises(BundleError, match=match):
            build_layer("Conv2DLayer", config, {"W": W, "b": b})

    def test_dilated_conv2d_takes_lasagnes_weight_layout(self):
        W, b = random(4, (3, 5, 2, 3), (5,))  # (channels, num_filters, *filter_size)
        config = conv_config(2, 5, (2, 3), dilation=(2, 2), flip_filters=False,
                             nonlinearity="rectify")
        check_layer("DilatedConv2DLayer", config, {"W": W, "b": b}, [(2, 3, 7, 8)],
                    lambda x: np.maximum(oracles.conv(x, W.transpose(1, 0, 2, 3), b,
                                                      dilation=(2, 2)), 0))


def transposed_reference(x, W, stride, crop, output_size, flip_filters, groups):
    """Lasagne's definition: slide ``W`` (flipped when ``flip_filters``) over the input
    dilated by the stride and padded by ``filter - 1 - crop`` (plus what output_size adds)."""
    nd = W.ndim - 2
    size, kernel = x.shape[2:], W.shape[2:]
    dilated = np.zeros(x.shape[:2] + tuple((s - 1) * t + 1 for s, t in zip(size, stride)))
    dilated[(Ellipsis,) + tuple(slice(None, None, t) for t in stride)] = x
    smallest = [(s - 1) * t + k - a - b for s, t, k, (a, b) in zip(size, stride, kernel, crop)]
    pads = [(k - 1 - a, k - 1 - b + o - m)
            for k, (a, b), o, m in zip(kernel, crop, output_size, smallest)]
    slid = flip(W, tuple(range(2, nd + 2))) if flip_filters else W
    channels, group_filters = W.shape[:2]
    as_conv = slid.reshape((groups, channels // groups, group_filters) + kernel).swapaxes(1, 2)
    return oracles.conv(dilated, as_conv.reshape((groups * group_filters, channels // groups)
                                                 + kernel), pad=pads, groups=groups)


class TestTransposedConvLayers:
    @pytest.mark.parametrize("type_name, input_shape, filter_size, stride, crop, grow", [
        ("TransposedConv2DLayer", (2, 3, 4, 3), (3, 3), (2, 2), ((0, 0), (1, 1)), (0, 1)),
        ("TransposedConv2DLayer", (1, 2, 3, 5), (2, 3), (1, 3), ((1, 0), (2, 0)), (0, 2)),
        ("TransposedConv3DLayer", (2, 2, 2, 3, 2), (2, 2, 3), (2, 1, 2), ((1, 1), (0, 0), (0, 2)),
         (1, 0, 0)),
    ])
    @pytest.mark.parametrize("flip_filters", [False, True])
    @pytest.mark.parametrize("groups", [1, 2])
    def test_matches_lasagnes_definition(self, type_name, input_shape, filter_size, stride, crop,
                                         grow, flip_filters, groups):
        nd = len(filter_size)
        channels = input_shape[1] * groups
        x_shape = (input_shape[0], channels) + input_shape[2:]
        W, b = random(5, (channels, 2) + filter_size, (2 * groups,))
        output_size = [(s - 1) * t + k - a - c + g for s, t, k, (a, c), g
                       in zip(input_shape[2:], stride, filter_size, crop, grow)]
        config = {"num_filters": 2 * groups, "filter_size": list(filter_size),
                  "stride": list(stride), "crop": [list(c) for c in crop],
                  "output_size": output_size, "num_groups": groups, "untie_biases": False,
                  "flip_filters": flip_filters, "nonlinearity": {"name": "linear"}}
        expected_bias = b.reshape((-1,) + (1,) * nd)
        check_layer(type_name, config, {"W": W, "b": b}, [x_shape],
                    lambda x: transposed_reference(x, W, stride, crop, output_size,
                                                   flip_filters, groups) + expected_bias)

    def test_a_null_output_size_entry_is_the_smallest_fit(self):
        W, = random(6, (1, 1, 3, 3))
        config = {"num_filters": 1, "filter_size": [3, 3], "stride": [2, 2],
                  "crop": [[0, 0], [0, 0]], "output_size": [None, 6], "num_groups": 1,
                  "untie_biases": False, "flip_filters": False,
                  "nonlinearity": {"name": "linear"}}
        check_layer("TransposedConv2DLayer", config, {"W": W, "b": None}, [(1, 1, 3, 2)],
                    lambda x: transposed_reference(x, W, (2, 2), ((0, 0), (0, 0)), (7, 6),
                                                   False, 1), declared=[[None, 1, None, 2]])

    def test_null_output_sizes_follow_each_input(self):
        W, b = random(7, (2, 1, 2, 3, 2), (1,))
        config = {"num_filters": 1, "filter_size": [2, 3, 2], "stride": [2, 1, 3],
                  "crop": [[1, 0], [0, 1], [0, 0]], "output_size": [None, None, None],
                  "num_groups": 1, "untie_biases": False, "flip_filters": True,
                  "nonlinearity": {"name": "linear"}}
        layer = build_layer("TransposedConv3DLayer", config, {"W": W, "b": b})
        for shape in [(1, 2, 1, 2, 1), (2, 2, 3, 1, 4)]:
            x, = random(8, shape)
            smallest = [(s - 1) * t + k - a - c for s, t, k, (a, c)
                        in zip(shape[2:], [2, 1, 3], [2, 3, 2], config["crop"])]
            want = transposed_reference(x, W, [2, 1, 3], config["crop"], smallest, True, 1)
            np.testing.assert_allclose(layer(x), want + b.reshape(-1, 1, 1, 1), rtol=1e-5,
                                       atol=1e-5)

    def test_refuses_weights_of_another_layout(self):
        W, = random(0, (2, 3, 3, 3))
        config = {"num_filters": 2, "filter_size": [3, 3], "stride": [1, 1],
                  "crop": [[0, 0], [0, 0]], "output_size": [5, 5], "num_groups": 1,
                  "untie_biases": False, "flip_filters": False,
                  "nonlinearity": {"name": "linear"}}
        with pytest.raises(BundleError, match=r"W must have shape \(channels, num_filters"):
            build_layer("TransposedConv2DLayer", config, {"W": W, "b": None})


class TestLocallyConnected2DLayer:
    @pytest.mark.parametrize("channelwise", [False, True])
    @pytest.mark.parametrize("flip_filters", [False, True])
    @pytest.mark.parametrize("untie_biases", [False, True])
    def test_matches_the_oracle(self, channelwise, flip_filters, untie_biases):
        pad, stride, kernel = ((1, 1), (2, 0)), (1, 2), (3, 2)
        out = (5, 3)  # from a 5 x 5 input
        W_shape = (3,) + (() if channelwise else (3,)) + kernel + out
        W, b = random(7, W_shape, (3,) + out if untie_biases else (3,))
        lead = 1 if channelwise else 2
        used = flip(W, (lead, lead + 1)) if flip_filters else W
        config = {"num_filters": 3, "filter_size": list(kernel), "stride": list(stride),
                  "pad": [list(p) for p in pad], "channelwise": channelwise,
                  "untie_biases": untie_biases, "flip_filters": flip_filters,
                  "nonlinearity": {"name": "rectify"}}
        check_layer("LocallyConnected2DLayer", config, {"W": W, "b": b}, [(2, 3, 5, 5)],
                    lambda x: np.maximum(oracles.locally_connected(x, used, b, stride, pad,
                                                                   channelwise), 0))


class TestAConvNet:
    """The Lasagne README's CNN, end to end: conv 3x3 -> conv 3x3 -> max pool 3/2 ->
    dense -> dense softmax."""

    def test_threads_share_one_model(self):
        model, _ = self.build()
        xs = random(10, *[(3, 1, 14, 14)] * 8)
        expected = [model(x) for x in xs]
        results = [None] * len(xs)

        def work(i):
            for _ in range(5):
                results[i] = model(xs[i])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for got, want in zip(results, expected):
            np.testing.assert_array_equal(got, want)

    def test_matches_the_oracles_composed(self):
        model, (W1, b1, W2, b2, W3, b3, W4, b4) = self.build()
        x, = random(9, (3, 1, 14, 14))
        h = np.maximum(oracles.conv(x, flip(W1, (2, 3)), b1), 0)
        h = np.maximum(oracles.conv(h, flip(W2, (2, 3)), b2), 0)
        h = oracles.pool(h, (3, 3), (2, 2)).reshape(3, -1)
        h = np.maximum(h @ W3 + b3, 0)
        z = h @ W4 + b4
        expected = np.exp(z - z.max(1, keepdims=True))
        expected /= expected.sum(1, keepdims=True)
        np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)

    @staticmethod
    def build():
        params = W1, b1, W2, b2, W3, b3, W4, b4 = random(
            8, (8, 1, 3, 3), (8,), (4, 8, 3, 3), (4,), (4 * 4 * 4, 16), (16,), (16, 10), (10,))
        b = BundleBuilder()
        b.input("input", [None, 1, 14, 14])
        b.layer("Conv2DLayer", ["input"], conv_config(2, 8, (3, 3), nonlinearity="rectify"),
                {"W": W1, "b": b1}, shape=[None, 8, 12, 12], name="conv1")
        b.layer("Conv2DLayer", ["conv1"], conv_config(2, 4, (3, 3), nonlinearity="rectify"),
                {"W": W2, "b": b2}, shape=[None, 4, 10, 10], name="conv2")
        b.layer("MaxPool2DLayer", ["conv2"], {"pool_size": [3, 3], "stride": [2, 2],
                                             "pad": [0, 0], "ignore_border": True,
                                             "mode": "max"}, shape=[None, 4, 4, 4], name="pool")
        b.layer("DenseLayer", ["pool"], {"num_units": 16, "num_leading_axes": 1,
                                         "nonlinearity": {"name": "rectify"}},
                {"W": W3, "b": b3}, shape=[None, 16], name="dense")
        b.layer("DenseLayer", ["dense"], {"num_units": 10, "num_leading_axes": 1,
                                          "nonlinearity": {"name": "softmax"}},
                {"W": W4, "b": b4}, shape=[None, 10], name="output")
        return b.load(), params
