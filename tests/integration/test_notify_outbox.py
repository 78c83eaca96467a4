"""Notify against the real broker and database: the right market's managers get one
signed webhook per urgent submission, whatever the redeliveries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

import asyncpg

from notify.app import create_app
from notify.managers import add_manager
from notify.settings import NotifySettings
from terrain_contracts.topics import SUBMISSIONS_ENRICHED
from terrain_testkit.database import eventually
from terrain_testkit.factories import field_submission, stored_record
from terrain_testkit.sinks import WebhookSink
from terrain_testkit.topics import produce, running


async def test_urgent_submission_alerts_its_market_once_with_a_signature(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    with WebhookSink() as sink:
        connection = await asyncpg.connect(database_url)
        try:
            await add_manager(
                connection=connection,
                market="GN",
                name="Mariama",
                role="country_manager",
                webhook_url=sink.url("/gn"),
            )
            await add_manager(
                connection=connection,
                market="ML",
                name="Oumar",
                role="country_manager",
                webhook_url=sink.url("/ml"),
            )
            await add_manager(
                connection=connection,
                market="GN",
                name="Director",
                role="regional_director",
                level=2,
                webhook_url=sink.url("/gn-l2"),
            )
        finally:
            await connection.close()

        urgent = field_submission(
            agent__market="GN", feedback__urgent=True, feedback__satisfaction=4
        )
        calm = field_submission(
            agent__market="GN", feedback__satisfaction=5, feedback__topics=["offers"]
        )
        fraud = field_submission(agent__market="GN", feedback__satisfaction=4)
        urgent_record = stored_record(urgent)
        # The same urgent submission arrives three times (a resend and a republish).
        await produce(
            SUBMISSIONS_ENRICHED.name(namespace),
            [
                urgent_record,
                stored_record(calm),
                urgent_record,
                stored_record(fraud, ["fraud"]),
                urgent_record,
            ],
        )
        settings = NotifySettings(**settings_kwargs)
        async with running(create_app(settings)):
            await eventually(lambda: _count(sink, "/gn", 2))
            await asyncio.sleep(1.0)  # room for a duplicate to show up, if there were one

    connection = await asyncpg.connect(database_url)
    try:  # later tests count a market's active managers
        await connection.execute(
            "UPDATE terrain.managers SET active = false WHERE name IN ('Mariama', 'Oumar', 'Director')"
        )
    finally:
        await connection.close()
    alerts = sink.bodies("/gn")
    assert sorted(a["submission_id"] for a in alerts) == sorted(
        [urgent["submission_id"], fraud["submission_id"]]
    )
    by_id = {a["submission_id"]: a for a in alerts}
    assert by_id[urgent["submission_id"]]["rule"] == "p1-agent-urgent"
    assert by_id[fraud["submission_id"]]["signals"] == ["fraud"]
    assert all(a["market"] == "GN" and a["severity"] == "P1" and a["ack_url"] for a in alerts)
    assert sink.bodies("/ml") == [] and sink.bodies("/gn-l2") == []
    _, headers, body = sink.received[0]
    expected = hmac.new(
        settings.webhook_signing_secret.get_secret_value().encode(),
        headers["x-terrain-timestamp"].encode() + b"." + body,
        hashlib.sha256,
    ).hexdigest()
    assert headers["x-terrain-signature"] == f"sha256={expected}"


async def _count(sink: WebhookSink, path: str, n: int) -> bool:
    return len(sink.bodies(path)) >= n
