"""Stream plumbing of notify: its stages of the consumer pipeline (terrain_runtime.pipeline),
decode -> decide -> write to the outbox -> dead-letter -> commit.

The batch's offsets are committed only after the outbox rows are in PostgreSQL. The rows
have a unique key per (submission, manager, rule), so a redelivered batch, a restart or a
resend from the field adds nothing. A record notify cannot decode, decide or write goes to
the failed submissions and the dead-letter topic, under notify's own dead-letter limit,
and the stream goes on. Delivery is the sender's job (sender.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

import asyncpg
from opentelemetry import trace

from notify import __version__
from notify.deciding import decide
from notify.outbox import AlertToRecord
from notify.routing import route_alerts
from notify.rules import RuleSet
from notify.settings import NotifySettings
from terrain_contracts.messages import (
    SubmissionStoredV1,
    decode_stored_submission,
)
from terrain_contracts.topics import SUBMISSIONS_ENRICHED
from terrain_contracts.vocabulary import FailureReason, Severity
from terrain_runtime.db import Connection
from terrain_runtime.dlq import Failure, SourceRecord
from terrain_runtime.metrics import RECORDS_PROCESSED
from terrain_runtime.pipeline import (
    ConsumerPipeline,
    Producer,
    StoreTimes,
    consumer_pipeline,
    decode_envelope,
)
from terrain_runtime.tracing import (
    context_from_headers,
    headers_for,
    span_in,
    submission_attributes,
)

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("terrain.notify")

SERVICE = "notify"


@dataclass(frozen=True, slots=True)
class Received:
    record: SourceRecord
    stored: SubmissionStoredV1


@dataclass(frozen=True, slots=True)
class PendingAlert:
    """An alert to write to the outbox, and the record it comes from (if it is refused)."""

    record: SourceRecord
    alert: AlertToRecord


def decode(record: SourceRecord) -> Received | Failure:
    """An enriched record as notify reads it. Enrich only publishes what it validated: a
    record that does not fit the model is a bug or a foreign producer, so UNDECODABLE
    rather than INVALID (no field app's mistake). It goes to the dead letters with its
    position, and the stream goes on."""
    return decode_envelope(
        record,
        decode_stored_submission,
        Received,
        FailureReason.UNDECODABLE,
        invalid_detail_max=2000,
    )


def decide_alerts(
    received: Sequence[Received], ruleset: RuleSet
) -> tuple[list[PendingAlert], list[Failure]]:
    """The alert of each submission whose rules fire; a submission the rules raise on is a
    failure of its own (decision_error), not a reason to stop alerting the others."""
    alerts: list[PendingAlert] = []
    failures: list[Failure] = []
    for item in received:
        stored = item.stored
        with span_in(
            _tracer,
            "decide alerts",
            context_from_headers(item.record.headers),
            attributes=submission_attributes(stored.submission_id, stored.market.value),
        ) as span:
            try:
                decision = decide(stored, ruleset)
                payload = (
                    alert_payload(
                        stored, decision.rule_id, decision.severity, list(decision.signals)
                    )
                    if decision
                    else None
                )
            except Exception as error:
                log.exception("rules raised on %s", stored.submission_id)
                failures.append(
                    Failure(
                        item.record,
                        FailureReason.DECISION_ERROR,
                        f"{type(error).__name__}: {error}"[:500],
                        submission_id=stored.submission_id,
                    )
                )
                continue
            span.set_attribute("terrain.rule", decision.rule_id if decision else "none")
            carrier = headers_for(span)
        RECORDS_PROCESSED.labels(
            SERVICE, SUBMISSIONS_ENRICHED.id, "alerted" if decision else "no_alert"
        ).inc()
        if decision is None or payload is None:
            continue
        alerts.append(
            PendingAlert(
                item.record,
                AlertToRecord(
                    submission_id=stored.submission_id,
                    rule_id=decision.rule_id,
                    severity=decision.severity,
                    signals=list(decision.signals),
                    market=stored.market.value,
                    received_at=stored.received_at,
                    payload=payload,
                    ruleset_version=decision.ruleset_version,
                    trace_context=carrier,
                ),
            )
        )
    return alerts, failures


async def write_outbox(
    connection: Connection, pending: Sequence[PendingAlert]
) -> tuple[list[int], list[Failure]]:
    routed = await route_alerts(connection=connection, alerts=[p.alert for p in pending])
    return [routed.created], []


def outbox_rejected(pending: PendingAlert, detail: str) -> Failure:
    return Failure(
        pending.record,
        FailureReason.STORE_REJECTED,
        detail,
        submission_id=pending.alert.submission_id,
    )


@dataclass
class NotifyRuntime:
    settings: NotifySettings
    pool: asyncpg.Pool
    ruleset: RuleSet
    producer: Producer
    wake_sender: asyncio.Event = field(default_factory=asyncio.Event)
    pipeline: ConsumerPipeline[Received, PendingAlert, int] = field(init=False)

    def __post_init__(self) -> None:
        self.pipeline = consumer_pipeline(
            self.settings,
            service=SERVICE,
            service_version=__version__,
            source=SUBMISSIONS_ENRICHED,
            pool=self.pool,
            producer=self.producer,
            decode=decode,
            process=self._decide,
            store=write_outbox,
            rejected=outbox_rejected,
            publish=self._wake,
        )

    async def _decide(self, received: list[Received]) -> tuple[list[PendingAlert], list[Failure]]:
        return decide_alerts(received, self.ruleset)

    async def _wake(self, created: list[int], _: StoreTimes) -> list[Awaitable[object]]:
        # Notify publishes nothing: the outbox is its output, and the sender delivers it.
        if sum(created):
            self.wake_sender.set()
        return []


def alert_payload(
    stored: SubmissionStoredV1, rule_id: str, severity: Severity, signals: list[str]
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
    """Run one batch through notify's pipeline; returns how many outbox rows are new."""
    return sum(await runtime.pipeline.run(records))
