"""The consumer pipeline of enrich and notify: decode -> process -> store -> publish ->
dead-letter -> commit, for one batch at a time.

Each stage is a plain function or a small class, given by the service; the pipeline only
chains them and applies the error taxonomy, the same for every consumer:

- invalid input (undecodable, invalid, a conflict, a record PostgreSQL refuses) becomes a
  ``Failure``: stored, dead-lettered, never retried, and the batch goes on;
- transient (PostgreSQL unreachable, a failover): waited out with backoff, nothing is
  committed meanwhile (``with_db_retry``);
- anything else is a bug: it propagates, FastStream rewinds the batch (nothing committed
  past it) and ``ErrorBackoff`` waits before it comes back.

The commit is FastStream's, after ``run`` returns: by then every stored row is published
and every failure is in PostgreSQL and acknowledged by Kafka. The dead-letter budget is
checked last, so what a stopping consumer stored is also published.

Why bisection for refused batches: a batch is one statement (the hot path, one round
trip), and PostgreSQL aborts it whole for one bad value. Halving it until the refused
rows stand alone costs about 2·log2(n) attempts per culprit (18 for one bad record in
500) instead of n, and nothing at all while no record is refused.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from terrain_contracts.messages import UnknownSchemaVersion
from terrain_contracts.topics import DEAD_LETTERS as DEAD_LETTER_TOPIC
from terrain_contracts.topics import TopicSpec
from terrain_contracts.vocabulary import FailureReason
from terrain_runtime.db import TRANSIENT_DB_ERRORS, Connection
from terrain_runtime.dlq import (
    DeadLetterBudget,
    Failure,
    SourceRecord,
    counts_toward_limit,
    dead_letter_message,
    store_failures,
)
from terrain_runtime.metrics import DEAD_LETTERS, RECORDS_PROCESSED
from terrain_runtime.settings import ConsumerSettings
from terrain_runtime.tracing import context_from_headers, failure_attributes, span_in

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("terrain.pipeline")

T = TypeVar("T")
EnvelopeT = TypeVar("EnvelopeT")
DecodedT = TypeVar("DecodedT")
RowT = TypeVar("RowT")
StoredT = TypeVar("StoredT")

# SQLSTATE classes in which PostgreSQL refuses the data, not the connection: 22 data
# exception (U+0000 in text 22021/22P05, numeric out of range 22003...), 23 integrity
# constraint violation. Sending the same rows again can only fail again.
REFUSED_SQLSTATE_CLASSES = frozenset({"22", "23"})
_QUOTED = re.compile(r'"[^"]*"')
# A COPY's error context names the column ("COPY t, line 3, column verbatim: <the value>"):
# the name is ours, the value after it is not kept.
_COPY_COLUMN = re.compile(r"COPY \w+, line \d+, column (\w+)")


def is_refused(error: BaseException) -> bool:
    """PostgreSQL (or asyncpg, encoding a value client-side) refused the data itself."""
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = getattr(error, "sqlstate", None)
        return isinstance(sqlstate, str) and sqlstate[:2] in REFUSED_SQLSTATE_CLASSES
    # asyncpg's client-side DataError is an InterfaceError, which we otherwise wait out:
    # a value that cannot even be encoded would then be retried forever.
    return isinstance(error, asyncpg.exceptions._base.DataError)


def refusal_detail(error: BaseException) -> str:
    """SQLSTATE, error class, the server's message and the column or constraint, without
    any payload value: the messages of 22P05 or 22003 quote the text or number refused,
    and a failure's detail is shown to SREs and kept for months."""
    sqlstate = getattr(error, "sqlstate", None) or "client-side"
    parts = [f"SQLSTATE {sqlstate}", type(error).__name__]
    for attribute in ("table_name", "column_name", "constraint_name", "data_type_name"):
        value = getattr(error, attribute, None)
        if isinstance(value, str) and value:
            parts.append(f"{attribute.removesuffix('_name')}={value}")
    context = getattr(error, "context", None)
    if isinstance(context, str) and (copied := _COPY_COLUMN.search(context)):
        parts.append(f"column={copied[1]}")
    detail = " ".join(parts)
    if isinstance(error, asyncpg.PostgresError):
        message = str(getattr(error, "message", None) or error)
        # What follows a colon is the offending value or bytes; quoted words are values,
        # or names already given above from the error's fields.
        detail += ": " + _QUOTED.sub('"…"', message.split(": ", 1)[0])[:300]
    else:
        detail += ": a value could not be encoded for PostgreSQL"
    return detail


class Database(Protocol):
    """What the pipeline needs of a pool: a connection to borrow (an asyncpg.Pool)."""

    def acquire(self) -> AbstractAsyncContextManager[Any]: ...


async def with_db_retry(
    pool: Database,
    work: Callable[[Connection], Awaitable[T]],
    *,
    max_delay_s: float,
    first_delay_s: float = 0.2,
) -> T:
    """Run ``work`` on a pooled connection until PostgreSQL answers: a transient error is
    waited out with backoff (nothing is committed meanwhile, nothing goes to the DLQ)."""
    delay = first_delay_s
    while True:
        try:
            async with pool.acquire() as connection:
                return await work(connection)
        except TRANSIENT_DB_ERRORS as error:
            if is_refused(error):
                raise
            log.warning(
                "postgresql unavailable, retrying batch in %.1fs: %s", delay, type(error).__name__
            )
            await asyncio.sleep(delay + random.uniform(0, delay / 2))
            delay = min(delay * 2, max_delay_s)


async def store_isolated(
    rows: Sequence[RowT],
    store: Callable[[Sequence[RowT]], Awaitable[tuple[list[StoredT], list[Failure]]]],
) -> tuple[list[StoredT], list[Failure], list[tuple[RowT, BaseException]]]:
    """Store ``rows`` with ``store`` (atomic: all or nothing); when the data is refused,
    bisect until each refused row stands alone. Returns what was stored, the failures the
    store found (conflicts), and each refused row with its error. Other errors propagate."""
    if not rows:
        return [], [], []
    try:
        stored, failures = await store(rows)
        return stored, failures, []
    except Exception as error:
        if not is_refused(error):
            raise
        if len(rows) == 1:
            return [], [], [(rows[0], error)]
    middle = len(rows) // 2
    stored, failures, refused = await store_isolated(rows[:middle], store)
    more_stored, more_failures, more_refused = await store_isolated(rows[middle:], store)
    return stored + more_stored, failures + more_failures, refused + more_refused


class Producer(Protocol):
    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = ...,
        headers: list[tuple[str, bytes]] | None = ...,
    ) -> Awaitable[object]: ...


@dataclass
class DeadLetters:
    """The dead-letter stage: publish each failure and account it against the budget.
    (Storing them is ``store_failures``, run by the pipeline with the transient retry.)"""

    service: str
    service_version: str
    consumer_group: str
    topic: str
    producer: Producer
    budget: DeadLetterBudget
    source_topic_id: str

    async def publish(self, failures: Sequence[Failure]) -> list[Awaitable[object]]:
        pending = []
        for failure in failures:
            DEAD_LETTERS.labels(self.service, failure.reason.value).inc()
            RECORDS_PROCESSED.labels(self.service, self.source_topic_id, "failed").inc()
            log.warning(
                "dead letter: %s at %s/%d/%d",
                failure.reason.value,
                failure.record.topic,
                failure.record.partition,
                failure.record.offset,
            )
            key, value, headers = dead_letter_message(
                failure,
                service=self.service,
                service_version=self.service_version,
                consumer_group=self.consumer_group,
            )
            # Kept whatever the sampling ratio: a failure is what an SRE is asked about.
            with span_in(
                _tracer,
                "dead-letter submission",
                context_from_headers(failure.record.headers),
                attributes=failure_attributes(failure.reason, failure.submission_id),
                kind=SpanKind.PRODUCER,
            ):
                sent = await self.producer.send(self.topic, value, key=key, headers=headers)
            pending.append(sent)
        return pending

    def account(self, records: Sequence[SourceRecord], failures: Sequence[Failure]) -> None:
        """Every record of the batch, in order, through the budget (raises past a limit)."""
        counted = {
            (f.record.topic, f.record.partition, f.record.offset)
            for f in failures
            if counts_toward_limit(f.reason)
        }
        for record in records:
            self.budget.record(failed=(record.topic, record.partition, record.offset) in counted)


@dataclass(frozen=True, slots=True)
class StoreTimes:
    """When the batch's process and store stages ran (ns), for the submissions' spans."""

    processed_ns: int
    store_started_ns: int
    store_ended_ns: int


@dataclass
class ConsumerPipeline(Generic[DecodedT, RowT, StoredT]):
    """One batch: decode each record, process the decoded ones (pure, or reads only), store
    the rows (bisecting a refused batch), publish what was stored, store and publish the
    failures, wait for Kafka's acks, then account the budget. The commit follows."""

    service: str
    service_version: str
    pool: Database
    retry_max_s: float
    decode: Callable[[SourceRecord], DecodedT | Failure]
    process: Callable[[list[DecodedT]], Awaitable[tuple[list[RowT], list[Failure]]]]
    store: Callable[[Connection, Sequence[RowT]], Awaitable[tuple[list[StoredT], list[Failure]]]]
    rejected: Callable[[RowT, str], Failure]
    publish: Callable[[list[StoredT], StoreTimes], Awaitable[list[Awaitable[object]]]]
    dead_letters: DeadLetters

    async def run(self, records: Sequence[SourceRecord]) -> list[StoredT]:
        decoded: list[DecodedT] = []
        failures: list[Failure] = []
        for record in records:
            outcome = self.decode(record)
            if isinstance(outcome, Failure):
                failures.append(outcome)
            else:
                decoded.append(outcome)
        processed_ns = time.time_ns()
        rows, more = await self.process(decoded)
        failures.extend(more)

        store_started_ns = time.time_ns()
        stored, more, refused = await store_isolated(rows, self._store_with_retry)
        times = StoreTimes(processed_ns, store_started_ns, time.time_ns())
        failures.extend(more)
        failures.extend(self.rejected(row, refusal_detail(error)) for row, error in refused)
        if failures:
            await with_db_retry(
                self.pool,
                lambda connection: store_failures(
                    connection=connection,
                    failures=failures,
                    service=self.service,
                    service_version=self.service_version,
                ),
                max_delay_s=self.retry_max_s,
            )
        # Everything is stored: now tell the world, and wait for Kafka's acks before the
        # commit. A crash in between re-publishes on redelivery (downstream deduplicates).
        pending = await self.publish(stored, times)
        pending.extend(await self.dead_letters.publish(failures))
        await asyncio.gather(*pending)
        self.dead_letters.account(records, failures)
        return stored

    async def _store_with_retry(self, rows: Sequence[RowT]) -> tuple[list[StoredT], list[Failure]]:
        return await with_db_retry(
            self.pool,
            lambda connection: self.store(connection, rows),
            max_delay_s=self.retry_max_s,
        )


def undecodable(record: SourceRecord, error: BaseException) -> Failure:
    """A record no model can read: its error's type and message, at most 500 characters."""
    return Failure(record, FailureReason.UNDECODABLE, f"{type(error).__name__}: {error}"[:500])


def decode_envelope(
    record: SourceRecord,
    decoder: Callable[[bytes], EnvelopeT],
    wrap: Callable[[SourceRecord, EnvelopeT], DecodedT],
    invalid_reason: FailureReason,
    *,
    invalid_detail_max: int | None = None,
    unreadable: Callable[[SourceRecord, BaseException], Failure] = undecodable,
) -> DecodedT | Failure:
    """The decode stage of a consumer: ``wrap(record, decoder(record.value))``, or the
    record's ``Failure``. A version the decoder does not know is UNKNOWN_SCHEMA_VERSION; a
    record that does not fit the model is ``invalid_reason``, its detail each error's
    ``loc: msg`` (never the input: it may hold a phone number, and the detail is shown to
    SREs and kept for months), cut at ``invalid_detail_max``; anything else the decoder
    raises on (not JSON, not an object, nested too deep) is ``unreadable``'s.

    One call and a try per record: nothing on enrich's hot path beyond that."""
    try:
        return wrap(record, decoder(record.value))
    except UnknownSchemaVersion as error:
        return Failure(record, FailureReason.UNKNOWN_SCHEMA_VERSION, str(error))
    except ValidationError as error:
        detail = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        )
        return Failure(record, invalid_reason, detail[:invalid_detail_max])
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        return unreadable(record, error)


def consumer_pipeline(
    settings: ConsumerSettings,
    *,
    service: str,
    service_version: str,
    source: TopicSpec,
    pool: Database,
    producer: Producer,
    decode: Callable[[SourceRecord], DecodedT | Failure],
    process: Callable[[list[DecodedT]], Awaitable[tuple[list[RowT], list[Failure]]]],
    store: Callable[[Connection, Sequence[RowT]], Awaitable[tuple[list[StoredT], list[Failure]]]],
    rejected: Callable[[RowT, str], Failure],
    publish: Callable[[list[StoredT], StoreTimes], Awaitable[list[Awaitable[object]]]],
) -> ConsumerPipeline[DecodedT, RowT, StoredT]:
    """A service's pipeline on its ``source`` topic: its stages, and what every consumer
    derives alike from its settings (the retry ceiling, the dead-letter topic of its
    namespace, its group in each dead letter, a budget of its own limits). The budget lives
    as long as the pipeline: one per process, counting across batches."""
    return ConsumerPipeline(
        service=service,
        service_version=service_version,
        pool=pool,
        retry_max_s=settings.store_retry_max_s,
        decode=decode,
        process=process,
        store=store,
        rejected=rejected,
        publish=publish,
        dead_letters=DeadLetters(
            service=service,
            service_version=service_version,
            consumer_group=settings.group_id,
            topic=settings.topic(DEAD_LETTER_TOPIC),
            producer=producer,
            budget=DeadLetterBudget(
                max_consecutive=settings.dlq_max_consecutive,
                max_ratio=settings.dlq_max_ratio,
                window=settings.dlq_window,
            ),
            source_topic_id=source.id,
        ),
    )
