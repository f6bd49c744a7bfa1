"""The benchmark harness's own logic (no engine is timed here)."""
import doctest

import pytest

from tests.benchmarks import run, worker


@pytest.mark.parametrize("module", [run, worker])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def _result(latency_ms, rates):
    return {"engine": "e", "models": {"mlp": {
        "kernels": "numpy", "latency_ms": {"median": latency_ms, "p90": 2 * latency_ms},
        "throughput": {str(batch): {"samples_per_s": rate, "batch_ms": batch / rate}
                       for batch, rate in rates.items()}}}}


class TestMedianRound:
    def test_each_figure_comes_whole_from_its_median_round(self):
        merged = run.median_round([_result(0.3, {64: 100.0, 256: 90.0}),
                                   _result(0.1, {64: 300.0, 256: 80.0}),
                                   _result(0.2, {64: 200.0, 256: 70.0})])
        model = merged["models"]["mlp"]
        assert model["latency_ms"] == {"median": 0.2, "p90": 0.4, "rounds": [0.3, 0.1, 0.2]}
        assert model["throughput"]["64"]["samples_per_s"] == 200.0
        assert model["throughput"]["64"]["batch_ms"] == 64 / 200.0
        assert model["throughput"]["256"]["samples_per_s"] == 80.0
        assert model["throughput"]["256"]["rounds"] == [90.0, 80.0, 70.0]
        assert model["kernels"] == "numpy"

    def test_an_even_count_takes_the_lower_middle(self):
        merged = run.median_round([_result(0.4, {64: 1.0}), _result(0.1, {64: 4.0}),
                                   _result(0.3, {64: 2.0}), _result(0.2, {64: 3.0})])
        assert merged["models"]["mlp"]["latency_ms"]["median"] == 0.2
        assert merged["models"]["mlp"]["throughput"]["64"]["samples_per_s"] == 2.0

    def test_a_round_that_failed_is_reported_not_hidden(self):
        failed = {"engine": "e", "models": {"mlp": {"error": "differs from the reference"}}}
        merged = run.median_round([_result(0.1, {64: 1.0}), failed, _result(0.2, {64: 2.0})])
        assert merged["models"]["mlp"] == {"error": "differs from the reference"}

    def test_the_inputs_are_left_alone(self):
        results = [_result(0.1, {64: 1.0}), _result(0.2, {64: 2.0})]
        run.median_round(results)
        assert "rounds" not in results[0]["models"]["mlp"]["latency_ms"]
