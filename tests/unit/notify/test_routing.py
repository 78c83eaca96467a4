"""The ladder an alert climbs: a market's levels from the lowest, then the regional
directors; routing takes its lowest rung that has someone, escalation the next one up."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
import structlog
from prometheus_client import REGISTRY

from notify.managers import Receiver
from notify.outbox import AlertToRecord, UnroutableAlert
from notify.routing import Rung, next_rung, plan_routes, report_unroutable
from terrain_contracts.vocabulary import Severity


def receiver(market: str, level: int) -> Receiver:
    return Receiver(uuid4(), market, level)


def alert(market: str) -> AlertToRecord:
    return AlertToRecord(
        submission_id=uuid4(),
        rule_id="p1-agent-urgent",
        severity=Severity.P1,
        signals=[],
        market=market,
        received_at=datetime.now(UTC),
        payload={"market": market, "verbatim": "argent perdu"},
        ruleset_version="test",
    )


def test_level_one_of_the_market_gets_it_and_nobody_else() -> None:
    first, second = receiver("SN", 1), receiver("SN", 1)
    others = [receiver("SN", 2), receiver("*", 1), receiver("ML", 1)]
    assert next_rung("SN", [*others, first, second]) == (
        Rung(regional=False, level=1),
        tuple(sorted([first.manager_id, second.manager_id])),
    )


def test_without_level_one_the_lowest_level_of_the_market_that_has_someone() -> None:
    three, two = receiver("SN", 3), receiver("SN", 2)
    assert next_rung("SN", [three, two, receiver("*", 1)]) == (
        Rung(False, 2),
        (two.manager_id,),
    )


def test_without_anyone_in_the_market_the_lowest_regional_directors() -> None:
    director, above = receiver("*", 2), receiver("*", 4)
    assert next_rung("SN", [above, director, receiver("ML", 1)]) == (
        Rung(True, 2),
        (director.manager_id,),
    )
    assert next_rung("SN", [receiver("ML", 1)]) is None


def test_escalation_climbs_from_the_rung_the_alert_stands_on_never_back() -> None:
    one, three, director = receiver("JO", 1), receiver("JO", 3), receiver("*", 2)
    directory = [one, three, director]
    # Routed to level 2 (level 1 was appointed since): up to level 3, not back to 1.
    assert next_rung("JO", directory, above=Rung(False, 2)) == (Rung(False, 3), (three.manager_id,))
    # Regional directors stand above every level of the market, whatever their number.
    assert next_rung("JO", directory, above=Rung(False, 3)) == (
        Rung(True, 2),
        (director.manager_id,),
    )
    assert next_rung("JO", directory, above=Rung(True, 2)) is None


def test_a_batch_is_planned_per_market_and_says_where_it_was_routed() -> None:
    level_one, level_two, director = receiver("SN", 1), receiver("CI", 2), receiver("*", 3)
    batch = [alert("SN"), alert("CI"), alert("ML"), alert("SN")]
    routed = plan_routes(batch, [level_one, level_two, director])
    assert [r.manager_ids for r in routed] == [
        (level_one.manager_id,),
        (level_two.manager_id,),
        (director.manager_id,),
        (level_one.manager_id,),
    ]
    assert [r.level for r in routed] == [1, 2, 3, 1]
    # Level 1 of its market: the payload is as decided. Routed up: it says so.
    assert routed[0].alert.payload == batch[0].payload
    assert routed[1].alert.payload == {**batch[1].payload, "routed_to": "market", "routed_level": 2}
    assert routed[2].alert.payload["routed_to"] == "regional"
    assert routed[2].alert.payload["routed_level"] == 3


def test_an_alert_with_nobody_on_its_ladder_is_planned_to_nobody_with_the_reason() -> None:
    (routed,) = plan_routes([alert("GN")], [receiver("ML", 1)])
    assert routed.manager_ids == ()
    assert "GN" in routed.detail and "regional director" in routed.detail


def _unroutable_count(market: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "terrain_alerts_unroutable_total", {"market": market, "reason": reason}
    )
    return value or 0.0


@pytest.mark.parametrize("reason", ["no_recipient", "all_channels_failed"])
def test_an_unroutable_alert_is_counted_and_logged_without_its_content(reason: str) -> None:
    submission_id = UUID(int=7)
    before = _unroutable_count("CM", reason)
    with structlog.testing.capture_logs() as logs:
        report_unroutable(
            UnroutableAlert(submission_id, "p1-agent-urgent", "CM", Severity.P1, reason)
        )
    assert _unroutable_count("CM", reason) == before + 1
    (entry,) = logs
    assert entry["log_level"] == "warning"
    assert entry["submission_id"] == str(submission_id)
    assert (entry["market"], entry["rule"], entry["reason"]) == ("CM", "p1-agent-urgent", reason)
    assert not any("verbatim" in str(key) for key in entry)
