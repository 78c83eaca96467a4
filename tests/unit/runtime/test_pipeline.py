"""The consumer pipeline's stages, each driven without Kafka or PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel

from terrain_contracts.messages import DeadLetterV1, UnknownSchemaVersion
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_contracts.vocabulary import FailureReason
from terrain_runtime.dlq import (
    DeadLetterBudget,
    DeadLetterLimitExceeded,
    Failure,
    SourceRecord,
    dead_letter_message,
)
from terrain_runtime.pipeline import (
    ConsumerPipeline,
    DeadLetters,
    StoreTimes,
    consumer_pipeline,
    decode_envelope,
)
from tests.unit.runtime.fakes import FlakyPool, Table

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def server_error(sqlstate: str, message: str, **fields: str) -> asyncpg.PostgresError:
    """An error as asyncpg builds it from the server's ErrorResponse fields."""
    return asyncpg.PostgresError.new({"C": sqlstate, "M": message, **fields})


def record(offset: int, value: bytes = b"{}", key: bytes | None = b"k") -> SourceRecord:
    return SourceRecord("raw", 0, offset, key, value, (("traceparent", TRACEPARENT),))


# -- the dead-letter record, its key, headers and budget -----------------------------------


def test_dead_letter_message_has_coordinates_key_reason_headers_and_both_hashes() -> None:
    failure = Failure(
        SourceRecord("raw", 2, 7, b"id\x00", b"payload", (("traceparent", TRACEPARENT),)),
        FailureReason.CONFLICT,
        "detail with \x00 inside",
        content_sha256="v2:new",
        existing_content_sha256="v2:old",
    )
    key, value, headers = dead_letter_message(
        failure, service="enrich", service_version="1", consumer_group="g"
    )
    assert key == b"raw/2/7"
    assert ("terrain-reason", b"conflict") in headers
    assert ("traceparent", TRACEPARENT) in headers
    letter = DeadLetterV1.model_validate_json(value)
    assert (letter.content_sha256, letter.existing_content_sha256) == ("v2:new", "v2:old")
    assert "\x00" not in letter.detail and letter.key == "id"


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]] | None]] = []

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[object]:
        self.sent.append((topic, value, key, headers))
        acked: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        acked.set_result(None)
        return acked


def dead_letters(budget: DeadLetterBudget, producer: Producer | None = None) -> DeadLetters:
    return DeadLetters(
        service="enrich",
        service_version="1",
        consumer_group="g",
        topic="dlq",
        producer=producer or Producer(),
        budget=budget,
        source_topic_id="submissions.raw",
    )


def test_conflicts_never_count_toward_the_limit() -> None:
    stage = dead_letters(DeadLetterBudget(max_consecutive=10, max_ratio=0.5, window=20))
    records = [record(i) for i in range(500)]
    conflicts = [Failure(r, FailureReason.CONFLICT, "c") for r in records]
    stage.account(records, conflicts)  # 500 in a row: no stop


def test_other_failures_do_count() -> None:
    stage = dead_letters(DeadLetterBudget(max_consecutive=10, max_ratio=1.0, window=100))
    records = [record(i) for i in range(11)]
    refused = [Failure(r, FailureReason.STORE_REJECTED, "s") for r in records]
    with pytest.raises(DeadLetterLimitExceeded):
        stage.account(records, refused)


# -- the whole pipeline --------------------------------------------------------------------


def decode(source: SourceRecord) -> dict[str, Any] | Failure:
    try:
        return {"offset": source.offset, **json.loads(source.value)}
    except ValueError as error:
        return Failure(source, FailureReason.UNDECODABLE, str(error))


async def test_pipeline_stores_publishes_and_dead_letters_then_accounts() -> None:
    table = Table()
    producer = Producer()
    pool = FlakyPool(failures=0)
    published: list[str] = []
    records = [
        record(0, b'{"text": "ok"}'),
        record(1, b"\xff not json"),
        record(2, b'{"text": "bad\\u0000"}'),
        record(3, b'{"text": "fine"}'),
    ]
    by_offset = {r.offset: r for r in records}

    async def process(decoded: list[dict[str, Any]]) -> tuple[list[str], list[Failure]]:
        return [f"{d['offset']}:{d['text']}" for d in decoded], []

    async def store(connection: Any, rows: Sequence[str]) -> tuple[list[str], list[Failure]]:
        return await table.store(rows)

    def rejected(row: str, detail: str) -> Failure:
        return Failure(by_offset[int(row.split(":")[0])], FailureReason.STORE_REJECTED, detail)

    async def publish(stored: list[str], times: StoreTimes) -> list[Awaitable[object]]:
        published.extend(stored)
        return []

    pipeline: ConsumerPipeline[dict[str, Any], str, str] = ConsumerPipeline(
        service="enrich",
        service_version="1",
        pool=pool,
        retry_max_s=0.01,
        decode=decode,
        process=process,
        store=store,
        rejected=rejected,
        publish=publish,
        dead_letters=dead_letters(
            DeadLetterBudget(max_consecutive=10, max_ratio=1.0, window=10), producer
        ),
    )
    assert await pipeline.run(records) == ["0:ok", "3:fine"]
    assert published == ["0:ok", "3:fine"]
    letters = [DeadLetterV1.model_validate_json(value) for _, value, _, _ in producer.sent]
    assert [(d.source_offset, d.reason.value) for d in letters] == [
        (1, "undecodable"),
        (2, "store_rejected"),
    ]
    assert letters[1].detail.startswith("SQLSTATE 22021")
    # Both failures are in one write to failed_submissions, on a pooled connection.
    executed = [sql for connection in pool.connections for sql, _ in connection.executed]
    assert len(executed) == 1 and "terrain.failed_submissions" in executed[0]


# -- the decode stage ----------------------------------------------------------------------


class Visit(BaseModel):
    schema_version: int
    phone: str
    rating: int


def decode_visit(payload: bytes) -> Visit:
    head = json.loads(payload)
    if not isinstance(head, dict):
        raise ValueError("visit must be a JSON object")
    if head.get("schema_version") != 1:
        raise UnknownSchemaVersion(f"visit schema_version {head.get('schema_version')!r}")
    return Visit.model_validate(head)


def decode_with(reason: FailureReason, **options: Any) -> Any:
    def decode(source: SourceRecord) -> tuple[SourceRecord, Visit] | Failure:
        return decode_envelope(source, decode_visit, lambda r, v: (r, v), reason, **options)

    return decode


def test_decode_envelope_wraps_what_the_decoder_read() -> None:
    source = record(0, b'{"schema_version": 1, "phone": "x", "rating": 3}')
    assert decode_with(FailureReason.INVALID)(source) == (
        source,
        Visit(schema_version=1, phone="x", rating=3),
    )


def test_decode_envelope_keeps_the_unknown_version_apart() -> None:
    source = record(0, b'{"schema_version": 7}')
    assert decode_with(FailureReason.INVALID)(source) == Failure(
        source, FailureReason.UNKNOWN_SCHEMA_VERSION, "visit schema_version 7"
    )


def test_a_record_that_does_not_fit_is_the_given_reason_named_without_its_values() -> None:
    source = record(0, b'{"schema_version": 1, "phone": 98765432, "rating": "five"}')
    failure = decode_with(FailureReason.INVALID)(source)
    assert failure == Failure(
        source,
        FailureReason.INVALID,
        "phone: Input should be a valid string; rating: Input should be a valid integer,"
        " unable to parse string as an integer",
    )
    cut = decode_with(FailureReason.UNDECODABLE, invalid_detail_max=20)(source)
    assert cut == Failure(source, FailureReason.UNDECODABLE, failure.detail[:20])


def test_a_record_no_model_can_read_is_undecodable_by_default_or_as_the_service_says() -> None:
    source = record(0, b"[1]")
    assert decode_with(FailureReason.INVALID)(source) == Failure(
        source, FailureReason.UNDECODABLE, "ValueError: visit must be a JSON object"
    )

    def unreadable(r: SourceRecord, error: BaseException) -> Failure:
        return Failure(r, FailureReason.UNDECODABLE, f"unreadable: {error}")

    assert decode_with(FailureReason.INVALID, unreadable=unreadable)(source) == Failure(
        source, FailureReason.UNDECODABLE, "unreadable: visit must be a JSON object"
    )


# -- a service's pipeline from its settings -------------------------------------------------


@dataclass
class Settings:
    kafka_bootstrap_servers: str = "kafka:9092"
    consumer_lag_interval_s: float = 5.0
    group_id: str = "ns.terrain-enrich"
    store_retry_max_s: float = 0.01
    dlq_max_consecutive: int = 2
    dlq_max_ratio: float = 1.0
    dlq_window: int = 100

    def topic(self, base: Any) -> str:
        name: str = base.name("ns.")
        return name


async def test_consumer_pipeline_takes_group_dead_letter_topic_and_limit_from_settings() -> None:
    producer = Producer()

    async def nothing(rows: Sequence[Any]) -> tuple[list[Any], list[Failure]]:
        return [], []

    async def store(connection: Any, rows: Sequence[Any]) -> tuple[list[Any], list[Failure]]:
        return [], []

    async def published(stored: list[Any], times: StoreTimes) -> list[Awaitable[object]]:
        return []

    pipeline: ConsumerPipeline[dict[str, Any], Any, Any] = consumer_pipeline(
        Settings(),
        service="enrich",
        service_version="1",
        source=SUBMISSIONS_RAW,
        pool=FlakyPool(failures=0),
        producer=producer,
        decode=decode,
        process=nothing,
        store=store,
        rejected=lambda row, detail: Failure(record(0), FailureReason.STORE_REJECTED, detail),
        publish=published,
    )
    stage = pipeline.dead_letters
    assert (stage.consumer_group, stage.topic, stage.source_topic_id) == (
        "ns.terrain-enrich",
        "ns.terrain.deadletter.v1",
        "submissions_raw",
    )
    assert pipeline.retry_max_s == 0.01
    await pipeline.run([record(0, b"junk"), record(1, b"junk")])
    assert [topic for topic, *_ in producer.sent] == [stage.topic, stage.topic]
    # The budget is the pipeline's own, across batches: a third failure in a row stops it.
    with pytest.raises(DeadLetterLimitExceeded):
        await pipeline.run([record(2, b"junk")])
