"""Validation of the settings the ops take: one int (or pair) per spatial axis."""
import numbers

import numpy as np

INT_TYPES = (numbers.Integral, np.integer)


def is_int(value):
    return isinstance(value, INT_TYPES) and not isinstance(value, bool)


def int_tuple(value, nd, name, minimum):
    """Return ``value`` as a tuple of ``nd`` ints that are at least ``minimum``.

    A single int stands for the same value on every axis.
    """
    if is_int(value):
        value = (value,) * nd
    try:
        items = tuple(value)
    except TypeError:
        items = None
    if items is None or len(items) != nd or not all(is_int(v) for v in items):
        raise ValueError(
            f"{name} must be an int or a tuple of {nd} ints (one per spatial axis), "
            f"got {name}={value!r}"
        )
    if any(v < minimum for v in items):
        rule = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"every entry of {name} must be {rule}, got {name}={value!r}")
    return tuple(int(v) for v in items)


def pad_pairs(value, nd, name="pad"):
    """Return ``value`` as a tuple of ``nd`` ``(before, after)`` pairs of ints >= 0.

    A single int pads every side of every axis by that much; an int in place of a
    pair pads both sides of that axis by it.
    """
    if is_int(value):
        value = (value,) * nd
    try:
        items = tuple(value)
    except TypeError:
        items = None
    rule = (f"{name} must be an int or a tuple of {nd} (before, after) pairs of "
            f"non-negative ints, one per spatial axis")
    if items is None or len(items) != nd:
        raise ValueError(f"{rule}, got {name}={value!r}")
    pairs = []
    for item in items:
        if is_int(item):
            item = (item, item)
        try:
            pair = tuple(item)
        except TypeError:
            pair = None
        if pair is None or len(pair) != 2 or not all(is_int(v) and v >= 0 for v in pair):
            raise ValueError(f"{rule}, got {name}={value!r}")
        pairs.append((int(pair[0]), int(pair[1])))
    return tuple(pairs)


def positive_int(value, name):
    if not (is_int(value) and value > 0):
        raise ValueError(f"{name} must be a positive int, got {name}={value!r}")
    return int(value)
