"""The alert outbox: alerts recorded as routed, claimed under a lease, delivered or retried,
P2 throttled into digests. The sender (sender.py) drives it; every statement takes
parameters only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from terrain_contracts.vocabulary import Severity
from terrain_runtime.db import Connection

# One statement per batch: every routed alert's rows and every unroutable alert. A
# submission that already has alerts for its rule is left alone: a redelivery after the
# directory changed must not send it to a second set of managers (nor can a resend in the
# same batch count twice against a throttle). A P2 alert subject to the throttle ($2 a
# manager per $3 seconds; $2 NULL: counted by the sender instead) takes one of its
# manager's slots here, or is written held for the digest: deciding it at delivery cost a
# transaction, a lock and three statements per alert, for the two thirds of a field day's
# alerts that are P2 and mostly held.
_RECORD_ROUTED = """
WITH d AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS d(
        n int, submission_id uuid, rule_id text, severity text, signals text[], market text,
        received_at timestamptz, payload jsonb, ruleset_version text, trace_context jsonb,
        level smallint, manager_ids uuid[], detail text)),
fresh AS (
    SELECT DISTINCT ON (submission_id, rule_id) * FROM d WHERE NOT EXISTS (
        SELECT 1 FROM terrain.alerts a
        WHERE a.submission_id = d.submission_id AND a.rule_id = d.rule_id)),
rows AS (
    SELECT f.*, m.manager_id, f.severity = 'P2' AND $2::int IS NOT NULL AS counts,
           row_number() OVER (PARTITION BY m.manager_id, f.severity ORDER BY f.n) AS nth
    FROM fresh f CROSS JOIN LATERAL unnest(f.manager_ids) AS m(manager_id)),
used AS (
    SELECT r.manager_id, (
        SELECT count(*) FROM terrain.alerts a
        WHERE a.manager_id = r.manager_id
          AND a.throttle_counted_at > now() - make_interval(secs => $3)) AS n
    FROM (SELECT DISTINCT manager_id FROM rows WHERE counts) r),
inserted AS (
    INSERT INTO terrain.alerts
        (submission_id, manager_id, rule_id, severity, signals, market, received_at, payload,
         ruleset_version, trace_context, level, status, throttle_counted_at)
    SELECT r.submission_id, r.manager_id, r.rule_id, r.severity, r.signals, r.market,
           r.received_at, r.payload, r.ruleset_version, r.trace_context, r.level,
           CASE WHEN r.counts AND r.nth > $2 - u.n THEN 'held' ELSE 'pending' END,
           CASE WHEN r.counts AND r.nth <= $2 - u.n THEN now() END
    FROM rows r LEFT JOIN used u ON u.manager_id = r.manager_id
    ON CONFLICT (submission_id, manager_id, rule_id) DO NOTHING
    RETURNING status),
unroutable AS (
    INSERT INTO terrain.unroutable_alerts
        (submission_id, rule_id, market, severity, signals, reason, detail, received_at,
         ruleset_version, payload, trace_context)
    SELECT f.submission_id, f.rule_id, f.market, f.severity, f.signals, 'no_recipient',
           f.detail, f.received_at, f.ruleset_version, f.payload, f.trace_context
    FROM fresh f WHERE cardinality(f.manager_ids) = 0
    ON CONFLICT (submission_id, rule_id) DO NOTHING
    RETURNING submission_id, rule_id, market, severity)
SELECT (SELECT count(*) FROM inserted) AS created,
       (SELECT count(*) FROM inserted WHERE status = 'held') AS held,
       coalesce((SELECT jsonb_agg(to_jsonb(u)) FROM unroutable u), '[]'::jsonb) AS unroutable
"""

# The throttle's count-then-take is atomic across batches, replicas and the sender's own
# admissions (admit_p2): each of the batch's managers is locked, in one order everywhere,
# until the routing transaction ends, and the statement above reads the counts after that.
_LOCK_MANAGERS = """
SELECT pg_advisory_xact_lock(k) FROM (
    SELECT DISTINCT hashtextextended(m::text, 5) AS k FROM unnest($1::uuid[]) AS m ORDER BY k) s
"""

# Claiming pushes next_attempt_at forward by a short lease that the sender renews while the
# delivery is in flight (extend_leases): if this sender dies mid-delivery the alert becomes
# due again within one lease instead of being stuck. Each market gets at most
# its room ($4 for a market with nothing in flight, $3 for the others), so one market's
# backlog never takes another market's turn.
_CLAIM = """
UPDATE terrain.alerts a
SET attempts = a.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
FROM terrain.managers m
WHERE m.manager_id = a.manager_id
  AND a.alert_id IN (
      SELECT alert_id FROM terrain.alerts
      WHERE alert_id IN (
          SELECT c.alert_id FROM (
              SELECT alert_id, market, next_attempt_at,
                     row_number() OVER (PARTITION BY market ORDER BY next_attempt_at) AS n
              FROM terrain.alerts
              WHERE status = 'pending' AND next_attempt_at <= now()) c
          LEFT JOIN jsonb_each_text($3::jsonb) AS room(market, slots)
              ON room.market = c.market::text
          WHERE c.n <= coalesce(room.slots::int, $4)
          ORDER BY c.next_attempt_at
          LIMIT $1)
      FOR UPDATE SKIP LOCKED)
RETURNING a.alert_id, a.submission_id, a.rule_id, a.severity, a.market, a.attempts,
          a.payload, a.received_at, a.channels_done, a.throttle_counted_at IS NOT NULL AS counted,
          m.manager_id, m.webhook_url, m.email, m.sms_sealed, m.language, a.trace_context,
          m.active AS manager_active
"""


@dataclass(frozen=True, slots=True)
class AlertToRecord:
    """An alert the rules decided, before routing chose its managers."""

    submission_id: UUID
    rule_id: str
    severity: Severity
    signals: list[str]
    market: str
    received_at: datetime
    payload: dict[str, Any]
    ruleset_version: str
    trace_context: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class RoutedAlert:
    """An alert and the managers routing chose for it (none: it is unroutable)."""

    alert: AlertToRecord
    level: int
    manager_ids: tuple[UUID, ...]
    # Why nobody, when nobody: recorded with the unroutable alert.
    detail: str = ""


@dataclass(frozen=True, slots=True)
class UnroutableAlert:
    """An alert nobody can receive (``reason``: ``no_recipient`` or ``all_channels_failed``)."""

    submission_id: UUID
    rule_id: str
    market: str
    severity: Severity
    reason: str


@dataclass(frozen=True, slots=True)
class Recorded:
    created: int
    # Only those recorded now: a redelivered batch returns none.
    unroutable: list[UnroutableAlert]
    # Of ``created``, the P2 alerts over their manager's throttle, held for the digest.
    held: int = 0


@dataclass(frozen=True, slots=True)
class Throttle:
    """At most ``limit`` P2 alerts a manager per ``window_s``; the rest wait for a digest."""

    limit: int
    window_s: float


@dataclass(frozen=True, slots=True)
class DueAlert:
    """An alert claimed for delivery to one manager, with where that manager receives it."""

    alert_id: UUID
    submission_id: UUID
    rule_id: str
    severity: Severity
    market: str
    attempt: int
    payload: dict[str, Any]
    received_at: datetime
    channels_done: tuple[str, ...]
    throttle_counted: bool
    manager_id: UUID
    webhook_url: str | None
    email: str | None
    sms_sealed: str | None
    language: str
    # W3C context of the submission's trace: deliveries are spans of that trace.
    trace_context: dict[str, str] | None = None
    # False when the manager was deactivated after the alert was written for them.
    manager_active: bool = True


async def record_routed(
    *, connection: Connection, alerts: list[RoutedAlert], throttle: Throttle | None = None
) -> Recorded:
    """Write one outbox row per (submission, chosen manager, rule), and an unroutable row per
    alert routed to nobody, in one statement; a redelivered submission adds none of either.
    With ``throttle``, each P2 row takes one of its manager's slots or is written held (the
    managers are locked for that until the caller's transaction ends); without, the sender
    counts it when it delivers."""
    if not alerts:
        return Recorded(0, [])
    document = json.dumps(
        [
            {
                "n": n,
                "submission_id": str(r.alert.submission_id),
                "rule_id": r.alert.rule_id,
                "severity": r.alert.severity,
                "signals": r.alert.signals,
                "market": r.alert.market,
                "received_at": r.alert.received_at.isoformat(),
                "payload": r.alert.payload,
                "ruleset_version": r.alert.ruleset_version,
                "trace_context": r.alert.trace_context,
                "level": r.level,
                "manager_ids": [str(m) for m in r.manager_ids],
                "detail": r.detail,
            }
            for n, r in enumerate(alerts)
        ],
        ensure_ascii=False,
    )
    throttled = {m for r in alerts if r.alert.severity == Severity.P2 for m in r.manager_ids}
    if throttle is not None and throttled:
        await connection.execute(_LOCK_MANAGERS, sorted(throttled))
    row = await connection.fetchrow(
        _RECORD_ROUTED,
        document,
        throttle.limit if throttle else None,
        throttle.window_s if throttle else 0.0,
    )
    assert row is not None
    unroutable = [
        UnroutableAlert(
            UUID(u["submission_id"]),
            u["rule_id"],
            u["market"],
            Severity(u["severity"]),
            "no_recipient",
        )
        for u in json.loads(row["unroutable"])
    ]
    return Recorded(int(row["created"]), unroutable, int(row["held"]))


async def claim_due(
    *,
    connection: Connection,
    limit: int,
    lease_s: float,
    per_market: int = 1_000_000,
    room: dict[str, int] | None = None,
) -> list[DueAlert]:
    """Claim up to ``limit`` due alerts, at most ``room[market]`` (else ``per_market``) of
    each market."""
    rows = await connection.fetch(_CLAIM, limit, lease_s, json.dumps(room or {}), per_market)
    return [
        DueAlert(
            alert_id=row["alert_id"],
            submission_id=row["submission_id"],
            rule_id=row["rule_id"],
            severity=Severity(row["severity"]),
            market=row["market"],
            attempt=row["attempts"],
            payload=json.loads(row["payload"]),
            received_at=row["received_at"],
            channels_done=tuple(row["channels_done"]),
            throttle_counted=row["counted"],
            manager_id=row["manager_id"],
            webhook_url=row["webhook_url"],
            email=row["email"],
            sms_sealed=row["sms_sealed"],
            language=row["language"],
            trace_context=json.loads(row["trace_context"]) if row["trace_context"] else None,
            manager_active=row["manager_active"],
        )
        for row in rows
    ]


async def admit_p2(
    *, connection: Connection, alert_id: UUID, manager_id: UUID, limit: int, window_s: float
) -> bool:
    """Take one of the manager's P2 slots for this window, or hold the alert for the digest.

    A per-manager advisory lock makes count-then-take atomic across concurrent deliveries
    and replicas.
    """
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 5))", str(manager_id)
        )
        used: int = await connection.fetchval(
            """SELECT count(*) FROM terrain.alerts
               WHERE manager_id = $1 AND throttle_counted_at > now() - make_interval(secs => $2)""",
            manager_id,
            window_s,
        )
        if used < limit:
            await connection.execute(
                "UPDATE terrain.alerts SET throttle_counted_at = now() WHERE alert_id = $1",
                alert_id,
            )
            return True
        await connection.execute(
            "UPDATE terrain.alerts SET status = 'held' WHERE alert_id = $1 AND status = 'pending'",
            alert_id,
        )
        return False


async def extend_leases(*, connection: Connection, claims: dict[UUID, int], lease_s: float) -> int:
    """Push the lease of alerts still in delivery; only claims still ours (same attempt,
    still pending) are extended. Returns how many were."""
    if not claims:
        return 0
    status: str = await connection.execute(
        """UPDATE terrain.alerts a
           SET next_attempt_at = now() + make_interval(secs => $3)
           FROM unnest($1::uuid[], $2::int[]) AS c(alert_id, attempt)
           WHERE a.alert_id = c.alert_id AND a.attempts = c.attempt AND a.status = 'pending'""",
        list(claims),
        list(claims.values()),
        lease_s,
    )
    return int(status.rsplit(" ", 1)[-1])


_FORM_DIGEST = """
WITH held AS (
    SELECT alert_id, market, received_at, payload FROM terrain.alerts
    WHERE manager_id = $1 AND status = 'held'
    ORDER BY created_at
    FOR UPDATE SKIP LOCKED),
digest AS (
    INSERT INTO terrain.alerts
        (submission_id, manager_id, rule_id, severity, market, received_at, payload,
         ruleset_version)
    SELECT gen_random_uuid(), $1, 'digest', 'P2', min(market), min(received_at),
           jsonb_build_object(
               'market', min(market),
               'digest', jsonb_agg(payload || jsonb_build_object('alert_id', alert_id))),
           'digest'
    FROM held HAVING count(*) > 0
    RETURNING alert_id)
UPDATE terrain.alerts a SET status = 'digested', digest_id = digest.alert_id
FROM held, digest WHERE a.alert_id = held.alert_id
"""


async def form_digests(*, connection: Connection) -> int:
    """Gather each manager's held P2 alerts into one digest alert (itself sent from the
    outbox like any alert); returns how many alerts went into digests."""
    managers = await connection.fetch(
        "SELECT DISTINCT manager_id FROM terrain.alerts WHERE status = 'held'"
    )
    total = 0
    for row in managers:
        async with connection.transaction():
            status: str = await connection.execute(_FORM_DIGEST, row["manager_id"])
        total += int(status.rsplit(" ", 1)[-1])
    return total
