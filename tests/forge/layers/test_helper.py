import warnings
from itertools import permutations

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge.layers import (ConcatLayer, DenseLayer, DropoutLayer, ElemwiseSumLayer,
                          InputLayer, Layer, count_params, get_all_layers,
                          get_all_param_values, get_all_params, get_output,
                          get_output_shape, set_all_param_values)

FLOATX = pytensor.config.floatX


class TestGetAllLayers:
    def test_chain_any_query_order(self):
        l1 = InputLayer((None, 2))
        l2 = DenseLayer(l1, 3)
        l3 = DenseLayer(l2, 4)
        chain = [l1, l2, l3]
        for count in range(4):
            for query in permutations(chain, count):
                # Everything up to the deepest queried layer, in chain order.
                depth = max((chain.index(q) + 1 for q in query), default=0)
                assert get_all_layers(list(query)) == chain[:depth]

    def test_single_layer(self):
        l1 = InputLayer((None, 2))
        assert get_all_layers(l1) == [l1]

    def test_merge_lists_inputs_in_order(self):
        # a1 -> a2 --\
        # b1 -> b2 ---> merge
        a1, b1 = InputLayer((None, 2)), InputLayer((None, 2))
        a2, b2 = DenseLayer(a1, 3), DenseLayer(b1, 3)
        merge = ConcatLayer([a2, b2])
        assert get_all_layers(merge) == [a1, a2, b1, b2, merge]

    def test_diamond_lists_shared_layer_once(self):
        l_in = InputLayer((None, 2))
        left, right = DenseLayer(l_in, 3), DenseLayer(l_in, 3)
        out = ElemwiseSumLayer([left, right])
        assert get_all_layers(out) == [l_in, left, right, out]

    def test_bridge(self):
        # l1 -> l2 -> l3 -> merge, with l2 also feeding merge directly
        l1 = InputLayer((None, 2))
        l2 = DenseLayer(l1, 3)
        l3 = DenseLayer(l2, 3)
        merge = ElemwiseSumLayer([l3, l2])
        assert get_all_layers(merge) == [l1, l2, l3, merge]

    def test_treat_as_input(self):
        l1 = InputLayer((None, 2))
        l2 = DenseLayer(l1, 3)
        l3 = DenseLayer(l2, 4)
        assert get_all_layers(l3, treat_as_input=[l2]) == [l2, l3]
        assert get_all_layers(l3, treat_as_input=[l3]) == [l3]

    def test_layer_built_from_shape(self):
        layer = DenseLayer((None, 3), 2)
        assert get_all_layers(layer) == [layer]

    def test_deep_chain_has_no_recursion_limit(self):
        layer = InputLayer((None, 2))
        for _ in range(3000):
            layer = Layer(layer)
        assert len(get_all_layers(layer)) == 3001


class MultiplyLayer(Layer):
    """Multiplies by ``factor``; takes an extra keyword argument."""

    def get_output_for(self, input, factor=1, **kwargs):
        return input * factor


class TestGetOutput:
    @pytest.fixture
    def net(self):
        l_in = InputLayer((None, 3))
        l_mul = MultiplyLayer(l_in)
        return l_in, l_mul, DenseLayer(l_mul, 2, W=np.ones((3, 2)), b=None,
                                       nonlinearity=None)

    def test_uses_input_vars(self, net):
        l_in, _, l_out = net
        out = get_output(l_out)
        f = pytensor.function([l_in.input_var], out)
        np.testing.assert_allclose(f(np.ones((1, 3), dtype=FLOATX)), [[3, 3]])

    def test_expression_input(self, net):
        l_in, _, l_out = net
        x = T.matrix("other")
        out = get_output(l_out, x)
        assert x in list(pytensor.graph.ancestors([out]))
        assert l_in.input_var not in list(pytensor.graph.ancestors([out]))

    def test_numpy_input(self, net):
        _, _, l_out = net
        np.testing.assert_allclose(get_output(l_out, np.ones((2, 3))).eval(),
                                   np.full((2, 2), 3))

    def test_dict_input_for_intermediate_layer(self, net):
        l_in, l_mul, l_out = net
        out = get_output(l_out, {l_mul: 2 * np.ones((1, 3))})
        np.testing.assert_allclose(out.eval(), [[6, 6]])

    def test_list_of_layers(self, net):
        l_in, l_mul, l_out = net
        outs = get_output([l_out, l_mul], np.ones((1, 3)), factor=2)
        assert isinstance(outs, list)
        np.testing.assert_allclose(outs[0].eval(), [[6, 6]])
        np.testing.assert_allclose(outs[1].eval(), [[2, 2, 2]])

    def test_input_layer_itself(self, net):
        l_in, _, _ = net
        assert get_output(l_in) is l_in.input_var

    def test_kwargs_reach_layers(self, net):
        _, _, l_out = net
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = get_output(l_out, np.ones((1, 3)), factor=10)
        np.testing.assert_allclose(out.eval(), [[30, 30]])

    def test_unused_kwargs_warn_with_suggestion(self, net):
        _, _, l_out = net
        with pytest.warns(UserWarning, match=r"factr \(did you mean factor\?\)"):
            get_output(l_out, factr=10)

    def test_unused_kwargs_warn_names_all(self, net):
        _, _, l_out = net
        with pytest.warns(UserWarning, match=r"bar, foo"):
            get_output(l_out, foo=1, bar=2)

    def test_deterministic_never_warns(self):
        l_out = DenseLayer(InputLayer((None, 3)), 2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            get_output(l_out, deterministic=True)

    def test_get_output_kwargs_attribute_counts_as_accepted(self):
        class Custom(Layer):
            def __init__(self, incoming):
                super().__init__(incoming)
                self.get_output_kwargs = ["special"]

            def get_output_for(self, input, **kwargs):
                return input * kwargs.get("special", 1)

        layer = Custom(InputLayer((None, 3)))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            get_output(layer, special=2)

    def test_multiple_inputs_need_a_dict(self):
        a, b = InputLayer((None, 2)), InputLayer((None, 2))
        merged = ElemwiseSumLayer([a, b])
        with pytest.raises(ValueError, match="2 input layers; pass a dict"):
            get_output(merged, np.ones((1, 2)))
        out = get_output(merged, {a: np.ones((1, 2)), b: np.ones((1, 2))})
        np.testing.assert_allclose(out.eval(), [[2, 2]])

    def test_free_floating_layer(self):
        l1 = DenseLayer((None, 3), 2)
        l2 = DenseLayer(l1, 2)
        with pytest.raises(ValueError, match="no input expression for <DenseLayer"):
            get_output(l2)
        assert get_output(l2, {l1: T.matrix()}).ndim == 2

    def test_deterministic_switches_off_dropout(self):
        l_in = InputLayer((None, 50))
        l_out = DropoutLayer(l_in, p=0.5)
        data = np.ones((4, 50), dtype=FLOATX)
        np.testing.assert_array_equal(
            get_output(l_out, data, deterministic=True).eval(), data)
        assert (get_output(l_out, data).eval() == 0).any()


class TestGetOutputShape:
    @pytest.fixture
    def net(self):
        l_in = InputLayer((None, 3, 4))
        l_hid = DenseLayer(l_in, 5, num_leading_axes=-1)
        return l_in, l_hid, DenseLayer(l_hid, 2)

    def test_without_input_shapes(self, net):
        _, l_hid, l_out = net
        assert get_output_shape(l_out) == (None, 2)
        assert get_output_shape([l_hid, l_out]) == [(None, 3, 5), (None, 2)]

    def test_tuple(self, net):
        _, l_hid, l_out = net
        assert get_output_shape(l_out, (7, 3, 4)) == (7, 2)
        assert get_output_shape([l_out, l_hid], (7, 3, 4)) == [(7, 2), (7, 3, 5)]

    def test_dict(self, net):
        l_in, l_hid, l_out = net
        assert get_output_shape(l_hid, {l_in: (9, 3, 4)}) == (9, 3, 5)
        assert get_output_shape(l_out, {l_hid: (8, 3, 5)}) == (8, 2)

    def test_merge(self):
        a, b = InputLayer((None, 2)), InputLayer((None, 3))
        merged = ConcatLayer([a, b])
        assert get_output_shape(merged, {a: (4, 2), b: (4, 3)}) == (4, 5)
        with pytest.raises(ValueError, match="2 input layers; pass a dict"):
            get_output_shape(merged, (4, 2))

    def test_free_floating_layer(self):
        l1 = DenseLayer((None, 3), 2)
        l2 = DenseLayer(l1, 4)
        with pytest.raises(ValueError, match="no input shape"):
            get_output_shape(l2, {InputLayer((None, 3)): (1, 3)})
        assert get_output_shape(l2, {l1: (6, 2)}) == (6, 4)


class TestParams:
    def build(self):
        l_in = InputLayer((None, 4))
        l1 = DenseLayer(l_in, 3, name="l1")
        l2 = DenseLayer(l1, 2, name="l2")
        l2.add_param(np.zeros(2, dtype=FLOATX), (2,), name="frozen", trainable=False,
                     regularizable=False)
        return l1, l2

    def test_get_all_params(self):
        l1, l2 = self.build()
        names = lambda params: [p.name for p in params]  # noqa: E731
        assert names(get_all_params(l2)) == ["l1.W", "l1.b", "l2.W", "l2.b", "l2.frozen"]
        assert names(get_all_params(l2, trainable=True)) == ["l1.W", "l1.b", "l2.W", "l2.b"]
        assert names(get_all_params(l2, regularizable=True)) == ["l1.W", "l2.W"]
        assert names(get_all_params(l2, regularizable=False)) == ["l1.b", "l2.b", "l2.frozen"]
        assert names(get_all_params(l2, trainable=False)) == ["l2.frozen"]
        assert names(get_all_params(l1)) == ["l1.W", "l1.b"]

    def test_shared_parameters_listed_once(self):
        l_in = InputLayer((None, 3))
        l1 = DenseLayer(l_in, 3)
        l2 = DenseLayer(l1, 3, W=l1.W, b=l1.b)
        assert get_all_params(l2) == [l1.W, l1.b]
        assert count_params(l2) == 12

    def test_unwrap_shared_false(self):
        l_in = InputLayer((None, 3))
        l1 = DenseLayer(l_in, 2)
        l2 = DenseLayer(l1, 3, W=l1.W.T)
        params = get_all_params(l2, unwrap_shared=False)
        assert params[:2] == [l1.W, l1.b] and params[2] is l2.W and params[3] is l2.b
        assert get_all_params(l2) == [l1.W, l1.b, l2.b]

    def test_count_params(self):
        l1, l2 = self.build()
        assert count_params(l2) == (4 * 3 + 3) + (3 * 2 + 2) + 2
        assert count_params(l2, regularizable=True) == 12 + 6
        assert isinstance(count_params(l2), int)

    def test_values_round_trip(self, seeded):
        _, net = self.build()
        values = get_all_param_values(net)
        assert [v.shape for v in values] == [(4, 3), (3,), (3, 2), (2,), (2,)]
        _, other = self.build()
        set_all_param_values(other, values)
        for a, b in zip(get_all_param_values(other), values):
            np.testing.assert_array_equal(a, b)

    def test_values_filtered_by_tags(self):
        _, net = self.build()
        assert len(get_all_param_values(net, trainable=True)) == 4
        set_all_param_values(net, [np.ones(2)], trainable=False)
        np.testing.assert_array_equal(get_all_param_values(net, trainable=False)[0],
                                      np.ones(2))

    def test_wrong_number_of_values(self):
        _, net = self.build()
        with pytest.raises(ValueError, match="expected 4 arrays, one per parameter, got 3"):
            set_all_param_values(net, get_all_param_values(net)[:3], trainable=True)

    def test_wrong_shape_names_the_parameter(self):
        _, net = self.build()
        values = get_all_param_values(net)
        values[2] = values[2].T
        before = get_all_param_values(net)
        with pytest.raises(ValueError,
                           match=r"#2 \(l2.W\) has shape \(3, 2\), got .* \(2, 3\)"):
            set_all_param_values(net, [v + 1 for v in values])
        # Nothing was set.
        for a, b in zip(get_all_param_values(net), before):
            np.testing.assert_array_equal(a, b)

    def test_float64_values_are_cast(self):
        _, net = self.build()
        values = [v.astype(np.float64) + 1 for v in get_all_param_values(net)]
        set_all_param_values(net, values)
        assert all(v.dtype == FLOATX for v in get_all_param_values(net))

    def test_incompatible_dtype(self):
        _, net = self.build()
        values = get_all_param_values(net)
        values[0] = values[0].astype(np.complex64)
        with pytest.raises(ValueError, match="dtype complex64"):
            set_all_param_values(net, values)
