from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge import init
from forge.layers import (DenseLayer, InputLayer, Layer, MergeLayer, get_all_params,
                          get_output)

FLOATX = pytensor.config.floatX


class TestLayer:
    @pytest.fixture
    def layer(self):
        return Layer((None, 3))

    def test_from_shape(self, layer):
        assert layer.input_shape == (None, 3)
        assert layer.input_layer is None
        assert layer.output_shape == (None, 3)
        assert layer.params == OrderedDict()

    def test_from_layer(self):
        l_in = InputLayer((2, 3))
        layer = Layer(l_in, name="mine")
        assert layer.input_layer is l_in
        assert layer.input_shape == (2, 3)
        assert layer.name == "mine"

    def test_rejects_non_positive_input_shape(self):
        with pytest.raises(ValueError, match=r"input_shape=\(None, 0\)"):
            Layer((None, 0))

    def test_get_output_for_is_abstract(self, layer):
        with pytest.raises(NotImplementedError):
            layer.get_output_for(T.matrix())

    def test_symbolic_output_shape_is_refused(self, layer):
        layer.get_output_shape_for = lambda shape: (T.iscalar(), 3)
        with pytest.raises(ValueError, match="symbolic"):
            _ = layer.output_shape

    def test_repr(self):
        assert repr(Layer((None, 3), name="x")) == "<Layer name='x' output_shape=(None, 3)>"


class TestAddParam:
    def test_default_tags(self):
        layer = Layer((None, 3))
        W = layer.add_param(init.Constant(), (3, 2), name="W")
        assert layer.params[W] == {"trainable", "regularizable"}

    def test_false_tags_are_dropped(self):
        layer = Layer((None, 3))
        b = layer.add_param(init.Constant(), (2,), name="b", regularizable=False,
                            special=True)
        assert layer.params[b] == {"trainable", "special"}

    def test_name_prefixed_with_layer_name(self):
        assert Layer((None, 3), name="enc").add_param(
            init.Constant(), (3,), name="W").name == "enc.W"
        assert Layer((None, 3)).add_param(init.Constant(), (3,), name="W").name == "W"

    def test_expression_registers_its_shared_vars(self):
        layer = Layer((None, 3))
        w = pytensor.shared(np.zeros((3, 2), dtype=FLOATX), name="w")
        W = layer.add_param(T.exp(w), (3, 2), name="W", regularizable=False)
        assert W is not w and W.owner is not None
        assert layer.get_params() == [w]
        assert layer.get_params(unwrap_shared=False) == [W]
        assert layer.get_params(regularizable=True) == []
        assert layer.get_params(trainable=True) == [w]


class TestGetParams:
    @pytest.fixture
    def layer(self):
        layer = Layer((None, 3))
        self.a = layer.add_param(init.Constant(), (1,), name="a")
        self.b = layer.add_param(init.Constant(), (1,), name="b", regularizable=False)
        self.c = layer.add_param(init.Constant(), (1,), name="c", trainable=False,
                                 regularizable=False)
        return layer

    def test_all(self, layer):
        assert layer.get_params() == [self.a, self.b, self.c]

    def test_only(self, layer):
        assert layer.get_params(trainable=True) == [self.a, self.b]
        assert layer.get_params(trainable=True, regularizable=True) == [self.a]

    def test_exclude(self, layer):
        assert layer.get_params(regularizable=False) == [self.b, self.c]
        assert layer.get_params(trainable=False) == [self.c]

    def test_unknown_tag(self, layer):
        assert layer.get_params(nonexistent=True) == []
        assert layer.get_params(nonexistent=False) == [self.a, self.b, self.c]


class TestMergeLayer:
    def test_from_layers_and_shapes(self):
        l_in = InputLayer((None, 3))
        layer = MergeLayer([l_in, (None, 4)], name="m")
        assert layer.input_layers == [l_in, None]
        assert layer.input_shapes == [(None, 3), (None, 4)]
        assert layer.name == "m"
        assert layer.params == OrderedDict()

    def test_abstract_methods(self):
        layer = MergeLayer([(1,), (1,)])
        with pytest.raises(NotImplementedError):
            _ = layer.output_shape
        with pytest.raises(NotImplementedError):
            layer.get_output_for([T.vector(), T.vector()])

    def test_rejects_non_positive_shape(self):
        with pytest.raises(ValueError, match=r"\(None, -2\)"):
            MergeLayer([(None, 3), (None, -2)])


def descend(loss, params, steps=25, learning_rate=0.1, inputs=(), data=()):
    """Run plain gradient descent on the shared ``params``; return the losses."""
    grads = pytensor.grad(loss, params)
    updates = [(p, p - learning_rate * g) for p, g in zip(params, grads)]
    step = pytensor.function(list(inputs), loss, updates=updates)
    return [float(step(*data)) for _ in range(steps)]


class TestParameterExpressions:
    """Parameters given as expressions of shared variables, trained through them."""

    @pytest.fixture
    def batch(self):
        rng = np.random.RandomState(0)
        return rng.uniform(-1, 1, (16, 6)).astype(FLOATX)

    def test_tied_autoencoder(self, seeded, batch):
        l_in = InputLayer((None, 6))
        l_enc = DenseLayer(l_in, num_units=3)
        l_dec = DenseLayer(l_enc, num_units=6, W=l_enc.W.T, nonlinearity=None)
        params = get_all_params(l_dec)
        assert params == [l_enc.W, l_enc.b, l_dec.b]
        assert get_all_params(l_dec, unwrap_shared=False)[2].owner is not None

        loss = T.mean((get_output(l_dec) - l_in.input_var) ** 2)
        losses = descend(loss, params, inputs=[l_in.input_var], data=[batch])
        assert losses[-1] < losses[0]

    def test_factorised_weights(self, seeded, batch):
        w1 = pytensor.shared(init.GlorotUniform()((6, 2)), name="w1")
        w2 = pytensor.shared(init.GlorotUniform()((2, 4)), name="w2")
        l_in = InputLayer((None, 6))
        l_out = DenseLayer(l_in, num_units=4, W=T.dot(w1, w2), nonlinearity=None)
        assert get_all_params(l_out) == [w1, w2, l_out.b]
        assert get_all_params(l_out, regularizable=True) == [w1, w2]

        target = np.ones((16, 4), dtype=FLOATX)
        loss = T.mean((get_output(l_out) - target) ** 2)
        losses = descend(loss, get_all_params(l_out), inputs=[l_in.input_var],
                         data=[batch])
        assert losses[-1] < losses[0]

    def test_positive_weights(self, seeded, batch):
        w = pytensor.shared(init.Normal(0.1)((6, 2)), name="w")
        l_in = InputLayer((None, 6))
        l_out = DenseLayer(l_in, num_units=2, W=T.exp(w), b=None, nonlinearity=None)
        assert get_all_params(l_out) == [w]
        np.testing.assert_allclose(l_out.W.eval(), np.exp(w.get_value()), rtol=1e-6)

        loss = T.mean((get_output(l_out) - 0.5) ** 2)
        losses = descend(loss, [w], inputs=[l_in.input_var], data=[batch])
        assert losses[-1] < losses[0]
        assert (l_out.W.eval() > 0).all()

    def test_positive_semidefinite_weights(self, seeded, batch):
        w = pytensor.shared(init.Normal(0.3)((6, 6)), name="w")
        l_in = InputLayer((None, 6))
        l_out = DenseLayer(l_in, num_units=6, W=T.dot(w, w.T), b=None,
                           nonlinearity=None)
        assert get_all_params(l_out) == [w]
        assert np.linalg.eigvalsh(l_out.W.eval().astype(np.float64)).min() > -1e-5

        loss = T.mean((get_output(l_out) - 2 * l_in.input_var) ** 2)
        losses = descend(loss, [w], inputs=[l_in.input_var], data=[batch])
        assert losses[-1] < losses[0]
        assert np.linalg.eigvalsh(l_out.W.eval().astype(np.float64)).min() > -1e-5
