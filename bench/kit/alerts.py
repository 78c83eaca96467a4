"""Urgent alerts' latency as the pipeline's tables record it, in all and by leg."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# An alert's time by leg: received -> stored (ingest, Kafka, enrich), stored -> in the
# outbox (Kafka, notify's consumer), outbox -> delivered (the sender, the webhook).
LEGS = {
    "all": "a.delivered_at - a.received_at",
    "stored": "s.stored_at - a.received_at",
    "outbox": "a.created_at - s.stored_at",
    "delivered": "a.delivered_at - a.created_at",
}
# Built from the constant legs above only: nothing from outside reaches this text.
ALERTS = (
    "SELECT count(*) AS n, "  # noqa: S608
    + ", ".join(
        f"percentile_cont({q}) WITHIN GROUP (ORDER BY extract(epoch FROM {leg})) AS {name}_{p}"
        for name, leg in LEGS.items()
        for q, p in ((0.5, "p50"), (0.99, "p99"))
    )
    + " FROM terrain.alerts a JOIN terrain.submissions s USING (submission_id)"
    " WHERE s.campaign_id <> $1 AND a.delivered_at IS NOT NULL"
)


@dataclass(frozen=True, slots=True)
class AlertLatencies:
    count: int
    p50_ms: float
    p99_ms: float
    legs: str  # "stored p50 / p99, outbox ..., delivered ..." in ms


async def alert_latencies(connection: asyncpg.Connection, exclude_campaign: str) -> AlertLatencies:
    """The delivered alerts of every campaign but ``exclude_campaign`` (the warm-up)."""
    row = await connection.fetchrow(ALERTS, exclude_campaign)
    assert row is not None

    def ms(key: str) -> float:
        return float(row[key] or 0) * 1000

    return AlertLatencies(
        count=int(row["n"]),
        p50_ms=ms("all_p50"),
        p99_ms=ms("all_p99"),
        legs=", ".join(
            f"{name} {ms(f'{name}_p50'):,.0f} / {ms(f'{name}_p99'):,.0f}" for name in list(LEGS)[1:]
        ),
    )
