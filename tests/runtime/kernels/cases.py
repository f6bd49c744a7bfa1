"""Hypothesis strategies for the kernel tests: odd sizes, strides beyond the filter,
padding beyond half the filter, dilation, groups, partial pooling windows, batch 1,
non-square shapes, 1 to 3 spatial axes."""
import numpy as np
from hypothesis import strategies as st

from runtime.kernels._numpy import POOL_MODES

TOLERANCE = {"float32": dict(rtol=2e-4, atol=2e-4), "float64": dict(rtol=1e-9, atol=1e-9)}


def arrays(seed, dtype, *shapes):
    rng = np.random.default_rng(seed)
    return [None if s is None else rng.standard_normal(s).astype(dtype) for s in shapes]


@st.composite
def conv_cases(draw, max_groups=3):
    """Keyword arguments for ``conv`` plus ``x``, ``W``, ``b`` and ``dtype``."""
    nd = draw(st.integers(1, 3))
    ints = lambda low, high: tuple(draw(st.integers(low, high)) for _ in range(nd))  # noqa: E731
    kernel, stride, dilation = ints(1, 3), ints(1, 4), ints(1, 2)
    pad = tuple(zip(ints(0, 3), ints(0, 3)))
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    extra = {1: 9, 2: 6, 3: 3}[nd]
    size = tuple(draw(st.integers(max(1, s - a - b), max(1, s - a - b) + extra))
                 for s, (a, b) in zip(spans, pad))
    groups = draw(st.integers(1, max_groups))
    channels, filters = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 2))
    out = tuple((s + a + b - sp) // t + 1 for s, (a, b), sp, t in zip(size, pad, spans, stride))
    bias = draw(st.sampled_from([None, (filters,), (filters,) + out]))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    x, W, b = arrays(draw(st.integers(0, 2**16)), dtype, (draw(st.integers(1, 3)), channels)
                     + size, (filters, channels // groups) + kernel, bias)
    return dict(x=x, W=W, b=b, stride=stride, pad=pad, dilation=dilation, groups=groups)


@st.composite
def direct_conv_cases(draw):
    """Unit-stride float32 convolutions with filters that fill the numba kernel's tiles
    of 8 (7, 8, 13, 16 or 24 a group), mostly over at least 48 flat positions: the cases
    ``_numba.conv`` gives its direct kernel (unless wide padding makes most positions
    junk). Odd sizes, padding, dilation, groups,
    1 to 3 spatial axes, tied, untied and no biases."""
    nd = draw(st.integers(1, 3))
    ints = lambda low, high: tuple(draw(st.integers(low, high)) for _ in range(nd))  # noqa: E731
    kernel, dilation, pad = ints(1, 3), ints(1, 2), tuple(zip(ints(0, 2), ints(0, 2)))
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    low, high = {1: (36, 70), 2: (9, 14), 3: (6, 8)}[nd]
    size = tuple(max(s, draw(st.integers(low, high))) for s in spans)
    groups = draw(st.integers(1, 2))
    channels = groups * draw(st.integers(1, 5))
    filters = groups * draw(st.sampled_from([7, 8, 13, 16, 24]))
    out = tuple(s + a + b - sp + 1 for s, (a, b), sp in zip(size, pad, spans))
    bias = draw(st.sampled_from([None, (filters,), (filters,) + out]))
    x, W, b = arrays(draw(st.integers(0, 2**16)), "float32",
                     (draw(st.integers(1, 4)), channels) + size,
                     (filters, channels // groups) + kernel, bias)
    return dict(x=x, W=W, b=b, pad=pad, dilation=dilation, groups=groups)


@st.composite
def pool_cases(draw):
    """Positional arguments for ``pool``: x, pool_size, stride, pad, ignore_border, mode."""
    nd = draw(st.integers(1, 3))
    pool_size = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    ignore_border = draw(st.booleans())
    pad = tuple(draw(st.integers(0, w - 1)) if ignore_border else 0 for w in pool_size)
    size = tuple(draw(st.integers(1, {1: 9, 2: 7, 3: 5}[nd])) for _ in range(nd))
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    x, = arrays(draw(st.integers(0, 2**16)), dtype, lead + size)
    return x, pool_size, stride, pad, ignore_border, draw(st.sampled_from(POOL_MODES))
