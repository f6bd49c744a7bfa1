"""Fuzz every operation of the OpenAPI schema with schemathesis: no answer may be a 5xx.

Cases are generated from /openapi.json (valid and invalid bodies, paths, queries) and
sent to a live server; the run is bounded (about 30 s: a fixed number of cases per
operation, and a deadline over all of them).
"""
import time

import pytest

from service.config import Settings

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (pip install schemathesis)"
)
from hypothesis import HealthCheck, given, settings  # noqa: E402

CASES_PER_OPERATION = 60
BUDGET_S = 30.0


def test_no_server_errors(live_server, bundle_dir):
    server = live_server(Settings(model_repository=bundle_dir, batching=True))
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    started = time.monotonic()
    sent: list[str] = []
    server_errors: list[str] = []

    for operation in operations:
        if time.monotonic() - started > BUDGET_S:
            break

        @settings(max_examples=CASES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            if time.monotonic() - started > BUDGET_S:
                return
            response = case.call(base_url=server.url, timeout=10)
            sent.append(operation.label)
            if response.status_code >= 500:
                server_errors.append(f"{response.status_code} {case.as_curl_command()}\n"
                                     f"{response.text[:300]}")

        check()

    print(f"schemathesis: {len(sent)} cases over {len(set(sent))} operations "
          f"in {time.monotonic() - started:.1f} s")
    assert server_errors == []
    assert len(set(sent)) >= 15 and len(sent) >= 300
