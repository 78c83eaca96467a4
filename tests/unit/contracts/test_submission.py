from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from terrain_contracts.examples import load, names
from terrain_contracts.markets import MARKETS, Market
from terrain_contracts.submission import FieldSubmission


def test_the_17_markets_of_the_operator() -> None:
    assert len(Market) == 17
    assert set(MARKETS) == set(Market)


@pytest.mark.parametrize("name", [n for n in names() if n.startswith("field_submission")])
def test_every_field_example_is_valid(name: str) -> None:
    FieldSubmission.model_validate(load(name))


def test_unknown_fields_are_kept_at_every_level() -> None:
    submission = FieldSubmission.model_validate(load("field_submission.urgent_newer_app"))
    dumped = submission.model_dump(mode="json")
    assert dumped["visit_duration_s"] == 540
    assert dumped["agent"]["team"] == "Kin-Est"
    assert dumped["feedback"]["photo_count"] == 2


def _errors(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        FieldSubmission.model_validate(document)
    return [".".join(map(str, e["loc"])) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("feedback", "satisfaction"), 7, "feedback.satisfaction"),
        (("feedback", "satisfaction"), "5", "feedback.satisfaction"),
        (("feedback", "nps"), 11, "feedback.nps"),
        (("agent", "market"), "FR", "agent.market"),
        (("agent", "function"), "pilot", "agent.function"),
        (("location", "lat"), 123, "location.lat"),
        (("location", "lon"), -181.5, "location.lon"),
        (("feedback", "topics"), [], "feedback.topics"),
        (("feedback", "topics"), ["weather"], "feedback.topics.0"),
        (("submission_id",), "not-a-uuid", "submission_id"),
        (("collected_at",), "2025-04-15T09:12:33", "collected_at"),
        (("customer", "consent"), "yes", "customer.consent"),
        (("customer", "kind"), "alien", "customer.kind"),
        (("feedback", "verbatim"), "x" * 4001, "feedback.verbatim"),
        (("campaign_id",), "", "campaign_id"),
    ],
)
def test_contract_violations_name_the_field(
    dakar_example: dict[str, Any], path: tuple[str, ...], value: Any, field: str
) -> None:
    target = dakar_example
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert field in _errors(dakar_example)


@pytest.mark.parametrize(
    "missing", ["submission_id", "campaign_id", "collected_at", "agent", "customer", "feedback"]
)
def test_required_fields(dakar_example: dict[str, Any], missing: str) -> None:
    del dakar_example[missing]
    assert missing in _errors(dakar_example)


def test_lat_without_lon_is_refused(dakar_example: dict[str, Any]) -> None:
    del dakar_example["location"]["lon"]
    assert "location" in _errors(dakar_example)


def test_nan_is_not_a_coordinate(dakar_example: dict[str, Any]) -> None:
    dakar_example["location"]["lat"] = float("nan")
    assert "location.lat" in _errors(dakar_example)


def test_repeated_topics_are_refused(dakar_example: dict[str, Any]) -> None:
    dakar_example["feedback"]["topics"] = ["billing", "billing"]
    assert "feedback" in _errors(dakar_example)
