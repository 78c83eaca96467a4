"""Every Prometheus metric Terrain exports, in one place, each with what it is for.

Label values are bounded sets (route templates, status codes, market codes, reasons):
never an id, a device or anything a client controls, so cardinality cannot explode.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

# Set (to an empty directory) before the server processes of one service start: each then
# writes its samples there, and any of them serves the sum of all (prometheus_client's
# multiprocess mode). Unset, a process serves its own registry.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # the name prometheus_client reads


def metrics_registry() -> CollectorRegistry:
    """What a /metrics endpoint serves: the whole service, however many processes it runs."""
    directory = os.environ.get(MULTIPROCESS_DIR_ENV)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


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
KAFKA_PRODUCER_RENEWALS = Counter(
    "terrain_kafka_producer_renewals_total",
    "Idempotent producers replaced after the broker lost their sequence (e.g. a restart).",
    ["client_id"],
)
KAFKA_PUBLISH_FAILURES = Counter(
    "terrain_kafka_publish_failures_total",
    "Publishes that failed or timed out (ingest answers 503 for them).",
    ["service", "topic"],
)

# --- consumers (enrich, notify) -----------------------------------------------------------
RECORDS_PROCESSED = Counter(
    "terrain_records_processed_total",
    "Kafka records a consumer finished, by outcome (stored, duplicate, failed, alerted,"
    " no_alert): throughput and what became of it.",
    ["service", "topic", "outcome"],
)
BATCH_DURATION = Histogram(
    "terrain_batch_duration_seconds",
    "Time to process one consumed batch, from poll to commit (store, publish, acks).",
    ["service", "topic"],
    buckets=_FAST_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "terrain_consumer_lag",
    "Records in a partition not yet committed by the consumer group (end offset minus"
    " committed offset): a stuck or slow consumer shows here first.",
    ["service", "topic", "partition"],
)
CONSUMER_COMMIT_AGE = Gauge(
    "terrain_consumer_commit_age_seconds",
    "Seconds since the group's committed offset of a partition last moved while it has lag"
    " (0 when caught up): lag that does not shrink and a commit that does not move is a"
    " consumer alive but stuck.",
    ["service", "topic", "partition"],
)
DEAD_LETTERS = Counter(
    "terrain_dead_letters_total",
    "Records sent to the dead-letter topic and the failed-submissions store, by reason.",
    ["service", "reason"],
)
END_TO_END_LATENCY = Histogram(
    "terrain_submission_store_latency_seconds",
    "From ingest's received_at to the row committed in PostgreSQL.",
    ["service"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

# --- notify ------------------------------------------------------------------------------
ALERT_LATENCY = Histogram(
    "terrain_alert_latency_seconds",
    "From ingest's received_at to the alert's delivery on all its channels: the promise "
    "that an urgent complaint reaches its managers in seconds.",
    ["severity"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
ALERT_DELIVERY_ATTEMPTS = Counter(
    "terrain_alert_delivery_attempts_total",
    "Delivery attempts by channel and outcome (ok, retry, failed): a channel that is down.",
    ["channel", "outcome"],
)
ALERTS_SENT = Counter(
    "terrain_alerts",
    "Alerts sent to country managers, by market, severity and channel: one per alert and"
    " channel delivered.",
    ["market", "severity", "channel"],
)
ALERTS_ESCALATED = Counter(
    "terrain_alerts_escalated_total", "Alerts not acknowledged within their SLA.", ["severity"]
)
ALERTS_UNROUTABLE = Counter(
    "terrain_alerts_unroutable_total",
    "Urgent complaints that no manager could receive (nobody at any level of the market nor"
    " a regional director, or every channel of every recipient failed for good), by market"
    " and reason: recorded and shown, never dropped in silence.",
    ["market", "reason"],
)
ALERTS_HELD = Counter(
    "terrain_alerts_held_total", "P2 alerts over a manager's throttle, held for a digest."
)
ALERT_ACKNOWLEDGEMENT = Histogram(
    "terrain_alert_acknowledgement_seconds",
    "From an alert's delivery to a manager's acknowledgement: how long urgent complaints wait"
    " for a human.",
    ["severity"],
    buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400),
)
