"""SQL of notify: managers, the alert outbox and its delivery attempts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from terrain_runtime.db import Connection

_RECORD_ALERTS = """
INSERT INTO terrain.alerts
    (submission_id, manager_id, rule_id, severity, signals, market, received_at, payload)
SELECT d.submission_id, m.manager_id, d.rule_id, d.severity, d.signals, d.market,
       d.received_at, d.payload
FROM jsonb_to_recordset($1::jsonb) AS d(
    submission_id uuid, rule_id text, severity text, signals text[], market text,
    received_at timestamptz, payload jsonb)
JOIN terrain.managers m ON m.market = d.market AND m.level = 1 AND m.active
ON CONFLICT (submission_id, manager_id, rule_id) DO NOTHING
"""

# Claiming pushes next_attempt_at forward by a lease: if this sender dies mid-delivery the
# alert becomes due again after the lease instead of being stuck.
_CLAIM = """
UPDATE terrain.alerts a
SET attempts = a.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
FROM terrain.managers m
WHERE m.manager_id = a.manager_id
  AND a.alert_id IN (
      SELECT alert_id FROM terrain.alerts
      WHERE status = 'pending' AND next_attempt_at <= now()
      ORDER BY next_attempt_at
      LIMIT $1
      FOR UPDATE SKIP LOCKED)
RETURNING a.alert_id, a.submission_id, a.attempts, a.payload, a.received_at,
          m.manager_id, m.webhook_url, m.email
"""


@dataclass(frozen=True, slots=True)
class AlertToRecord:
    submission_id: UUID
    rule_id: str
    severity: str
    signals: list[str]
    market: str
    received_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DueAlert:
    alert_id: UUID
    submission_id: UUID
    attempt: int
    payload: dict[str, Any]
    received_at: datetime
    manager_id: UUID
    webhook_url: str | None
    email: str | None


async def record_alerts(*, connection: Connection, alerts: list[AlertToRecord]) -> int:
    """Write one outbox row per (submission, level-1 manager of its market, rule); returns
    how many are new (a redelivered submission adds none)."""
    if not alerts:
        return 0
    document = json.dumps(
        [
            {
                "submission_id": str(a.submission_id),
                "rule_id": a.rule_id,
                "severity": a.severity,
                "signals": a.signals,
                "market": a.market,
                "received_at": a.received_at.isoformat(),
                "payload": a.payload,
            }
            for a in alerts
        ],
        ensure_ascii=False,
    )
    status: str = await connection.execute(_RECORD_ALERTS, document)
    return int(status.rsplit(" ", 1)[-1])


async def claim_due(
    *, connection: asyncpg.Connection | asyncpg.Pool, limit: int, lease_s: float
) -> list[DueAlert]:
    rows = await connection.fetch(_CLAIM, limit, lease_s)
    return [
        DueAlert(
            alert_id=row["alert_id"],
            submission_id=row["submission_id"],
            attempt=row["attempts"],
            payload=json.loads(row["payload"]),
            received_at=row["received_at"],
            manager_id=row["manager_id"],
            webhook_url=row["webhook_url"],
            email=row["email"],
        )
        for row in rows
    ]


async def record_attempt(
    *,
    connection: asyncpg.Connection | asyncpg.Pool,
    alert_id: UUID,
    channel: str,
    attempt: int,
    ok: bool,
    detail: str,
    retry_in_s: float | None,
) -> None:
    """One delivery attempt; delivered, rescheduled after ``retry_in_s``, or given up (None)."""
    async with (
        connection.acquire() if isinstance(connection, asyncpg.Pool) else _Same(connection) as conn,
        conn.transaction(),
    ):
        await conn.execute(
            """INSERT INTO terrain.alert_deliveries (alert_id, channel, attempt, ok, detail)
                   VALUES ($1, $2, $3, $4, $5)""",
            alert_id,
            channel,
            attempt,
            ok,
            detail[:1000],
        )
        if ok:
            await conn.execute(
                """UPDATE terrain.alerts SET status = 'delivered', delivered_at = now()
                       WHERE alert_id = $1""",
                alert_id,
            )
        elif retry_in_s is None:
            await conn.execute(
                "UPDATE terrain.alerts SET status = 'failed' WHERE alert_id = $1", alert_id
            )
        else:
            await conn.execute(
                """UPDATE terrain.alerts
                       SET next_attempt_at = now() + make_interval(secs => $2)
                       WHERE alert_id = $1""",
                alert_id,
                retry_in_s,
            )


class _Same:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def __aenter__(self) -> asyncpg.Connection:
        return self.connection

    async def __aexit__(self, *_: object) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Manager:
    manager_id: UUID
    market: str
    name: str
    role: str
    level: int
    email: str | None
    webhook_url: str | None
    language: str
    active: bool


async def add_manager(
    *,
    connection: asyncpg.Connection | asyncpg.Pool,
    market: str,
    name: str,
    role: str,
    level: int = 1,
    email: str | None = None,
    webhook_url: str | None = None,
    sms_sealed: str | None = None,
    language: str = "fr",
    timezone: str = "UTC",
) -> UUID:
    manager_id: UUID = await connection.fetchval(
        """INSERT INTO terrain.managers
               (market, name, role, level, email, webhook_url, sms_sealed, language, timezone)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING manager_id""",
        market,
        name,
        role,
        level,
        email,
        webhook_url,
        sms_sealed,
        language,
        timezone,
    )
    return manager_id


async def list_managers(
    *, connection: asyncpg.Connection | asyncpg.Pool, market: str | None = None
) -> list[Manager]:
    rows = await connection.fetch(
        """SELECT manager_id, market, name, role, level, email, webhook_url, language, active
           FROM terrain.managers WHERE $1::text IS NULL OR market = $1
           ORDER BY market, level, name""",
        market,
    )
    return [Manager(**dict(row)) for row in rows]


async def deactivate_manager(
    *, connection: asyncpg.Connection | asyncpg.Pool, manager_id: UUID
) -> bool:
    status: str = await connection.execute(
        "UPDATE terrain.managers SET active = false WHERE manager_id = $1 AND active", manager_id
    )
    return status.endswith(" 1")
