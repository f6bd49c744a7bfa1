"""Every layer family trains on the JAX backend (forge's documented mode for conv nets,
and its GPU path): one training loss and its parameter gradients, compiled with
``mode="JAX"``, match FAST_COMPILE's, with the batch size left open and fixed.

JAX needs concrete shapes wherever it slices, splits or allocates; shape arithmetic in
a graph (``offset + x.shape[1]``) is traced under ``jax.jit`` and fails to compile.
These cases caught that in the gradients of reshapes (``GlobalPoolLayer`` after a
convolution, ``Upscale3DLayer``, ``NINLayer``, ``TransformerLayer``), in the slice
bounds of ``PadLayer`` and ``LocalResponseNormalization2DLayer``, in ``ConcatLayer``
(its gradient splits by the inputs' sizes), in the merge layers' cropping, in
``DenseLayer`` with several leading axes, in the broadcast checks of a PReLU whose
alphas cover the batch axis, in ``TPSTransformerLayer`` and in a recurrence over
convolutions; under PyTensor 3.3 also in max-pooling's gradient. forge's JAX
dispatch computes such size arithmetic with numpy while tracing, takes a split's
positions at trace time and gives a scan's body the sizes it gets from outside as
constants (``forge/ops/_jax.py``), so they stay concrete.
"""
import warnings

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

import forge
from forge import layers as L
from forge import nonlinearities as NL

from ..ops.helpers import jax_or_skip


def _transformer(l):
    identity = np.array([1, 0, 0, 0, 1, 0], np.float32)
    loc = L.DenseLayer(l, 6, W=forge.init.Constant(0.0), b=identity)
    return L.TransformerLayer(l, loc, downsample_factor=2)


def _tps_transformer(l):
    # small random offsets: the identity would sample exactly on pixel centres, where
    # bilinear sampling has a kink and the two backends may take either side
    loc = L.DenseLayer(l, 2 * 16, W=forge.init.Normal(0.01))
    return L.TPSTransformerLayer(l, loc, control_points=16, downsample_factor=2)


#: name -> (input shape without the batch axis, layer builder on the input layer)
CASES = {
    "conv1d stride pad same": ((3, 9), lambda l: L.Conv1DLayer(l, 4, 3, stride=2, pad="same")),
    "conv2d untied full": ((3, 9, 8), lambda l: L.Conv2DLayer(l, 4, 3, pad="full",
                                                              untie_biases=True)),
    "conv2d groups unflipped": ((4, 9, 8), lambda l: L.Conv2DLayer(l, 4, 3, num_groups=2,
                                                                   flip_filters=False)),
    "conv3d": ((2, 5, 6, 5), lambda l: L.Conv3DLayer(l, 3, 2, stride=(1, 2, 1))),
    "transposed conv2d crop": ((3, 5, 6), lambda l: L.TransposedConv2DLayer(l, 4, 3, stride=2,
                                                                            crop=1)),
    "transposed conv2d output_size": ((3, 5, 6), lambda l: L.TransposedConv2DLayer(
        l, 4, 3, stride=2, output_size=(12, 13))),
    "transposed conv3d": ((2, 4, 4, 3), lambda l: L.TransposedConv3DLayer(l, 2, 2, stride=2)),
    "dilated conv2d": ((3, 9, 8), lambda l: L.DilatedConv2DLayer(l, 4, 3, dilation=2)),
    "locally connected": ((3, 7, 6), lambda l: L.LocallyConnected2DLayer(l, 4, 3, pad="same")),
    "locally connected channelwise": ((3, 7, 6), lambda l: L.LocallyConnected2DLayer(
        l, 3, 3, channelwise=True, pad="same")),
    "pool1d average ignore_border=False": ((3, 9), lambda l: L.Pool1DLayer(
        l, 3, stride=2, mode="average_inc_pad", ignore_border=False)),
    "max-pool2d pad": ((3, 9, 8), lambda l: L.MaxPool2DLayer(l, 3, stride=2, pad=1)),
    "pool2d average_exc_pad": ((3, 9, 8), lambda l: L.Pool2DLayer(
        l, 3, stride=2, ignore_border=False, mode="average_exc_pad")),
    "max-pool3d": ((2, 5, 6, 5), lambda l: L.MaxPool3DLayer(l, 2)),
    "global pool mean": ((3, 7, 6), lambda l: L.GlobalPoolLayer(l)),
    "global pool max": ((3, 7, 6), lambda l: L.GlobalPoolLayer(l, T.max)),
    "global pool after conv": ((3, 7, 6), lambda l: L.GlobalPoolLayer(L.Conv2DLayer(l, 4, 3))),
    "upscale1d": ((3, 5), lambda l: L.Upscale1DLayer(l, 2)),
    "upscale2d dilate": ((3, 5, 4), lambda l: L.Upscale2DLayer(l, (2, 3), mode="dilate")),
    "upscale3d": ((2, 3, 4, 3), lambda l: L.Upscale3DLayer(l, 2)),
    "feature pool": ((6, 5, 4), lambda l: L.FeaturePoolLayer(l, 3)),
    "feature wta": ((6, 5, 4), lambda l: L.FeatureWTALayer(l, 3)),
    "spatial pyramid pooling": ((3, 9, 8), lambda l: L.SpatialPyramidPoolingLayer(l, [1, 2, 4])),
    "batch_norm": ((3, 7, 6), lambda l: L.batch_norm(L.Conv2DLayer(l, 4, 3))),
    "dropout": ((3, 7, 6), lambda l: L.dropout(L.Conv2DLayer(l, 4, 3), p=0.0)),
    "local response normalization": ((6, 7, 6), lambda l: L.LocalResponseNormalization2DLayer(
        l, n=3)),
    "standardization": ((3, 7, 6), lambda l: L.StandardizationLayer(l)),
    "instance_norm": ((3, 7, 6), lambda l: L.instance_norm(L.Conv2DLayer(l, 4, 3))),
    "layer_norm": ((3, 7, 6), lambda l: L.layer_norm(L.Conv2DLayer(l, 4, 3))),
    "nin": ((3, 7, 6), lambda l: L.NINLayer(l, 4)),
    "dense with two leading axes": ((3, 7, 6), lambda l: L.DenseLayer(l, 5, num_leading_axes=2)),
    "pad": ((3, 7, 6), lambda l: L.PadLayer(L.Conv2DLayer(l, 2, 3), [2, (0, 1)])),
    "slice": ((3, 7, 6), lambda l: L.SliceLayer(l, slice(1, 5), axis=2)),
    "reshape": ((3, 7, 6), lambda l: L.ReshapeLayer(l, ([0], -1))),
    "dimshuffle": ((3, 7, 6), lambda l: L.DimshuffleLayer(l, (0, 2, 1, 3))),
    "concat": ((3, 7, 6), lambda l: L.ConcatLayer([L.Conv2DLayer(l, 2, 3, pad=1), l])),
    "concat cropped center": ((3, 7, 6), lambda l: L.ConcatLayer(
        [L.Conv2DLayer(l, 2, 3), l], cropping=[None, None, "center", "center"])),
    "sum cropped": ((3, 7, 6), lambda l: L.ElemwiseSumLayer(
        [L.Conv2DLayer(l, 3, 3), l], cropping=[None, None, "lower", "upper"])),
    "prelu": ((3, 7, 6), lambda l: L.prelu(L.Conv2DLayer(l, 3, 3))),
    "inverse of max-pool": ((3, 8, 6), lambda l: L.InverseLayer(L.MaxPool2DLayer(l, 2),
                                                                L.MaxPool2DLayer(l, 2))),
    "transformer": ((3, 8, 6), _transformer),
    "thin-plate spline transformer": ((3, 8, 6), _tps_transformer),
}


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype:UserWarning")  # JAX without x64
@pytest.mark.parametrize("batch", [None, 4], ids=["open batch", "fixed batch"])
@pytest.mark.parametrize("name", list(CASES))
def test_loss_and_gradients_match_fast_compile(name, batch):
    check_against_fast_compile(name, *CASES[name], batch, deterministic=True)


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype:UserWarning")
@pytest.mark.parametrize("name", ["batch_norm", "dropout"])
def test_training_mode_matches_fast_compile(name):
    """Batch statistics (batch_norm) and a dropout of 0 in the training pass."""
    check_against_fast_compile(name, *CASES[name], 4, deterministic=False)


def _conv_recurrence(l):
    in_to_hid = L.Conv2DLayer(L.InputLayer((None, 2, 5, 5)), 3, 3, pad="same")
    hid_to_hid = L.Conv2DLayer(L.InputLayer((None, 3, 5, 5)), 3, 3, pad="same")
    return L.CustomRecurrentLayer(l, in_to_hid, hid_to_hid, only_return_final=True)


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype:UserWarning")
@pytest.mark.parametrize("batch", [None, 4], ids=["open batch", "fixed batch"])
def test_convolutional_recurrence(batch):
    """CustomRecurrentLayer over convolutions: the filters' gradient inside the scan
    needs the filter size, which PyTensor moves out of the loop and passes back in, and
    the scan's state is allocated with the batch size read off the input."""
    check_against_fast_compile("convolutional recurrence", (4, 2, 5, 5), _conv_recurrence,
                               batch, deterministic=True)


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype:UserWarning")
def test_prelu_with_alphas_per_item():
    """shared_axes=() gives every item of the (fixed) batch its own alphas."""
    check_against_fast_compile("prelu per item", (3, 7, 6), lambda l: L.prelu(
        L.Conv2DLayer(l, 3, 3), shared_axes=()), 4, deterministic=True)


def check_against_fast_compile(name, item_shape, build, batch, deterministic):
    """Build ``InputLayer((batch, *item_shape))`` -> ``build`` -> dense softmax, and
    compare the loss and its parameter gradients on JAX with FAST_COMPILE's."""
    jax_or_skip()
    forge.random.set_rng(np.random.RandomState(0))
    l_in = L.InputLayer((batch,) + item_shape)
    l_out = L.DenseLayer(build(l_in), 3, nonlinearity=NL.softmax)
    y = T.ivector("y")
    loss = forge.objectives.categorical_crossentropy(
        L.get_output(l_out, deterministic=deterministic), y).mean()
    params = L.get_all_params(l_out, trainable=True)
    outputs = [loss] + pytensor.grad(loss, params)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4,) + item_shape).astype(np.float32)
    t = rng.integers(0, 3, 4).astype(np.int32)
    expected = pytensor.function([l_in.input_var, y], outputs, mode="FAST_COMPILE")(x, t)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping Assert")  # JAX drops shape checks
        got = pytensor.function([l_in.input_var, y], outputs, mode="JAX")(x, t)
    for param, g, e in zip(["loss"] + params, got, expected):
        np.testing.assert_allclose(np.asarray(g), e, rtol=2e-4, atol=2e-5,
                                   err_msg=f"{name}: {param}")
