"""Direct-loop references for the convolution, pooling and normalization kernels.

Written from the definitions (Theano's and Lasagne's), independently of the runtime: one
output position at a time, in float64. Only the channel sums are left to numpy.
"""
import math

import numpy as np


def _f64(*arrays):
    return [None if a is None else np.asarray(a, np.float64) for a in arrays]


def conv(x, W, b=None, stride=None, pad=None, dilation=None, groups=1):
    """``y[n, f, o] = sum_{c, k} x[n, g*Cg + c, o*s - pad + k*d] * W[f, c, k] + b``."""
    x, W, b = _f64(x, W, b)
    nd = W.ndim - 2
    stride, dilation = stride or (1,) * nd, dilation or (1,) * nd
    pad = pad or ((0, 0),) * nd
    size, kernel = x.shape[2:], W.shape[2:]
    out_shape = tuple((s + p0 + p1 - d * (k - 1) - 1) // t + 1
                      for s, (p0, p1), d, k, t in zip(size, pad, dilation, kernel, stride))
    filters, group_channels = W.shape[:2]
    group_filters = filters // groups
    y = np.zeros((x.shape[0], filters) + out_shape)
    for o in np.ndindex(*out_shape):
        for k in np.ndindex(*kernel):
            pos = tuple(o[i] * stride[i] - pad[i][0] + k[i] * dilation[i] for i in range(nd))
            if not all(0 <= p < s for p, s in zip(pos, size)):
                continue
            for g in range(groups):
                xs = x[(slice(None), slice(g * group_channels, (g + 1) * group_channels)) + pos]
                ws = W[(slice(g * group_filters, (g + 1) * group_filters), slice(None)) + k]
                y[(slice(None), slice(g * group_filters, (g + 1) * group_filters)) + o] += xs @ ws.T
    if b is not None:
        y += b.reshape(b.shape + (1,) * (nd + 1 - b.ndim))
    return y


def conv_transpose(x, W, out_shape, b=None, stride=None, crop=None, groups=1):
    """Scatter: every ``x[n, c, o]`` adds ``x[n, c, o] * W[c, f, k]`` at ``o*s + k - crop``."""
    x, W, b = _f64(x, W, b)
    nd = W.ndim - 2
    stride, crop = stride or (1,) * nd, crop or ((0, 0),) * nd
    channels, group_filters = W.shape[:2]
    group_channels = channels // groups
    y = np.zeros((x.shape[0], group_filters * groups) + tuple(out_shape))
    for o in np.ndindex(*x.shape[2:]):
        for k in np.ndindex(*W.shape[2:]):
            pos = tuple(o[i] * stride[i] + k[i] - crop[i][0] for i in range(nd))
            if not all(0 <= p < s for p, s in zip(pos, out_shape)):
                continue
            for g in range(groups):
                xs = x[(slice(None), slice(g * group_channels, (g + 1) * group_channels)) + o]
                ws = W[(slice(g * group_channels, (g + 1) * group_channels), slice(None)) + k]
                y[(slice(None), slice(g * group_filters, (g + 1) * group_filters)) + pos] += xs @ ws
    if b is not None:
        y += b.reshape(b.shape + (1,) * (nd + 1 - b.ndim))
    return y


def locally_connected(x, W, b=None, stride=(1, 1), pad=((0, 0), (0, 0)), channelwise=False):
    """Each output position ``o`` has its own filters ``W[..., k, o]``."""
    x, W, b = _f64(x, W, b)
    lead = 1 if channelwise else 2
    kernel, out_shape = W.shape[lead:lead + 2], W.shape[lead + 2:]
    y = np.zeros((x.shape[0], W.shape[0]) + out_shape)
    for o in np.ndindex(*out_shape):
        for k in np.ndindex(*kernel):
            pos = tuple(o[i] * stride[i] - pad[i][0] + k[i] for i in range(2))
            if not all(0 <= p < s for p, s in zip(pos, x.shape[2:])):
                continue
            if channelwise:
                y[(slice(None), slice(None)) + o] += x[(slice(None), slice(None)) + pos] * W[
                    (slice(None),) + k + o]
            else:
                y[(slice(None), slice(None)) + o] += x[(slice(None), slice(None)) + pos] @ W[
                    (slice(None), slice(None)) + k + o].T
    if b is not None:
        y += b.reshape(b.shape + (1,) * (3 - b.ndim))
    return y


def pool_out_length(size, ws, stride, pad, ignore_border):
    """Theano's ``Pool.out_shape`` for one axis, branch for branch."""
    v = size + 2 * pad
    if ignore_border:
        if ws == stride:
            return v // stride
        return max((v - ws) // stride + 1, 0)
    if stride >= ws:
        return (v - 1) // stride + 1
    return max(0, (v - 1 - ws + stride) // stride) + 1


def pool(x, ws, stride=None, pad=None, ignore_border=True, mode="max"):
    """Theano's ``Pool.perform``: pad with zeros, then per output position take the
    region (clipped to the padded image; without ``average_inc_pad``, to the real
    input) and apply max or mean."""
    x = np.asarray(x, np.float64)
    nd = len(ws)
    stride = stride or tuple(ws)
    pad = pad or (0,) * nd
    lead = x.ndim - nd
    img = tuple(x.shape[lead + i] + 2 * pad[i] for i in range(nd))
    y = np.zeros(x.shape[:lead] + img)
    y[(Ellipsis,) + tuple(slice(pad[i], img[i] - pad[i]) for i in range(nd))] = x
    out_shape = tuple(pool_out_length(x.shape[lead + i], ws[i], stride[i], pad[i], ignore_border)
                      for i in range(nd))
    regions = []
    for i in range(nd):
        axis = []
        for j in range(out_shape[i]):
            start = j * stride[i]
            end = min(start + ws[i], img[i])
            if mode != "average_inc_pad":
                start, end = max(start, pad[i]), min(end, img[i] - pad[i])
            axis.append(slice(start, end))
        regions.append(axis)
    out = np.zeros(x.shape[:lead] + out_shape)
    for k in np.ndindex(*x.shape[:lead]):
        for r in np.ndindex(*out_shape):
            region = y[k + tuple(regions[i][r[i]] for i in range(nd))]
            out[k + r] = region.max() if mode == "max" else region.mean()
    return out


def spatial_pyramid_pool(x, pool_dims, mode="max"):
    """Lasagne's 'fast' implementation, from its definition."""
    h, w = x.shape[2:]
    levels = []
    for p in pool_dims:
        ws, stride = (math.ceil(h / p), math.ceil(w / p)), (h // p, w // p)
        level = pool(x, ws, stride, (0, 0), True, mode)
        levels.append(level.reshape(level.shape[:2] + (-1,)))
    return np.concatenate(levels, axis=2)


def spatial_pyramid_bins(x, pool_dims, mode="max"):
    """Lasagne's 'kaiming' implementation, from He et al.'s bin edges (float maths)."""
    out = []
    for d in pool_dims:
        for i in range(d):
            for j in range(d):
                r0, r1 = math.floor(i * x.shape[2] / d), math.ceil((i + 1) * x.shape[2] / d)
                c0, c1 = math.floor(j * x.shape[3] / d), math.ceil((j + 1) * x.shape[3] / d)
                region = np.asarray(x[:, :, r0:r1, c0:c1], np.float64)
                out.append(region.max(axis=(2, 3)) if mode == "max"
                           else region.mean(axis=(2, 3)))
    return np.stack(out, axis=2)


def upscale(x, scale, mode):
    x = np.asarray(x, np.float64)
    lead = x.ndim - len(scale)
    out_shape = x.shape[:lead] + tuple(s * f for s, f in zip(x.shape[lead:], scale))
    y = np.zeros(out_shape)
    for i in np.ndindex(*out_shape):
        source = i[:lead] + tuple(p // f for p, f in zip(i[lead:], scale))
        if mode == "repeat" or all(p % f == 0 for p, f in zip(i[lead:], scale)):
            y[i] = x[source]
    return y


REDUCE = {"max": max, "min": min, "sum": sum, "mean": lambda v: sum(v) / len(v)}


def feature_pool(x, pool_size, axis, function):
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    y = np.zeros(x.shape[:-1] + (x.shape[-1] // pool_size,))
    for i in np.ndindex(*y.shape):
        y[i] = REDUCE[function](list(x[i[:-1]][i[-1] * pool_size:(i[-1] + 1) * pool_size]))
    return np.moveaxis(y, -1, axis)


def feature_wta(x, pool_size, axis):
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    y = np.zeros(x.shape)
    for i in np.ndindex(*x.shape[:-1]):
        for start in range(0, x.shape[-1], pool_size):
            group = list(x[i][start:start + pool_size])
            winner = start + group.index(max(group))
            y[i + (winner,)] = x[i + (winner,)]
    return np.moveaxis(y, -1, axis)


def global_pool(x, function):
    x = np.asarray(x, np.float64)
    return {"max": np.max, "min": np.min, "sum": np.sum, "mean": np.mean}[function](
        x.reshape(x.shape[:2] + (-1,)), axis=2)


def local_response_norm(x, alpha, k, beta, n):
    x = np.asarray(x, np.float64)
    y = np.zeros_like(x)
    channels, half = x.shape[1], n // 2
    for c in range(channels):
        total = sum(x[:, j] ** 2 for j in range(max(0, c - half), min(channels, c + half + 1)))
        y[:, c] = x[:, c] / (k + alpha * total) ** beta
    return y


def standardize(x, axes, epsilon):
    x = np.asarray(x, np.float64)
    count = math.prod(x.shape[a] for a in axes)
    mean = x.sum(axis=tuple(axes), keepdims=True) / count
    var = ((x - mean) ** 2).sum(axis=tuple(axes), keepdims=True) / count
    return (x - mean) / np.sqrt(var + epsilon)

