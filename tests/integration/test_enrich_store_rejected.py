"""A record PostgreSQL refuses never halts enrich: it is isolated from its batch and kept
with its SQLSTATE (never its values) in the failed store and the dead-letter topic, the
rest of the batch is stored, and the next visit flows.

The records are produced straight to the raw topic, as a foreign or older producer would:
enrich must be safe whatever the edge lets through."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from enrich.app import create_app
from enrich.settings import EnrichSettings
from terrain_contracts.messages import DeadLetterV1
from terrain_contracts.topics import DEAD_LETTERS, SUBMISSIONS_RAW
from terrain_testkit.database import eventually, fetchval
from terrain_testkit.factories import field_submission, raw_record
from terrain_testkit.topics import KAFKA, read_topic, running

SECRET = "appelez mon frere au 98 765 432"


def poisoned(change: Any) -> tuple[bytes, bytes, dict[str, Any]]:
    """A raw record decoded fine by enrich, with ``change`` applied to its envelope."""
    key, value = raw_record(field_submission(feedback__verbatim=SECRET))
    envelope = json.loads(value)
    change(envelope)
    # json.dumps writes U+0000 as the valid JSON escape \\u0000.
    return key, json.dumps(envelope).encode(), envelope


def _nul_in_verbatim(envelope: dict[str, Any]) -> None:
    envelope["submission"]["feedback"]["verbatim"] = SECRET + "\x00"


def _nul_in_unknown_field(envelope: dict[str, Any]) -> None:
    envelope["submission"]["feedback"]["note_agent"] = f"rappeler\x00 {SECRET}"


def _nul_in_a_key(envelope: dict[str, Any]) -> None:
    envelope["submission"]["extra"] = {"cl\x00e": SECRET}


def _nul_in_the_sealed_number(envelope: dict[str, Any]) -> None:
    # Only the contacts table holds this one: the refusal comes from another statement.
    envelope["submission"]["customer"]["msisdn_sealed"] = "k1:\x00abc"


def _refused_by_a_check(envelope: dict[str, Any]) -> None:
    envelope["submission"]["campaign_id"] = "refused-by-check"


@pytest.mark.timeout(180)
async def test_refused_records_are_isolated_and_the_others_stored(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    raw = SUBMISSIONS_RAW.name(namespace)
    good = [raw_record() for _ in range(6)]
    bad = [
        poisoned(_nul_in_verbatim),
        poisoned(_nul_in_unknown_field),
        poisoned(_nul_in_a_key),
        poisoned(_nul_in_the_sealed_number),
        poisoned(_refused_by_a_check),
    ]
    # A trace id holding U+0000 (a broken producer's header): refused by the trace_id
    # column, though the value itself is fine.
    header_key, header_value = raw_record()
    broken_trace = [("traceparent", b"00-" + b"\x00" * 32 + b"-b7ad6b7169203331-01")]
    # An integrity violation (class 23) from a constraint the record's value breaks.
    admin = await asyncpg.connect(database_url)
    await admin.execute(
        "ALTER TABLE terrain.submissions ADD CONSTRAINT test_refused_campaign"
        " CHECK (campaign_id <> 'refused-by-check')"
    )
    try:
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
        await producer.start()
        try:
            # One partition: the good and the bad records share one batch.
            batch = [good[0], *[(k, v) for k, v, _ in bad[:3]], good[1], good[2]]
            batch += [(k, v) for k, v, _ in bad[3:]] + [good[3]]
            for key, value in batch:
                await producer.send_and_wait(raw, value, key=key, partition=0)
            await producer.send_and_wait(
                raw, header_value, key=header_key, partition=0, headers=broken_trace
            )
            await producer.send_and_wait(raw, good[4][1], key=good[4][0], partition=0)
            async with running(create_app(EnrichSettings(**settings_kwargs))):
                ids = [json.loads(v)["submission_id"] for _, v in good[:5]]
                assert await eventually(lambda: _stored(database_url, ids), timeout_s=60)
                letters = await read_topic(DEAD_LETTERS.name(namespace), expect=6)
                # Enrich goes on: the next visit flows.
                await producer.send_and_wait(raw, good[5][1], key=good[5][0], partition=0)
                after = [json.loads(good[5][1])["submission_id"]]
                assert await eventually(lambda: _stored(database_url, after), timeout_s=60)
        finally:
            await producer.stop()
    finally:
        await admin.execute("ALTER TABLE terrain.submissions DROP CONSTRAINT test_refused_campaign")
        await admin.close()

    refused_ids = {str(envelope["submission_id"]) for _, _, envelope in bad}
    refused_ids.add(json.loads(header_value)["submission_id"])
    decoded = [DeadLetterV1.model_validate_json(r.value) for r in letters]
    assert {str(d.submission_id) for d in decoded} == refused_ids
    assert {d.reason.value for d in decoded} == {"store_rejected"}
    rows = await admin_rows(
        database_url,
        "SELECT submission_id::text, reason, detail FROM terrain.failed_submissions"
        " WHERE source_topic = $1",
        raw,
    )
    assert {r["submission_id"] for r in rows} == refused_ids
    details = {r["detail"] for r in rows}
    assert all(d.startswith("SQLSTATE ") for d in details)
    assert any("SQLSTATE 23514" in d and "constraint=test_refused_campaign" in d for d in details)
    assert any("SQLSTATE 22P05" in d or "SQLSTATE 22021" in d for d in details)
    # Never a payload value in the detail, neither in the table nor on the topic.
    for text in details | {d.detail for d in decoded}:
        assert "98 765 432" not in text and "\x00" not in text and "rappeler" not in text
    # None of the refused is stored, half-stored or its sealed number kept.
    assert await fetchval(
        database_url,
        "SELECT count(*) FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])",
        list(refused_ids),
    ) == 0  # fmt: skip


async def _stored(url: str, ids: list[str]) -> int | None:
    found: int = await fetchval(
        url,
        "SELECT count(*) FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])",
        ids,
    )
    return found if found == len(ids) else None


async def admin_rows(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()
