"""Pure logic of notify: which rule fires for a stored submission, and what an alert says.

The rule set is data (``Rule`` values), evaluated in order of severity; the first rule of
each severity that matches is reported with the signals that fired it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from terrain_contracts.messages import SubmissionStoredV1
from terrain_contracts.submission import CustomerKind, Topic

RULESET_VERSION = "default-1"


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    severity: str
    urgent_flag: bool = False
    any_signals: frozenset[str] = frozenset()
    max_satisfaction: int | None = None
    any_topics: frozenset[str] = frozenset()
    customer_kinds: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    rule_id: str
    severity: str
    signals: tuple[str, ...] = field(default=())
    ruleset_version: str = RULESET_VERSION


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("p1-agent-urgent", "P1", urgent_flag=True),
    Rule("p1-signal", "P1", any_signals=frozenset({"money_lost", "fraud", "safety_hazard"})),
    Rule(
        "p2-unhappy-core-topic",
        "P2",
        max_satisfaction=1,
        any_topics=frozenset({Topic.ORANGE_MONEY, Topic.BILLING, Topic.NETWORK_COVERAGE}),
    ),
    Rule(
        "p2-unhappy-enterprise",
        "P2",
        max_satisfaction=2,
        customer_kinds=frozenset({CustomerKind.ENTERPRISE}),
    ),
    Rule("p2-signal", "P2", any_signals=frozenset({"churn_threat", "network_outage"})),
)


def _matches(rule: Rule, stored: SubmissionStoredV1) -> tuple[str, ...] | None:
    submission = stored.submission
    feedback = submission.feedback
    if rule.urgent_flag:
        return ("agent_marked_urgent",) if feedback.urgent else None
    fired: tuple[str, ...] = ()
    if rule.any_signals:
        fired = tuple(s for s in stored.enrichment.signals if s in rule.any_signals)
        if not fired:
            return None
    if rule.max_satisfaction is not None and feedback.satisfaction > rule.max_satisfaction:
        return None
    if rule.any_topics and not rule.any_topics.intersection(t.value for t in feedback.topics):
        return None
    if rule.customer_kinds and submission.customer.kind.value not in rule.customer_kinds:
        return None
    return fired


def decide(stored: SubmissionStoredV1, rules: tuple[Rule, ...] = DEFAULT_RULES) -> Decision | None:
    """The most severe rule that fires, or None: one alert per submission and manager."""
    for rule in rules:
        fired = _matches(rule, stored)
        if fired is not None:
            return Decision(rule.rule_id, rule.severity, fired)
    return None


def sign(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
