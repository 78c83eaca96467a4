"""Stream plumbing of enrich: a batch flows decode -> enrich -> store -> publish -> commit.

The offsets of a batch are committed (by FastStream, after this handler returns) only once
its rows and failures are durably in PostgreSQL and its messages acknowledged by Kafka.
When PostgreSQL is down, the handler retries with backoff and commits nothing; if the
process dies meanwhile, the batch is redelivered and the idempotent store changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from opentelemetry import trace

from enrich import __version__
from enrich.geo import Gazetteer
from enrich.logic import Decoded, Failed, SubmissionRow, decode, plan_batch
from enrich.repository import fetch_segment_histories, store_batch
from enrich.segments import SegmentCache, SegmentRecord
from enrich.settings import EnrichSettings
from terrain_contracts.messages import SubmissionStoredV1
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_runtime.db import TRANSIENT_DB_ERRORS, Connection
from terrain_runtime.dlq import DeadLetterBudget, SourceRecord, dead_letter
from terrain_runtime.kafka import DurableProducer
from terrain_runtime.metrics import DEAD_LETTERS, RECORDS_PROCESSED
from terrain_runtime.metrics import END_TO_END_LATENCY as STORE_LATENCY
from terrain_runtime.tracing import context_from_headers, headers_for, submission_attributes

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("terrain.enrich")
_JSON = ("content-type", b"application/json")

SERVICE = "enrich"
T = TypeVar("T")


@dataclass
class EnrichRuntime:
    settings: EnrichSettings
    # A bare idempotent producer: FastStream's per-message publish chain was a quarter of
    # enrich's CPU per record.
    producer: DurableProducer
    pool: asyncpg.Pool
    budget: DeadLetterBudget
    enriched_topic: str
    dead_letter_topic: str
    gazetteer: Gazetteer
    segments: SegmentCache


async def _with_db_retry(runtime: EnrichRuntime, work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run ``work`` on a pooled connection until PostgreSQL answers: a transient error is
    waited out with backoff (nothing is committed meanwhile, nothing goes to the DLQ)."""
    delay = 0.2
    while True:
        try:
            async with runtime.pool.acquire() as connection:
                return await work(connection)
        except TRANSIENT_DB_ERRORS as error:
            log.warning(
                "postgresql unavailable, retrying batch in %.1fs: %s", delay, type(error).__name__
            )
            await asyncio.sleep(delay + random.uniform(0, delay / 2))
            delay = min(delay * 2, runtime.settings.store_retry_max_s)


async def _segment_histories(
    runtime: EnrichRuntime, decoded: list[Decoded]
) -> dict[str, tuple[SegmentRecord, ...]]:
    """CRM histories of the batch's customers: from the cache, the rest in one query."""
    hashes = [
        d.received.submission.customer.msisdn_hash
        for d in decoded
        if d.received.submission.customer.msisdn_hash
    ]
    missing = runtime.segments.missing(hashes)
    if missing:
        fetched = await _with_db_retry(
            runtime,
            lambda connection: fetch_segment_histories(
                connection=connection, msisdn_hashes=missing
            ),
        )
        runtime.segments.put(fetched, missing)
    return runtime.segments.histories(hashes)


def _submission_spans(
    row: SubmissionRow, duplicate: bool, started_ns: int, store_started_ns: int, store_ended_ns: int
) -> trace.Span:
    """The submission's own spans in its own trace: 'enrich submission' (open until its
    enriched record is acknowledged) and, under it, its share of the batch's transaction."""
    parent = context_from_headers(row.record.headers)
    attributes = submission_attributes(
        row.submission_id, row.received.submission.agent.market.value
    )
    span = _tracer.start_span(
        "enrich submission", context=parent, start_time=started_ns, attributes=attributes
    )
    span.set_attribute("terrain.duplicate", duplicate)
    store = _tracer.start_span(
        "store submission",
        context=trace.set_span_in_context(span),
        kind=trace.SpanKind.CLIENT,
        start_time=store_started_ns,
        attributes={
            **attributes,
            "db.system": "postgresql",
            "db.operation": "COPY + INSERT ON CONFLICT DO NOTHING",
            "db.sql.table": "terrain.submissions",
        },
    )
    store.end(end_time=store_ended_ns)
    return span


async def process_batch(runtime: EnrichRuntime, records: list[SourceRecord]) -> None:
    decoded: list[Decoded] = []
    failures: list[Failed] = []
    for record in records:
        outcome = decode(record)
        if isinstance(outcome, Failed):
            failures.append(outcome)
        else:
            decoded.append(outcome)
    started_ns = time.time_ns()
    rows, in_batch_conflicts = plan_batch(
        decoded,
        gazetteer=runtime.gazetteer,
        segment_histories=await _segment_histories(runtime, decoded),
    )
    store_started_ns = time.time_ns()
    stored, all_failures = await _with_db_retry(
        runtime,
        lambda connection: store_batch(
            connection=connection,
            rows=rows,
            failures=failures + in_batch_conflicts,
            service=SERVICE,
            service_version=__version__,
        ),
    )

    store_ended_ns = time.time_ns()
    for failure in all_failures:
        DEAD_LETTERS.labels(SERVICE, failure.reason.value).inc()
        RECORDS_PROCESSED.labels(SERVICE, SUBMISSIONS_RAW.id, "failed").inc()
        log.warning(
            "dead letter: %s at %s/%d/%d",
            failure.reason.value,
            failure.record.topic,
            failure.record.partition,
            failure.record.offset,
        )
    # Everything is stored: now tell the world, and wait for Kafka's acks before the
    # commit. A crash in between re-publishes on redelivery (notify deduplicates).
    by_id = {row.submission_id: row for row in rows}
    pending = []
    spans = []
    now = datetime.now(UTC)
    for item in stored:
        row = by_id[item.submission_id]
        RECORDS_PROCESSED.labels(
            SERVICE, SUBMISSIONS_RAW.id, "duplicate" if item.duplicate else "stored"
        ).inc()
        if not item.duplicate:
            STORE_LATENCY.labels(SERVICE).observe((now - row.received.received_at).total_seconds())
        span = _submission_spans(row, item.duplicate, started_ns, store_started_ns, store_ended_ns)
        spans.append(span)
        message = SubmissionStoredV1(
            submission_id=item.submission_id,
            market=row.received.submission.agent.market,
            received_at=row.received.received_at,
            stored_at=item.stored_at,
            enrichment=row.enrichment,
            submission=row.received.submission,
        )
        # The enriched record carries the submission's trace on (its span is the parent).
        headers = [(k, v.encode()) for k, v in headers_for(span).items()]
        pending.append(
            await runtime.producer.send(
                runtime.enriched_topic,
                message.model_dump_json().encode(),
                key=str(item.submission_id).encode(),
                headers=[_JSON, *headers],
            )
        )
    for failure in all_failures:
        letter = dead_letter(
            failure.record,
            reason=failure.reason,
            detail=failure.detail,
            service=SERVICE,
            service_version=__version__,
            consumer_group=runtime.settings.group_id,
            submission_id=failure.submission_id,
        )
        pending.append(
            await runtime.producer.send(
                runtime.dead_letter_topic,
                letter.model_dump_json().encode(),
                key=f"{failure.record.topic}/{failure.record.partition}/{failure.record.offset}".encode(),
                headers=[_JSON],
            )
        )
    try:
        await asyncio.gather(*pending)
    finally:
        for span in spans:
            span.end()
    # Checked last so that what is stored is also published before the consumer stops.
    failed_records = {(f.record.partition, f.record.offset) for f in all_failures}
    for record in records:
        runtime.budget.record(failed=(record.partition, record.offset) in failed_records)
