"""A resend is a resend, against the real broker and database: a visit sent again with a
fresh sent_at (and a newer app) is stored once and counted; a conflict is kept with both
hashes but never stops enrich, however many come at once."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from enrich.app import create_app
from enrich.settings import EnrichSettings
from terrain_contracts.messages import DeadLetterV1
from terrain_contracts.topics import DEAD_LETTERS, SUBMISSIONS_ENRICHED, SUBMISSIONS_RAW
from terrain_testkit.database import eventually, fetchval
from terrain_testkit.factories import field_submission, raw_record
from terrain_testkit.topics import produce, read_topic, running


def resent(document: dict[str, Any], sent_at: str, app_version: str | None = None) -> bytes:
    """The same visit as the app's outbox sends it again: a new sent_at, maybe a newer app."""
    again = json.loads(json.dumps(document))
    again["sent_at"] = sent_at
    if app_version:
        again["app"]["version"] = app_version
    return raw_record(again)[1]


async def stored_count(url: str, ids: list[str]) -> int | None:
    found: int = await fetchval(
        url,
        "SELECT count(*) FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])",
        ids,
    )
    return found if found == len(ids) else None


async def test_a_resend_is_a_duplicate_counted_once_per_send(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    first = field_submission()
    key, value = raw_record(first)
    # On the visit's partition, after it: once it is through, so are the sends before it.
    sentinel = raw_record()[1]
    raw = SUBMISSIONS_RAW.name(namespace)
    await produce(
        raw,
        [
            (key, value),
            (key, resent(first, "2025-04-15T13:00:00+00:00", app_version="2.4.0")),
            (key, value),  # Kafka-level duplicate of the first send: not a send
            (key, resent(first, "2025-04-15T18:30:00+00:00")),
            (key, sentinel),
        ],
    )
    enriched = SUBMISSIONS_ENRICHED.name(namespace)
    async with running(create_app(EnrichSettings(**settings_kwargs))):
        await _published(enriched, sentinel, times=1)
    row = await _row(database_url, first["submission_id"])
    assert row["send_count"] == 3
    assert row["last_sent_at"] == datetime.fromisoformat("2025-04-15T18:30:00+00:00")
    # The stored document keeps the first send, its sent_at and its app block.
    assert datetime.fromisoformat(row["sent_at"]) == datetime.fromisoformat(first["sent_at"])
    assert row["app_version"] == first["app"]["version"]
    assert row["payload_sha256"].startswith("v2:")
    assert await _failed(database_url, raw) == 0

    # Kafka redelivers (a new group reads everything again): no send is counted twice.
    replay = EnrichSettings(**settings_kwargs, consumer_group="replay-group")
    async with running(create_app(replay)):
        await _published(enriched, sentinel, times=2)
    assert (await _row(database_url, first["submission_id"]))["send_count"] == 3
    assert await _failed(database_url, raw) == 0


async def _published(topic: str, raw_value: bytes, *, times: int) -> None:
    submission_id = json.loads(raw_value)["submission_id"]

    async def seen() -> bool:
        records = await read_topic(topic, expect=10_000, timeout_s=1)
        found = [r for r in records if json.loads(r.value)["submission_id"] == submission_id]
        return len(found) >= times

    assert await eventually(seen, timeout_s=60)


async def test_a_row_stored_under_the_previous_hash_still_knows_its_resends(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    first = field_submission()
    key, value = raw_record(first)
    raw = SUBMISSIONS_RAW.name(namespace)
    await produce(raw, [(key, value)])
    async with running(create_app(EnrichSettings(**settings_kwargs))):
        await read_topic(SUBMISSIONS_ENRICHED.name(namespace), expect=1)
    # As enrich stored it before hash version 2: sha256 of the whole canonical document.
    connection = await asyncpg.connect(database_url)
    try:
        document = await connection.fetchval(
            "SELECT submission::text FROM terrain.submissions WHERE submission_id = $1::uuid",
            first["submission_id"],
        )
        canonical = json.dumps(
            json.loads(document), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        await connection.execute(
            "UPDATE terrain.submissions SET payload_sha256 = $2, last_sent_at = NULL"
            " WHERE submission_id = $1::uuid",
            first["submission_id"],
            hashlib.sha256(canonical.encode()).hexdigest(),
        )
    finally:
        await connection.close()
    changed = json.loads(json.dumps(first))
    changed["feedback"]["satisfaction"] = 5
    await produce(
        raw,
        [
            (key, resent(first, "2025-04-16T07:00:00+00:00", app_version="3.0.0")),
            (key, raw_record(changed)[1]),
        ],
    )
    async with running(create_app(EnrichSettings(**settings_kwargs))):
        letters = await read_topic(DEAD_LETTERS.name(namespace), expect=1)
        await read_topic(SUBMISSIONS_ENRICHED.name(namespace), expect=2)
    # The resend is a duplicate; only the changed content is a conflict.
    assert [DeadLetterV1.model_validate_json(r.value).reason.value for r in letters] == ["conflict"]
    assert await _failed(database_url, raw) == 1
    # Its send is counted, and the row now carries the v2 hash its content was found to have.
    row = await _row(database_url, first["submission_id"])
    assert row["send_count"] == 2 and row["payload_sha256"].startswith("v2:")


@pytest.mark.timeout(180)
async def test_a_batch_of_resends_or_of_conflicts_never_stops_enrich(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    raw = SUBMISSIONS_RAW.name(namespace)
    visits = [field_submission() for _ in range(500)]
    await produce(raw, [raw_record(v) for v in visits])
    # A limit far below either batch: were resends or conflicts dead letters that count,
    # enrich would stop on the first of them.
    settings = EnrichSettings(**settings_kwargs, dlq_max_consecutive=10, dlq_window=50)
    ids = [v["submission_id"] for v in visits]
    async with running(create_app(settings)):
        assert await eventually(lambda: stored_count(database_url, ids), timeout_s=60)
        # The whole outbox again, an hour later, from an upgraded app.
        await produce(
            raw,
            [(v["submission_id"].encode(), resent(v, "2025-04-15T12:40:02+00:00", "2.4.0"))
             for v in visits],
        )  # fmt: skip
        conflicts = []
        for v in visits:
            changed = json.loads(json.dumps(v))
            changed["feedback"]["satisfaction"] = 3
            conflicts.append(raw_record(changed))
        await produce(raw, conflicts)
        after = field_submission()
        await produce(raw, [raw_record(after)])
        # Enrich goes on: the visit sent after both batches is stored.
        assert await eventually(
            lambda: stored_count(database_url, [after["submission_id"]]), timeout_s=60
        )
        letters = await read_topic(DEAD_LETTERS.name(namespace), expect=500, timeout_s=60)
    assert await _failed(database_url, raw) == 500
    sends = await fetchval(
        database_url,
        "SELECT sum(send_count) FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])",
        ids,
    )
    assert sends == 1000
    decoded = [DeadLetterV1.model_validate_json(r.value) for r in letters]
    assert {d.reason.value for d in decoded} == {"conflict"}
    # Both hashes, the stored one and the incoming one, travel with each conflict.
    assert all(
        d.content_sha256 and d.existing_content_sha256
        and d.content_sha256 != d.existing_content_sha256
        for d in decoded
    )  # fmt: skip
    kept = await fetchval(
        database_url,
        "SELECT count(*) FROM terrain.failed_submissions WHERE source_topic = $1"
        " AND reason = 'conflict' AND content_sha256 LIKE 'v2:%'"
        " AND existing_payload_sha256 LIKE 'v2:%'",
        raw,
    )
    assert kept == 500


async def _row(url: str, submission_id: str) -> dict[str, Any]:
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            "SELECT send_count, last_sent_at, payload_sha256, app_version,"
            " submission->>'sent_at' AS sent_at FROM terrain.submissions"
            " WHERE submission_id = $1::uuid",
            submission_id,
        )
        assert row is not None
        return dict(row)
    finally:
        await connection.close()


async def _failed(url: str, topic: str) -> int:
    failed: int = await fetchval(
        url, "SELECT count(*) FROM terrain.failed_submissions WHERE source_topic = $1", topic
    )
    return failed
