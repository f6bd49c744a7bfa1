"""Normalization layers through real bundles, against references written from Lasagne's
formulas."""
import numpy as np
import pytest

from runtime import BundleError

from .. import oracles
from ..helpers import build_layer, check_layer


class TestBatchNormLayer:
    @pytest.mark.parametrize("shape, axes", [((4, 3, 5, 2), [0, 2, 3]), ((4, 6), [0]),
                                             ((2, 3, 4), [0, 1]), ((3, 2, 2), [])])
    def test_scale_and_shift_repeat_along_the_normalized_axes(self, shape, axes):
        kept = tuple(s for a, s in enumerate(shape) if a not in axes)
        rng = np.random.default_rng(0)
        gamma, beta, mean = (rng.standard_normal(kept) for _ in range(3))
        inv_std = rng.uniform(0.5, 2.0, kept)
        scale = (gamma * inv_std).astype(np.float32)
        shift = (beta - mean * gamma * inv_std).astype(np.float32)
        index = tuple(np.newaxis if a in axes else slice(None) for a in range(len(shape)))

        def reference(x):  # Lasagne: (x - mean) * (gamma * inv_std) + beta
            return (x.astype(np.float64) - mean[index]) * (gamma * inv_std)[index] + beta[index]

        check_layer("BatchNormLayer", {"axes": axes}, {"scale": scale, "shift": shift}, [shape],
                    reference)

    def test_refuses_mismatched_params_and_inputs(self):
        with pytest.raises(BundleError, match="scale and shift must have one shape"):
            build_layer("BatchNormLayer", {"axes": [0]},
                        {"scale": np.ones(3, np.float32), "shift": np.ones(4, np.float32)})
        with pytest.raises(BundleError, match="axes must be a list of distinct ints"):
            build_layer("BatchNormLayer", {"axes": [0, 0]},
                        {"scale": np.ones(3, np.float32), "shift": np.ones(3, np.float32)})
        layer = build_layer("BatchNormLayer", {"axes": [0, 2]},
                            {"scale": np.ones(3, np.float32), "shift": np.ones(3, np.float32)})
        with pytest.raises(ValueError, match=r"do not fit an input of shape \(2, 4, 5\)"):
            layer(np.ones((2, 4, 5), np.float32))


class TestLocalResponseNormalization2DLayer:
    @pytest.mark.parametrize("n", [1, 3, 5])
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_matches_lasagnes_formula(self, n, dtype):
        config = {"alpha": 1e-2, "k": 2, "beta": 0.75, "n": n}
        check_layer("LocalResponseNormalization2DLayer", config, {}, [(2, 6, 3, 4)],
                    lambda x: oracles.local_response_norm(x, 1e-2, 2.0, 0.75, n), dtype=dtype)

    @pytest.mark.parametrize("config, match", [
        ({"alpha": 1e-4, "k": 2, "beta": 0.75, "n": 4}, "n must be a positive odd int"),
        ({"alpha": "1e-4", "k": 2, "beta": 0.75, "n": 5}, "alpha, k and beta must be numbers"),
    ])
    def test_refuses_bad_configs(self, config, match):
        with pytest.raises(BundleError, match=match):
            build_layer("LocalResponseNormalization2DLayer", config)


class TestStandardizationLayer:
    @pytest.mark.parametrize("axes", [[1, 2, 3], [2, 3], [0], [1]])
    def test_matches_lasagnes_formula(self, axes):
        check_layer("StandardizationLayer", {"axes": axes, "epsilon": 1e-4}, {},
                    [(3, 2, 4, 5)], lambda x: oracles.standardize(x, axes, 1e-4))

    def test_refuses_a_negative_epsilon_and_missing_axes(self):
        with pytest.raises(BundleError, match="epsilon must be a number >= 0"):
            build_layer("StandardizationLayer", {"axes": [1], "epsilon": -1})
        layer = build_layer("StandardizationLayer", {"axes": [1, 3], "epsilon": 0.1})
        with pytest.raises(ValueError, match=r"axes \[1, 3\] do not exist"):
            layer(np.ones((2, 3, 4), np.float32))
