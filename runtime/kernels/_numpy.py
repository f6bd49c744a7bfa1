"""Reference kernels in plain numpy. They never write into their arguments."""
import numpy as np

__all__ = ["dense", "autocrop"]


def dense(x, W, b=None):
    """``x @ W + b`` for a 2-D ``x`` of shape (n, k), ``W`` (k, m) and ``b`` (m,).

    >>> dense(np.ones((2, 3), np.float32), np.ones((3, 1), np.float32), np.ones(1, np.float32))
    array([[4.],
           [4.]], dtype=float32)
    """
    y = np.matmul(x, W)
    if b is not None:
        y += b  # y is a fresh array
    return y


def autocrop(arrays, cropping):
    """Crop arrays to a common shape along the axes ``cropping`` names (Lasagne's rule).

    ``cropping`` is None (no cropping) or one entry per leading axis: None (leave the
    axis), ``"lower"`` (keep the first ``m`` items, ``m`` being the smallest size),
    ``"upper"`` (keep the last ``m``) or ``"center"`` (drop ``(size - m) // 2`` first).
    Returns views.

    >>> a, b = autocrop([np.arange(5), np.arange(3)], ["center"])
    >>> a
    array([1, 2, 3])
    """
    if cropping is None:
        return list(arrays)
    ndims = [a.ndim for a in arrays]
    if len(set(ndims)) != 1:
        raise ValueError(f"cropping needs inputs of one dimensionality, got {ndims}")
    if len(cropping) > ndims[0]:
        raise ValueError(f"cropping has {len(cropping)} entries for "
                         f"{ndims[0]}-dimensional inputs")
    index = [[] for _ in arrays]
    for axis, mode in enumerate(cropping):
        size = min(a.shape[axis] for a in arrays)
        for a, slices in zip(arrays, index):
            extra = a.shape[axis] - size
            start = {None: 0, "lower": 0, "upper": extra, "center": extra // 2}[mode]
            slices.append(slice(None) if mode is None else slice(start, start + size))
    return [a[tuple(slices)] for a, slices in zip(arrays, index)]
