from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from ingest.logic import Device, SubmissionRejected, receive, validate
from terrain_contracts.markets import Market
from terrain_runtime.settings import TerrainSettings

SETTINGS = TerrainSettings(environment="test")
DEVICE = Device(UUID(int=7), Market.SN, "unit")
NOW = datetime(2025, 4, 15, 12, 0, tzinfo=UTC)


def accept(document: dict[str, Any]) -> Any:
    return receive(
        validate(document),
        device=DEVICE,
        received_at=NOW,
        pseudonymiser=SETTINGS.pseudonymiser(),
        sealer=SETTINGS.sealer(),
        ingest_version="t",
    )


def test_number_is_pseudonymised_and_sealed_with_consent(brief_example: dict[str, Any]) -> None:
    envelope = accept(brief_example)
    customer = envelope.submission.customer
    assert customer.msisdn_hash == SETTINGS.pseudonymiser().pseudonym("+221771234567")
    assert customer.msisdn_sealed is not None
    opened = SETTINGS.sealer().open(customer.msisdn_sealed, context=envelope.submission_id.bytes)
    assert opened == "+221771234567"
    assert "77 123 45 67" not in envelope.model_dump_json()


def test_without_consent_names_and_phone_like_fields_are_dropped(
    brief_example: dict[str, Any],
) -> None:
    brief_example["customer"].update(
        consent=False, name="Awa", last_name="Diop", phone="77 000 00 00", loyalty_card="X1"
    )
    customer = accept(brief_example).submission.customer
    extras = customer.model_extra or {}
    assert customer.msisdn_sealed is None
    assert customer.msisdn_hash is not None
    assert set(extras) == {"loyalty_card"}


def test_phone_like_fields_are_dropped_even_with_consent(brief_example: dict[str, Any]) -> None:
    brief_example["customer"].update(name="Awa", mobile_2="77 000 00 00")
    extras = accept(brief_example).submission.customer.model_extra or {}
    assert extras == {"name": "Awa"}


def test_the_app_cannot_forge_the_pseudonym_fields(brief_example: dict[str, Any]) -> None:
    brief_example["customer"]["msisdn_sealed"] = "s1:forged"
    del brief_example["customer"]["msisdn"]
    customer = accept(brief_example).submission.customer
    assert customer.msisdn_sealed is None
    assert customer.msisdn_hash is None


def test_server_facts(brief_example: dict[str, Any]) -> None:
    envelope = accept(brief_example)
    assert (
        envelope.outbox_delay_s
        == (NOW - datetime(2025, 4, 15, 9, 12, 33, tzinfo=UTC)).total_seconds()
    )
    assert (
        envelope.clock_skew_s
        == (NOW - datetime(2025, 4, 15, 11, 40, 2, tzinfo=UTC)).total_seconds()
    )
    assert envelope.device_market is Market.SN


def test_unknown_fields_travel(brief_example: dict[str, Any]) -> None:
    brief_example["weather"] = {"rain": True}
    brief_example["feedback"]["mood"] = "angry"
    dumped = accept(brief_example).submission.model_dump(mode="json")
    assert dumped["weather"] == {"rain": True}
    assert dumped["feedback"]["mood"] == "angry"


def test_bad_number_names_the_field_with_the_batch_prefix(brief_example: dict[str, Any]) -> None:
    brief_example["customer"]["msisdn"] = "call me maybe"
    with pytest.raises(SubmissionRejected) as caught:
        receive(
            validate(brief_example, "submissions.3"),
            device=DEVICE,
            received_at=NOW,
            pseudonymiser=SETTINGS.pseudonymiser(),
            sealer=SETTINGS.sealer(),
            ingest_version="t",
            prefix="submissions.3",
        )
    assert [e.field for e in caught.value.errors] == ["submissions.3.customer.msisdn"]


@pytest.mark.parametrize("document", [[], "x", 3, None])
def test_a_submission_is_an_object(document: Any) -> None:
    with pytest.raises(SubmissionRejected) as caught:
        validate(document)
    assert caught.value.errors[0].problem == "must be a JSON object"
