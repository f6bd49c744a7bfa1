"""Tests for forge.updates: every optimizer against a numpy re-implementation.

The problem is a separable quadratic with two parameters of different shapes,
``loss = sum(0.5 * A * W**2 + B * W)`` per parameter, so the gradient ``A * W + B`` is
known in closed form and the numpy oracles need no autodiff. Each optimizer runs a few
steps; after every step the shared values must match the oracle's.
"""
import doctest
from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

import forge.updates
from forge.updates import (
    adadelta, adagrad, adam, adamax, amsgrad, apply_momentum, apply_nesterov_momentum,
    get_or_compute_grads, momentum, nesterov_momentum, norm_constraint, rmsprop, sgd,
    total_norm_constraint,
)

FLOATX = pytensor.config.floatX
NUM_STEPS = 4
RTOL, ATOL = 1e-4, 1e-6


# --- numpy oracles: make_<name>(**hyper) -> step(values, grads) -> new values --------

def make_sgd(learning_rate):
    def step(values, grads):
        return [p - learning_rate * g for p, g in zip(values, grads)]
    return step


def make_momentum(learning_rate, momentum=0.9):
    velocities = {}

    def step(values, grads):
        new_values = []
        for i, (p, g) in enumerate(zip(values, grads)):
            v = momentum * velocities.get(i, 0.0) - learning_rate * g
            velocities[i] = v
            new_values.append(p + v)
        return new_values
    return step


def make_nesterov_momentum(learning_rate, momentum=0.9):
    velocities = {}

    def step(values, grads):
        new_values = []
        for i, (p, g) in enumerate(zip(values, grads)):
            v = momentum * velocities.get(i, 0.0) - learning_rate * g
            velocities[i] = v
            new_values.append(p + momentum * v - learning_rate * g)
        return new_values
    return step


def make_adagrad(learning_rate=1.0, epsilon=1e-6):
    sums = {}

    def step(values, grads):
        new_values = []
        for i, (p, g) in enumerate(zip(values, grads)):
            sums[i] = sums.get(i, 0.0) + g * g
            new_values.append(p - learning_rate * g / np.sqrt(sums[i] + epsilon))
        return new_values
    return step


def make_rmsprop(learning_rate=1.0, rho=0.9, epsilon=1e-6):
    averages = {}

    def step(values, grads):
        new_values = []
        for i, (p, g) in enumerate(zip(values, grads)):
            averages[i] = rho * averages.get(i, 0.0) + (1 - rho) * g * g
            new_values.append(p - learning_rate * g / np.sqrt(averages[i] + epsilon))
        return new_values
    return step


def make_adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-6):
    grad_avg, step_avg = {}, {}

    def step(values, grads):
        new_values = []
        for i, (p, g) in enumerate(zip(values, grads)):
            grad_avg[i] = rho * grad_avg.get(i, 0.0) + (1 - rho) * g * g
            delta = g * np.sqrt(step_avg.get(i, 0.0) + epsilon) / np.sqrt(
                grad_avg[i] + epsilon)
            step_avg[i] = rho * step_avg.get(i, 0.0) + (1 - rho) * delta * delta
            new_values.append(p - learning_rate * delta)
        return new_values
    return step


def _make_adam_family(kind, learning_rate, beta1, beta2, epsilon):
    first, second, second_max = {}, {}, {}
    count = [0]

    def step(values, grads):
        count[0] += 1
        t = count[0]
        new_values = []
        for i, (p, g) in enumerate(zip(values, grads)):
            first[i] = beta1 * first.get(i, 0.0) + (1 - beta1) * g
            if kind == "adamax":
                second[i] = np.maximum(beta2 * second.get(i, 0.0), np.abs(g))
                step_size = learning_rate / (1 - beta1 ** t)
                new_values.append(p - step_size * first[i] / (second[i] + epsilon))
                continue
            second[i] = beta2 * second.get(i, 0.0) + (1 - beta2) * g * g
            denominator = second[i]
            if kind == "amsgrad":
                second_max[i] = np.maximum(second_max.get(i, 0.0), second[i])
                denominator = second_max[i]
            # Bias correction written out rather than folded into the learning rate.
            m_hat = first[i] / (1 - beta1 ** t)
            v_hat = denominator / (1 - beta2 ** t)
            # Adam's epsilon sits outside the bias correction of the second moment.
            scale = np.sqrt(1 - beta2 ** t)
            new_values.append(
                p - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon / scale))
        return new_values
    return step


def make_adam(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
    return _make_adam_family("adam", learning_rate, beta1, beta2, epsilon)


def make_adamax(learning_rate=0.002, beta1=0.9, beta2=0.999, epsilon=1e-8):
    return _make_adam_family("adamax", learning_rate, beta1, beta2, epsilon)


def make_amsgrad(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
    return _make_adam_family("amsgrad", learning_rate, beta1, beta2, epsilon)


# (forge optimizer, numpy oracle, hyperparameters). Learning rates are large enough
# that every parameter moves visibly in a few steps; rho and betas are non-default.
OPTIMIZERS = {
    "sgd": (sgd, make_sgd, dict(learning_rate=0.1)),
    "momentum": (momentum, make_momentum, dict(learning_rate=0.1, momentum=0.8)),
    "nesterov_momentum": (nesterov_momentum, make_nesterov_momentum,
                          dict(learning_rate=0.1, momentum=0.8)),
    "adagrad": (adagrad, make_adagrad, dict(learning_rate=0.3)),
    "rmsprop": (rmsprop, make_rmsprop, dict(learning_rate=0.05, rho=0.8)),
    "adadelta": (adadelta, make_adadelta, dict(learning_rate=1.0, rho=0.9,
                                                epsilon=1e-2)),
    "adam": (adam, make_adam, dict(learning_rate=0.1, beta1=0.8, beta2=0.95)),
    "adamax": (adamax, make_adamax, dict(learning_rate=0.1, beta1=0.8, beta2=0.95)),
    "amsgrad": (amsgrad, make_amsgrad, dict(learning_rate=0.1, beta1=0.8, beta2=0.7)),
}
# Defaults differ from the table above; the oracle is called with no arguments then.
DEFAULTS_ONLY = ["adagrad", "rmsprop", "adadelta", "adam", "adamax", "amsgrad"]


class Quadratic:
    """Two shared parameters and the loss ``sum(0.5 * A * p**2 + B * p)`` over both."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        shapes = [(3,), (2, 3)]
        self.initial = [rng.normal(size=s).astype(FLOATX) for s in shapes]
        self.curvature = [rng.uniform(0.5, 2.0, size=s) for s in shapes]
        self.offset = [rng.normal(size=s) for s in shapes]
        self.params = [pytensor.shared(v.copy(), name=n)
                       for v, n in zip(self.initial, ["b", "W"])]
        self.loss = sum(T.sum(0.5 * a.astype(FLOATX) * p ** 2 + c.astype(FLOATX) * p)
                        for p, a, c in zip(self.params, self.curvature, self.offset))

    def grads(self, values):
        return [a * v + c for v, a, c in zip(values, self.curvature, self.offset)]

    def values(self):
        return [p.get_value() for p in self.params]


def run_and_compare(updates, problem, oracle, num_steps=NUM_STEPS, before_step=None):
    """Run `updates` and the numpy `oracle` side by side, comparing after every step."""
    train = pytensor.function([], [], updates=updates)
    expected = [v.astype(np.float64) for v in problem.initial]
    for step in range(num_steps):
        if before_step is not None:
            before_step(step)
        train()
        expected = oracle(expected, problem.grads(expected))
        for got, want in zip(problem.values(), expected):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL,
                                       err_msg=f"after step {step + 1}")
    return expected


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_matches_numpy(name):
    method, make_oracle, hyper = OPTIMIZERS[name]
    problem = Quadratic()
    updates = method(problem.loss, problem.params, **hyper)
    assert isinstance(updates, OrderedDict)
    final = run_and_compare(updates, problem, make_oracle(**hyper))
    # The optimizers must make progress, not merely agree on standing still.
    assert not np.allclose(final[1], problem.initial[1], atol=1e-3)


@pytest.mark.parametrize("name", DEFAULTS_ONLY)
def test_optimizer_defaults_match_numpy(name):
    method, make_oracle, _ = OPTIMIZERS[name]
    problem = Quadratic(seed=1)
    run_and_compare(method(problem.loss, problem.params), problem, make_oracle())


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_accepts_gradient_list(name):
    method, make_oracle, hyper = OPTIMIZERS[name]
    problem = Quadratic(seed=2)
    grads = pytensor.grad(problem.loss, problem.params)
    run_and_compare(method(grads, problem.params, **hyper), problem,
                    make_oracle(**hyper), num_steps=2)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_updates_keep_dtypes_with_float64_hyperparameters(name):
    method, _, hyper = OPTIMIZERS[name]
    problem = Quadratic(seed=3)
    # float64 shared hyperparameters would turn the updates float64 without a cast.
    hyper64 = {key: pytensor.shared(np.float64(value)) for key, value in hyper.items()}
    updates = method(problem.loss, problem.params, **hyper64)
    for variable, new_value in updates.items():
        assert new_value.dtype == variable.dtype, (variable, new_value.dtype)
        assert new_value.type.ndim == variable.type.ndim
    pytensor.function([], [], updates=updates)()  # PyTensor accepts them


def test_learning_rate_schedule_from_shared_variable():
    problem = Quadratic(seed=4)
    schedule = [0.2, 0.1, 0.05, 0.025]
    learning_rate = pytensor.shared(np.asarray(schedule[0], dtype=FLOATX))
    updates = momentum(problem.loss, problem.params, learning_rate, momentum=0.5)

    rates = iter(schedule)
    velocities = {}

    def oracle(values, grads):
        lr = next(rates)
        new_values = []
        for i, (p, g) in enumerate(zip(values, grads)):
            velocities[i] = 0.5 * velocities.get(i, 0.0) - lr * g
            new_values.append(p + velocities[i])
        return new_values

    run_and_compare(updates, problem, oracle,
                    before_step=lambda step: learning_rate.set_value(
                        np.asarray(schedule[step], dtype=FLOATX)))


def test_hyperparameter_as_symbolic_input():
    problem = Quadratic(seed=5)
    lr_input = T.scalar("lr", dtype="float64")
    updates = sgd(problem.loss, problem.params, learning_rate=2 * lr_input)
    train = pytensor.function([lr_input], [], updates=updates)
    train(0.05)
    expected = make_sgd(0.1)(problem.initial, problem.grads(problem.initial))
    for got, want in zip(problem.values(), expected):
        np.testing.assert_allclose(got, want, rtol=RTOL)


def test_optimizer_state_keeps_static_shape_of_broadcastable_param():
    column = pytensor.shared(np.ones((3, 1), dtype=FLOATX), shape=(None, 1), name="c")
    loss = T.sum(column ** 2)
    updates = adam(loss, [column], learning_rate=0.1)
    for variable, new_value in updates.items():
        if variable is not column and variable.ndim == 2:
            assert variable.type.shape == (None, 1)
    pytensor.function([], [], updates=updates)()
    np.testing.assert_allclose(column.get_value(), 0.9, rtol=1e-5)


def test_get_or_compute_grads():
    problem = Quadratic()
    grads = get_or_compute_grads(problem.loss, problem.params)
    computed = pytensor.function([], grads)()
    for got, want in zip(computed, problem.grads(problem.initial)):
        np.testing.assert_allclose(got, want, rtol=1e-5)
    given = [T.zeros_like(p) for p in problem.params]
    assert get_or_compute_grads(given, problem.params) == given


def test_get_or_compute_grads_rejects_wrong_gradient_count():
    problem = Quadratic()
    with pytest.raises(ValueError, match="got 1 gradient expressions for 2 parameters"):
        sgd([T.zeros_like(problem.params[0])], problem.params, 0.1)


def test_get_or_compute_grads_rejects_non_shared_params():
    w = pytensor.shared(np.ones(3, dtype=FLOATX))
    expression = 2 * w
    with pytest.raises(ValueError, match=r"params\[1\] is .* of type"):
        adam(T.sum(expression ** 2), [w, expression])


def test_get_or_compute_grads_rejects_non_scalar_loss():
    w = pytensor.shared(np.ones(3, dtype=FLOATX))
    with pytest.raises(ValueError, match="got a 1-dimensional loss"):
        sgd(w ** 2, [w], 0.1)


def test_bad_hyperparameter_is_named():
    w = pytensor.shared(np.ones(3, dtype=FLOATX))
    with pytest.raises(TypeError, match="learning_rate must be a number .* got 'fast'"):
        sgd(T.sum(w ** 2), [w], "fast")


@pytest.mark.parametrize("apply_fn, make_oracle", [
    (apply_momentum, make_momentum),
    (apply_nesterov_momentum, make_nesterov_momentum),
])
def test_apply_momentum_to_chosen_params_only(apply_fn, make_oracle):
    problem = Quadratic(seed=6)
    plain = sgd(problem.loss, problem.params, learning_rate=0.1)
    updates = apply_fn(plain, params=[problem.params[1]], momentum=0.7)
    assert list(plain.keys()) == problem.params  # the input dict is left alone
    assert len(updates) == 3  # two params plus one velocity
    with_momentum = make_oracle(learning_rate=0.1, momentum=0.7)
    without = make_sgd(0.1)

    def oracle(values, grads):
        return [without(values[:1], grads[:1])[0],
                with_momentum(values[1:], grads[1:])[0]]

    run_and_compare(updates, problem, oracle)


# --- norm constraints -------------------------------------------------------------

def np_norm_constraint(x, max_norm, axes, epsilon=1e-7):
    norms = np.sqrt(np.sum(x ** 2, axis=axes, keepdims=True))
    return x * (np.clip(norms, 0, max_norm) / (epsilon + norms))


@pytest.mark.parametrize("shape, norm_axes, default_axes", [
    ((5, 4), None, (0,)),
    ((4, 3, 2), None, (1, 2)),
    ((4, 3, 2, 2), None, (1, 2, 3)),
    ((3, 2, 2, 2, 2), None, (1, 2, 3, 4)),
    ((6,), (0,), (0,)),
    ((5, 4), (1,), (1,)),
])
def test_norm_constraint_matches_numpy(shape, norm_axes, default_axes):
    rng = np.random.default_rng(7)
    value = rng.normal(scale=2.0, size=shape).astype(FLOATX)
    max_norm = float(np.median(np.sqrt(np.sum(value.astype(np.float64) ** 2,
                                              axis=default_axes))))
    constrained = norm_constraint(pytensor.shared(value), max_norm, norm_axes=norm_axes)
    got = constrained.eval()
    assert got.dtype == value.dtype and got.shape == shape
    np.testing.assert_allclose(got, np_norm_constraint(value, max_norm, default_axes),
                               rtol=1e-5, atol=1e-6)
    norms = np.sqrt(np.sum(got.astype(np.float64) ** 2, axis=default_axes))
    assert np.all(norms <= max_norm * (1 + 1e-5))


def test_norm_constraint_symbolic_max_norm_and_dtype():
    value = np.arange(1, 7, dtype=np.float64).reshape(2, 3)
    max_norm = T.scalar("max_norm", dtype="float64")
    constrained = norm_constraint(T.constant(value), max_norm)
    assert constrained.dtype == "float64"
    got = pytensor.function([max_norm], constrained)(2.0)
    np.testing.assert_allclose(got, np_norm_constraint(value, 2.0, (0,)), rtol=1e-5)


@pytest.mark.parametrize("ndim", [1, 6])
def test_norm_constraint_needs_axes_outside_2_to_5_dims(ndim):
    tensor = T.tensor(dtype=FLOATX, shape=(None,) * ndim)
    with pytest.raises(ValueError, match=f"got a {ndim}-dimensional tensor"):
        norm_constraint(tensor, 1.0)


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_total_norm_constraint_matches_numpy(max_norm):
    rng = np.random.default_rng(8)
    values = [rng.normal(size=s).astype(FLOATX) for s in [(3,), (2, 4)]]
    scaled, norm = total_norm_constraint([pytensor.shared(v) for v in values], max_norm,
                                         return_norm=True)
    got = pytensor.function([], scaled + [norm])()
    total = np.sqrt(sum(np.sum(v.astype(np.float64) ** 2) for v in values))
    np.testing.assert_allclose(got[-1], total, rtol=1e-5)
    multiplier = min(total, max_norm) / (1e-7 + total)
    for out, value in zip(got[:-1], values):
        assert out.dtype == value.dtype
        np.testing.assert_allclose(out, value * multiplier, rtol=1e-5)
    assert isinstance(total_norm_constraint([pytensor.shared(values[0])], 1.0), list)


def test_total_norm_constraint_feeds_an_optimizer():
    problem = Quadratic(seed=9)
    grads = total_norm_constraint(pytensor.grad(problem.loss, problem.params), 0.5)
    updates = sgd(grads, problem.params, learning_rate=1.0)
    pytensor.function([], [], updates=updates)()
    total_step = np.sqrt(sum(np.sum((new - old.astype(np.float64)) ** 2)
                             for new, old in zip(problem.values(), problem.initial)))
    np.testing.assert_allclose(total_step, 0.5, rtol=1e-4)


def test_docstring_examples():
    result = doctest.testmod(forge.updates, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
