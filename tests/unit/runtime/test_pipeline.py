"""The consumer pipeline's stages, each driven without Kafka or PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Sequence
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
    is_refused,
    refusal_detail,
    store_isolated,
    with_db_retry,
)

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def server_error(sqlstate: str, message: str, **fields: str) -> asyncpg.PostgresError:
    """An error as asyncpg builds it from the server's ErrorResponse fields."""
    return asyncpg.PostgresError.new({"C": sqlstate, "M": message, **fields})


def record(offset: int, value: bytes = b"{}", key: bytes | None = b"k") -> SourceRecord:
    return SourceRecord("raw", 0, offset, key, value, (("traceparent", TRACEPARENT),))


# -- which errors are the data's fault -----------------------------------------------------


@pytest.mark.parametrize(
    ("sqlstate", "refused"),
    [
        ("22021", True),  # U+0000 in text: invalid byte sequence
        ("22P05", True),  # \u0000 in jsonb: unsupported Unicode escape
        ("22003", True),  # numeric value out of range
        ("23505", True),  # unique violation
        ("23514", True),  # check violation
        ("42P01", False),  # undefined table: our bug, not the record's
        ("57P01", False),  # admin shutdown: transient
        ("40001", False),  # serialization failure: transient
    ],
)
def test_refused_by_sqlstate_class(sqlstate: str, refused: bool) -> None:
    assert is_refused(server_error(sqlstate, "x")) is refused


def test_a_value_asyncpg_cannot_encode_is_refused_not_waited_out() -> None:
    assert is_refused(asyncpg.exceptions._base.DataError("invalid input for query argument"))
    assert not is_refused(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    assert not is_refused(OSError("connection refused"))


def test_refusal_detail_names_the_column_but_never_the_value() -> None:
    error = server_error(
        "22003",
        'value "77123456" is out of range for type smallint',
        c="satisfaction",
        t="submissions",
    )
    detail = refusal_detail(error)
    assert detail.startswith("SQLSTATE 22003 NumericValueOutOfRangeError")
    assert "column=satisfaction" in detail and "table=submissions" in detail
    assert "77123456" not in detail
    text = refusal_detail(
        server_error("22021", 'invalid byte sequence for encoding "UTF8": 0x00 appelez 98765432')
    )
    assert "98765432" not in text and "\x00" not in text and "SQLSTATE 22021" in text
    copied = refusal_detail(
        server_error(
            "22P05",
            "unsupported Unicode escape sequence",
            D="\\u0000 cannot be converted to text.",
            W='JSON data, line 1: ...appelez 98765432\\u0000"}\n'
            'COPY incoming_submissions, line 2, column submission: "{...98765432...}"',
        )
    )
    assert "column=submission" in copied and "98765432" not in copied


# -- isolating the refused rows of a batch -------------------------------------------------


class Table:
    """An all-or-nothing store that refuses rows holding U+0000, as PostgreSQL does."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.attempts = 0

    async def store(self, rows: Sequence[str]) -> tuple[list[str], list[Failure]]:
        self.attempts += 1
        if any("\x00" in row for row in rows):
            raise server_error("22021", 'invalid byte sequence for encoding "UTF8": 0x00')
        self.rows.extend(rows)
        return list(rows), []


async def test_a_clean_batch_is_stored_in_one_attempt() -> None:
    table = Table()
    stored, failures, refused = await store_isolated([f"r{i}" for i in range(500)], table.store)
    assert len(stored) == 500 and not failures and not refused
    assert table.attempts == 1


async def test_refused_rows_are_isolated_and_the_others_stored() -> None:
    table = Table()
    rows = [f"r{i}" for i in range(500)]
    for bad in (3, 250, 499):
        rows[bad] = f"bad\x00{bad}"
    stored, _, refused = await store_isolated(rows, table.store)
    assert sorted(stored) == sorted(table.rows) == sorted(r for r in rows if "\x00" not in r)
    assert [row for row, _ in refused] == ["bad\x003", "bad\x00250", "bad\x00499"]
    assert all(is_refused(error) for _, error in refused)
    # Bisection, not one attempt per row: about 2 log2(500) attempts per culprit.
    assert table.attempts <= 3 * 2 * 9 + 1


async def test_an_error_that_is_not_the_data_propagates() -> None:
    async def broken(rows: Sequence[str]) -> tuple[list[str], list[Failure]]:
        raise server_error("42P01", 'relation "terrain.submissions" does not exist')

    with pytest.raises(asyncpg.exceptions.UndefinedTableError):
        await store_isolated(["a", "b"], broken)


# -- transient errors are waited out -------------------------------------------------------


class FlakyPool:
    """A pool whose first connections fail as a restarting server's do."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.error = error or OSError("connection refused")
        self.acquired = 0
        self.connections: list[Connection] = []

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        self.acquired += 1
        if self.acquired <= self.failures:
            raise self.error
        self.connections.append(Connection())
        yield self.connections[-1]


class Connection:
    def __init__(self) -> None:
        self.executed: list[tuple[str, tuple[Any, ...]]] = []

    async def execute(self, sql: str, *args: Any) -> str:
        self.executed.append((sql, args))
        return "INSERT 0 1"


async def test_transient_errors_are_retried_until_the_database_answers() -> None:
    pool = FlakyPool(failures=3)

    async def work(connection: Any) -> str:
        return "done"

    assert await with_db_retry(pool, work, max_delay_s=0.01, first_delay_s=0.001) == "done"
    assert pool.acquired == 4


async def test_a_refused_value_is_not_retried_even_if_asyncpg_calls_it_an_interface_error() -> None:
    pool = FlakyPool(failures=5, error=asyncpg.exceptions._base.DataError("cannot encode"))

    async def work(connection: Any) -> str:
        return "done"

    with pytest.raises(asyncpg.exceptions._base.DataError):
        await with_db_retry(pool, work, max_delay_s=0.01, first_delay_s=0.001)
    assert pool.acquired == 1


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
