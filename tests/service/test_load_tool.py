"""The HTTP load tool (tests/benchmarks/load.py) at tiny scale: it serves, loads, checks.

A few seconds: two short-lived servers (batching off and on) on loopback, two
concurrencies, a fraction of a second each. The full run is
``python -m tests.benchmarks.load --output docs/benchmarks.md``.
"""
from pathlib import Path

import pytest

from tests.benchmarks import load

DIGITS = Path(__file__).resolve().parents[2] / "service" / "models" / "digits.npz"


@pytest.fixture(scope="module")
def cells():
    return load.measure_service({"digits": DIGITS}, concurrencies=(1, 4), duration_s=0.4,
                                warmup_s=0.1)


def test_every_cell_completes_requests_with_checked_answers_and_no_failures(cells):
    assert [(c.batching, c.concurrency) for c in cells] == [
        ("off", 1), ("off", 4), ("on", 1), ("on", 4)]
    for cell in cells:
        assert cell.failures == {}, cell
        assert cell.requests > 0 and len(cell.latencies_s) == cell.requests
        assert 0 < cell.percentile_ms(50) <= cell.percentile_ms(99)
        assert cell.rps == pytest.approx(cell.requests / cell.elapsed_s)
        assert cell.mean_batch is not None and cell.mean_batch >= 1


def test_a_wrong_answer_is_a_failure():
    workload = load.Workload.for_bundle("digits", DIGITS, rows=2)
    good = ('{"outputs": [{"name": "probs", "data": %s}]}'
            % workload.expected[0].tolist()).encode()
    assert workload.check(0, good) is None
    assert workload.check(1, good) == "wrong answer"
    assert workload.check(0, b'{"error": "x"}').startswith("unreadable")


def test_the_report_block_replaces_its_old_self_and_leaves_the_rest(cells, tmp_path):
    block = load.render(cells, {"digits": {1: 10.0, 64: 300.0}}, "python -m x", {}, 0.4, 0.1)
    assert block.startswith(load.BEGIN) and block.rstrip().endswith(load.END)
    assert "| digits | on | 4 |" in block and "Batching gain at concurrency 4" in block
    target = tmp_path / "benchmarks.md"
    target.write_text("# Benchmarks\n\nother text\n")
    load.write_block(target, block)
    load.write_block(target, block.replace("python -m x", "python -m y"))
    text = target.read_text()
    assert text.startswith("# Benchmarks\n\nother text\n\n" + load.BEGIN)
    assert text.count(load.BEGIN) == 1 and "python -m y" in text and "python -m x" not in text
