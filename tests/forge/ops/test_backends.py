"""The ops under PyTensor's other linkers: Numba (the default mode), C/VM, and how
they are registered with the Numba and JAX backends."""
import subprocess
import sys
import warnings

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge.ops import _kernels, conv, pool

from .helpers import assert_close, compile_fn


def conv_pool_graph():
    """A small conv -> pool -> loss graph with both parameter gradients."""
    x, w = T.tensor4("x"), T.tensor4("w")
    h = conv(x, w, (2, 1), ((1, 0), (1, 1)), (1, 1))
    y = pool(T.maximum(h, 0), (3, 2), stride=(2, 2), ignore_border=False,
             mode="average_exc_pad") + pool(h, (2, 2), pad=(1, 1)).sum()
    loss = (y ** 2).sum()
    return [x, w], [loss, *pytensor.grad(loss, [x, w])]


def conv_pool_data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((2, 3, 7, 6)).astype("float32"),
            rng.standard_normal((4, 3, 3, 3)).astype("float32"))


@pytest.mark.slow  # compiles with Numba: a few seconds on a cold cache
def test_numba_default_mode_runs_conv_pool_gradients(monkeypatch):
    """Under Numba the ops multiply through scipy's BLAS, as the compiled graph does
    (``_kernels.scipy_blas_products``); elsewhere through numpy's."""
    calls = []

    def counted(a, b, real=_kernels._scipy_matmul):
        calls.append(a.shape)
        return real(a, b)

    monkeypatch.setattr(_kernels, "_scipy_matmul", counted)
    inputs, outputs = conv_pool_graph()
    data = conv_pool_data()
    expected = compile_fn(inputs, outputs, "FAST_COMPILE")(*data)
    assert not calls
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compile_fn(inputs, outputs, "NUMBA")(*data)
    assert not [w for w in caught if "object mode" in str(w.message)]
    assert len(calls) >= 3  # the convolution and its two gradients
    for g, e in zip(got, expected):
        assert_close(g, e, "float32")


def test_numba_cache_key_follows_the_wrapper_source(monkeypatch):
    """Numba's cache keeps the object-mode body as compiled: an edited wrapper must get
    a new key, and without sources the plain version is used."""
    import inspect

    from forge.ops import _numba

    key = _numba._cache_version()
    assert key >> 32 == _numba._CACHE_VERSION
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda f: real(f) + "# edited\n")
    assert _numba._cache_version() not in (key, _numba._CACHE_VERSION)

    def no_source(f):
        raise OSError("no source")

    monkeypatch.setattr(inspect, "getsource", no_source)
    assert _numba._cache_version() == _numba._CACHE_VERSION


def test_every_op_has_a_numba_cache_key():
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    inputs, outputs = conv_pool_graph()
    fgraph = pytensor.graph.FunctionGraph(inputs, outputs, clone=True)
    ours = [node for node in fgraph.toposort()
            if type(node.op).__module__.startswith("forge.ops")]
    assert {type(node.op).__name__ for node in ours} >= {
        "Corr", "CorrGradInputs", "CorrGradWeights", "Pool", "MaxPoolGrad",
        "AveragePoolGrad"}
    for node in ours:
        func, key = numba_funcify_and_cache_key(node.op, node=node)
        assert key is not None, node.op
        # named after the op, as compile_times.py --breakdown reports it
        assert func.py_func.__name__ == f"forge_{type(node.op).__name__.lower()}"


def test_cvm_linker_runs_perform():
    inputs, outputs = conv_pool_graph()
    data = conv_pool_data()
    expected = compile_fn(inputs, outputs, "FAST_COMPILE")(*data)
    for g, e in zip(compile_fn(inputs, outputs, "CVM")(*data), expected):
        assert_close(g, e, "float32")


def test_backends_are_registered_only_when_pytensor_loads_them():
    code = (
        "import sys\n"
        "import forge\n"
        "assert 'jax' not in sys.modules and 'numba' not in sys.modules, 'eager import'\n"
        "from pytensor.link.numba.dispatch.basic import numba_funcify_default_op_cache_key\n"
        "from forge.ops import Corr, Pool\n"
        "assert Corr in numba_funcify_default_op_cache_key.registry\n"
        "try:\n"
        "    from pytensor.link.jax.dispatch import jax_funcify\n"
        "except ImportError:\n"
        "    sys.exit(0)\n"
        "assert Pool in jax_funcify.registry\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


# PyTensor's JAX sums ask for a float64 accumulator, which JAX without x64 refuses.
@pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64")
def test_jax_flatten_after_the_ops_has_concrete_shapes():
    """Reshapes and allocations of the ops' output shapes compile under jax.jit."""
    pytest.importorskip("jax", reason="JAX backend not installed (optional)")
    inputs, _ = conv_pool_graph()
    x, w = inputs
    h = pool(conv(x, w, (1, 1), 0, (1, 1)), (2, 2), ignore_border=False).flatten(2)
    v = T.matrix("v")
    loss = T.dot(h, v).sum() + h.sum()  # a Reshape and an Alloc of the ops' shapes
    outputs = [loss, *pytensor.grad(loss, [x, w, v])]
    data = conv_pool_data() + (np.ones((4 * 3 * 2, 5), "float32"),)
    expected = compile_fn([x, w, v], outputs, "FAST_COMPILE")(*data)
    for g, e in zip(compile_fn([x, w, v], outputs, "JAX")(*data), expected):
        assert_close(np.asarray(g), e, "float32")


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype")
@pytest.mark.filterwarnings("ignore:Skipping Assert")
def test_jax_user_shape_arithmetic_stays_concrete():
    """Slice bounds, reshapes and allocations computed from ``x.shape`` in a user's
    graph, with every size left open: forge's JAX dispatch computes the arithmetic with
    numpy while tracing. Integers computed from data stay on JAX's path."""
    pytest.importorskip("jax", reason="JAX backend not installed (optional)")
    x = T.matrix("x")
    rows, cols = x.shape
    y = (x[:, : cols - 1] * 2).reshape((rows * (cols - 1),))
    z = T.zeros((rows // 2 + 1, cols)) + x[: rows // 2 + 1]
    picked = T.argmax(x, axis=1) * 2 + 1  # a vector of ints computed from the data
    outputs = [y, z, picked, pytensor.grad((y ** 2).sum() + z.sum(), x)]
    data = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    expected = compile_fn([x], outputs, "FAST_COMPILE")(data)
    got = compile_fn([x], outputs, "JAX")(data)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype")
@pytest.mark.filterwarnings("ignore:Split node does not have constant")
def test_jax_concatenate_gradient_splits_by_open_sizes():
    """The gradient of a concatenation splits it by its inputs' sizes, which come from
    their shapes: forge's JAX dispatch takes the split positions at trace time."""
    pytest.importorskip("jax", reason="JAX backend not installed (optional)")
    a, b = T.matrix("a"), T.matrix("b")
    joined = T.concatenate([a, T.tanh(b), a * b[:, 1:3]], axis=1)
    cost = (joined ** 2 * T.arange(joined.shape[1])).sum()
    outputs = [joined] + pytensor.grad(cost, [a, b])
    rng = np.random.default_rng(1)
    data = [rng.standard_normal(shape).astype("float32") for shape in ((3, 2), (3, 5))]
    expected = compile_fn([a, b], outputs, "FAST_COMPILE")(*data)
    got = compile_fn([a, b], outputs, "JAX")(*data)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-6)


def test_jax_arange_from_data_says_what_it_needs():
    """Bounds computed from the data cannot be known when tracing: a clear error."""
    pytest.importorskip("jax", reason="JAX backend not installed (optional)")
    x = T.vector("x")
    f = compile_fn([x], T.arange(T.argmax(x)), "JAX")
    with pytest.raises(NotImplementedError, match="known when tracing"):
        f(np.arange(4, dtype="float32"))


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype")
@pytest.mark.filterwarnings("ignore:Skipping Assert")
def test_jax_scan_body_slices_by_an_outer_size():
    """A scan's body slicing by a size computed outside the loop (a non-sequence, and
    what PyTensor makes of sizes it moves out of a body): forge's JAX dispatch gives the
    body its value as a constant, where ``lax.scan`` would carry it traced."""
    pytest.importorskip("jax", reason="JAX backend not installed (optional)")
    x = T.matrix("x")
    width = x.shape[1] - 1

    def step(row, total, width):
        return total + (row[1:width + 1] - row[:width]) ** 2

    totals = pytensor.scan(step, sequences=x, outputs_info=T.zeros_like(x[0, 1:]),
                           non_sequences=width, return_updates=False)
    outputs = [totals[-1], pytensor.grad(totals[-1].sum(), x)]
    data = np.random.default_rng(2).standard_normal((4, 6)).astype("float32")
    expected = compile_fn([x], outputs, "FAST_COMPILE")(data)
    got = compile_fn([x], outputs, "JAX")(data)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-5)


def readme_cnn_training(mode, batch=16, steps=2):
    """The README network without dropout (so every backend computes the same thing),
    with its L2 penalty and Nesterov momentum, on a fixed batch size as JAX wants it:
    the losses of a few steps and the parameters after them."""
    import forge
    from forge import init, layers as L
    from forge import nonlinearities, objectives, regularization, updates

    forge.random.set_rng(np.random.RandomState(0))
    leaky = nonlinearities.leaky_rectify
    x, y = T.tensor4("x"), T.ivector("y")
    net = L.InputLayer((batch, 1, 8, 8), x)
    net = L.Conv2DLayer(net, 8, (3, 3), nonlinearity=leaky)
    net = L.Conv2DLayer(net, 4, (3, 3), nonlinearity=leaky)
    net = L.Pool2DLayer(net, (3, 3), stride=2, mode="max")
    net = L.DenseLayer(net, 16, nonlinearity=leaky, W=init.Orthogonal())
    net = L.DenseLayer(net, 10, nonlinearity=nonlinearities.softmax)
    loss = objectives.categorical_crossentropy(L.get_output(net), y).mean()
    loss = loss + 1e-4 * regularization.regularize_network_params(net, regularization.l2)
    params = L.get_all_params(net, trainable=True)
    step = pytensor.function([x, y], loss, mode=mode,
                             updates=updates.nesterov_momentum(loss, params, 0.1, 0.9))
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((batch, 1, 8, 8)).astype("float32"),
            rng.integers(0, 10, batch).astype("int32"))
    losses = np.array([float(step(*data)) for _ in range(steps)])
    return losses, [np.asarray(p.get_value()) for p in params]


# PyTensor's JAX graph asks for float64 accumulators and int64 aranges, which JAX
# without x64 truncates to 32 bits.
@pytest.mark.filterwarnings("ignore:Explicitly requested dtype")
@pytest.mark.filterwarnings("ignore:Skipping Assert")  # JAX tracing drops shape asserts
def test_jax_trains_the_readme_cnn_as_the_python_vm_does():
    """JAX is the training mode docs/development.md recommends for convolutional
    networks: its steps must match the reference (numpy ``perform``) ones."""
    pytest.importorskip("jax", reason="JAX backend not installed (optional)")
    expected_losses, expected_params = readme_cnn_training("FAST_COMPILE")
    losses, params = readme_cnn_training("JAX")
    assert expected_losses[1] < expected_losses[0]  # the steps do train
    assert_close(losses, expected_losses, "float32")
    for got, expected in zip(params, expected_params):
        assert_close(got, expected, "float32")
