"""Who receives an alert: a market's ladder, and what happens when nobody is on it.

A market's ladder is its own levels from the lowest, then the regional directors' (market
``*``) levels from the lowest: regional directors stand above every level of every market.
Only receivers stand on it, active managers with at least one channel (webhook, email or
SMS). A new alert goes to the lowest rung that has someone; an escalation to the lowest rung
above the alert's own. Routing and escalation read the same ladder, so an alert routed to
level 2 escalates to level 3 or the regional directors, never back to level 1.

An alert with nobody on its ladder is recorded as unroutable (``no_recipient``), counted in
``terrain_alerts_unroutable_total`` and logged: an urgent complaint is never dropped in
silence. The sender does the same (``all_channels_failed``) when it gives up on the last
recipient who could have received it.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import structlog

from notify.acknowledgements import lock_for_escalation, record_escalation
from notify.managers import REGIONAL, Receiver, receivers_in
from notify.metrics import ALERTS_HELD
from notify.outbox import (
    AlertToRecord,
    RoutedAlert,
    Throttle,
    UnroutableAlert,
    record_routed,
)
from terrain_runtime.db import Connection
from terrain_runtime.metrics import ALERTS_UNROUTABLE

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, order=True)
class Rung:
    """A step of a ladder; ordered as the ladder climbs (market levels, then regional)."""

    regional: bool
    level: int

    @property
    def to(self) -> str:
        return "regional" if self.regional else "market"

    def describe(self) -> str:
        return f"level {self.level}" + (" (regional directors)" if self.regional else "")


FIRST = Rung(regional=False, level=1)


def rung_of(receiver: Receiver) -> Rung:
    return Rung(regional=receiver.market == REGIONAL, level=receiver.level)


def next_rung(
    market: str, receivers: Iterable[Receiver], *, above: Rung | None = None
) -> tuple[Rung, tuple[UUID, ...]] | None:
    """The lowest rung of ``market``'s ladder (above ``above``, when given) that has
    someone, with everyone on it; None when nobody stands that high."""
    candidates = [
        (rung_of(r), r.manager_id)
        for r in receivers
        if r.market in (market, REGIONAL) and (above is None or rung_of(r) > above)
    ]
    if not candidates:
        return None
    lowest = min(rung for rung, _ in candidates)
    return lowest, tuple(sorted(m for rung, m in candidates if rung == lowest))


def plan_routes(alerts: list[AlertToRecord], receivers: Iterable[Receiver]) -> list[RoutedAlert]:
    """Each alert with the managers of the lowest rung of its market's ladder that has
    someone, or with nobody (and why). An alert that did not go to level 1 of its market
    says where it went (``routed_to``, ``routed_level``), so its manager knows why."""
    by_market: dict[str, list[Receiver]] = defaultdict(list)
    for receiver in receivers:
        by_market[receiver.market].append(receiver)
    ladders: dict[str, tuple[Rung, tuple[UUID, ...]] | None] = {}
    routed: list[RoutedAlert] = []
    for alert in alerts:
        if alert.market not in ladders:  # a batch holds few markets: one walk each
            ladders[alert.market] = next_rung(
                alert.market, [*by_market[alert.market], *by_market[REGIONAL]]
            )
        step = ladders[alert.market]
        if step is None:
            detail = f"no active manager with a channel at any level of {alert.market}"
            routed.append(RoutedAlert(alert, 0, (), f"{detail} nor a regional director"))
            continue
        rung, managers = step
        if rung != FIRST:
            note = {"routed_to": rung.to, "routed_level": rung.level}
            alert = dataclasses.replace(alert, payload={**alert.payload, **note})
        routed.append(RoutedAlert(alert, rung.level, managers))
    return routed


@dataclass(frozen=True, slots=True)
class Routed:
    created: int
    # Alerts that nobody can receive, recorded by this call (none on a redelivery).
    unroutable: list[UnroutableAlert]


async def route_alerts(
    *, connection: Connection, alerts: list[AlertToRecord], throttle: Throttle | None = None
) -> Routed:
    """Route a batch's alerts and write them to the outbox; the unroutable ones are recorded,
    counted and logged. Two statements per batch, whatever its size: the directory of its
    markets, then every row (with ``throttle``, a third locks the managers of its P2 alerts,
    which take their throttle slots or are held right there)."""
    if not alerts:
        return Routed(0, [])
    receivers = await receivers_in(connection=connection, markets={a.market for a in alerts})
    routes = plan_routes(alerts, receivers)
    async with connection.transaction():
        recorded = await record_routed(connection=connection, alerts=routes, throttle=throttle)
    if recorded.held:
        ALERTS_HELD.inc(recorded.held)
    for unroutable in recorded.unroutable:
        report_unroutable(unroutable)
    return Routed(recorded.created, recorded.unroutable)


def report_unroutable(alert: UnroutableAlert) -> None:
    """Count and log an alert nobody can receive; call it once, when its row is new."""
    ALERTS_UNROUTABLE.labels(alert.market, alert.reason).inc()
    # Ids and codes only: never the verbatim nor a number.
    log.warning(
        "alert unroutable",
        submission_id=str(alert.submission_id),
        market=alert.market,
        rule=alert.rule_id,
        severity=alert.severity,
        reason=alert.reason,
    )


async def escalate(*, connection: Connection, alert_id: UUID, now: datetime) -> str | None:
    """Send an alert nobody acknowledged to the next rung of its ladder, once; the new
    alerts' SLA starts ``now``. Returns what was recorded on the alert ("no higher level"
    when nobody stands above it), or None if it was already escalated."""
    async with connection.transaction():
        source = await lock_for_escalation(connection=connection, alert_id=alert_id)
        if source is None:
            return None
        receivers = await receivers_in(connection=connection, markets=[source.market])
        step = next_rung(
            source.market, receivers, above=Rung(regional=source.regional, level=source.level)
        )
        if step is None:
            return await record_escalation(
                connection=connection, alert_id=alert_id, now=now, level=None
            )
        rung, managers = step
        return await record_escalation(
            connection=connection,
            alert_id=alert_id,
            now=now,
            level=rung.level,
            manager_ids=managers,
            payload_note={"escalated_level": rung.level, "escalated_to": rung.to},
            described=rung.describe(),
        )
