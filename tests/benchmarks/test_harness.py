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


class TestServeLatency:
    def serve(self, monkeypatch, checked, requests):
        import io
        import json

        monkeypatch.setattr(worker, "_opened_and_checked", lambda *args: checked)
        answers = io.StringIO()
        worker.serve_latency("runtime-numpy", "mlp", "folder",
                             {"warmup_s": 0.0, "min_calls": 3}, io.StringIO(requests),
                             answers)
        lines = answers.getvalue().splitlines()
        assert all(line.startswith(worker.MARK) for line in lines)
        return [json.loads(line[len(worker.MARK):]) for line in lines]

    def test_answers_each_burst_after_the_check(self, monkeypatch):
        import numpy as np

        calls = []
        checked = (lambda x: calls.append(x.shape), np.zeros((2, 5), np.float32),
                   {"kernels": "numpy", "max_abs_diff": 0.0})
        answers = self.serve(monkeypatch, checked, "0.001\n0.001\nquit\n0.001\n")
        assert answers[0] == {"kernels": "numpy", "max_abs_diff": 0.0, "ready": True}
        assert len(answers) == 3  # nothing after quit
        for burst in answers[1:]:
            assert burst["n"] >= 3 and 0 < burst["min"] <= burst["median"] <= burst["p90"]
        assert set(calls) == {(1, 5)}  # single items

    def test_an_engine_it_cannot_time_gets_one_answer(self, monkeypatch):
        answers = self.serve(monkeypatch, (None, None, {"unavailable": "not installed"}),
                             "0.001\n")
        assert answers == [{"unavailable": "not installed"}]


class TestPairedSummary:
    def burst(self, median, **extra):
        return dict({"median": median, "p90": 2 * median, "n": 5, "foreign_cores": 0.0},
                    **extra)

    def test_ratios_pair_the_bursts_of_one_cycle(self):
        """A burst slowed by a neighbour meets a reference burst slowed alike: the paired
        ratio stays where the ratio of the two medians does not."""
        engine = [self.burst(m) for m in (1.1, 1.1, 3.3, 3.3, 3.3)]
        reference = [self.burst(m) for m in (1.0, 1.0, 3.0, 3.0, 1.0)]
        summary = run.paired_summary(engine, reference)
        assert summary["median"] == 3.3 and summary["n"] == 25
        assert abs(summary["median_ratio"] - 1.1) < 1e-12
        assert abs(summary["p90_ratio"] - 1.1) < 1e-12

    def test_without_a_reference_there_is_no_ratio(self):
        summary = run.paired_summary([self.burst(1.0)], None)
        assert "median_ratio" not in summary and summary["bursts"] == [1.0]

    def test_an_error_stands_for_the_whole(self):
        error = {"error": "the latency server exited with status 1"}
        assert run.paired_summary([self.burst(1.0), error], None) == error


def test_merge_keeps_the_process_latency_where_pairing_failed():
    timing = {"e": {"models": {"mlp": {"latency_ms": {"median": 2.0}}}}}
    run.merge_paired_latency(timing, {"e": {"mlp": {"error": "exited"}}})
    assert timing["e"]["models"]["mlp"]["latency_ms"] == {
        "median": 2.0, "method": "process", "paired_failed": "exited"}


def test_a_server_that_died_gives_an_error_not_a_crash():
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-c", "print('@@ {\"ready\": true}')"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert run._answer(server) == {"ready": True}
    server.wait()
    answer = run._burst(server, 0.01)
    assert "error" in answer
