from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from uuid import UUID

from ingest.logic import Device, SubmissionRejected, receive, validate
from terrain_contracts.markets import Market
from terrain_runtime.settings import TerrainSettings
from terrain_simulator.generator import DayOptions, field_day

NOW = datetime(2025, 4, 15, 18, 0, tzinfo=UTC)
SETTINGS = TerrainSettings(environment="test")


def test_same_seed_same_day() -> None:
    first = [v.document for v in field_day(DayOptions(visits=200, seed=1), now=NOW)]
    again = [v.document for v in field_day(DayOptions(visits=200, seed=1), now=NOW)]
    other = [v.document for v in field_day(DayOptions(visits=200, seed=2), now=NOW)]
    assert first == again
    assert first != other


def test_a_day_covers_the_17_markets_and_the_field_behaviours() -> None:
    visits = list(field_day(DayOptions(visits=3000), now=NOW))
    assert {v.market for v in visits} == set(Market)
    assert sum(v.urgent for v in visits) > 30
    assert sum(v.sends > 1 for v in visits) > 50
    assert Counter(v.channel for v in visits)["batch"] > 500
    assert sum("place" in v.document.get("location", {}) for v in visits) > 50
    assert sum("visit_duration_s" in v.document for v in visits) > 300
    languages = {v.document["feedback"].get("language") for v in visits}
    assert {"fr", "en", "ar", "ar-Latn", "pt", "mg"} <= languages


def test_expected_validity_matches_what_ingest_decides() -> None:
    for visit in field_day(DayOptions(visits=1500, invalid_share=0.05), now=NOW):
        try:
            receive(
                validate(visit.document),
                device=Device(UUID(int=1), visit.market, "t"),
                received_at=NOW,
                pseudonymiser=SETTINGS.pseudonymiser(),
                sealer=SETTINGS.sealer(),
                ingest_version="t",
            )
            fields: set[str] = set()
        except SubmissionRejected as rejected:
            fields = {e.field for e in rejected.errors}
        assert (not fields) == visit.expected_valid, visit.document
        assert not fields or visit.invalid_field in fields


def test_resends_are_the_same_visit_stamped_anew_as_field_apps_send_them() -> None:
    visits = [v for v in field_day(DayOptions(visits=3000), now=NOW) if v.sends > 1]
    assert len(visits) > 50
    newer_app = 0
    for visit in visits:
        documents = visit.documents
        assert len(documents) == visit.sends
        sent = [datetime.fromisoformat(d["sent_at"]) for d in documents]
        assert sent == sorted(sent)
        assert len(set(sent)) == len(sent)  # never byte-identical
        recorded = [{k: v for k, v in d.items() if k not in ("sent_at", "app")} for d in documents]
        assert all(r == recorded[0] for r in recorded)
        newer_app += any(d["app"] != visit.document["app"] for d in documents)
    assert newer_app > 5


def test_resends_do_not_change_the_day_of_a_seed() -> None:
    first = [v.documents for v in field_day(DayOptions(visits=500, seed=3), now=NOW)]
    again = [v.documents for v in field_day(DayOptions(visits=500, seed=3), now=NOW)]
    assert first == again
