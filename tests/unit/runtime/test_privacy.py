from __future__ import annotations

import pytest

from terrain_runtime.privacy import (
    InvalidPhoneNumber,
    Pseudonymiser,
    Sealer,
    SealingError,
    normalise_msisdn,
)


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
