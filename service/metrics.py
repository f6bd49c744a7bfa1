"""Prometheus metrics of the service (prometheus-client).

Each application gets its own registry, so several apps can live in one process
(tests). With several worker processes (``forge serve --workers N``) set
``PROMETHEUS_MULTIPROC_DIR`` to an empty folder before the workers start
(``forge serve`` does it for you): each worker then writes its samples there and
``/metrics`` answers with the sum over all workers, whichever worker serves it.
"""
from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["Metrics", "MULTIPROC_ENV"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The service's metrics, registered in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["model", "version"]
        self.requests = Counter(
            "forge_inference_requests",
            "Inference requests answered, by model, version and HTTP status.",
            [*labels, "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "forge_request_duration_seconds",
            "Time from receiving an inference request to answering it.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "forge_queue_duration_seconds",
            "Time a request waited before its model call started.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "forge_inference_duration_seconds",
            "Duration of one model call (a whole batch when batching).",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "forge_batch_size",
            "Requests merged into one model call.",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "forge_batch_rows",
            "Rows (leading-axis length) of one model call.",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.models_loaded = Gauge(
            "forge_models_loaded",
            "Model versions loaded and serving.",
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (summed over workers in multi-process mode)."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
