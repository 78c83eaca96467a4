from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from ingest.logic import Device, SubmissionRejected, receive, validate
from terrain_contracts.markets import Market
from terrain_contracts.messages import decode_raw_submission
from terrain_runtime.settings import TerrainSettings
from terrain_testkit.privacy import phone_numbers_in

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


def test_number_is_pseudonymised_and_sealed_with_consent(dakar_example: dict[str, Any]) -> None:
    envelope = accept(dakar_example)
    customer = envelope.submission.customer
    assert customer.msisdn_hash == SETTINGS.pseudonymiser().pseudonym("+221771234567")
    assert customer.msisdn_sealed is not None
    opened = SETTINGS.sealer().open(customer.msisdn_sealed, context=envelope.submission_id.bytes)
    assert opened == "+221771234567"
    assert "77 123 45 67" not in envelope.model_dump_json()


def test_without_consent_names_and_phone_like_fields_are_dropped(
    dakar_example: dict[str, Any],
) -> None:
    dakar_example["customer"].update(
        consent=False, name="Awa", last_name="Diop", phone="77 000 00 00", loyalty_card="X1"
    )
    customer = accept(dakar_example).submission.customer
    extras = customer.model_extra or {}
    assert customer.msisdn_sealed is None
    assert customer.msisdn_hash is not None
    assert set(extras) == {"loyalty_card"}


def test_phone_like_fields_are_dropped_even_with_consent(dakar_example: dict[str, Any]) -> None:
    dakar_example["customer"].update(name="Awa", mobile_2="77 000 00 00")
    extras = accept(dakar_example).submission.customer.model_extra or {}
    assert extras == {"name": "Awa"}


def test_the_app_cannot_forge_the_pseudonym_fields(dakar_example: dict[str, Any]) -> None:
    dakar_example["customer"]["msisdn_sealed"] = "s1:forged"
    del dakar_example["customer"]["msisdn"]
    customer = accept(dakar_example).submission.customer
    assert customer.msisdn_sealed is None
    assert customer.msisdn_hash is None


def test_server_facts(dakar_example: dict[str, Any]) -> None:
    envelope = accept(dakar_example)
    assert (
        envelope.outbox_delay_s
        == (NOW - datetime(2025, 4, 15, 9, 12, 33, tzinfo=UTC)).total_seconds()
    )
    assert (
        envelope.clock_skew_s
        == (NOW - datetime(2025, 4, 15, 11, 40, 2, tzinfo=UTC)).total_seconds()
    )
    assert envelope.device_market is Market.SN


def test_unknown_fields_travel(dakar_example: dict[str, Any]) -> None:
    dakar_example["weather"] = {"rain": True}
    dakar_example["feedback"]["mood"] = "angry"
    dumped = accept(dakar_example).submission.model_dump(mode="json")
    assert dumped["weather"] == {"rain": True}
    assert dumped["feedback"]["mood"] == "angry"


def test_bad_number_names_the_field_with_the_batch_prefix(dakar_example: dict[str, Any]) -> None:
    dakar_example["customer"]["msisdn"] = "call me maybe"
    with pytest.raises(SubmissionRejected) as caught:
        receive(
            validate(dakar_example, "submissions.3"),
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


def test_numbers_and_emails_in_the_verbatim_and_unknown_fields_are_pseudonymised(
    dakar_example: dict[str, Any],
) -> None:
    dakar_example["feedback"]["verbatim"] = "appelez mon frère au 77 765 43 21, 50 000 FCFA"
    dakar_example["notes"] = {"rappel": ["écrire à awa@orange.sn", "ou au +221 76 111 22 33"]}
    dakar_example["agent"]["remark"] = "chef: 78.222.33.44"
    dakar_example["location"]["hint"] = "boutique 70-333-44-55"
    dakar_example["app"]["debug"] = {"last_caller": "00221 77 444 55 66"}
    dakar_example["customer"]["other"] = "son mari 77 555 66 77"
    dakar_example["feedback"]["followup"] = 775556688
    envelope = accept(dakar_example)
    dumped = envelope.model_dump_json()
    pseudonyms = SETTINGS.pseudonymiser()
    for e164 in ("+221777654321", "+221761112233", "+221782223344", "+221703334455"):
        assert f"[phone:{pseudonyms.pseudonym(e164)}]" in dumped
    assert f"[email:{pseudonyms.pseudonym('awa@orange.sn')}]" in dumped
    numbers = {"777654321", "761112233", "782223344", "703334455", "774445566", "775556677"}
    assert not phone_numbers_in(dumped, numbers | {"775556688"})
    assert "awa@orange.sn" not in dumped
    assert envelope.submission.feedback.verbatim is not None
    assert envelope.submission.feedback.verbatim.endswith(", 50 000 FCFA")
    # The raw topic's consumers decode what ingest wrote.
    assert decode_raw_submission(dumped.encode()).model_dump_json() == dumped


def test_a_verbatim_full_of_numbers_still_decodes(dakar_example: dict[str, Any]) -> None:
    dakar_example["feedback"]["verbatim"] = ("77 123 45 67 " * 400)[:4000]
    envelope = accept(dakar_example)
    verbatim = envelope.submission.feedback.verbatim
    assert verbatim is not None and len(verbatim) > 4000
    assert not phone_numbers_in(verbatim, {"771234567"})
    dumped = envelope.model_dump_json()
    assert decode_raw_submission(dumped.encode()).model_dump_json() == dumped


@pytest.mark.parametrize(
    "key",
    ["name", "Full-Name", "firstName", "last_name", "Nom", "prénom", "Prenom", "nome",
     "apelido", "sobrenome", "email", "E-mail", "courriel", "contact", "Nom complet"],
)  # fmt: skip
def test_name_keys_are_dropped_at_every_level_without_consent(
    dakar_example: dict[str, Any], key: str
) -> None:
    dakar_example["customer"]["consent"] = False
    dakar_example[key] = "Awa Diop"
    dakar_example["feedback"][key] = "Awa Diop"
    dakar_example["agent"]["extra"] = {"list": [{key: "Awa Diop", "kept": 1}]}
    dumped = accept(dakar_example).model_dump_json()
    assert "Awa" not in dumped and '"kept":1' in dumped


def test_with_consent_names_stay_but_numbers_do_not(dakar_example: dict[str, Any]) -> None:
    dakar_example["contact"] = {"nom": "Awa Diop", "note": "joignable au 77 765 43 21"}
    dumped = accept(dakar_example).model_dump_json()
    assert "Awa Diop" in dumped
    assert not phone_numbers_in(dumped, {"777654321"})


@pytest.mark.parametrize(
    "key", ["phone", "Téléphone", "telefone", "tel_2", "WhatsApp", "msisdn2", "Portable"]
)
def test_phone_keys_are_dropped_at_every_level_even_with_consent(
    dakar_example: dict[str, Any], key: str
) -> None:
    dakar_example["feedback"]["contacts"] = [{key: 771234599, "hotel": "Teranga"}]
    dakar_example[key] = "x"
    extras = accept(dakar_example).submission.model_dump(mode="json")
    assert key not in extras
    assert extras["feedback"]["contacts"] == [{"hotel": "Teranga"}]


def test_numbers_in_the_typed_place_and_company_are_pseudonymised(
    dakar_example: dict[str, Any],
) -> None:
    dakar_example["location"] = {"place": "boutique de Moussa, " + "77 765 43 21 / " * 12}
    dakar_example["customer"]["company"] = "Garage Diop, tel 78 222 33 44"
    envelope = accept(dakar_example)
    dumped = envelope.model_dump_json()
    assert not phone_numbers_in(dumped, {"777654321", "782223344"})
    assert envelope.submission.location is not None
    assert envelope.submission.location.place is not None
    assert envelope.submission.location.place.startswith("boutique de Moussa, [phone:k1:")
    assert decode_raw_submission(dumped.encode()).model_dump_json() == dumped


def test_customer_contact_words_are_dropped_there_and_kept_elsewhere(
    dakar_example: dict[str, Any],
) -> None:
    dakar_example["customer"].update(mobile="x", numero="y", gsm="z", cell_2="w")
    dakar_example["network"] = {"mobile_data": "slow", "cell_id": "SN-4412", "gsm": "2G only"}
    submission = accept(dakar_example).submission
    assert set(submission.customer.model_extra or {}) == set()
    assert (submission.model_extra or {})["network"] == dakar_example["network"]
