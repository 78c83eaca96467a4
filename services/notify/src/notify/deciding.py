"""Pure logic of notify: which rule fires, when an alert is overdue, signed links.

Nothing here touches the network, the database or the clock: callers pass ``now``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from notify.rules import Rule, RuleSet
from terrain_contracts.messages import SubmissionStoredV1


@dataclass(frozen=True, slots=True)
class Decision:
    rule_id: str
    severity: str
    signals: tuple[str, ...] = field(default=())
    ruleset_version: str = ""


def _matches(rule: Rule, stored: SubmissionStoredV1) -> tuple[str, ...] | None:
    submission = stored.submission
    feedback = submission.feedback
    fired: tuple[str, ...] = ()
    if rule.urgent_flag:
        if not feedback.urgent:
            return None
        fired = ("agent_marked_urgent",)
    if rule.any_signals:
        signals = tuple(s for s in stored.enrichment.signals if s in rule.any_signals)
        if not signals:
            return None
        fired += signals
    if rule.max_satisfaction is not None and feedback.satisfaction > rule.max_satisfaction:
        return None
    if rule.any_topics and not rule.any_topics.intersection(feedback.topics):
        return None
    if rule.customer_kinds and submission.customer.kind not in rule.customer_kinds:
        return None
    return fired


def decide(stored: SubmissionStoredV1, ruleset: RuleSet) -> Decision | None:
    """The most severe rule of the submission's market that fires, or None.

    One alert per submission and manager: a P1 complaint that also matches P2 rules is
    one P1 alert, not three messages.
    """
    for rule in ruleset.for_market(stored.market.value):
        fired = _matches(rule, stored)
        if fired is not None:
            return Decision(rule.id, rule.severity, fired, ruleset.version)
    return None


# --- acknowledgement deadline --------------------------------------------------------------


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
    severity: str,
    work: WorkingTime,
    *,
    p1_sla: timedelta,
    p2_working_sla: timedelta,
) -> datetime:
    """P1: wall-clock minutes (a fraud does not wait for Monday); P2: working hours."""
    if severity == "P1":
        return created_at + p1_sla
    return add_working_time(created_at, p2_working_sla, work)


# --- signed links --------------------------------------------------------------------------


def sign(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _link_mac(alert_id: UUID, manager_id: UUID, expires: int, secret: bytes) -> str:
    message = f"{alert_id}.{manager_id}.{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AckLink:
    alert_id: UUID
    manager_id: UUID
    expires: int
    signature: str

    def query(self) -> str:
        return f"m={self.manager_id}&e={self.expires}&s={self.signature}"


def ack_link(alert_id: UUID, manager_id: UUID, expires_at: datetime, secret: bytes) -> AckLink:
    expires = int(expires_at.timestamp())
    return AckLink(alert_id, manager_id, expires, _link_mac(alert_id, manager_id, expires, secret))


def link_is_valid(link: AckLink, secret: bytes, now: datetime) -> bool:
    """True for an untampered link that has not expired (constant-time comparison)."""
    expected = _link_mac(link.alert_id, link.manager_id, link.expires, secret)
    return hmac.compare_digest(expected, link.signature) and now.timestamp() < link.expires
