"""Dynamic batching: concurrent requests merged into one model call, same answers, bounded queue."""
import asyncio
import re
import threading

import httpx2 as httpx
import numpy as np
import pytest

from service.batching import BatchingConfig, Scheduler
from service.errors import InferenceTimeoutError, OverloadedError
from service.metrics import Metrics
from service.repository import ModelRepository

from .conftest import reference_clf

ROWS = np.random.default_rng(11).normal(size=(32, 4)).astype(np.float32)


def batch_count(metrics_text: str) -> tuple[float, float]:
    """(model calls, requests) recorded by forge_batch_size for clf."""
    calls = float(re.search(r'forge_batch_size_count\{model="clf",version="1"\} (\S+)',
                            metrics_text).group(1))
    requests = float(re.search(r'forge_batch_size_sum\{model="clf",version="1"\} (\S+)',
                               metrics_text).group(1))
    return calls, requests


def test_concurrent_requests_are_merged_with_identical_results(live_server, settings):
    server = live_server(settings.model_copy(update={
        "batching": True, "batch_max_delay_ms": 50.0, "batch_max_size": 64,
        "inference_threads": 1}))
    answers: dict[int, list] = {}

    def send(i):
        with httpx.Client(base_url=server.url, timeout=20) as http:
            rows = ROWS[i : i + 1 + i % 2].tolist()  # 1 or 2 rows
            r = http.post("/v2/models/clf/infer", json={"inputs": [
                {"name": "input", "shape": [len(rows), 4], "datatype": "FP32", "data": rows}]})
            answers[i] = (r.status_code, r.json())

    threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, (status, body) in answers.items():
        assert status == 200, body
        rows = ROWS[i : i + 1 + i % 2]
        got = np.reshape(body["outputs"][0]["data"], (len(rows), 3))
        np.testing.assert_allclose(got, reference_clf(rows), atol=1e-6)  # as unbatched
    calls, requests = batch_count(httpx.get(f"{server.url}/metrics").text)
    assert requests == 16 and calls < 16  # some requests shared a model call
    assert "forge_batch_rows_count" in httpx.get(f"{server.url}/metrics").text


def test_batching_off_runs_each_request_alone(live_server, settings):
    server = live_server(settings)
    threads = [threading.Thread(target=httpx.post, args=(f"{server.url}/models/clf/predict",),
                                kwargs={"json": {"instances": ROWS[:2].tolist()}})
               for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls, requests = batch_count(httpx.get(f"{server.url}/metrics").text)
    assert calls == requests == 6


class TestScheduler:
    """The scheduler on its own, in an event loop of the test's making."""

    @pytest.fixture
    def entry(self, bundle_dir):
        return ModelRepository.from_path(bundle_dir).get("clf")

    def run(self, coroutine):
        return asyncio.run(coroutine)

    def test_merged_call_matches_single_calls(self, entry):
        async def go():
            scheduler = Scheduler(BatchingConfig(threads=1, batching=True, max_delay_s=0.05),
                                  Metrics())
            feeds = [{"input": ROWS[i : i + 3]} for i in range(0, 30, 3)]
            results = await asyncio.gather(*(scheduler.infer(entry, f, ["hidden", "output"])
                                             for f in feeds))
            await scheduler.close()
            return feeds, results, scheduler

        feeds, results, scheduler = self.run(go())
        for feed, result in zip(feeds, results):
            assert result["output"].shape == (3, 3)
            np.testing.assert_array_equal(result["output"], entry.model.run(feed)["output"])
        text = scheduler.metrics.render()[0].decode()
        calls, requests = batch_count(text)
        assert requests == 10 and calls < 10

    def test_a_lone_request_on_an_idle_model_does_not_wait_for_the_delay(self, entry):
        async def go():
            scheduler = Scheduler(BatchingConfig(threads=1, batching=True, max_delay_s=5.0))
            started = asyncio.get_running_loop().time()
            result = await scheduler.infer(entry, {"input": ROWS[:1]}, None)
            elapsed = asyncio.get_running_loop().time() - started
            await scheduler.close()
            return result, elapsed

        result, elapsed = self.run(go())
        assert result["output"].shape == (1, 3)
        assert elapsed < 2.5, f"waited {elapsed:.2f} s: the 5 s batching delay was applied"

    def test_rows_limit_splits_batches(self, entry):
        async def go():
            scheduler = Scheduler(BatchingConfig(threads=1, batching=True, max_batch_rows=4,
                                                 max_delay_s=0.05), Metrics())
            await asyncio.gather(*(scheduler.infer(entry, {"input": ROWS[:2]}, None)
                                   for _ in range(6)))
            await scheduler.close()
            return scheduler.metrics.render()[0].decode()

        text = self.run(go())
        assert 'forge_batch_rows_bucket{le="4.0",model="clf",version="1"} 3.0' in text

    def test_a_bad_request_does_not_spoil_the_batch(self, entry):
        async def go():
            scheduler = Scheduler(BatchingConfig(threads=1, batching=True, max_delay_s=0.05))
            good = scheduler.infer(entry, {"input": ROWS[:1]}, None)
            # Same trailing shape as the good one, but with an input name the model lacks.
            bad = scheduler.infer(entry, {"input": ROWS[:1], "extra": ROWS[:1]}, None)
            results = await asyncio.gather(good, bad, return_exceptions=True)
            await scheduler.close()
            return results

        good, bad = self.run(go())
        assert good["output"].shape == (1, 3) and isinstance(bad, Exception)

    def test_full_queue_is_503_with_retry_after(self, entry):
        async def go():
            scheduler = Scheduler(BatchingConfig(threads=1, batching=True, max_queue=2,
                                                 max_delay_s=0.05))
            results = await asyncio.gather(*(scheduler.infer(entry, {"input": ROWS[:1]}, None)
                                             for _ in range(3)), return_exceptions=True)
            await scheduler.close()
            return results

        results = self.run(go())
        errors = [r for r in results if isinstance(r, OverloadedError)]
        assert len(errors) == 1 and errors[0].headers == {"Retry-After": "1"}
        assert errors[0].status_code == 503 and "max_queue_size" in errors[0].message

    def test_timeout_is_504(self, entry, monkeypatch):
        import time

        slow = entry.model.run
        monkeypatch.setattr(type(entry.model), "run",
                            lambda self, *a, **k: (time.sleep(0.3), slow(*a, **k))[1])

        async def go():
            scheduler = Scheduler(BatchingConfig(threads=1, timeout_s=0.05))
            try:
                await scheduler.infer(entry, {"input": ROWS[:1]}, None)
            finally:
                await scheduler.close()

        with pytest.raises(InferenceTimeoutError, match="request_timeout"):
            self.run(go())

    def test_close_finishes_queued_requests(self, entry):
        async def go():
            scheduler = Scheduler(BatchingConfig(threads=1, batching=True, max_delay_s=0.2))
            tasks = [asyncio.create_task(scheduler.infer(entry, {"input": ROWS[:1]}, None))
                     for _ in range(5)]
            await asyncio.sleep(0.01)  # queued, waiting for the batch delay
            await scheduler.close()
            return await asyncio.gather(*tasks)

        assert all(r["output"].shape == (1, 3) for r in self.run(go()))

    def test_close_finishes_requests_queued_without_batching(self, entry, monkeypatch):
        import time

        slow = entry.model.run
        monkeypatch.setattr(type(entry.model), "run",
                            lambda self, *a, **k: (time.sleep(0.05), slow(*a, **k))[1])

        async def go():
            scheduler = Scheduler(BatchingConfig(threads=1, batching=False))
            tasks = [asyncio.create_task(scheduler.infer(entry, {"input": ROWS[:1]}, None))
                     for _ in range(4)]
            await asyncio.sleep(0.01)  # one running, three waiting for the only thread
            await scheduler.close()
            return await asyncio.gather(*tasks, return_exceptions=True)

        results = self.run(go())
        assert all(isinstance(r, dict) and r["output"].shape == (1, 3) for r in results), results


def test_overloaded_http_answer(make_client, settings, monkeypatch):
    client = make_client(settings.model_copy(update={"max_queue_size": 1}))

    async def busy(entry, feeds, outputs):
        raise OverloadedError("model 'clf' is busy", headers={"Retry-After": "1"})

    monkeypatch.setattr(client.app.state.scheduler, "infer", busy)
    response = client.post("/v1/models/clf:predict", json={"instances": ROWS[:1].tolist()})
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json() == {"error": "model 'clf' is busy"}
