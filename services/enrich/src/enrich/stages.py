"""Stream plumbing of enrich: its stages of the consumer pipeline (terrain_runtime.pipeline),
decode -> enrich -> store -> publish -> dead-letter -> commit.

The offsets of a batch are committed (by FastStream, after this subscriber returns) only once
its rows and failures are durably in PostgreSQL and its messages acknowledged by Kafka.
When PostgreSQL is down, the pipeline retries with backoff and commits nothing; if the
process dies meanwhile, the batch is redelivered and the idempotent store changes nothing.
A row PostgreSQL refuses is isolated from its batch and dead-lettered (store_rejected).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import asyncpg
from opentelemetry import trace

from enrich import __version__
from enrich.geo import Gazetteer
from enrich.logic import Decoded, SubmissionRow, decode, plan_batch, store_rejected
from enrich.repository import Stored, fetch_segment_histories, store_batch
from enrich.segments import SegmentCache, SegmentRecord
from enrich.settings import EnrichSettings
from terrain_contracts.headers import CONTENT_TYPE, JSON, TRACEPARENT, TRACESTATE
from terrain_contracts.messages import encode_stored_submission
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_runtime.db import Connection
from terrain_runtime.dlq import Failure, SourceRecord
from terrain_runtime.metrics import END_TO_END_LATENCY as STORE_LATENCY
from terrain_runtime.metrics import RECORDS_PROCESSED
from terrain_runtime.pipeline import (
    ConsumerPipeline,
    StoreTimes,
    consumer_pipeline,
    with_db_retry,
)
from terrain_runtime.producer import DurableProducer, Record
from terrain_runtime.sampling import Keep
from terrain_runtime.tracing import context_from_headers, headers_for, submission_attributes

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("terrain.enrich")
_JSON = (CONTENT_TYPE, JSON.encode())
_CARRIED = (TRACEPARENT, TRACESTATE)
# A W3C traceparent (version 00) whose sampled flag is off; ids all zero are invalid, and
# such a parent is a root for the sampler: those records take the span path.
_UNSAMPLED = re.compile(rb"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f][02468ace]")

SERVICE = "enrich"


@dataclass
class EnrichRuntime:
    settings: EnrichSettings
    # A bare idempotent producer: FastStream's per-message publish chain was a quarter of
    # enrich's CPU per record.
    producer: DurableProducer
    pool: asyncpg.Pool
    enriched_topic: str
    gazetteer: Gazetteer
    segments: SegmentCache
    pipeline: ConsumerPipeline[Decoded, SubmissionRow, tuple[SubmissionRow, Stored]] = field(
        init=False
    )

    def __post_init__(self) -> None:
        self.pipeline = consumer_pipeline(
            self.settings,
            service=SERVICE,
            service_version=__version__,
            source=SUBMISSIONS_RAW,
            pool=self.pool,
            producer=self.producer,
            decode=decode,
            process=self._enrich,
            store=_store,
            rejected=store_rejected,
            publish=self._publish,
        )

    async def _enrich(self, decoded: list[Decoded]) -> tuple[list[SubmissionRow], list[Failure]]:
        return plan_batch(
            decoded,
            gazetteer=self.gazetteer,
            segment_histories=await _segment_histories(self, decoded),
        )

    async def _publish(
        self, stored: list[tuple[SubmissionRow, Stored]], times: StoreTimes
    ) -> list[Awaitable[object]]:
        """Each stored submission to the enriched topic (a duplicate too: the first publish
        may have been lost with the crash that caused the redelivery; notify deduplicates),
        the batch's records as whole Kafka batches, each on one partition: notify stores an
        alert once per submission and rule, wherever its record lands."""
        if not stored:
            return []
        records: list[Record] = []
        spans: list[trace.Span] = []
        now = datetime.now(UTC)
        latency = STORE_LATENCY.labels(SERVICE)
        duplicates = 0
        for row, item in stored:
            if item.duplicate:
                duplicates += 1
            else:
                latency.observe((now - row.received.received_at).total_seconds())
            value = encode_stored_submission(
                row.record.value,
                submission_id=item.submission_id,
                received_at=row.received.received_at,
                stored_at=item.stored_at,
                enrichment=row.enrichment,
                submission=row.received.submission,
            )
            # The enriched record carries the submission's trace on: its record's context
            # as is when no span of enrich is sampled, else under the span.
            carried = _unsampled_context(row)
            if carried is None:
                span = _submission_spans(row, item.duplicate, times)
                spans.append(span)
                carried = [(k, v.encode()) for k, v in headers_for(span).items()]
            records.append((str(item.submission_id).encode(), value, [_JSON, *carried]))
        # Metrics once per batch: a label lookup per record was a few µs each.
        for outcome, count in (("stored", len(stored) - duplicates), ("duplicate", duplicates)):
            if count:
                RECORDS_PROCESSED.labels(SERVICE, SUBMISSIONS_RAW.id, outcome).inc(count)
        try:
            ack = await self.producer.send_batch(self.enriched_topic, records)
        except BaseException:
            _end_spans(spans, None)
            raise
        # The submissions' spans stay open until Kafka acknowledged their enriched records
        # (a callback, not a task per record: gather wraps coroutines in tasks).
        ack.add_done_callback(partial(_end_spans, spans))
        return [ack]


def _keep(row: SubmissionRow) -> Keep | None:
    """Why the submission's spans are kept whatever the ratio, when an alert may follow
    (terrain_runtime.sampling): the agent's flag (a replayed record too), or a signal."""
    if row.received.submission.feedback.urgent:
        return Keep.URGENT
    return Keep.SIGNALS if row.enrichment.signals else None


def _unsampled_context(row: SubmissionRow) -> list[tuple[str, bytes]] | None:
    """The record's own W3C headers when the sampler would not sample the submission's
    span: nothing to keep it for, and a well-formed parent that was not sampled
    (``ParentBased``: its children follow). Then no span is started (a NonRecordingSpan
    still costs an id, a context and the attributes); else None."""
    if _keep(row) is not None:
        return None
    carried = [(k, v) for k, v in row.record.headers if k in _CARRIED]
    for key, value in carried:
        if key == TRACEPARENT:
            return carried if _UNSAMPLED.fullmatch(value) else None
    return None


def _end_spans(spans: list[trace.Span], _: object) -> None:
    for span in spans:
        span.end()


async def _store(
    connection: Connection, rows: Sequence[SubmissionRow]
) -> tuple[list[tuple[SubmissionRow, Stored]], list[Failure]]:
    stored, conflicts = await store_batch(connection=connection, rows=rows)
    by_id = {row.submission_id: row for row in rows}
    return [(by_id[item.submission_id], item) for item in stored], conflicts


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
        fetched = await with_db_retry(
            runtime.pool,
            lambda connection: fetch_segment_histories(
                connection=connection, msisdn_hashes=missing
            ),
            max_delay_s=runtime.settings.store_retry_max_s,
        )
        runtime.segments.put(fetched, missing)
    return runtime.segments.histories(hashes)


def _submission_spans(row: SubmissionRow, duplicate: bool, times: StoreTimes) -> trace.Span:
    """The submission's own spans in its own trace: 'enrich submission' (open until its
    enriched record is acknowledged) and, under it, its share of the batch's transaction."""
    parent = context_from_headers(row.record.headers)
    attributes = submission_attributes(
        row.submission_id, row.received.submission.agent.market.value, keep=_keep(row)
    )
    span = _tracer.start_span(
        "enrich submission", context=parent, start_time=times.processed_ns, attributes=attributes
    )
    span.set_attribute("terrain.duplicate", duplicate)
    store = _tracer.start_span(
        "store submission",
        context=trace.set_span_in_context(span),
        kind=trace.SpanKind.CLIENT,
        start_time=times.store_started_ns,
        attributes={
            **attributes,
            "db.system": "postgresql",
            "db.operation": "INSERT ON CONFLICT DO NOTHING",
            "db.sql.table": "terrain.submissions",
        },
    )
    store.end(end_time=times.store_ended_ns)
    return span


async def process_batch(runtime: EnrichRuntime, records: list[SourceRecord]) -> None:
    await runtime.pipeline.run(records)
