"""Deciding: which rule of the submission's market fires, and so which alert it raises.

Pure logic: nothing here touches the network, the database or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from notify.facts import AlertFacts
from notify.rules import Rule, RuleSet
from terrain_contracts.vocabulary import Severity


@dataclass(frozen=True, slots=True)
class Decision:
    """The rule that fired, the signals that made it fire (``agent_marked_urgent`` for the
    agent's flag), and the version of the rule set that decided."""

    rule_id: str
    severity: Severity
    signals: tuple[str, ...] = field(default=())
    ruleset_version: str = ""


def _matches(rule: Rule, stored: AlertFacts) -> tuple[str, ...] | None:
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


def decide(stored: AlertFacts, ruleset: RuleSet) -> Decision | None:
    """The most severe rule of the submission's market that fires, or None.

    One alert per submission and manager: a P1 complaint that also matches P2 rules is
    one P1 alert, not three messages. ``stored`` is the slim facts notify reads of every
    record (``notify.facts``) or the whole envelope: the rules read the same paths.
    """
    for rule in ruleset.for_market(stored.market.value):
        fired = _matches(rule, stored)
        if fired is not None:
            return Decision(rule.id, rule.severity, fired, ruleset.version)
    return None
