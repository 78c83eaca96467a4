"""Notify against the real broker and database: a record it cannot decode or write to the
outbox goes to the failed store (service notify) and the dead-letter topic, and alerting
goes on; a notify that fails on everything stops under its own dead-letter limit."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from notify.app import create_app
from notify.managers import add_manager
from terrain_contracts.messages import DeadLetterV1
from terrain_contracts.topics import DEAD_LETTERS, SUBMISSIONS_ENRICHED
from terrain_testkit.database import eventually, fetchval
from terrain_testkit.factories import field_submission, stored_record
from terrain_testkit.sinks import WebhookSink
from terrain_testkit.topics import produce, produce_junk, read_topic, running, until_it_stops
from tests.integration.notify_support import notify_settings

SECRET = "appelez mon frere au 98 765 432"


def urgent(market: str, verbatim: str = "réseau coupé depuis hier") -> tuple[bytes, bytes]:
    return stored_record(
        field_submission(agent__market=market, feedback__urgent=True, feedback__verbatim=verbatim)
    )


async def alerts_of(url: str, ids: list[str]) -> int | None:
    found: int = await fetchval(
        url,
        "SELECT count(DISTINCT submission_id) FROM terrain.alerts"
        " WHERE submission_id = ANY($1::uuid[])",
        ids,
    )
    return found if found == len(ids) else None


@pytest.mark.timeout(120)
async def test_records_notify_cannot_handle_are_dead_lettered_and_alerting_goes_on(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    connection = await asyncpg.connect(database_url)
    with WebhookSink() as sink:
        manager = await add_manager(
            connection=connection,
            market="SN",
            name="Dead-letter test manager",
            role="country_manager",
            webhook_url=sink.url("/sn"),
        )
        try:
            first_key, first = urgent("SN")
            # Decoded fine, but PostgreSQL cannot hold the alert's payload (U+0000).
            poison_key, value = urgent("SN", SECRET)
            envelope = json.loads(value)
            envelope["submission"]["feedback"]["verbatim"] = SECRET + "\x00"
            poison = json.dumps(envelope).encode()
            await produce(
                SUBMISSIONS_ENRICHED.name(namespace),
                [
                    (b"junk", b"\xff not json"),
                    (b"v99", json.dumps({"schema_version": 99}).encode()),
                    (first_key, first),
                    (poison_key, poison),
                ],
            )
            async with running(create_app(notify_settings(settings_kwargs))):
                ids = [json.loads(first)["submission_id"]]
                assert await eventually(lambda: alerts_of(database_url, ids), timeout_s=30)
                assert await eventually(
                    lambda: _failed(database_url, namespace, expect=3), timeout_s=30
                )
                # Notify goes on: the next urgent complaint is alerted.
                later_key, later = urgent("SN")
                await produce(SUBMISSIONS_ENRICHED.name(namespace), [(later_key, later)])
                ids.append(json.loads(later)["submission_id"])
                assert await eventually(lambda: alerts_of(database_url, ids), timeout_s=30)
        finally:
            await connection.execute(
                "UPDATE terrain.managers SET active = false WHERE manager_id = $1", manager
            )
            await connection.close()

    letters = await read_topic(DEAD_LETTERS.name(namespace), expect=3)
    decoded = [DeadLetterV1.model_validate_json(r.value) for r in letters]
    assert sorted(d.reason.value for d in decoded) == [
        "store_rejected",
        "undecodable",
        "unknown_schema_version",
    ]
    assert {d.service for d in decoded} == {"notify"}
    rejected = next(d for d in decoded if d.reason.value == "store_rejected")
    assert str(rejected.submission_id) == envelope["submission_id"]
    assert rejected.detail.startswith("SQLSTATE 22P05")
    assert "98 765 432" not in rejected.detail
    assert await fetchval(
        database_url,
        "SELECT count(*) FROM terrain.alerts WHERE submission_id = $1::uuid",
        envelope["submission_id"],
    ) == 0  # fmt: skip


@pytest.mark.timeout(120)
async def test_notify_has_its_own_dead_letter_limit(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    topic = SUBMISSIONS_ENRICHED.name(namespace)
    await produce_junk(topic, 40)
    # Nobody asks it to stop: the dead-letter budget does.
    await until_it_stops(
        create_app(notify_settings(settings_kwargs, dlq_max_consecutive=10, dlq_window=20))
    )
    failed = await fetchval(
        database_url,
        "SELECT count(*) FROM terrain.failed_submissions"
        " WHERE source_topic = $1 AND service = 'notify'",
        topic,
    )
    assert 10 <= failed <= 40


async def _failed(url: str, namespace: str, *, expect: int) -> bool:
    found: int = await fetchval(
        url,
        "SELECT count(*) FROM terrain.failed_submissions"
        " WHERE source_topic = $1 AND service = 'notify'",
        SUBMISSIONS_ENRICHED.name(namespace),
    )
    return found >= expect
