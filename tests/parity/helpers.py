"""One comparison helper for every forge <-> runtime round trip.

``assert_parity`` exports a network without the built-in check, loads it with the
runtime, runs both sides on the same input and asserts the contract
``|runtime - forge| <= 1e-5 * max(1, |forge|)`` elementwise, after checking shapes and
dtypes. It returns the largest relative error so tests can report it.
"""
import json
import os

import numpy as np
import pytensor

import forge
import runtime
from forge import layers as L

RTOL = 1e-5


def random_feeds(input_layers, rng, batch=3, scale=1.0):
    feeds = []
    for layer in input_layers:
        shape = tuple(batch if s is None else s for s in layer.shape)
        feeds.append((scale * rng.standard_normal(shape)).astype(np.float32))
    return feeds


def assert_parity(outputs, path, feeds=None, seed=0, batch=3, scale=1.0):
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    manifest = forge.export(outputs, path, check=False)
    model = runtime.load(path)
    input_layers = [lay for lay in L.get_all_layers(outputs) if isinstance(lay, L.InputLayer)]
    if feeds is None:
        feeds = random_feeds(input_layers, np.random.default_rng(seed), batch, scale)
    fn = pytensor.function([lay.input_var for lay in input_layers],
                           L.get_output(outputs, deterministic=True),
                           on_unused_input="ignore")
    expected = fn(*feeds)
    names = [spec["name"] for spec in manifest["outputs"]]
    got = model.run({spec["name"]: x for spec, x in zip(manifest["inputs"], feeds)},
                    outputs=names)
    worst = 0.0
    for name, want in zip(names, expected):
        have = got[name]
        assert have.shape == want.shape, f"{name}: runtime {have.shape} vs forge {want.shape}"
        assert have.dtype == np.float32, f"{name}: runtime dtype {have.dtype}"
        want64, have64 = want.astype(np.float64), have.astype(np.float64)
        assert np.array_equal(np.isfinite(want64), np.isfinite(have64)), name
        finite = np.isfinite(want64)
        rel = np.abs(have64 - want64)[finite] / np.maximum(1.0, np.abs(want64[finite]))
        if rel.size:
            worst = max(worst, float(rel.max()))
            assert rel.max() <= RTOL, f"{name}: relative error {rel.max():.3g} > {RTOL}"
    _report(manifest, worst)
    return worst


def _report(manifest, worst):
    """Append the error to $FORGE_PARITY_REPORT (JSON lines), keyed by the output layer type.

    ``python -m tests.parity.report`` turns the file into the table in docs/layers.md.
    """
    target = os.environ.get("FORGE_PARITY_REPORT")
    if target:
        by_name = {layer["name"]: layer["type"] for layer in manifest["layers"]}
        with open(target, "a") as f:
            for out in manifest["outputs"]:
                f.write(json.dumps({"type": by_name[out["name"]], "max_rel_error": worst}) + "\n")
