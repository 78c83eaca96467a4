"""Notify's Prometheus metrics: declared with every other metric in terrain_runtime.metrics
(one module, one place to read them all); re-exported here for notify's modules."""

from __future__ import annotations

from terrain_runtime.metrics import (
    ALERT_ACKNOWLEDGEMENT,
    ALERT_DELIVERY_ATTEMPTS,
    ALERT_LATENCY,
    ALERTS_ESCALATED,
    ALERTS_HELD,
    ALERTS_SENT,
)

__all__ = [
    "ALERTS_ESCALATED",
    "ALERTS_HELD",
    "ALERTS_SENT",
    "ALERT_ACKNOWLEDGEMENT",
    "ALERT_DELIVERY_ATTEMPTS",
    "ALERT_LATENCY",
]
