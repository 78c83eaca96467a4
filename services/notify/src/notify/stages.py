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
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg
from opentelemetry import trace

from notify import __version__
from notify.deciding import decide
from notify.facts import AlertFacts, read_alert_facts
from notify.outbox import AlertToRecord, Throttle
from notify.routing import route_alerts
from notify.rules import RuleSet
from notify.settings import NotifySettings
from terrain_contracts.headers import TRACEPARENT
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
from terrain_runtime.sampling import Keep
from terrain_runtime.tracing import (
    context_from_headers,
    headers_for,
    span_in,
    submission_attributes,
)

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("terrain.notify")

SERVICE = "notify"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Received:
    """An enriched record and what the rules read of it: the slim facts, or the whole
    envelope when only the whole decoder could read it."""

    record: SourceRecord
    facts: AlertFacts


@dataclass(frozen=True, slots=True)
class PendingAlert:
    """An alert to write to the outbox, and the record it comes from (if it is refused)."""

    record: SourceRecord
    alert: AlertToRecord


def decode(record: SourceRecord) -> Received | Failure:
    """An enriched record as notify reads it: first only what the rules need (the whole
    envelope is decoded in ``decide_alerts``, for a record that raises an alert). A record
    those facts do not fit goes through the whole decoder, which says why with the same
    reason and detail as ever. Enrich only publishes what it validated: a record that does
    not fit the model is a bug or a foreign producer, so UNDECODABLE rather than INVALID
    (no field app's mistake). It goes to the dead letters with its position, and the
    stream goes on."""
    try:
        return Received(record, read_alert_facts(record.value))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _decode_whole(record, Received)


def _decode_whole(
    record: SourceRecord, wrap: Callable[[SourceRecord, SubmissionStoredV1], T]
) -> T | Failure:
    return decode_envelope(
        record,
        decode_stored_submission,
        wrap,
        FailureReason.UNDECODABLE,
        invalid_detail_max=2000,
    )


def _envelope(_: SourceRecord, stored: SubmissionStoredV1) -> SubmissionStoredV1:
    return stored


def decide_alerts(
    received: Sequence[Received], ruleset: RuleSet
) -> tuple[list[PendingAlert], list[Failure]]:
    """The alert of each submission whose rules fire; a submission the rules raise on is a
    failure of its own (decision_error), not a reason to stop alerting the others. Only a
    submission that raises an alert is decoded whole (its alert carries the visit), and
    its span is kept whatever the sampling ratio."""
    alerts: list[PendingAlert] = []
    failures: list[Failure] = []
    calm = 0
    for item in received:
        facts = item.facts
        try:
            decision = decide(facts, ruleset)
        except Exception as error:
            attributes = submission_attributes(facts.submission_id, facts.market.value)
            parent = context_from_headers(item.record.headers)
            with span_in(_tracer, "decide alerts", parent, attributes=attributes):
                log.exception("rules raised on %s", facts.submission_id)
            failures.append(_decision_error(item, error))
            continue
        if decision is None:
            calm += 1
            if _unsampled(item.record.headers):
                # Its span would follow its trace's flag and be dropped: not worth starting.
                continue
            parent = context_from_headers(item.record.headers)
            # Nothing runs in it and nothing follows from it: started and ended at once.
            _tracer.start_span(
                "decide alerts",
                context=parent,
                attributes={
                    **submission_attributes(facts.submission_id, facts.market.value),
                    "terrain.rule": "none",
                },
            ).end()
            continue
        stored = (
            facts
            if isinstance(facts, SubmissionStoredV1)
            else _decode_whole(item.record, _envelope)
        )
        if isinstance(stored, Failure):
            failures.append(stored)
            continue
        attributes = submission_attributes(
            stored.submission_id, stored.market.value, keep=Keep.ALERT
        )
        parent = context_from_headers(item.record.headers)
        with span_in(_tracer, "decide alerts", parent, attributes=attributes) as span:
            span.set_attribute("terrain.rule", decision.rule_id)
            try:
                payload = alert_payload(
                    stored, decision.rule_id, decision.severity, list(decision.signals)
                )
            except Exception as error:
                log.exception("rules raised on %s", stored.submission_id)
                failures.append(_decision_error(item, error))
                continue
            carrier = headers_for(span)
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
    # Counted once a batch rather than once a record (a label lookup each).
    if calm:
        RECORDS_PROCESSED.labels(SERVICE, SUBMISSIONS_ENRICHED.id, "no_alert").inc(calm)
    if alerts:
        RECORDS_PROCESSED.labels(SERVICE, SUBMISSIONS_ENRICHED.id, "alerted").inc(len(alerts))
    return alerts, failures


def _unsampled(headers: Sequence[tuple[str, bytes]]) -> bool:
    """Whether the record's W3C traceparent says its trace is not sampled (flags without
    the sampled bit); False without one, when the sampler decides a new trace."""
    for key, value in headers:
        if key == TRACEPARENT:
            return len(value) == 55 and value[-2:] in _UNSAMPLED_FLAGS
    return False


# W3C trace flags are one byte; only its lowest bit says "sampled".
_UNSAMPLED_FLAGS = frozenset(f"{flags:02x}".encode() for flags in range(0, 256, 2))


def _decision_error(item: Received, error: Exception) -> Failure:
    return Failure(
        item.record,
        FailureReason.DECISION_ERROR,
        f"{type(error).__name__}: {error}"[:500],
        submission_id=item.facts.submission_id,
    )


async def write_outbox(
    connection: Connection, pending: Sequence[PendingAlert], *, throttle: Throttle | None = None
) -> tuple[list[int], list[Failure]]:
    routed = await route_alerts(
        connection=connection, alerts=[p.alert for p in pending], throttle=throttle
    )
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
            store=functools.partial(
                write_outbox,
                throttle=Throttle(
                    self.settings.throttle_p2_per_window, self.settings.throttle_window_s
                ),
            ),
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
