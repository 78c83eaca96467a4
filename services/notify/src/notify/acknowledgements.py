"""Acknowledgement and escalation in PostgreSQL: the alert a manager's link opens, their
acknowledgement or resolution, the alerts overdue for one, and the escalation's new
alerts. Every statement takes parameters only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from terrain_contracts.vocabulary import AlertStatus, Severity
from terrain_runtime.db import Connection


@dataclass(frozen=True, slots=True)
class AwaitingAcknowledgement:
    alert_id: UUID
    severity: Severity
    created_at: datetime
    timezone: str
    working_hours: str
    working_days: list[int]


async def awaiting_acknowledgement(
    *,
    connection: Connection,
    p1_created_before: datetime,
    p2_created_before: datetime,
    after: tuple[datetime, UUID] | None = None,
    limit: int = 500,
) -> list[AwaitingAcknowledgement]:
    """Alerts old enough to be overdue (P1 by wall clock; P2 at least its SLA in wall-clock
    time, working hours being longer) that nobody acknowledged (for their submission and
    rule, at any level) and that were not escalated yet; one page, in (created_at, id)
    order after ``after``, so a backlog of not-yet-due alerts cannot hide a due one."""
    start_at, start_id = after or (datetime.min.replace(tzinfo=UTC), UUID(int=0))
    rows = await connection.fetch(
        """SELECT a.alert_id, a.severity, a.created_at, m.timezone, m.working_hours,
                  m.working_days
           FROM terrain.alerts a JOIN terrain.managers m USING (manager_id)
           WHERE a.acknowledged_at IS NULL AND a.escalated_at IS NULL
             AND a.rule_id <> 'digest'
             AND ((a.severity = 'P1' AND a.created_at <= $1)
                  OR (a.severity <> 'P1' AND a.created_at <= $2))
             AND (a.created_at, a.alert_id) > ($3, $4)
             AND NOT EXISTS (
                 SELECT 1 FROM terrain.alerts o
                 WHERE o.submission_id = a.submission_id AND o.rule_id = a.rule_id
                   AND o.acknowledged_at IS NOT NULL)
           ORDER BY a.created_at, a.alert_id LIMIT $5""",
        p1_created_before,
        p2_created_before,
        start_at,
        start_id,
        limit,
    )
    return [
        AwaitingAcknowledgement(
            alert_id=r["alert_id"],
            severity=Severity(r["severity"]),
            created_at=r["created_at"],
            timezone=r["timezone"],
            working_hours=r["working_hours"],
            working_days=list(r["working_days"]),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class EscalationSource:
    alert_id: UUID
    market: str
    level: int
    # Whether the alert went to a regional director: the rung it stands on.
    regional: bool


async def lock_for_escalation(*, connection: Connection, alert_id: UUID) -> EscalationSource | None:
    """Lock an alert not escalated yet (inside the caller's transaction); None if it was."""
    row = await connection.fetchrow(
        """SELECT a.alert_id, a.market, a.level, m.market = '*' AS regional
           FROM terrain.alerts a JOIN terrain.managers m USING (manager_id)
           WHERE a.alert_id = $1 AND a.escalated_at IS NULL
           FOR UPDATE OF a""",
        alert_id,
    )
    if row is None:
        return None
    return EscalationSource(row["alert_id"], row["market"], row["level"], row["regional"])


_ESCALATE = """
WITH source AS (SELECT * FROM terrain.alerts WHERE alert_id = $1),
inserted AS (
    INSERT INTO terrain.alerts
        (submission_id, manager_id, rule_id, severity, signals, market, received_at, payload,
         ruleset_version, level, escalated_from, created_at, trace_context)
    SELECT s.submission_id, m.manager_id, s.rule_id, s.severity, s.signals, s.market,
           s.received_at, s.payload || $5::jsonb, s.ruleset_version, $3, s.alert_id, $2,
           s.trace_context
    FROM source s CROSS JOIN unnest($4::uuid[]) AS m(manager_id)
    ON CONFLICT (submission_id, manager_id, rule_id) DO NOTHING
    RETURNING alert_id)
UPDATE terrain.alerts a
SET escalated_at = $2,
    escalation_detail = CASE
        WHEN $3::smallint IS NULL THEN 'not acknowledged; no higher level'
        ELSE format('not acknowledged; escalated to %s (%s new alerts)',
                    $6::text, (SELECT count(*) FROM inserted))
    END
FROM source s WHERE a.alert_id = s.alert_id
RETURNING a.escalation_detail
"""


async def record_escalation(
    *,
    connection: Connection,
    alert_id: UUID,
    now: datetime,
    level: int | None,
    manager_ids: tuple[UUID, ...] = (),
    payload_note: dict[str, Any] | None = None,
    described: str = "",
) -> str:
    """Write the escalation's alerts (none when ``level`` is None: nobody stands higher) and
    mark the source escalated; returns what was recorded on it."""
    detail: str = await connection.fetchval(
        _ESCALATE,
        alert_id,
        now,
        level,
        list(manager_ids),
        json.dumps(payload_note or {}),
        described,
    )
    return detail


@dataclass(frozen=True, slots=True)
class AlertView:
    alert_id: UUID
    submission_id: UUID
    manager_name: str
    language: str
    severity: Severity
    rule_id: str
    ruleset_version: str
    payload: dict[str, Any]
    status: AlertStatus
    acknowledged_at: datetime | None
    acknowledgement_note: str | None
    resolved_at: datetime | None
    resolution_note: str | None
    escalated_at: datetime | None


async def alert_for_manager(
    *, connection: Connection, alert_id: UUID, manager_id: UUID
) -> AlertView | None:
    """The alert as its manager's link opens it; None when it is not theirs."""
    row = await connection.fetchrow(
        """SELECT a.alert_id, a.submission_id, m.name AS manager_name, m.language, a.severity,
                  a.rule_id, a.ruleset_version, a.payload, a.status, a.acknowledged_at,
                  a.acknowledgement_note, a.resolved_at, a.resolution_note, a.escalated_at
           FROM terrain.alerts a JOIN terrain.managers m USING (manager_id)
           WHERE a.alert_id = $1 AND a.manager_id = $2""",
        alert_id,
        manager_id,
    )
    if row is None:
        return None
    values = dict(row)
    values["payload"] = json.loads(values["payload"])
    values["severity"] = Severity(values["severity"])
    values["status"] = AlertStatus(values["status"])
    return AlertView(**values)


async def sealed_customer_number(*, connection: Connection, submission_id: UUID) -> str | None:
    value: str | None = await connection.fetchval(
        "SELECT msisdn_sealed FROM terrain.customer_contacts WHERE submission_id = $1",
        submission_id,
    )
    return value


@dataclass(frozen=True, slots=True)
class Acknowledged:
    severity: Severity
    # Set only for the first acknowledgement of a delivered alert: its time to acknowledge.
    waited_s: float | None


async def acknowledge(
    *, connection: Connection, alert_id: UUID, manager_id: UUID, note: str | None, now: datetime
) -> Acknowledged | None:
    """Acknowledge the manager's alert (the first time and person stay); None when it is not
    theirs."""
    row = await connection.fetchrow(
        """UPDATE terrain.alerts a
           SET acknowledged_at = coalesce(a.acknowledged_at, $3),
               acknowledged_by = coalesce(a.acknowledged_by, $2),
               acknowledgement_note = coalesce($4, a.acknowledgement_note)
           FROM (SELECT alert_id, acknowledged_at FROM terrain.alerts
                 WHERE alert_id = $1 FOR UPDATE) before
           WHERE a.alert_id = before.alert_id AND a.manager_id = $2
           RETURNING a.severity,
                     CASE WHEN before.acknowledged_at IS NULL AND a.delivered_at IS NOT NULL
                          THEN extract(epoch FROM $3 - a.delivered_at) END AS waited_s""",
        alert_id,
        manager_id,
        now,
        note,
    )
    if row is None:
        return None
    waited = row["waited_s"]
    return Acknowledged(Severity(row["severity"]), float(waited) if waited is not None else None)


async def resolve(
    *, connection: Connection, alert_id: UUID, manager_id: UUID, note: str | None, now: datetime
) -> bool:
    """Resolve the manager's alert, acknowledging it too if nobody had; False when it is not
    theirs."""
    status: str = await connection.execute(
        """UPDATE terrain.alerts
           SET acknowledged_at = coalesce(acknowledged_at, $3),
               acknowledged_by = coalesce(acknowledged_by, $2),
               resolved_at = coalesce(resolved_at, $3),
               resolution_note = coalesce($4, resolution_note)
           WHERE alert_id = $1 AND manager_id = $2""",
        alert_id,
        manager_id,
        now,
        note,
    )
    return status.endswith(" 1")
