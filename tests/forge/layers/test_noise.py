import warnings

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest
from pytensor.tensor.random.basic import UniformRV
from pytensor.tensor.random.op import RandomVariable

from forge.layers import (DenseLayer, DropoutLayer, GaussianNoiseLayer, InputLayer,
                          dropout, dropout_channels, dropout_locations, get_output)
from forge.random import set_rng

FLOATX = pytensor.config.floatX


def compile_layer(layer, ndim, **kwargs):
    x = T.tensor(dtype=FLOATX, shape=(None,) * ndim)
    return pytensor.function([x], layer.get_output_for(x, **kwargs))


def ones(*shape):
    return np.ones(shape, dtype=FLOATX)


class TestDropoutLayer:
    def test_deterministic_is_identity(self):
        layer = DropoutLayer((None, 10))
        x = T.matrix()
        assert layer.get_output_for(x, deterministic=True) is x

    def test_p_zero_is_identity(self):
        x = T.matrix()
        assert DropoutLayer((None, 10), p=0).get_output_for(x) is x

    def test_rescale(self):
        out = compile_layer(DropoutLayer((None, 100), p=0.75), 2)(ones(100, 100))
        assert set(np.unique(out)) == {0.0, 4.0}
        assert abs((out == 0).mean() - 0.75) < 0.03
        assert abs(out.mean() - 1.0) < 0.1  # rescaling keeps the expectation
        assert out.dtype == FLOATX

    def test_no_rescale(self):
        out = compile_layer(DropoutLayer((None, 100), p=0.2, rescale=False), 2)(
            ones(100, 100))
        assert set(np.unique(out)) == {0.0, 1.0}
        assert abs((out == 0).mean() - 0.2) < 0.03

    def test_symbolic_p(self):
        p = pytensor.shared(np.asarray(0.5, dtype=FLOATX))
        layer = DropoutLayer((None, 100), p=p)
        f = compile_layer(layer, 2)
        assert set(np.unique(f(ones(50, 100)))) == {0.0, 2.0}
        p.set_value(np.asarray(0.0, dtype=FLOATX))
        np.testing.assert_array_equal(f(ones(50, 100)), ones(50, 100))

    def test_masks_change_between_calls(self):
        f = compile_layer(DropoutLayer((None, 100)), 2)
        assert not np.array_equal(f(ones(10, 100)), f(ones(10, 100)))

    @pytest.mark.parametrize("shared_axes, mask_shape", [
        ((2, 3), (4, 3, 1, 1)),
        ((1,), (4, 1, 5, 6)),
        ((-1,), (4, 3, 5, 1)),
        ((0, -2), (1, 3, 1, 6)),
    ])
    def test_shared_axes(self, shared_axes, mask_shape):
        layer = DropoutLayer((None, 3, 5, 6), shared_axes=shared_axes)
        x = T.tensor4()
        out = layer.get_output_for(x)
        # The mask is drawn with size 1 on the shared axes, statically broadcastable.
        (draw,) = [v for v in pytensor.graph.ancestors([out])
                   if v.owner and isinstance(v.owner.op, UniformRV) and v.ndim == 4]
        assert draw.type.broadcastable == tuple(s == 1 for s in mask_shape)

        result = pytensor.function([x], out)(ones(4, 3, 5, 6))
        # The mask is constant along the shared axes, and does drop something.
        axes = tuple(a % 4 for a in shared_axes)
        assert (result.min(axis=axes) == result.max(axis=axes)).all()
        assert set(np.unique(result)) == {0.0, 2.0}

    def test_dropout_channels(self):
        layer = dropout_channels(InputLayer((None, 3, 5, 6)))
        assert layer.shared_axes == (2, 3)
        assert dropout_channels((None, 3, 5), p=0.2).shared_axes == (2,)

    def test_spatial_dropout_is_lasagnes_name_for_dropout_channels(self):
        from forge.layers import spatial_dropout
        assert spatial_dropout(InputLayer((None, 3, 5, 6)), p=0.3).shared_axes == (2, 3)

    def test_dropout_locations(self):
        assert dropout_locations(InputLayer((None, 3, 5, 6))).shared_axes == (1,)

    def test_alias(self):
        assert dropout is DropoutLayer

    def test_reproducible_with_set_rng(self):
        def draw():
            set_rng(np.random.RandomState(1))
            f = compile_layer(DropoutLayer((None, 50)), 2)
            return f(ones(8, 50)), f(ones(8, 50))

        first, second = draw(), draw()
        np.testing.assert_array_equal(first[0], second[0])
        np.testing.assert_array_equal(first[1], second[1])
        set_rng(np.random.RandomState(2))
        other = compile_layer(DropoutLayer((None, 50)), 2)(ones(8, 50))
        assert not np.array_equal(other, first[0])

    def test_no_binomial_in_compiled_graph(self):
        f = compile_layer(DropoutLayer((None, 10)), 2)
        op_names = [type(node.op).__name__.lower() for node in f.maker.fgraph.apply_nodes]
        assert any("uniform" in name for name in op_names)
        assert not any("binomial" in name for name in op_names)

    @pytest.mark.parametrize("kwargs, message", [
        ({"p": 1.5}, r"\[0, 1\], got p=1.5"),
        ({"p": -0.1}, r"got p=-0.1"),
        ({"p": 1}, "rescale=True"),
        ({"shared_axes": (2,)}, r"shared_axes=\(2,\)"),
    ])
    def test_bad_arguments(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            DropoutLayer((None, 10), **kwargs)

    def test_p_one_without_rescale_drops_everything(self):
        out = compile_layer(DropoutLayer((None, 10), p=1, rescale=False), 2)(ones(2, 10))
        assert (out == 0).all()


class TestGaussianNoiseLayer:
    def test_deterministic_is_identity(self):
        x = T.matrix()
        assert GaussianNoiseLayer((None, 3)).get_output_for(x, deterministic=True) is x

    def test_sigma_zero_is_identity(self):
        x = T.matrix()
        assert GaussianNoiseLayer((None, 3), sigma=0).get_output_for(x) is x

    def test_noise_statistics(self):
        out = compile_layer(GaussianNoiseLayer((None, 200), sigma=0.5), 2)(
            ones(200, 200))
        assert out.dtype == FLOATX
        assert abs(out.mean() - 1.0) < 0.02
        assert abs(out.std() - 0.5) < 0.02

    def test_reproducible_with_set_rng(self):
        outs = []
        for _ in range(2):
            set_rng(np.random.RandomState(3))
            outs.append(compile_layer(GaussianNoiseLayer((None, 5)), 2)(ones(2, 5)))
        np.testing.assert_array_equal(*outs)

    def test_negative_sigma(self):
        with pytest.raises(ValueError, match="sigma=-1"):
            GaussianNoiseLayer((None, 3), sigma=-1)


def build_noisy_network():
    l_in = InputLayer((None, 8))
    l_hid = DenseLayer(GaussianNoiseLayer(l_in, sigma=0.1), 16)
    return l_in, DenseLayer(DropoutLayer(l_hid, p=0.5, shared_axes=(0,)), 4)


def test_network_deterministic_output_has_no_randomness():
    l_in, l_out = build_noisy_network()
    f = pytensor.function([l_in.input_var], get_output(l_out, deterministic=True))
    data = np.random.RandomState(0).normal(size=(3, 8)).astype(FLOATX)
    np.testing.assert_array_equal(f(data), f(data))
    assert not any(isinstance(node.op, RandomVariable) for node in f.maker.fgraph.apply_nodes)


def test_compiles_on_the_jax_backend():
    pytest.importorskip("jax", reason="JAX backend not installed (optional)")
    set_rng(np.random.RandomState(0))
    l_in, l_out = build_noisy_network()
    with warnings.catch_warnings():
        # PyTensor's JAX linker copies shared generators and says so.
        warnings.filterwarnings("ignore", message=".*will not be used in the compiled JAX")
        # ... and that it leaves out shape assertions that JAX tracing cannot keep.
        warnings.filterwarnings("ignore", message="Skipping Assert")
        f = pytensor.function([l_in.input_var], get_output(l_out), mode="JAX")
        data = np.ones((3, 8), dtype=FLOATX)
        first, second = f(data), f(data)
    assert first.shape == (3, 4) and np.isfinite(first).all()
    assert not np.array_equal(first, second)
