import numpy as np
import pytensor
import pytest

from forge import init

FLOATX = pytensor.config.floatX


def assert_std(array, expected, rtol=0.05):
    assert abs(array.std() - expected) <= rtol * expected


class TestInitializer:
    def test_sample_is_abstract(self):
        with pytest.raises(NotImplementedError):
            init.Initializer().sample((2,))

    def test_call_delegates_to_sample(self):
        class Ones(init.Initializer):
            def sample(self, shape):
                return np.ones(shape)

        np.testing.assert_array_equal(Ones()((2, 3)), np.ones((2, 3)))

    def test_repr_shows_parameters(self):
        assert repr(init.Normal(std=0.5)) == "Normal(std=0.5, mean=0.0)"
        assert repr(init.GlorotUniform()) == (
            "GlorotUniform(initializer=Uniform, gain=1.0, c01b=False)")


class TestNormal:
    def test_moments_and_dtype(self, seeded):
        sample = init.Normal(std=0.2, mean=1.0)((200, 200))
        assert sample.shape == (200, 200) and sample.dtype == FLOATX
        assert abs(sample.mean() - 1.0) < 0.01
        assert_std(sample, 0.2)

    def test_default_std(self, seeded):
        assert_std(init.Normal()((200, 200)), 0.01)


class TestUniform:
    def test_range_number(self, seeded):
        sample = init.Uniform(0.5)((100, 100))
        assert sample.dtype == FLOATX
        assert sample.min() >= -0.5 and sample.max() < 0.5
        assert sample.min() < -0.45 and sample.max() > 0.45

    def test_range_pair(self, seeded):
        sample = init.Uniform((1.0, 3.0))((100, 100))
        assert sample.min() >= 1.0 and sample.max() < 3.0

    def test_std_and_mean(self, seeded):
        u = init.Uniform(std=0.1, mean=2.0)
        np.testing.assert_allclose(u.range, (2 - np.sqrt(3) * 0.1, 2 + np.sqrt(3) * 0.1))
        sample = u((200, 200))
        assert abs(sample.mean() - 2.0) < 0.01
        assert_std(sample, 0.1)


def glorot_std(shape, gain=1.0):
    """The reference: gain * sqrt(2 / ((fan_in + fan_out) * receptive_field))."""
    field = int(np.prod(shape[2:]))
    return gain * np.sqrt(2.0 / ((shape[0] + shape[1]) * field))


class TestGlorot:
    @pytest.mark.parametrize("cls", [init.GlorotNormal, init.GlorotUniform])
    @pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3)])
    def test_std(self, seeded, cls, shape):
        sample = cls()(shape)
        assert sample.shape == shape and sample.dtype == FLOATX
        assert_std(sample, glorot_std(shape))

    def test_uniform_bound(self, seeded):
        sample = init.GlorotUniform()((100, 50))
        assert np.abs(sample).max() <= np.sqrt(6.0 / 150)

    def test_gain(self, seeded):
        assert_std(init.GlorotNormal(gain=3.0)((300, 200)), glorot_std((300, 200), 3.0))

    def test_gain_relu(self):
        assert init.GlorotUniform(gain="relu").gain == np.sqrt(2)

    def test_bad_gain(self):
        with pytest.raises(ValueError, match="'tanh'"):
            init.GlorotUniform(gain="tanh")

    def test_c01b(self, seeded):
        # (channels, rows, columns, filters): fans are axes 0 and 3.
        shape = (32, 3, 3, 64)
        sample = init.GlorotNormal(c01b=True)(shape)
        assert_std(sample, np.sqrt(2.0 / ((32 + 64) * 9)))

    def test_c01b_needs_4d(self):
        with pytest.raises(RuntimeError, match="4 dimensions"):
            init.GlorotUniform(c01b=True)((2, 3))

    def test_needs_2d(self):
        with pytest.raises(RuntimeError, match=r"\(10,\)"):
            init.GlorotUniform()((10,))

    def test_generic_class(self, seeded):
        sample = init.Glorot(init.Normal)((300, 200))
        assert_std(sample, glorot_std((300, 200)))


class TestHe:
    @pytest.mark.parametrize("cls", [init.HeNormal, init.HeUniform])
    def test_matrix(self, seeded, cls):
        sample = cls()((400, 300))
        assert sample.dtype == FLOATX
        assert_std(sample, np.sqrt(1.0 / 400))

    def test_conv_fan_in(self, seeded):
        sample = init.HeNormal(gain="relu")((64, 16, 3, 3))
        assert_std(sample, np.sqrt(2.0) * np.sqrt(1.0 / (16 * 9)))

    def test_c01b(self, seeded):
        sample = init.HeNormal(c01b=True)((16, 3, 3, 64))
        assert_std(sample, np.sqrt(1.0 / (16 * 9)))

    def test_c01b_needs_4d(self):
        with pytest.raises(RuntimeError, match="4 dimensions"):
            init.HeNormal(c01b=True)((2, 3, 4))

    def test_needs_2d(self):
        with pytest.raises(RuntimeError, match="2 or more"):
            init.HeUniform()((5,))


class TestConstant:
    def test_default_zero(self):
        sample = init.Constant()((2, 3))
        assert sample.dtype == FLOATX
        np.testing.assert_array_equal(sample, np.zeros((2, 3)))

    def test_value(self):
        np.testing.assert_array_equal(init.Constant(1.5)((4,)), np.full(4, 1.5))


class TestSparse:
    def test_nonzeros_per_column(self, seeded):
        sample = init.Sparse(sparsity=0.25, std=0.5)((40, 30))
        assert sample.dtype == FLOATX
        np.testing.assert_array_equal(np.count_nonzero(sample, axis=0), np.full(30, 10))
        assert_std(sample[sample != 0], 0.5, rtol=0.15)

    def test_needs_2d(self):
        with pytest.raises(RuntimeError, match="2 dimensions"):
            init.Sparse()((3, 4, 5))


class TestOrthogonal:
    @pytest.mark.parametrize("shape", [(10, 10), (5, 20), (20, 5)])
    def test_orthonormal_rows_or_columns(self, seeded, shape):
        q = init.Orthogonal()(shape).astype(np.float64)
        assert q.shape == shape
        if shape[0] <= shape[1]:
            np.testing.assert_allclose(q @ q.T, np.eye(shape[0]), atol=1e-5)
        else:
            np.testing.assert_allclose(q.T @ q, np.eye(shape[1]), atol=1e-5)

    def test_flattens_trailing_axes(self, seeded):
        q = init.Orthogonal()((4, 2, 3, 3)).reshape(4, -1).astype(np.float64)
        np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-5)

    def test_gain(self, seeded):
        q = init.Orthogonal(gain="relu")((6, 6)).astype(np.float64)
        np.testing.assert_allclose(q @ q.T, 2 * np.eye(6), atol=1e-5)

    def test_needs_2d(self):
        with pytest.raises(RuntimeError, match="2 or more"):
            init.Orthogonal()((7,))


def test_reproducible_with_set_rng():
    from forge.random import set_rng

    samples = []
    for _ in range(2):
        set_rng(np.random.RandomState(0))
        samples.append([init.GlorotUniform()((5, 4)), init.Sparse(0.5)((6, 3)),
                        init.Orthogonal()((3, 3))])
    for a, b in zip(*samples):
        np.testing.assert_array_equal(a, b)
