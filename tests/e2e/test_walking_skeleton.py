"""The walking skeleton as processes: field app -> ingest -> Kafka -> enrich -> PostgreSQL
-> Kafka -> notify -> webhook."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from ingest.repository import create_device
from notify.managers import add_manager
from terrain_contracts.markets import Market
from terrain_testkit.factories import field_submission
from terrain_testkit.processes import Stack, post
from terrain_testkit.sinks import WebhookSink


async def test_a_submission_is_stored_once_and_alerts_its_market(
    stack: Stack, database_url: str
) -> None:
    with WebhookSink() as sink:
        connection = await asyncpg.connect(database_url)
        try:
            _, token = await create_device(connection=connection, market=Market.SN, label="e2e")
            await add_manager(
                connection=connection,
                market="SN",
                name="Fatou",
                role="country_manager",
                webhook_url=sink.url("/sn"),
            )
            submission = field_submission()  # the contract's example: satisfaction 1, orange_money
            first = await asyncio.to_thread(post, stack, "/v1/submissions", token, submission)
            accepted_at = time.monotonic()
            assert first.status_code == 202, first.text
            resend = await asyncio.to_thread(post, stack, "/v1/submissions", token, submission)
            assert resend.status_code == 202

            row = None
            while row is None and time.monotonic() - accepted_at < 30:
                row = await connection.fetchrow(
                    "SELECT agent_market, msisdn_hash, satisfaction FROM terrain.submissions"
                    " WHERE submission_id = $1::uuid",
                    submission["submission_id"],
                )
                await asyncio.sleep(0.05)
            assert row is not None, stack.output()[-3000:]
            assert (row["agent_market"], row["satisfaction"]) == ("SN", 1)
            assert row["msisdn_hash"].startswith("k1:")

            deadline = time.monotonic() + 30
            while not sink.received and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            assert [b["submission_id"] for b in sink.bodies("/sn")] == [submission["submission_id"]]
            count = await connection.fetchval(
                "SELECT count(*) FROM terrain.submissions WHERE submission_id = $1::uuid",
                submission["submission_id"],
            )
            assert count == 1
        finally:
            await connection.close()
    logs = stack.output()
    assert "77 123 45 67" not in logs and "771234567" not in logs
