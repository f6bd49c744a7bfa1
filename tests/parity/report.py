"""Summarise a parity run: the largest relative error measured per layer type.

    FORGE_PARITY_REPORT=out/parity.jsonl .venv/bin/pytest tests/parity -q -n 2
    .venv/bin/python -m tests.parity.report out/parity.jsonl
"""
import json
import sys
from collections import defaultdict


def summarise(path):
    worst, cases = defaultdict(float), defaultdict(int)
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            worst[row["type"]] = max(worst[row["type"]], row["max_rel_error"])
            cases[row["type"]] += 1
    return {t: (worst[t], cases[t]) for t in sorted(worst)}


if __name__ == "__main__":
    print("| layer type | networks checked | max relative error |")
    print("|---|---|---|")
    for name, (err, n) in summarise(sys.argv[1]).items():
        print(f"| `{name}` | {n} | {err:.2g} |")
