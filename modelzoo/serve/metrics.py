"""What the server counts, for ``GET /metrics`` in the Prometheus text format (``prometheus_client``).

An orchestrator scales on the queue depth and the latency; the batch sizes show whether dynamic
batching is gathering requests (texts per forward above 1 under load). Each app has its own
registry, so that several apps in one process (the tests) count apart.
"""

from __future__ import annotations

from typing import Tuple

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelzoo_requests", "POST /predict requests answered, by HTTP status", ["status"], registry=self.registry
        )
        self.sentences = Counter("modelzoo_sentences", "texts the model predicted", registry=self.registry)
        self.batch_texts = Histogram(
            "modelzoo_batch_texts", "texts per model call (dynamic batching)", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.latency = Histogram(
            "modelzoo_request_seconds", "POST /predict latency, body read to response sent",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.queue_texts = Gauge("modelzoo_queue_texts", "texts waiting for the model", registry=self.registry)
        self.in_flight = Gauge("modelzoo_requests_in_flight", "POST /predict requests being answered", registry=self.registry)

    def exposition(self) -> Tuple[bytes, str]:
        """The text page and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
