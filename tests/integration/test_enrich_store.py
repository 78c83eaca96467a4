"""Enrich against the real broker and database: exactly once in PostgreSQL, failures with
their reason in the failed store and the dead-letter topic, the consumer going on."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from enrich.app import create_app
from enrich.settings import EnrichSettings
from terrain_contracts.messages import DeadLetterV1, decode_stored_submission
from terrain_contracts.topics import DEAD_LETTERS, SUBMISSIONS_ENRICHED, SUBMISSIONS_RAW
from terrain_testkit.database import eventually
from terrain_testkit.factories import field_submission, raw_record
from terrain_testkit.topics import produce, read_topic, running


async def count(url: str, sql: str, *args: Any) -> int:
    connection = await asyncpg.connect(url)
    try:
        value: int = await connection.fetchval(sql, *args)
        return value
    finally:
        await connection.close()


async def test_stores_once_flags_conflicts_and_dead_letters_poison(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    first = field_submission()
    key, value = raw_record(first)
    # The same visit sent again as a field app does: sealed anew, a fresh sent_at and an
    # upgraded app; what the agent recorded is the same, so it is a duplicate.
    again = json.loads(json.dumps(first))
    again["sent_at"] = "2025-04-15T15:00:00+00:00"
    again["app"]["version"] = "2.4.0"
    _, resent = raw_record(again)
    changed = json.loads(json.dumps(first))
    changed["feedback"]["satisfaction"] = 5
    _, conflicting = raw_record(changed)
    other_key, other = raw_record()
    wrong_version = json.dumps({"schema_version": 99}).encode()
    await produce(
        SUBMISSIONS_RAW.name(namespace),
        [
            (key, value),
            (key, resent),
            (key, conflicting),
            (other_key, other),
            (b"junk", b"\xff\xfe not json"),
            (b"v99", wrong_version),
        ],
    )

    async with running(create_app(EnrichSettings(**settings_kwargs))):
        ids = [first["submission_id"], json.loads(other)["submission_id"]]
        stored = await eventually(
            lambda: _all_stored(
                database_url,
                "SELECT count(*) FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])",
                ids,
            ),
        )
        letters = await read_topic(DEAD_LETTERS.name(namespace), expect=3)
        enriched = await read_topic(SUBMISSIONS_ENRICHED.name(namespace), expect=2)

    assert stored == 2
    reasons = sorted(DeadLetterV1.model_validate_json(r.value).reason.value for r in letters)
    assert reasons == ["conflict", "undecodable", "unknown_schema_version"]
    failed = await count(
        database_url,
        "SELECT count(*) FROM terrain.failed_submissions WHERE source_topic = $1",
        SUBMISSIONS_RAW.name(namespace),
    )
    assert failed == 3
    # The original survives the conflict.
    satisfaction = await count(
        database_url,
        "SELECT satisfaction FROM terrain.submissions WHERE submission_id = $1::uuid",
        first["submission_id"],
    )
    assert satisfaction == 1
    published = {str(decode_stored_submission(r.value).submission_id) for r in enriched}
    assert published == set(ids)
    # Sealed numbers are kept apart, never in the submission document.
    sealed = await count(
        database_url,
        "SELECT count(*) FROM terrain.customer_contacts WHERE submission_id = ANY($1::uuid[])",
        ids,
    )
    assert sealed == 2
    leaked = await count(
        database_url,
        "SELECT count(*) FROM terrain.submissions WHERE submission::text LIKE '%sealed%' OR submission::text LIKE '%77 123%'",
    )
    assert leaked == 0


async def test_replay_from_offset_zero_changes_nothing(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    records = [raw_record() for _ in range(20)]
    await produce(SUBMISSIONS_RAW.name(namespace), records)
    ids = [json.loads(v)["submission_id"] for _, v in records]
    query = "SELECT count(*) FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])"
    async with running(create_app(EnrichSettings(**settings_kwargs))):
        assert await eventually(lambda: _all_stored(database_url, query, ids)) == 20
    snapshot = "SELECT string_agg(submission_id::text || stored_at::text, ',' ORDER BY submission_id) FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])"
    before = await count(database_url, snapshot, ids)
    # A new consumer group reads the whole topic again.
    replay = EnrichSettings(**settings_kwargs, consumer_group="replay-group")
    async with running(create_app(replay)):
        await read_topic(SUBMISSIONS_ENRICHED.name(namespace), expect=40)
    assert await count(database_url, snapshot, ids) == before
    assert await count(database_url, query, ids) == 20


async def _all_stored(url: str, query: str, ids: list[str]) -> int | None:
    found = await count(url, query, ids)
    return found if found == len(ids) else None
