from __future__ import annotations

import re

import phonenumbers
import pytest

from terrain_runtime.privacy import (
    InvalidPhoneNumber,
    Pseudonymiser,
    RedactionBudget,
    Sealer,
    SealingError,
    normalise_msisdn,
    redact_contacts,
)
from terrain_testkit.privacy import phone_numbers_in


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("77 123 45 67", "SN", "+221771234567"),
        ("+221 77 123 45 67", "SN", "+221771234567"),
        ("00221771234567", "SN", "+221771234567"),
        ("0612345678", "MA", "+212612345678"),
        ("+243 81 234 5678", "CD", "+243812345678"),
        ("010 1234 5678", "EG", "+201012345678"),
        ("079 123 4567", "JO", "+962791234567"),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, region: str, e164: str) -> None:
    assert normalise_msisdn(raw, region) == e164


@pytest.mark.parametrize("raw", ["", "   ", "hello", "12", "+999 1234"])
def test_garbage_is_not_a_number(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalise_msisdn(raw, "SN")


def test_pseudonym_is_keyed_stable_and_prefixed() -> None:
    one = Pseudonymiser("k1", b"secret-one")
    other = Pseudonymiser("k1", b"secret-two")
    assert one.pseudonym("+221771234567") == one.pseudonym("+221771234567")
    assert one.pseudonym("+221771234567") != other.pseudonym("+221771234567")
    assert one.pseudonym("+221771234567").startswith("k1:")
    assert "221771234567" not in one.pseudonym("+221771234567")


def test_sealed_number_opens_only_for_its_record() -> None:
    sealer = Sealer({"s1": b"k" * 32}, "s1")
    token = sealer.seal("+221771234567", context=b"record-a")
    assert "221771234567" not in token
    assert sealer.open(token, context=b"record-a") == "+221771234567"
    with pytest.raises(SealingError):
        sealer.open(token, context=b"record-b")
    with pytest.raises(SealingError):
        Sealer({"s2": b"k" * 32}, "s2").open(token, context=b"record-a")


# A mobile number of each market, as people write it there.
WRITTEN = {
    "BW": "71 123 456",
    "BF": "70 12 34 56",
    "CM": "6 77 12 34 56",
    "CF": "72 12 34 56",
    "CI": "07 07 12 34 56",
    "CD": "081 234 5678",
    "EG": "010 1234 5678",
    "GN": "622 12 34 56",
    "GW": "955 123 456",
    "JO": "079 123 4567",
    "LR": "0770 123 456",
    "MG": "034 12 345 67",
    "ML": "76 12 34 56",
    "MA": "06 12 34 56 78",
    "SN": "77 123 45 67",
    "SL": "076 123 456",
    "TN": "98 765 432",
}
PSEUDONYMS = Pseudonymiser("k1", b"test-secret")


def _forms(written: str, region: str) -> list[str]:
    """The number as people write it: spaced, dotted, dashed, run together, with the
    country code after + or 00, with or without spaces."""
    number = phonenumbers.parse(written, region)
    code = str(number.country_code)
    national = phonenumbers.national_significant_number(number)
    spaced = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return [
        written,
        written.replace(" ", "."),
        written.replace(" ", "-"),
        written.replace(" ", ""),
        spaced,
        f"+{code}{national}",
        f"00{code}{national}",
        f"00 {code} {spaced.split(' ', 1)[1]}",
        f"(+{code}) {national}",
    ]


def _placeholder(written: str, region: str) -> str:
    e164 = normalise_msisdn(written, region)
    return f"[phone:{PSEUDONYMS.pseudonym(e164)}]"


SENTENCES = [
    "appelez mon frère au {} svp, il a payé 50 000 FCFA",  # French
    "Please call me back on {} about the 200 dinars I lost",  # English
    "اتصل بي على {} من فضلك",  # Arabic
    "ligue para {} amanhã de manhã",  # Portuguese
    "Antsoy aho amin'ny {} rahampitso",  # Malagasy
    "Wa salam, 3ayet liya f {} mn fadlek",  # Arabic in Latin letters
]


@pytest.mark.parametrize("region", sorted(WRITTEN))
def test_numbers_in_free_text_are_replaced_by_their_pseudonym_in_every_market(
    region: str,
) -> None:
    written = WRITTEN[region]
    expected = _placeholder(written, region)
    national = phonenumbers.national_significant_number(phonenumbers.parse(written, region))
    for form in _forms(written, region):
        for sentence in SENTENCES:
            text = sentence.format(form)
            redacted = redact_contacts(text, region=region, pseudonymiser=PSEUDONYMS)
            assert expected in redacted, (form, text, redacted)
            assert not phone_numbers_in(redacted, {national}), (text, redacted)
            # What is around the number is left as it was.
            before, _, after = sentence.partition("{}")
            assert redacted == before + expected + after


@pytest.mark.parametrize(
    ("text", "region", "numbers"),
    [
        ("77 123 45 67 78 123 45 67", "SN", ["+221771234567", "+221781234567"]),
        ("+221 77 123 45 67 78 123 45 67", "SN", ["+221771234567", "+221781234567"]),
        ("07 07 12 34 56 05 05 12 34 56", "CI", ["+2250707123456", "+2250505123456"]),
        ("70 12 34 56 71 12 34 56 76 12 34 56", "BF", ["+22670123456", "+22671123456", "+22676123456"]),
    ],
)  # fmt: skip
def test_numbers_written_one_after_the_other_are_each_found(
    text: str, region: str, numbers: list[str]
) -> None:
    redacted = redact_contacts(text, region=region, pseudonymiser=PSEUDONYMS)
    assert redacted == " ".join(f"[phone:{PSEUDONYMS.pseudonym(n)}]" for n in numbers)


def test_arabic_indic_digits_are_numbers_too() -> None:
    text = "رقمي ٠١٠١٢٣٤٥٦٧٨ واتصل ايضا ٠٧٩١٢٣٤٥٦٧"
    egypt = redact_contacts(text, region="EG", pseudonymiser=PSEUDONYMS)
    assert _placeholder("01012345678", "EG") in egypt
    assert "٠١٠١٢٣٤٥٦٧٨" not in egypt


def test_a_foreign_number_with_its_country_code_is_found() -> None:
    redacted = redact_contacts(
        "mon cousin en France: +33 6 12 34 56 78", region="SN", pseudonymiser=PSEUDONYMS
    )
    assert redacted == "mon cousin en France: " + _placeholder("+33612345678", "FR")


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("J'ai envoyé 50 000 FCFA hier, rien reçu", "SN"),
        ("200 dinars de recharge perdus", "TN"),
        ("1 500 000 Ar lany tsy hita", "MG"),
        ("10.000 MAD par mois, c'est trop", "MA"),
        ("j'ai perdu 200 000 000 GNF", "GN"),
        ("200 000 000 FG en une semaine", "GN"),
        ("payé 25 000 000 F CFA", "CI"),
        ("1 250 000 FC ont disparu", "CD"),
        ("دفعت 150 000 دينار", "JO"),
        ("the bill was P 1 234 567", "BW"),
        ("it cost $ 12 345 678 in total", "LR"),
        ("réseau coupé depuis 2019, 2020, 2021 et 2022", "CI"),
        ("le 15/04/2025 à 14:30, puis le 16/04/2025 à 09:15", "SN"),
        ("2025-04-15T09:12:33+00:00", "ML"),
        ("96 % de couverture 4G, 25 % en 3G", "BF"),
        ("ref 0b9f2f4e-6a4f-4c1e-9b53-2f1d3c7f9a10", "SN"),
        ("commande 123456789012", "SN"),
        ("carte 1234 5678 9012 3456", "SN"),
        ("300 000 000 000 000 GNF de pertes", "GN"),
        ("Visite du 12.03.2025, ticket 4512", "CM"),
    ],
)
def test_amounts_dates_and_references_stay(text: str, region: str) -> None:
    assert redact_contacts(text, region=region, pseudonymiser=PSEUDONYMS) == text


def test_emails_are_pseudonymised_lowercased() -> None:
    redacted = redact_contacts(
        "écrivez à Awa.Diop+om@Orange.sn ou awa.diop+om@orange.sn",
        region="SN",
        pseudonymiser=PSEUDONYMS,
    )
    placeholder = f"[email:{PSEUDONYMS.pseudonym('awa.diop+om@orange.sn')}]"
    assert redacted == f"écrivez à {placeholder} ou {placeholder}"


def test_redacting_twice_changes_nothing() -> None:
    once = redact_contacts(
        "77 123 45 67 ou awa@orange.sn, 98 765 432", region="SN", pseudonymiser=PSEUDONYMS
    )
    assert redact_contacts(once, region="SN", pseudonymiser=PSEUDONYMS) == once
    # "98 765 432" is no Senegalese number, but it is one of a neighbour market's.
    assert once.count("[phone:k1:") == 2 and once.count("[email:k1:") == 1


@pytest.mark.parametrize(
    ("text", "region", "number", "its_region"),
    [
        ("appelez mon frère au 98 765 432", "SN", "98 765 432", "TN"),
        ("call my cousin in Bamako: 76 12 34 56", "SN", "76 12 34 56", "ML"),
        ("mon oncle à Abidjan, 07 07 12 34 56", "SN", "07 07 12 34 56", "CI"),
        ("ligue para o meu irmão em Dakar 77 123 45 67", "GW", "77 123 45 67", "SN"),
    ],
)
def test_a_number_of_another_market_without_its_country_code_is_not_left_in_clear(
    text: str, region: str, number: str, its_region: str
) -> None:
    redacted = redact_contacts(text, region=region, pseudonymiser=PSEUDONYMS)
    assert number not in redacted and "[phone:k1:" in redacted
    assert not any(c.isdigit() for c in re.sub(r"\[phone:[^\]]*\]", "", redacted))


def test_the_placeholder_is_the_msisdn_join_key() -> None:
    redacted = redact_contacts("au 77 123 45 67", region="SN", pseudonymiser=PSEUDONYMS)
    assert redacted == f"au [phone:{PSEUDONYMS.pseudonym('+221771234567')}]"


@pytest.mark.parametrize("text", ["1 " * 2000, "77 123 45 67 " * 300, "٠ " * 2000])
def test_a_crafted_run_of_digits_costs_little_and_leaves_no_number(text: str) -> None:
    # Beyond a few dozen numbers in one text the rest of its runs lose their digits
    # without a pseudonym: nobody can make a text cost more than its matcher scan.
    redacted = redact_contacts(text, region="SN", pseudonymiser=PSEUDONYMS)
    assert redacted.count("[phone:") <= 64 and redacted.endswith("[digits] ")
    assert not re.search(r"\d(?:\D{0,3}\d){6}", re.sub(r"\[[^\]]*\]", "", redacted))


def test_past_the_request_budget_digits_are_masked_without_a_pseudonym() -> None:
    budget = RedactionBudget(40)
    first = redact_contacts("appelez le 77 123 45 67", region="SN", pseudonymiser=PSEUDONYMS,
                            budget=budget)  # fmt: skip
    second = redact_contacts(
        "et aussi le 78 123 45 67 puis 50 FCFA", region="SN", pseudonymiser=PSEUDONYMS,
        budget=budget,
    )  # fmt: skip
    plain = redact_contacts("pas de chiffres ici", region="SN", pseudonymiser=PSEUDONYMS,
                            budget=budget)  # fmt: skip
    assert first.startswith("appelez le [phone:k1:")
    assert second == "et aussi le [digits] puis 50 FCFA"
    assert plain == "pas de chiffres ici"
