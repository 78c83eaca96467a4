"""`terrain trace SUBMISSION_ID`: where is submission X, and which trace to open."""

from __future__ import annotations

from uuid import UUID

import typer

from terrain_runtime.db import Connection


async def show(connection: Connection, submission_id: UUID) -> bool:
    """Print everything the database knows of one submission; False when it knows nothing."""
    stored = await connection.fetchrow(
        """SELECT received_at, stored_at, agent_market, source_partition, source_offset,
                  trace_id, payload_sha256
           FROM terrain.submissions WHERE submission_id = $1""",
        submission_id,
    )
    failures = await connection.fetch(
        """SELECT failed_at, service, reason, detail, source_topic, source_partition,
                  source_offset, trace_id
           FROM terrain.failed_submissions WHERE submission_id = $1 ORDER BY failed_at""",
        submission_id,
    )
    alerts = await connection.fetch(
        """SELECT a.alert_id, a.rule_id, a.severity, a.status, a.created_at, a.delivered_at,
                  m.name, m.market, m.level,
                  to_jsonb(a) ->> 'acknowledged_at' AS acknowledged_at
           FROM terrain.alerts a JOIN terrain.managers m USING (manager_id)
           WHERE a.submission_id = $1 ORDER BY a.created_at""",
        submission_id,
    )
    # An urgent complaint nobody could receive: shown as loudly as a failure.
    unroutable = await connection.fetch(
        """SELECT rule_id, severity, market, reason, detail, recorded_at
           FROM terrain.unroutable_alerts WHERE submission_id = $1 ORDER BY recorded_at""",
        submission_id,
    )
    if stored is None and not failures and not alerts and not unroutable:
        return False
    echo = typer.echo
    echo(f"submission {submission_id}")
    trace_ids = {r["trace_id"] for r in [stored, *failures] if r is not None and r["trace_id"]}
    if stored is not None:
        echo(f"  accepted by ingest   {stored['received_at']:%Y-%m-%d %H:%M:%S.%f} UTC")
        echo(
            f"  raw topic            partition {stored['source_partition']},"
            f" offset {stored['source_offset']}"
        )
        lag = (stored["stored_at"] - stored["received_at"]).total_seconds()
        echo(
            f"  stored by enrich     {stored['stored_at']:%Y-%m-%d %H:%M:%S.%f} UTC (+{lag:.3f} s)"
        )
        echo(f"  market               {stored['agent_market']}")
    else:
        echo("  not stored")
    for failure in failures:
        echo(
            f"  FAILED in {failure['service']} at {failure['failed_at']:%H:%M:%S}:"
            f" {failure['reason']} — {failure['detail'][:200]}"
            f" ({failure['source_topic']}/{failure['source_partition']}/{failure['source_offset']})"
        )
    for alert in alerts:
        echo(
            f"  alert {alert['alert_id']}  {alert['severity']} {alert['rule_id']} ->"
            f" {alert['name']} ({alert['market']}, level {alert['level']}): {alert['status']}"
        )
        deliveries = await connection.fetch(
            """SELECT attempted_at, channel, attempt, ok, detail FROM terrain.alert_deliveries
               WHERE alert_id = $1 ORDER BY attempted_at""",
            alert["alert_id"],
        )
        for delivery in deliveries:
            state = "ok" if delivery["ok"] else "failed"
            echo(
                f"      {delivery['attempted_at']:%H:%M:%S.%f} {delivery['channel']:<8}"
                f" attempt {delivery['attempt']} {state}: {delivery['detail'][:120]}"
            )
        if alert["acknowledged_at"]:
            echo(f"      acknowledged at {alert['acknowledged_at']}")
    for row in unroutable:
        echo(
            f"  UNROUTABLE alert     {row['severity']} {row['rule_id']} ({row['market']})"
            f" at {row['recorded_at']:%H:%M:%S}: {row['reason']} — {row['detail'][:200]}"
        )
    for trace_id in sorted(trace_ids):
        echo(f"  trace id             {trace_id}  (open it in Jaeger: /trace/{trace_id})")
    return True
