"""Running models off the event loop, with optional dynamic batching per model.

:class:`Scheduler` owns a thread pool of ``inference_threads`` threads; every model
call runs there, so the event loop keeps answering health checks and new
requests while models compute.

Each model name has a bounded queue: a request arriving when ``max_queue_size``
requests of that model are already waiting or running is refused at once with
:class:`~service.errors.OverloadedError` (503 with ``Retry-After``), so load beyond
capacity never turns into an unbounded backlog.

With batching off, a request is submitted to the pool as soon as it arrives. With
batching on, a per-model collector takes the waiting requests: when no call of that
model is running it dispatches them at once (a lone request pays no delay); while one
is running it waits for more, until that call ends, ``batch_max_size`` rows are
waiting or the first request has waited ``batch_max_delay_ms``. It then
concatenates the compatible ones along the batch axis, runs the model *once* and
splits the outputs back by rows. Requests are compatible when they use the same
model version, ask for the same outputs and have inputs with the same trailing
shapes and dtypes; every model input must have a free leading axis. If a merged
call fails, or an output does not keep the batch axis, each request is run on its
own, so a request never sees an error caused by another.

Each request waits at most ``request_timeout`` seconds (504 after that; a request
still queued is dropped, one already running finishes in its thread).
:meth:`Scheduler.close` stops taking requests and finishes everything queued.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InferenceTimeoutError, NotReadyError, OverloadedError
from .inference import run_model
from .metrics import Metrics
from .repository import ModelEntry

__all__ = ["BatchingConfig", "Scheduler"]

logger = logging.getLogger(__name__)

Results = dict[str, np.ndarray]


@dataclass(frozen=True)
class BatchingConfig:
    """The scheduler's settings (see :class:`service.config.Settings`)."""

    threads: int = 2
    batching: bool = False
    max_batch_rows: int = 64
    max_delay_s: float = 0.002
    max_queue: int = 256
    timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> BatchingConfig:
        return cls(
            threads=settings.inference_threads,
            batching=settings.batching,
            max_batch_rows=settings.batch_max_size,
            max_delay_s=settings.batch_max_delay_ms / 1000.0,
            max_queue=settings.max_queue_size,
            timeout_s=settings.request_timeout,
        )


@dataclass(eq=False)
class _Request:
    entry: ModelEntry
    feeds: dict[str, np.ndarray]
    outputs: list[str] | None
    rows: int
    key: tuple[Any, ...]
    future: asyncio.Future[Results]
    arrived: float = field(default_factory=time.perf_counter)


class _ModelQueue:
    def __init__(self) -> None:
        self.pending = 0  # waiting or running
        self.waiting: deque[_Request] = deque()
        self.wake = asyncio.Event()
        self.collector: asyncio.Task[None] | None = None
        self.running = 0  # model calls of this queue in the pool


class Scheduler:
    """Runs model calls in a thread pool, batching them per model when configured."""

    def __init__(self, config: BatchingConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self._pool = ThreadPoolExecutor(config.threads, thread_name_prefix="forge-infer")
        self._slots = asyncio.Semaphore(config.threads)
        self._queues: dict[str, _ModelQueue] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._closing = False
        self._calls = 0  # infer() calls not yet returned, all models
        self._idle = asyncio.Event()
        self._idle.set()

    async def infer(
        self, entry: ModelEntry, feeds: dict[str, np.ndarray], outputs: list[str] | None
    ) -> Results:
        """Run ``entry.model`` on ``feeds``; raise 503/504 errors when overloaded or late."""
        if self._closing:
            raise NotReadyError("the server is shutting down; retry on another instance")
        queue = self._queues.setdefault(entry.name, _ModelQueue())
        if queue.pending >= self.config.max_queue:
            raise OverloadedError(
                f"model {entry.name!r} has {queue.pending} requests waiting or running, "
                f"the limit (max_queue_size) is {self.config.max_queue}; retry shortly",
                headers={"Retry-After": "1"},
            )
        queue.pending += 1
        self._calls += 1
        self._idle.clear()
        try:
            key = self._batch_key(entry, feeds, outputs)
            if key is None:
                return await self._with_timeout(entry, self._run_alone(entry, feeds, outputs))
            future: asyncio.Future[Results] = asyncio.get_running_loop().create_future()
            rows = next(iter(feeds.values())).shape[0]
            queue.waiting.append(_Request(entry, feeds, outputs, rows, key, future))
            queue.wake.set()
            if queue.collector is None or queue.collector.done():
                queue.collector = asyncio.create_task(self._collect(queue, entry.name))
            try:
                return await self._with_timeout(entry, asyncio.shield(future))
            finally:
                future.cancel()  # if still queued, the collector skips it
        finally:
            queue.pending -= 1
            self._calls -= 1
            if not self._calls:
                self._idle.set()

    async def close(self) -> None:
        """Refuse new requests, finish the queued and running ones, stop the threads."""
        self._closing = True
        for queue in self._queues.values():
            queue.wake.set()
        # Every accepted request ends (answer, error or request_timeout) before the
        # threads stop: one still waiting for a thread would find the pool shut down.
        await self._idle.wait()
        collectors = [q.collector for q in self._queues.values() if q.collector is not None]
        await asyncio.gather(*collectors, return_exceptions=True)
        await asyncio.gather(*self._running, return_exceptions=True)
        self._pool.shutdown(wait=True)

    # -- internals ------------------------------------------------------------------

    def _batch_key(
        self, entry: ModelEntry, feeds: dict[str, np.ndarray], outputs: list[str] | None
    ) -> tuple[Any, ...] | None:
        if not self.config.batching or not feeds:
            return None
        specs = entry.model.inputs
        if any(not spec.shape or spec.shape[0] is not None for spec in specs):
            return None
        arrays = [feeds.get(spec.name) for spec in specs]
        if any(a is None or a.ndim == 0 for a in arrays) or len(feeds) != len(specs):
            return None
        if len({a.shape[0] for a in arrays}) != 1:  # type: ignore[union-attr]
            return None
        shapes = tuple((a.shape[1:], a.dtype.str) for a in arrays)  # type: ignore[union-attr]
        return (id(entry.model), tuple(outputs) if outputs is not None else None, shapes)

    async def _with_timeout(self, entry: ModelEntry, awaitable: Any) -> Results:
        try:
            return await asyncio.wait_for(awaitable, self.config.timeout_s)
        except TimeoutError:
            raise InferenceTimeoutError(
                f"model {entry.name!r} did not answer within {self.config.timeout_s:g} s "
                f"(request_timeout)"
            ) from None

    async def _run_alone(
        self, entry: ModelEntry, feeds: dict[str, np.ndarray], outputs: list[str] | None
    ) -> Results:
        arrived = time.perf_counter()
        async with self._slots:
            self._observe_queue(entry, arrived)
            return await self._call(entry, 1, lambda: run_model(entry.model, feeds, outputs))

    async def _call(self, entry: ModelEntry, requests: int, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        finally:
            if self.metrics is not None:
                labels = (entry.name, str(entry.version))
                self.metrics.inference_seconds.labels(*labels).observe(time.perf_counter() - started)
                self.metrics.batch_size.labels(*labels).observe(requests)

    def _observe_queue(self, entry: ModelEntry, arrived: float) -> None:
        if self.metrics is not None:
            self.metrics.queue_seconds.labels(entry.name, str(entry.version)).observe(
                time.perf_counter() - arrived
            )

    async def _collect(self, queue: _ModelQueue, name: str) -> None:
        """Form batches from ``queue`` until it is empty; one collector per model at a time."""
        while queue.waiting:
            first = queue.waiting[0]
            deadline = first.arrived + self.config.max_delay_s
            while (
                not self._closing
                and queue.running > 0  # an idle model takes what is waiting now
                and sum(r.rows for r in queue.waiting) < self.config.max_batch_rows
                and (left := deadline - time.perf_counter()) > 0
            ):
                queue.wake.clear()
                try:
                    await asyncio.wait_for(queue.wake.wait(), left)
                except TimeoutError:
                    break
            await self._slots.acquire()
            batch = self._take_batch(queue)
            if not batch:
                self._slots.release()
                continue
            queue.running += 1
            task = asyncio.create_task(self._run_batch(batch, queue))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        queue.wake.clear()

    def _take_batch(self, queue: _ModelQueue) -> list[_Request]:
        """The oldest live request and the compatible ones after it, up to the row limit."""
        while queue.waiting and queue.waiting[0].future.done():
            queue.waiting.popleft()  # timed out while queued
        if not queue.waiting:
            return []
        first = queue.waiting.popleft()
        batch, rows, rest = [first], first.rows, deque()
        while queue.waiting:
            request = queue.waiting.popleft()
            if request.future.done():
                continue
            if request.key == first.key and rows + request.rows <= self.config.max_batch_rows:
                batch.append(request)
                rows += request.rows
            else:
                rest.append(request)
        queue.waiting.extendleft(reversed(rest))
        return batch

    async def _run_batch(self, batch: list[_Request], queue: _ModelQueue) -> None:
        try:
            first = batch[0]
            for request in batch:
                self._observe_queue(request.entry, request.arrived)
            if len(batch) == 1:
                outcomes = [await self._outcome(first.entry, 1, first.feeds, first.outputs)]
            else:
                outcomes = await self._run_merged(batch)
            for request, outcome in zip(batch, outcomes):
                if request.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    request.future.set_exception(outcome)
                else:
                    request.future.set_result(outcome)
        finally:
            self._slots.release()
            queue.running -= 1
            queue.wake.set()  # the collector may be waiting for this call to end

    async def _outcome(
        self, entry: ModelEntry, requests: int, feeds: dict[str, np.ndarray], outputs: list[str] | None
    ) -> Results | BaseException:
        try:
            return await self._call(entry, requests, lambda: run_model(entry.model, feeds, outputs))
        except Exception as exc:  # handed to the request's future
            return exc

    async def _run_merged(self, batch: list[_Request]) -> list[Results | BaseException]:
        first = batch[0]
        merged = {
            name: np.concatenate([request.feeds[name] for request in batch])
            for name in first.feeds
        }
        total = sum(request.rows for request in batch)
        if self.metrics is not None:
            self.metrics.batch_rows.labels(first.entry.name, str(first.entry.version)).observe(total)
        results = await self._outcome(first.entry, len(batch), merged, first.outputs)
        if isinstance(results, BaseException) or any(
            value.ndim == 0 or value.shape[0] != total for value in results.values()
        ):
            # Fall back: each request alone, so that each gets its own answer or error.
            return [await self._outcome(r.entry, 1, r.feeds, r.outputs) for r in batch]
        bounds = np.cumsum([0] + [request.rows for request in batch])
        return [
            {name: value[start:stop] for name, value in results.items()}
            for start, stop in zip(bounds[:-1], bounds[1:])
        ]
