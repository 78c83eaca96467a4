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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from faststream.kafka import KafkaBroker

from enrich import __version__
from enrich.geo import Gazetteer
from enrich.logic import Decoded, Failed, decode, plan_batch
from enrich.repository import fetch_segment_histories, store_batch
from enrich.segments import SegmentCache, SegmentRecord
from enrich.settings import EnrichSettings
from terrain_contracts.messages import SubmissionStoredV1
from terrain_runtime.db import Connection
from terrain_runtime.dlq import DeadLetterBudget, SourceRecord, dead_letter

log = logging.getLogger(__name__)

SERVICE = "enrich"
T = TypeVar("T")

# Errors worth waiting out: the server restarting, the network blinking, a failover.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)


@dataclass
class EnrichRuntime:
    settings: EnrichSettings
    broker: KafkaBroker
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


async def process_batch(runtime: EnrichRuntime, records: list[SourceRecord]) -> None:
    decoded: list[Decoded] = []
    failures: list[Failed] = []
    for record in records:
        outcome = decode(record)
        if isinstance(outcome, Failed):
            failures.append(outcome)
        else:
            decoded.append(outcome)
    rows, in_batch_conflicts = plan_batch(
        decoded,
        gazetteer=runtime.gazetteer,
        segment_histories=await _segment_histories(runtime, decoded),
    )
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

    for failure in all_failures:
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
    for item in stored:
        row = by_id[item.submission_id]
        message = SubmissionStoredV1(
            submission_id=item.submission_id,
            market=row.received.submission.agent.market,
            received_at=row.received.received_at,
            stored_at=item.stored_at,
            enrichment=row.enrichment,
            submission=row.received.submission,
        )
        pending.append(
            await runtime.broker.publish(
                message.model_dump_json().encode(),
                runtime.enriched_topic,
                key=str(item.submission_id).encode(),
                headers={"content-type": "application/json"},
                no_confirm=True,
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
            await runtime.broker.publish(
                letter.model_dump_json().encode(),
                runtime.dead_letter_topic,
                key=f"{failure.record.topic}/{failure.record.partition}/{failure.record.offset}".encode(),
                headers={"content-type": "application/json"},
                no_confirm=True,
            )
        )
    await asyncio.gather(*pending)
    # Checked last so that what is stored is also published before the consumer stops.
    failed_records = {(f.record.partition, f.record.offset) for f in all_failures}
    for record in records:
        runtime.budget.record(failed=(record.partition, record.offset) in failed_records)
