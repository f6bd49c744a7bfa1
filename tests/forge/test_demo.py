"""The main job: the digits MLP trains to >= 95% held-out accuracy and exports."""
import numpy as np
import pytest

import runtime
from forge import demo


@pytest.mark.slow
def test_digits_mlp_trains_exports_and_matches(tmp_path):
    X_train, y_train, X_test, y_test = demo.load_data()
    network = demo.build_network()
    # the default (Numba) linker, as `make demo` uses it
    eval_fn = demo.train(network, X_train, y_train, epochs=25, progress=False, mode="NUMBA")
    acc = demo.accuracy(eval_fn, X_test, y_test)
    assert acc >= 0.95, f"held-out accuracy {acc:.3f} < 0.95"

    import forge
    path = tmp_path / "digits.npz"
    forge.export(network, path, metadata={"labels": [str(d) for d in range(10)]})
    model = runtime.load(path)
    probs = model(X_test)
    np.testing.assert_allclose(probs, eval_fn(X_test), rtol=1e-5, atol=1e-5)
    assert float(np.mean(probs.argmax(axis=1) == y_test)) == pytest.approx(acc)


def test_demo_main_without_serving(tmp_path, capsys):
    out = tmp_path / "digits.npz"
    assert demo.main(["--output", str(out), "--epochs", "3", "--no-serve", "--mode", "NUMBA"]) == 0
    printed = capsys.readouterr().out
    assert "held-out accuracy" in printed and "parity" in printed
    assert runtime.load(out).metadata["labels"][3] == "3"
