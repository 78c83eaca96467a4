"""What the sender's attempts leave: a row per channel tried (``alert_deliveries``) and the
alert's state (delivered, retried later, failed; unroutable when it was the last hope).

A delivered alert, the common outcome, is recorded with the others delivered at the same
moment in one statement (``DeliveredAlerts``): per alert, a transaction of four statements
and a pool round trip were most of what the PostgreSQL backends spent on notify.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from notify.outbox import UnroutableAlert
from terrain_contracts.vocabulary import DeliveryOutcome, Severity
from terrain_runtime.db import Connection
from terrain_runtime.pipeline import Database


@dataclass(frozen=True, slots=True)
class ChannelResult:
    channel: str
    ok: bool
    detail: str


# The sender gave up on an alert: if no other alert of its submission and rule was delivered
# or may still be (pending, held, in a digest), nobody will hear of the complaint. The lock
# serialises the recipients of one submission failing at the same moment, so the last one
# to give up sees the others' outcome (else each would see the other still pending).
_LOCK_SUBMISSION_RULE = """
SELECT pg_advisory_xact_lock(hashtextextended(submission_id::text || '/' || rule_id, 6))
FROM terrain.alerts WHERE alert_id = $1
"""
_RECORD_ALL_FAILED = """
INSERT INTO terrain.unroutable_alerts
    (submission_id, rule_id, market, severity, signals, reason, detail, received_at,
     ruleset_version, payload, trace_context)
SELECT a.submission_id, a.rule_id, a.market, a.severity, a.signals, 'all_channels_failed',
       format('every channel of %s recipient(s) failed for good', (
           SELECT count(*) FROM terrain.alerts o
           WHERE o.submission_id = a.submission_id AND o.rule_id = a.rule_id)),
       a.received_at, a.ruleset_version, a.payload, a.trace_context
FROM terrain.alerts a
WHERE a.alert_id = $1 AND a.rule_id <> 'digest'
  AND NOT EXISTS (
      SELECT 1 FROM terrain.alerts o
      WHERE o.submission_id = a.submission_id AND o.rule_id = a.rule_id
        AND o.status <> 'failed')
ON CONFLICT (submission_id, rule_id) DO NOTHING
RETURNING submission_id, rule_id, market, severity
"""


@dataclass(frozen=True, slots=True)
class DeliveryRecorded:
    delivered_at: datetime | None = None
    # Set when this failure left the complaint with nobody to receive it (recorded now).
    unroutable: UnroutableAlert | None = None


async def record_delivery(
    *,
    connection: Connection,
    alert_id: UUID,
    attempt: int,
    results: list[ChannelResult],
    outcome: DeliveryOutcome,
    retry_in_s: float | None = None,
) -> DeliveryRecorded:
    """Every channel's attempt, then the alert's state: ``delivered``, ``retry`` (after
    ``retry_in_s``) or ``failed``; a failure that leaves the complaint with nobody who
    received it or may still receive it is recorded as unroutable."""
    if outcome == DeliveryOutcome.DELIVERED:
        delivered = await record_delivered(
            connection=connection, deliveries=[Delivery(alert_id, attempt, results)]
        )
        return DeliveryRecorded(delivered_at=delivered.get(alert_id))
    async with connection.transaction():
        await connection.executemany(
            """INSERT INTO terrain.alert_deliveries (alert_id, channel, attempt, ok, detail)
               VALUES ($1, $2, $3, $4, $5)""",
            [(alert_id, r.channel, attempt, r.ok, r.detail[:1000]) for r in results],
        )
        done = [r.channel for r in results if r.ok]
        if outcome == DeliveryOutcome.FAILED:
            await connection.execute(_LOCK_SUBMISSION_RULE, alert_id)
            await connection.execute(
                """UPDATE terrain.alerts SET status = 'failed',
                          channels_done = channels_done || $2::text[]
                   WHERE alert_id = $1""",
                alert_id,
                done,
            )
            row = await connection.fetchrow(_RECORD_ALL_FAILED, alert_id)
            if row is None:
                return DeliveryRecorded()
            return DeliveryRecorded(
                unroutable=UnroutableAlert(
                    row["submission_id"],
                    row["rule_id"],
                    row["market"],
                    Severity(row["severity"]),
                    "all_channels_failed",
                )
            )
        await connection.execute(
            """UPDATE terrain.alerts
               SET next_attempt_at = now() + make_interval(secs => $2),
                   channels_done = channels_done || $3::text[]
               WHERE alert_id = $1""",
            alert_id,
            retry_in_s or 0.0,
            done,
        )
        return DeliveryRecorded()


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivered alert's attempt: the claim's attempt number and each channel's result."""

    alert_id: UUID
    attempt: int
    results: list[ChannelResult]


_RECORD_DELIVERED = """
WITH d AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bool[], $5::text[])
        AS d(alert_id, channel, attempt, ok, detail)),
attempts AS (
    INSERT INTO terrain.alert_deliveries (alert_id, channel, attempt, ok, detail)
    SELECT alert_id, channel, attempt, ok, detail FROM d)
UPDATE terrain.alerts a
SET status = 'delivered', delivered_at = now(), channels_done = a.channels_done || t.done
FROM (SELECT alert_id, coalesce(array_agg(channel) FILTER (WHERE ok), '{}') AS done
      FROM d GROUP BY alert_id) t
WHERE a.alert_id = t.alert_id
RETURNING a.alert_id, a.delivered_at
"""


async def record_delivered(
    *, connection: Connection, deliveries: Sequence[Delivery]
) -> dict[UUID, datetime]:
    """Every channel's attempt of these delivered alerts, and each alert delivered, in one
    statement; returns when each was."""
    flat = [(d.alert_id, d.attempt, r) for d in deliveries for r in d.results]
    rows = await connection.fetch(
        _RECORD_DELIVERED,
        [alert_id for alert_id, _, _ in flat],
        [r.channel for _, _, r in flat],
        [attempt for _, attempt, _ in flat],
        [r.ok for _, _, r in flat],
        [r.detail[:1000] for _, _, r in flat],
    )
    return {row["alert_id"]: row["delivered_at"] for row in rows}


class DeliveredAlerts:
    """Records delivered alerts a batch at a time: ``record`` waits for the statement that
    holds its alert, together with every other delivery that ended meanwhile (those of one
    claim end together). A delivery still waits for its own record, so its claim's lease
    is renewed until it is written, and an error reaches each waiting delivery."""

    def __init__(self, pool: Database) -> None:
        self._pool = pool
        self._waiting: list[tuple[Delivery, asyncio.Future[datetime | None]]] = []
        self._writing: asyncio.Task[None] | None = None
        self._writing_now: list[tuple[Delivery, asyncio.Future[datetime | None]]] = []

    async def record(self, delivery: Delivery) -> datetime | None:
        future: asyncio.Future[datetime | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, future))
        if self._writing is None:
            self._writing = asyncio.create_task(self._write())
            self._writing.add_done_callback(self._written)
        return await future

    async def _write(self) -> None:
        # One turn of the loop: the deliveries ending in this one join the statement.
        await asyncio.sleep(0)
        while self._waiting:
            # Those that come during the statement are the next one's.
            batch = self._writing_now = self._waiting
            self._waiting = []
            try:
                async with self._pool.acquire() as connection:
                    delivered = await record_delivered(
                        connection=connection, deliveries=[d for d, _ in batch]
                    )
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                delivered = {}
            for delivery, future in batch:
                if not future.done():
                    future.set_result(delivered.get(delivery.alert_id))
        # Nothing waits: the next delivery starts a writer (set here, not in a callback,
        # which would run after that delivery).
        self._writing, self._writing_now = None, []

    def _written(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            return
        self._writing = None
        # Cancelled on the way (shutdown): nobody waits for a statement never sent.
        for _, future in [*self._writing_now, *self._waiting]:
            if not future.done():
                future.cancel()
        self._waiting, self._writing_now = [], []
