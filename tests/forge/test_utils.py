import io

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge import init, utils
from forge.layers import (DenseLayer, InputLayer, NINLayer, get_all_param_values,
                          get_all_params, set_all_param_values)

FLOATX = pytensor.config.floatX


def test_floatX():
    assert utils.floatX([1, 2, 3]).dtype == FLOATX
    assert utils.floatX(np.ones(2, dtype=np.float64)).dtype == FLOATX


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_shared_empty(dim):
    var = utils.shared_empty(dim)
    assert var.ndim == dim
    assert var.dtype == FLOATX
    assert utils.shared_empty(dim, dtype="int32").dtype == "int32"


class TestAsTheanoExpression:
    def test_variable_passes_through(self):
        x = T.matrix()
        assert utils.as_theano_expression(x) is x

    def test_array_becomes_constant(self):
        expr = utils.as_theano_expression(np.arange(6.0).reshape(2, 3))
        np.testing.assert_array_equal(expr.eval(), np.arange(6.0).reshape(2, 3))

    def test_rejects_other_things(self):
        with pytest.raises(TypeError, match="object"):
            utils.as_theano_expression(object())


class TestCollectSharedVars:
    def test_finds_shared_vars_in_order(self):
        a, b, c = (pytensor.shared(np.ones(2), name=n) for n in "abc")
        x = T.vector("x")
        found = utils.collect_shared_vars([T.exp(a) * x + b, c, a])
        assert found == [a, b, c]

    def test_single_expression(self):
        a = pytensor.shared(np.ones((2, 2)))
        assert utils.collect_shared_vars(T.dot(a, a.T)) == [a]

    def test_no_shared_vars(self):
        assert utils.collect_shared_vars(T.vector() * 2) == []


class TestOneHot:
    def test_inferred_number_of_classes(self):
        out = utils.one_hot(np.array([0, 2, 1])).eval()
        np.testing.assert_array_equal(out, np.eye(3)[[0, 2, 1]])

    def test_given_number_of_classes(self):
        x = T.ivector("x")
        out = pytensor.function([x], utils.one_hot(x, 5))(np.array([4, 0], dtype="int32"))
        np.testing.assert_array_equal(out, np.eye(5)[[4, 0]])


def test_unique():
    a, b = object(), object()
    assert utils.unique([a, b, a, a, b]) == [a, b]
    assert utils.unique([]) == []


class TestAsTuple:
    def test_scalar_is_repeated(self):
        assert utils.as_tuple(2, 3) == (2, 2, 2)

    def test_iterable(self):
        assert utils.as_tuple([1, 2], 2) == (1, 2)

    def test_wrong_length(self):
        with pytest.raises(ValueError, match=r"3 values, got \(1, 2\)"):
            utils.as_tuple((1, 2), 3)

    def test_wrong_type(self):
        with pytest.raises(TypeError, match="int"):
            utils.as_tuple((1, 2.5), 2, int)
        with pytest.raises(TypeError, match="int or float"):
            utils.as_tuple("ab", 2, (int, float))


class TestComputeNorms:
    @pytest.mark.parametrize("shape, axes", [
        ((5,), ()),
        ((4, 3), (0,)),
        ((2, 3, 4), (1, 2)),
        ((2, 3, 4, 5), (1, 2, 3)),
        ((2, 1, 3, 4, 5), (1, 2, 3, 4)),
    ])
    def test_default_axes(self, shape, axes):
        array = np.random.RandomState(0).normal(size=shape)
        expected = np.sqrt((array**2).sum(axis=axes)) if axes else np.abs(array)
        np.testing.assert_allclose(utils.compute_norms(array), expected)
        symbolic = utils.compute_norms(T.as_tensor_variable(array))
        np.testing.assert_allclose(symbolic.eval(), expected)

    def test_explicit_axes(self):
        array = np.arange(6.0).reshape(2, 3)
        np.testing.assert_allclose(utils.compute_norms(array, norm_axes=(1,)),
                                   np.sqrt((array**2).sum(axis=1)))

    def test_needs_axes_for_6d(self):
        with pytest.raises(ValueError, match="6-dimensional"):
            utils.compute_norms(np.zeros((1,) * 6))

    def test_rejects_lists(self):
        with pytest.raises((TypeError, AttributeError)):
            utils.compute_norms([[1.0, 2.0]])


class TestCreateParam:
    def test_from_array(self):
        value = np.ones((3, 2), dtype=FLOATX)
        param = utils.create_param(value, (3, 2), name="W")
        assert isinstance(param, pytensor.compile.SharedVariable)
        assert param.name == "W"
        np.testing.assert_array_equal(param.get_value(), value)

    def test_from_initializer(self):
        param = utils.create_param(init.Constant(2.0), (4,), name="b")
        np.testing.assert_array_equal(param.get_value(), np.full(4, 2.0))
        assert param.dtype == FLOATX

    def test_from_shared_variable_keeps_it(self):
        shared = pytensor.shared(np.zeros((3, 2)), name="mine")
        assert utils.create_param(shared, (3, 2), name="W") is shared
        assert shared.name == "mine"

    def test_unnamed_shared_variable_gets_name(self):
        shared = pytensor.shared(np.zeros((3, 2)))
        assert utils.create_param(shared, (3, 2), name="W").name == "W"

    def test_from_expression(self):
        w = pytensor.shared(np.zeros((2, 3)))
        expr = w.T
        assert utils.create_param(expr, (3, 2), name="W") is expr

    def test_from_callable_returning_expression(self):
        w = pytensor.shared(np.zeros((3, 2)))
        assert utils.create_param(lambda shape: w * 2, (3, 2)).ndim == 2

    def test_scalar_parameter(self):
        param = utils.create_param(np.float32(0.5), (), name="s")
        assert param.ndim == 0 and param.get_value() == 0.5

    def test_size_one_axes_broadcast(self):
        param = utils.create_param(np.zeros((1, 3)), (1, 3))
        assert param.broadcastable == (True, False)

    def test_array_wrong_ndim_message(self):
        with pytest.raises(ValueError) as err:
            utils.create_param(np.zeros((64, 10, 1)), (64, 10), name="W")
        assert str(err.value) == ("got a 3-dimensional array for parameter 'W', "
                                  "expected 2 dimensions with shape (64, 10)")

    def test_array_wrong_shape(self):
        with pytest.raises(ValueError, match=r"shape \(10, 64\).*'W'.*\(64, 10\)"):
            utils.create_param(np.zeros((10, 64)), (64, 10), name="W")

    def test_initializer_wrong_shape_names_it(self):
        with pytest.raises(ValueError, match="initializer"):
            utils.create_param(lambda shape: np.zeros(3), (2,), name="b")

    def test_expression_wrong_ndim(self):
        with pytest.raises(ValueError, match=r"3-dimensional expression.*'W'"):
            utils.create_param(T.tensor3(), (64, 10), name="W")

    def test_expression_wrong_static_shape(self):
        expr = T.tensor(dtype=FLOATX, shape=(5, None))
        with pytest.raises(ValueError, match=r"shape \(5, None\).*\(64, 10\)"):
            utils.create_param(expr, (64, 10), name="W")

    @pytest.mark.parametrize("shape", [(0, 3), (-1,), (2.5,)])
    def test_non_positive_shape(self, shape):
        with pytest.raises(ValueError, match="positive integer"):
            utils.create_param(init.Constant(), shape, name="W")

    def test_bad_spec_type(self):
        with pytest.raises(TypeError, match="str"):
            utils.create_param("zeros", (2,), name="W")

    def test_initializer_returning_garbage(self):
        with pytest.raises(TypeError, match="returned a list"):
            utils.create_param(lambda shape: [0, 0], (2,), name="b")


def test_int_types():
    assert isinstance(3, utils.int_types)
    assert isinstance(np.int64(3), utils.int_types)
    assert not isinstance(3.0, utils.int_types)


def test_inspect_kwargs():
    def f(a, b=1, *args, c, d=2, **kwargs):
        pass

    assert utils.inspect_kwargs(f) == ["b", "d"]


def save_lasagne_style(values):
    f = io.BytesIO()
    np.savez(f, *values)
    f.seek(0)
    return f


class TestLoadParamValues:
    def test_orders_keys_numerically(self):
        values = [np.full((2,), i, dtype=np.float32) for i in range(12)]
        loaded = utils.load_param_values(save_lasagne_style(values))
        assert [int(v[0]) for v in loaded] == list(range(12))

    def test_reads_a_path(self, tmp_path):
        path = tmp_path / "params.npz"
        np.savez(path, np.ones(3), np.zeros((2, 2)))
        loaded = utils.load_param_values(path)
        assert [v.shape for v in loaded] == [(3,), (2, 2)]

    def test_rejects_named_arrays(self):
        f = io.BytesIO()
        np.savez(f, W=np.ones(2))
        f.seek(0)
        with pytest.raises(ValueError, match=r"arr_0.*\['W'\]"):
            utils.load_param_values(f)

    def test_rejects_gaps(self):
        f = io.BytesIO()
        np.savez(f, arr_0=np.ones(2), arr_2=np.ones(2))
        f.seek(0)
        with pytest.raises(ValueError, match=r"missing \['arr_1'\]"):
            utils.load_param_values(f)

    def test_refuses_pickles(self):
        f = save_lasagne_style([np.array([{"a": 1}], dtype=object)])
        with pytest.raises(ValueError, match="allow_pickle"):
            utils.load_param_values(f)

    def test_lasagne_era_round_trip(self, seeded):
        def build():
            l_in = InputLayer((None, 3, 4))
            l1 = NINLayer(l_in, 5, untie_biases=True)
            l2 = DenseLayer(l1, 8)
            l3 = DenseLayer(l2, 7)
            l4 = DenseLayer(l3, 6)
            l5 = DenseLayer(l4, 5)
            return DenseLayer(l5, 2)

        net = build()
        values = get_all_param_values(net)
        assert len(values) >= 11  # so that arr_10 sorts wrongly as text
        f = save_lasagne_style(values)

        fresh = build()
        assert not np.array_equal(get_all_param_values(fresh)[0], values[0])
        set_all_param_values(fresh, utils.load_param_values(f))
        for a, b in zip(get_all_param_values(fresh), values):
            np.testing.assert_array_equal(a, b)
        assert len(get_all_params(fresh)) == len(values)
