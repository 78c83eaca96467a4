"""The words every floor shares: signals, severities, delivery outcomes, alert statuses,
unroutable and failure reasons.

Each is a ``StrEnum`` so it travels as its value (JSON, SQL, metric labels) and compares
equal to it; the SQL ``CHECK`` constraints and the rules file accept exactly these values.
"""

from __future__ import annotations

from enum import StrEnum


class Signal(StrEnum):
    """What enrich reads in a verbatim, in the canonical order alerts list them."""

    MONEY_LOST = "money_lost"
    FRAUD = "fraud"
    NETWORK_OUTAGE = "network_outage"
    SAFETY_HAZARD = "safety_hazard"
    CHURN_THREAT = "churn_threat"
    STAFF_CONDUCT = "staff_conduct"


class Severity(StrEnum):
    """P1 reaches a manager on every channel, SMS included, at any hour; P2 by email and
    webhook, throttled into digests beyond a few per hour."""

    P1 = "P1"
    P2 = "P2"


class DeliveryOutcome(StrEnum):
    """What one delivery attempt of an alert came to."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


class AlertStatus(StrEnum):
    """An alert's place in the outbox (``terrain.alerts.status``)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    HELD = "held"
    DIGESTED = "digested"


class UnroutableReason(StrEnum):
    """Why an urgent alert reached nobody (``terrain.unroutable_alerts.reason``)."""

    # Nobody on the market's ladder, regional directors included, has a channel.
    NO_RECIPIENT = "no_recipient"
    # Every channel of every recipient failed for good.
    ALL_CHANNELS_FAILED = "all_channels_failed"


class FailureReason(StrEnum):
    """Why a record went to the dead letters. Every reason but ``conflict`` counts toward a
    consumer's dead-letter limit: a conflict is a data-quality event of one visit (the
    field sent two different contents under one id), never a sign of a broken deployment."""

    UNDECODABLE = "undecodable"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    INVALID = "invalid"
    CONFLICT = "conflict"
    ENRICHMENT_ERROR = "enrichment_error"
    # PostgreSQL refused the record itself (SQLSTATE class 22 or 23): invalid input found
    # late, isolated from its batch.
    STORE_REJECTED = "store_rejected"
    # Notify's rules raised on this record.
    DECISION_ERROR = "decision_error"
