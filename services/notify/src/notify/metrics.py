"""Notify's Prometheus metrics (served on the acknowledgement server's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
ALERTS_ESCALATED = Counter(
    "terrain_alerts_escalated_total", "Alerts not acknowledged within their SLA.", ["severity"]
)
ALERTS_HELD = Counter(
    "terrain_alerts_held_total", "P2 alerts over a manager's throttle, held for a digest."
)
