"""Every Prometheus metric Terrain exports, in one place, each with what it is for.

Label values are bounded sets (route templates, status codes, market codes, reasons):
never an id, a device or anything a client controls, so cardinality cannot explode.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Latency buckets for one request or one hop: 1 ms to 10 s.
_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- ingest -------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "terrain_http_requests_total",
    "HTTP requests answered, by route template and status: error rates per endpoint.",
    ["service", "route", "status"],
)
HTTP_DURATION = Histogram(
    "terrain_http_request_duration_seconds",
    "Time to answer an HTTP request (includes waiting for Kafka's acks on submissions).",
    ["service", "route"],
    buckets=_FAST_BUCKETS,
)
SUBMISSIONS_RECEIVED = Counter(
    "terrain_submissions_received_total",
    "Submissions ingest answered, by outcome (accepted, rejected) and the device's market.",
    ["outcome", "market"],
)
KAFKA_PUBLISH_DURATION = Histogram(
    "terrain_kafka_publish_duration_seconds",
    "Time from handing records to the producer to every acks=all acknowledgement.",
    ["service", "topic"],
    buckets=_FAST_BUCKETS,
)
KAFKA_PUBLISH_FAILURES = Counter(
    "terrain_kafka_publish_failures_total",
    "Publishes that failed or timed out (ingest answers 503 for them).",
    ["service", "topic"],
)
