"""Acknowledgement deadlines in the manager's working hours, and signed links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from notify.links import AckLink, ack_link, link_is_valid
from notify.working_time import WorkingTime, acknowledgement_deadline, add_working_time
from terrain_contracts.vocabulary import Severity

DAKAR = WorkingTime.parse("Africa/Dakar", "08:00-18:00", [1, 2, 3, 4, 5])
AMMAN = WorkingTime.parse("Asia/Amman", "09:00-17:00", [7, 1, 2, 3, 4])  # Sunday to Thursday
SLAS = {"p1_sla": timedelta(minutes=15), "p2_working_sla": timedelta(hours=4)}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_p1_is_wall_clock_minutes_even_at_night() -> None:
    created = at("2025-04-19T23:50:00+00:00")  # a Saturday night
    assert acknowledgement_deadline(created, Severity.P1, DAKAR, **SLAS) == created + timedelta(
        minutes=15
    )


def test_p2_counts_working_hours_only() -> None:
    # Tuesday 10:00 in Dakar (UTC+0): four working hours later is 14:00 the same day.
    assert acknowledgement_deadline(
        at("2025-04-15T10:00:00+00:00"), Severity.P2, DAKAR, **SLAS
    ) == at("2025-04-15T14:00:00+00:00")
    # Friday 16:00: two hours on Friday, two on Monday morning.
    assert add_working_time(at("2025-04-18T16:00:00+00:00"), timedelta(hours=4), DAKAR) == at(
        "2025-04-21T10:00:00+00:00"
    )
    # Saturday night: Monday 12:00.
    assert add_working_time(at("2025-04-19T23:00:00+00:00"), timedelta(hours=4), DAKAR) == at(
        "2025-04-21T12:00:00+00:00"
    )


def test_p2_follows_the_managers_timezone_and_week() -> None:
    # Thursday 15:00 in Amman (UTC+3): 2 h on Thursday, then Sunday 09:00 + 2 h.
    created = at("2025-04-17T15:00:00+03:00")
    assert add_working_time(created, timedelta(hours=4), AMMAN) == at("2025-04-20T11:00:00+03:00")


def test_an_unknown_timezone_reads_as_utc_rather_than_stopping_escalation() -> None:
    odd = WorkingTime.parse("Mars/Olympus", "08:00-18:00", [1, 2, 3, 4, 5])
    assert add_working_time(at("2025-04-15T10:00:00+00:00"), timedelta(hours=1), odd) == at(
        "2025-04-15T11:00:00+00:00"
    )


def test_a_link_is_valid_until_it_expires_and_not_once_changed() -> None:
    secret = b"s" * 32
    now = datetime(2025, 4, 15, tzinfo=UTC)
    link = ack_link(uuid4(), uuid4(), now + timedelta(days=7), secret)
    assert link_is_valid(link, secret, now)
    assert not link_is_valid(link, secret, now + timedelta(days=7, seconds=1))
    assert not link_is_valid(link, b"t" * 32, now)
    other_manager = AckLink(link.alert_id, uuid4(), link.expires, link.signature)
    longer = AckLink(link.alert_id, link.manager_id, link.expires + 3600, link.signature)
    assert not link_is_valid(other_manager, secret, now)
    assert not link_is_valid(longer, secret, now)


def test_production_refuses_the_development_link_secret() -> None:
    import pytest
    from pydantic import ValidationError

    from notify.settings import NotifySettings

    with pytest.raises(ValidationError, match="ack_link_secret"):
        NotifySettings(
            environment="production",
            pseudonym_secret="p" * 32,
            sealing_key="c2VhbGluZy1rZXktMzItYnl0ZXMtZm9yLXRlc3RzISE=",
            database_url="postgresql://u:real@db/terrain",
            webhook_signing_secret="w" * 32,
        )
