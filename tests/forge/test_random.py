import warnings

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge import init
from forge.random import RandomStreams, get_rng, random_streams, set_rng


class TestGetSetRng:
    def test_default_is_numpy_global_generator(self):
        assert get_rng() is np.random

    def test_set_rng_replaces_generator(self):
        rng = np.random.RandomState(0)
        set_rng(rng)
        assert get_rng() is rng

    def test_set_rng_makes_initializers_reproducible(self):
        set_rng(np.random.RandomState(3))
        first = init.Normal()((4, 5))
        set_rng(np.random.RandomState(3))
        np.testing.assert_array_equal(init.Normal()((4, 5)), first)

    def test_numpy_seed_drives_the_default(self):
        np.random.seed(7)
        first = init.Uniform()((3,))
        np.random.seed(7)
        np.testing.assert_array_equal(init.Uniform()((3,)), first)


class TestRandomStreams:
    def draw_twice(self, stream, method, **kwargs):
        x = T.vector("x")
        value = getattr(stream, method)(size=x.shape, **kwargs)
        f = pytensor.function([x], value)
        data = np.zeros(1000, dtype=x.dtype)
        return f(data), f(data)

    def test_uniform_range_and_advance(self):
        first, second = self.draw_twice(RandomStreams(1), "uniform", low=2.0, high=3.0)
        assert first.min() >= 2.0 and first.max() < 3.0
        assert abs(first.mean() - 2.5) < 0.05
        # The generator advances by itself between calls (default updates).
        assert not np.array_equal(first, second)

    def test_normal_moments(self):
        first, _ = self.draw_twice(RandomStreams(1), "normal", loc=1.0, scale=0.5)
        assert abs(first.mean() - 1.0) < 0.1
        assert abs(first.std() - 0.5) < 0.05

    def test_draws_are_floatX(self):
        x = T.vector("x")
        assert RandomStreams(0).uniform(size=x.shape).dtype == pytensor.config.floatX

    def test_same_seed_same_draws(self):
        a = self.draw_twice(RandomStreams(5), "uniform")
        b = self.draw_twice(RandomStreams(5), "uniform")
        np.testing.assert_array_equal(a, b)

    def test_different_seeds_differ(self):
        a, _ = self.draw_twice(RandomStreams(5), "uniform")
        b, _ = self.draw_twice(RandomStreams(6), "uniform")
        assert not np.array_equal(a, b)

    def test_updates_lists_each_draw(self):
        stream = RandomStreams(0)
        stream.uniform(size=(2,))
        stream.normal(size=(3,))
        updates = stream.updates()
        assert len(updates) == 2
        assert all(rng.default_update is next_rng for rng, next_rng in updates)

    def test_no_deprecation_warnings_leak(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            RandomStreams(0).uniform(size=(2,))


class TestRandomStreamsHelper:
    def test_seed_comes_from_get_rng(self):
        set_rng(np.random.RandomState(1))
        expected = np.random.RandomState(1).randint(1, 2**31 - 1)
        assert random_streams().seed == expected

    def test_explicit_seed(self):
        assert random_streams(seed=123).seed == 123

    @pytest.mark.parametrize("seed", [1, 2])
    def test_set_rng_fixes_the_stream(self, seed):
        set_rng(np.random.RandomState(seed))
        a = random_streams().seed
        set_rng(np.random.RandomState(seed))
        assert random_streams().seed == a
