"""Stream plumbing of notify: decide alerts for a batch and write them to the outbox.

The batch's offsets are committed only after the outbox rows are in PostgreSQL. The rows
have a unique key per (submission, manager, rule), so a redelivered batch, a restart or a
resend from the field adds nothing. Delivery is the sender's job (sender.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from opentelemetry import trace

from notify import __version__
from notify.logic import decide
from notify.repository import AlertToRecord
from notify.routing import route_alerts
from notify.rules import RuleSet
from notify.settings import NotifySettings
from terrain_contracts.messages import (
    DeadLetterV1,
    FailureReason,
    SubmissionStoredV1,
    decode_stored_submission,
)
from terrain_contracts.topics import SUBMISSIONS_ENRICHED
from terrain_runtime.dlq import SourceRecord, dead_letter
from terrain_runtime.metrics import RECORDS_PROCESSED
from terrain_runtime.tracing import (
    context_from_headers,
    headers_for,
    span_in,
    submission_attributes,
)

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("terrain.notify")

SERVICE = "notify"


@dataclass
class NotifyRuntime:
    settings: NotifySettings
    pool: asyncpg.Pool
    ruleset: RuleSet
    # Publishes dead letters and returns once Kafka acknowledged them (before the commit).
    publish_dead_letters: Callable[[list[DeadLetterV1]], Awaitable[None]] | None = None
    wake_sender: asyncio.Event = field(default_factory=asyncio.Event)


def alert_payload(
    stored: SubmissionStoredV1, rule_id: str, severity: str, signals: list[str]
) -> dict[str, object]:
    submission = stored.submission
    location = submission.location
    # Never the customer's number: the page opens it from customer_contacts, for consent only.
    return {
        "submission_id": str(stored.submission_id),
        "market": stored.market.value,
        "severity": severity,
        "rule": rule_id,
        "signals": signals,
        "city": stored.enrichment.geo.city,
        "customer_kind": submission.customer.kind.value,
        "segment": stored.enrichment.segment.segment,
        "satisfaction": submission.feedback.satisfaction,
        "topics": [t.value for t in submission.feedback.topics],
        "verbatim": submission.feedback.verbatim,
        "lat": location.lat if location else None,
        "lon": location.lon if location else None,
        "place": location.place if location else None,
        "consent": submission.customer.consent,
        "collected_at": submission.collected_at.isoformat(),
        "received_at": stored.received_at.isoformat(),
    }


async def process_batch(runtime: NotifyRuntime, records: list[SourceRecord]) -> int:
    alerts: list[AlertToRecord] = []
    letters: list[DeadLetterV1] = []
    for record in records:
        try:
            stored = decode_stored_submission(record.value)
        except ValueError as error:
            # Enrich only publishes what it validated: a bad record here is a bug or a
            # foreign producer. It goes to the dead letters with its position, and the
            # stream goes on.
            log.error(
                "undecodable enriched record at %s/%d/%d: %s",
                record.topic,
                record.partition,
                record.offset,
                type(error).__name__,
            )
            letters.append(
                dead_letter(
                    record,
                    reason=FailureReason.UNDECODABLE,
                    detail=f"{type(error).__name__}: {error}",
                    service=SERVICE,
                    service_version=__version__,
                    consumer_group=runtime.settings.group_id,
                )
            )
            continue
        with span_in(
            _tracer,
            "decide alerts",
            context_from_headers(record.headers),
            attributes=submission_attributes(stored.submission_id, stored.market.value),
        ) as span:
            decision = decide(stored, runtime.ruleset)
            span.set_attribute("terrain.rule", decision.rule_id if decision else "none")
            carrier = headers_for(span)
        RECORDS_PROCESSED.labels(
            SERVICE, SUBMISSIONS_ENRICHED.id, "alerted" if decision else "no_alert"
        ).inc()
        if decision is None:
            continue
        alerts.append(
            AlertToRecord(
                submission_id=stored.submission_id,
                rule_id=decision.rule_id,
                severity=decision.severity,
                signals=list(decision.signals),
                market=stored.market.value,
                received_at=stored.received_at,
                payload=alert_payload(
                    stored, decision.rule_id, decision.severity, list(decision.signals)
                ),
                ruleset_version=decision.ruleset_version,
                trace_context=carrier,
            )
        )
    if letters and runtime.publish_dead_letters is not None:
        await runtime.publish_dead_letters(letters)
    if not alerts:
        return 0
    async with runtime.pool.acquire() as connection:
        created = (await route_alerts(connection=connection, alerts=alerts)).created
    if created:
        runtime.wake_sender.set()
    return created
