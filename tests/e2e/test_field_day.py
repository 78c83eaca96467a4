"""A small field day through the three services as processes, checked by the simulator's
own verification (stored once, rejected with the right field, alerted once to the right
market), then the campaign report rendered from what was stored."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from terrain_simulator.generator import DayOptions
from terrain_simulator.receipts import total as receipts_total
from terrain_simulator.report import build_report
from terrain_simulator.simulate import simulate
from terrain_testkit.factories import country_managers
from terrain_testkit.processes import Stack
from terrain_testkit.sinks import WebhookSink


async def test_a_small_field_day_keeps_every_promise(stack: Stack, database_url: str) -> None:
    started = datetime.now(UTC)
    campaign = f"e2e-{started:%H%M%S%f}"
    with WebhookSink() as sink:
        connection = await asyncpg.connect(database_url)
        try:
            async with country_managers(database_url, sink):
                result = await simulate(
                    database_url=database_url,
                    ingest_url=stack.ingest_url,
                    options=DayOptions(
                        visits=250, seed=11, campaign_id=campaign, invalid_share=0.05
                    ),
                    concurrency=8,
                    settle_s=60,
                )
            report = await build_report(connection, campaign=campaign, since=started)
        finally:
            await connection.close()
    verdict = result.verdict
    assert verdict.ok, verdict.problems[:10]
    total = verdict.total()
    assert total.accepted + total.rejected == 250
    assert total.rejected >= 1
    assert total.urgent >= 1
    assert total.alerts_delivered == total.alerts_expected
    assert receipts_total(verdict.receipts).right == 250  # every device read its receipts
    for path, _, _ in sink.received:
        assert path.startswith("/")
    assert "<svg" in report
    assert "Satisfaction by market" in report
