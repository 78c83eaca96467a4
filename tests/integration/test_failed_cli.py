"""`terrain failed list|show|replay` against the real broker and database, with enrich
running: real failures are listed and shown (sealed numbers never printed), and a replayed
failure is stored once however often it is replayed, in its original trace."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from enrich.app import create_app
from enrich.settings import EnrichSettings
from terrain_cli.main import app as cli
from terrain_contracts.topics import SUBMISSIONS_ENRICHED, SUBMISSIONS_RAW
from terrain_testkit.database import eventually, fetchval, throwaway_database
from terrain_testkit.factories import field_submission, raw_record
from terrain_testkit.topics import KAFKA, produce, read_topic, running


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A database of this test's own: `failed replay --reason` takes every failure of that
    reason, and the session's database holds other tests' failures too."""
    async with throwaway_database("terrain_failed_cli") as url:
        yield url


@pytest.fixture
def cli_env(database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "TERRAIN_ENVIRONMENT": "test",
    }


async def terrain(env: dict[str, str], *args: str) -> Result:
    # In a thread: the CLI runs its own event loop, this test's is already running.
    return await asyncio.to_thread(lambda: CliRunner().invoke(cli, list(args), env=env))


def columns(line: str) -> list[str]:
    """A `terrain failed list` line's columns (two spaces apart)."""
    return [column.strip() for column in line.split("  ") if column.strip()]


async def failure_id(url: str, topic: str, reason: str) -> int:
    found = await eventually(
        lambda: fetchval(
            url,
            "SELECT failure_id FROM terrain.failed_submissions"
            " WHERE source_topic = $1 AND reason = $2",
            topic,
            reason,
        ),
        timeout_s=30,
    )
    assert found is not None, f"no {reason} failure on {topic}"
    return int(found)


@pytest.mark.timeout(120)
async def test_real_failures_are_listed_and_shown_without_sealed_numbers(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, cli_env: dict[str, str]
) -> None:
    raw = SUBMISSIONS_RAW.name(namespace)
    first = field_submission()
    key, value = raw_record(first)
    changed = json.loads(json.dumps(first))
    changed["feedback"]["satisfaction"] = 5
    _, conflicting = raw_record(changed)
    sealed = json.loads(conflicting)["submission"]["customer"]["msisdn_sealed"]
    assert sealed
    await produce(
        raw,
        [
            (key, value),
            (key, conflicting),
            (b"junk", b'\xff not json "msisdn_sealed": "s1:secret-ciphertext"'),
            (b"v99", json.dumps({"schema_version": 99}).encode()),
        ],
    )
    async with running(create_app(EnrichSettings(**settings_kwargs))):
        conflict = await failure_id(database_url, raw, "conflict")
        junk = await failure_id(database_url, raw, "undecodable")
        await failure_id(database_url, raw, "unknown_schema_version")

    listed = await terrain(cli_env, "failed", "list", "--since", "1h")
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.output.splitlines() if raw in line]
    assert len(lines) == 3
    conflict_line = next(line for line in lines if line.split()[0] == str(conflict))
    assert "conflict" in conflict_line and first["submission_id"] in conflict_line
    assert columns(conflict_line)[6] == "-"  # never replayed

    only = await terrain(cli_env, "failed", "list", "--reason", "undecodable", "--since", "1h")
    assert [line.split()[0] for line in only.output.splitlines() if raw in line] == [str(junk)]
    nobody = await terrain(cli_env, "failed", "list", "--service", "notify", "--since", "1h")
    assert raw not in nobody.output
    refused = await terrain(cli_env, "failed", "list", "--since", "yesterday-ish")
    assert refused.exit_code == 2 and "--since" in refused.output

    shown = await terrain(cli_env, "failed", "show", str(conflict))
    assert shown.exit_code == 0, shown.output
    assert "conflict" in shown.output and first["submission_id"] in shown.output
    assert f"{raw} partition" in shown.output
    # The payload, decoded and pretty-printed, without the sealed number.
    assert '"satisfaction": 5' in shown.output
    assert "msisdn_sealed" not in shown.output and sealed not in shown.output
    garbage = await terrain(cli_env, "failed", "show", str(junk))
    assert "(not JSON" in garbage.output and "secret-ciphertext" not in garbage.output
    missing = await terrain(cli_env, "failed", "show", "999999999")
    assert missing.exit_code == 1


async def insert_failure(url: str, *, topic: str, value: bytes, offset: int, trace_id: str) -> int:
    """A failure as enrich records a batch PostgreSQL refused, for a visit that is valid
    once the cause is fixed."""
    submission_id = json.loads(value)["submission_id"]
    connection = await asyncpg.connect(url)
    try:
        found: int = await connection.fetchval(
            """INSERT INTO terrain.failed_submissions (service, service_version, reason, detail,
                   source_topic, source_partition, source_offset, submission_id, payload,
                   payload_sha256, trace_id)
               VALUES ('enrich', 'test', 'store_rejected', 'SQLSTATE 22021 (test)', $1, 0, $2,
                       $3::uuid, $4, $5, $6)
               RETURNING failure_id""",
            topic,
            offset,
            submission_id,
            value,
            hashlib.sha256(value).hexdigest(),
            trace_id,
        )
        return found
    finally:
        await connection.close()


def header(record: Any, name: str) -> str | None:
    return next((v.decode() for k, v in record.headers if k == name), None)


@pytest.mark.timeout(120)
async def test_replaying_twice_stores_once_in_the_original_trace(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, cli_env: dict[str, str]
) -> None:
    raw = SUBMISSIONS_RAW.name(namespace)
    (key, value), (other_key, other) = raw_record(), raw_record()
    trace_id, other_trace_id = secrets.token_hex(16), secrets.token_hex(16)
    first = await insert_failure(database_url, topic=raw, value=value, offset=7, trace_id=trace_id)
    second = await insert_failure(
        database_url, topic=raw, value=other, offset=8, trace_id=other_trace_id
    )
    ids = [key.decode(), other_key.decode()]
    stored = "SELECT count(*) FROM terrain.submissions WHERE submission_id = $1::uuid"

    async with running(create_app(EnrichSettings(**settings_kwargs))):
        for _ in range(2):
            replayed = await terrain(cli_env, "failed", "replay", str(first))
            assert replayed.exit_code == 0, replayed.output
            assert f"replayed {first} (store_rejected) -> {raw}/" in replayed.output
        # Both replays went through enrich (each is published on), and one row is stored.
        enriched = await read_topic(SUBMISSIONS_ENRICHED.name(namespace), expect=2)
        assert [r.key for r in enriched] == [key, key]
        assert await fetchval(database_url, stored, ids[0]) == 1

        # Every failure of a reason, except those replayed already.
        bulk = await terrain(cli_env, "failed", "replay", "--reason", "store_rejected")
        assert bulk.exit_code == 0, bulk.output
        assert f"replayed {second} " in bulk.output and f"replayed {first} " not in bulk.output
        assert await eventually(lambda: fetchval(database_url, stored, ids[1]), timeout_s=30)

    trace_of_stored = "SELECT trace_id FROM terrain.submissions WHERE submission_id = $1::uuid"
    assert await fetchval(database_url, trace_of_stored, ids[0]) == trace_id
    assert await fetchval(database_url, trace_of_stored, ids[1]) == other_trace_id

    # The replayed records: original bytes, keyed by the submission id, in the original
    # trace with a span of their own, saying which failure they replay.
    records = await read_topic(raw, expect=3)
    replays = [r for r in records if header(r, "terrain-replay-of") == str(first)]
    assert len(replays) == 2
    assert all(r.value == value and r.key == key for r in replays)
    assert all(header(r, "content-type") == "application/json" for r in replays)
    parents = [str(header(r, "traceparent")).split("-") for r in replays]
    assert [p[1] for p in parents] == [trace_id, trace_id]
    assert parents[0][2] != parents[1][2]

    row = await fetchval(
        database_url,
        "SELECT json_build_object('count', replay_count, 'at', replayed_at)::text"
        " FROM terrain.failed_submissions WHERE failure_id = $1",
        first,
    )
    replay = json.loads(row)
    assert replay["count"] == 2 and replay["at"] is not None
    listed = await terrain(cli_env, "failed", "list", "--reason", "store_rejected")
    line = next(line for line in listed.output.splitlines() if line.split()[0] == str(first))
    assert columns(line)[6].startswith("2x, last ")

    refused = await terrain(cli_env, "failed", "replay")
    assert refused.exit_code == 2
