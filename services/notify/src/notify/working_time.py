"""Working time: when an alert nobody acknowledged is overdue (P1 by the wall clock, P2 in
its manager's working hours and timezone).

Pure logic: callers pass the times; nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from terrain_contracts.vocabulary import Severity


@dataclass(frozen=True, slots=True)
class WorkingTime:
    """When a manager works, in their own timezone."""

    timezone: str = "UTC"
    start: time = time(8, 0)
    end: time = time(18, 0)
    days: frozenset[int] = frozenset({1, 2, 3, 4, 5})

    @classmethod
    def parse(cls, timezone: str, hours: str, days: list[int] | tuple[int, ...]) -> WorkingTime:
        start, _, end = hours.partition("-")
        return cls(timezone, time.fromisoformat(start), time.fromisoformat(end), frozenset(days))

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            # A typo in the directory must not stop escalation: UTC is a safe reading.
            return ZoneInfo("UTC")


def add_working_time(start: datetime, amount: timedelta, work: WorkingTime) -> datetime:
    """``start`` plus ``amount`` of the manager's working time (evenings and days off skipped)."""
    zone = work.zone()
    if not work.days or work.start >= work.end:
        return start + amount
    local = start.astimezone(zone)
    remaining = amount
    for _ in range(400):
        day: date = local.date()
        if local.isoweekday() in work.days:
            opens = datetime.combine(day, work.start, zone)
            closes = datetime.combine(day, work.end, zone)
            local = max(local, opens)
            if local < closes:
                if remaining <= closes - local:
                    return (local + remaining).astimezone(UTC)
                remaining -= closes - local
        local = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start + amount


def acknowledgement_deadline(
    created_at: datetime,
    severity: Severity,
    work: WorkingTime,
    *,
    p1_sla: timedelta,
    p2_working_sla: timedelta,
) -> datetime:
    """P1: wall-clock minutes (a fraud does not wait for Monday); P2: working hours."""
    if severity == Severity.P1:
        return created_at + p1_sla
    return add_working_time(created_at, p2_working_sla, work)
