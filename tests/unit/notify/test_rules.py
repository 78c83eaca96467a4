"""The rule set: each default rule, per-market overrides, and what is refused at start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from notify.deciding import decide
from notify.rules import RuleSet, load_ruleset
from terrain_contracts.messages import SubmissionStoredV1, decode_stored_submission
from terrain_testkit.factories import field_submission, stored_record

DEFAULT = load_ruleset()


def stored(
    market: str = "SN", signals: list[str] | None = None, **changes: Any
) -> SubmissionStoredV1:
    base = {"feedback__satisfaction": 4, "feedback__topics": ["offers"]}
    document = field_submission(
        agent__market=market, customer__msisdn="+221771234567", **{**base, **changes}
    )
    return decode_stored_submission(stored_record(document, signals)[1])


@pytest.mark.parametrize(
    ("submission", "rule", "signals"),
    [
        (stored(feedback__urgent=True), "p1-agent-urgent", ("agent_marked_urgent",)),
        (stored(signals=["fraud", "churn_threat"]), "p1-signal", ("fraud",)),
        (stored(signals=["safety_hazard"]), "p1-signal", ("safety_hazard",)),
        (
            stored(feedback__satisfaction=1, feedback__topics=["network_coverage"]),
            "p2-unhappy-core-topic",
            (),
        ),
        (
            stored(feedback__satisfaction=2, customer__kind="enterprise"),
            "p2-unhappy-enterprise",
            (),
        ),
        (stored(signals=["churn_threat"]), "p2-signal", ("churn_threat",)),
    ],
)
def test_each_default_rule_fires_with_its_signals(
    submission: SubmissionStoredV1, rule: str, signals: tuple[str, ...]
) -> None:
    decision = decide(submission, DEFAULT)
    assert decision is not None
    assert (decision.rule_id, decision.signals) == (rule, signals)
    assert decision.severity == rule[:2].upper() and decision.ruleset_version == "default-1"


@pytest.mark.parametrize(
    "submission",
    [
        stored(feedback__satisfaction=1, feedback__topics=["offers"]),
        stored(feedback__satisfaction=2, feedback__topics=["billing"]),
        stored(feedback__satisfaction=3, customer__kind="enterprise"),
        stored(signals=["staff_conduct"]),
    ],
)
def test_otherwise_no_alert(submission: SubmissionStoredV1) -> None:
    assert decide(submission, DEFAULT) is None


def test_p1_wins_over_p2_for_one_submission() -> None:
    both = stored(signals=["network_outage", "money_lost"], feedback__satisfaction=1)
    decision = decide(both, DEFAULT)
    assert decision is not None and decision.rule_id == "p1-signal"


def test_a_market_override_replaces_disables_and_adds_rules() -> None:
    document = json.loads(DEFAULT.model_dump_json())
    document["version"] = "2025-05-jo"
    document["markets"] = {
        "JO": {
            "disable": ["p2-unhappy-core-topic"],
            "rules": [{"id": "p2-staff", "severity": "P2", "any_signals": ["staff_conduct"]}],
        }
    }
    rules = RuleSet.model_validate(document)
    unhappy: dict[str, Any] = {"feedback__satisfaction": 1, "feedback__topics": ["billing"]}
    assert decide(stored("JO", **unhappy), rules) is None
    assert decide(stored("SN", **unhappy), rules) is not None
    staff = decide(stored("JO", signals=["staff_conduct"]), rules)
    assert staff is not None and (staff.rule_id, staff.ruleset_version) == (
        "p2-staff",
        "2025-05-jo",
    )
    assert decide(stored("SN", signals=["staff_conduct"]), rules) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"rules": [{"id": "x", "severity": "P1", "any_signals": ["aliens"]}]}, "unknown signals"),
        ({"rules": [{"id": "x", "severity": "P3", "urgent_flag": True}]}, "severity"),
        ({"rules": [{"id": "x", "severity": "P2"}]}, "no condition"),
        ({"rules": [{"id": "x", "severity": "P2", "any_topics": ["weather"]}]}, "any_topics"),
        ({"markets": {"XX": {}}}, "markets"),
        ({"markets": {"SN": {"disable": ["nope"]}}}, "unknown rules"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_an_invalid_rule_set_is_refused_at_start(
    tmp_path: Path, change: dict[str, Any], problem: str
) -> None:
    document = {**json.loads(DEFAULT.model_dump_json()), **change}
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=problem):
        load_ruleset(path)
