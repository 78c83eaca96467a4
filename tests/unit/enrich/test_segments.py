"""Customer segments: as of the collection time, fallbacks, the cache, CSV lines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from enrich.segments import (
    InvalidSegmentRow,
    SegmentCache,
    SegmentRecord,
    customer_segment,
    fallback_segment,
    parse_segment_row,
    segment_as_of,
)
from terrain_contracts.messages import PseudonymisedCustomer
from terrain_contracts.submission import CustomerKind
from terrain_runtime.privacy import Pseudonymiser

JAN = datetime(2025, 1, 1, tzinfo=UTC)
APR = datetime(2025, 4, 1, tzinfo=UTC)
HISTORY = [
    SegmentRecord("k1:aa", JAN, "youth", "silver", "pass_jeune", 10),
    SegmentRecord("k1:aa", APR, "family", "gold", "famille", 13),
]


def test_the_segment_in_force_when_the_visit_was_collected() -> None:
    assert segment_as_of(HISTORY, datetime(2024, 12, 31, tzinfo=UTC)) is None
    assert segment_as_of(HISTORY, datetime(2025, 3, 31, tzinfo=UTC)) == HISTORY[0]
    assert segment_as_of(list(reversed(HISTORY)), APR) == HISTORY[1]


def test_crm_segment_then_fallbacks() -> None:
    customer = PseudonymisedCustomer(kind=CustomerKind.CONSUMER, consent=False, msisdn_hash="k1:aa")
    crm = customer_segment(customer, datetime(2025, 2, 1, tzinfo=UTC), {"k1:aa": HISTORY})
    assert (crm.segment, crm.value_tier, crm.plan, crm.tenure_months, crm.source) == (
        "youth", "silver", "pass_jeune", 10, "crm",
    )  # fmt: skip
    unknown = customer_segment(customer, APR, {})
    assert (unknown.segment, unknown.source) == ("consumer", "customer_kind")


@pytest.mark.parametrize(
    ("company", "segment"),
    [
        ("Ministère de la Santé", "enterprise_public"),
        ("Université Cheikh Anta Diop", "enterprise_public"),
        ("Banque Atlantique CI", "enterprise_large"),
        ("SONATEL Group SA", "enterprise_large"),
        ("Quincaillerie Touba SARL", "enterprise_sme"),
        ("Pharmacie du Marché", "enterprise_sme"),
    ],
)
def test_enterprise_fallback_from_the_company_name(company: str, segment: str) -> None:
    found = fallback_segment(CustomerKind.ENTERPRISE, company)
    assert (found.segment, found.source) == (segment, "company_name")


def test_enterprise_without_a_telling_name_stays_enterprise() -> None:
    assert fallback_segment(CustomerKind.ENTERPRISE, "Chez Awa").segment == "enterprise"
    assert fallback_segment(CustomerKind.ORANGE_MONEY, None).segment == "orange_money"


def test_cache_fetches_only_the_unknown_and_expires() -> None:
    now = [0.0]
    cache = SegmentCache(max_entries=2, ttl_s=10, clock=lambda: now[0])
    assert cache.missing(["a", "b", "a"]) == ["a", "b"]
    cache.put({"a": HISTORY}, ["a", "b"])
    assert cache.missing(["a", "b"]) == []
    assert cache.histories(["a", "b"]) == {"a": tuple(HISTORY), "b": ()}
    now[0] = 11
    assert cache.missing(["a"]) == ["a"]
    cache.put({}, ["c"])  # over max_entries: the least recently used goes
    assert len(cache.histories(["a", "b", "c"])) == 2


def test_csv_line_with_a_clear_number_is_hashed_like_ingest() -> None:
    pseudonymiser = Pseudonymiser("k1", b"secret")
    record = parse_segment_row(
        {
            "msisdn": "77 123 45 67",
            "segment": "youth",
            "tenure_months": "4",
            "valid_from": "2025-01-01",
        },
        pseudonymiser,
        "SN",
    )
    assert record.msisdn_hash == pseudonymiser.pseudonym("+221771234567")
    assert "771234567" not in repr(record)
    assert (record.valid_from, record.tenure_months) == (JAN, 4)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"segment": "x", "valid_from": "2025-01-01"}, "msisdn or msisdn_hash"),
        ({"msisdn_hash": "k1:a", "valid_from": "2025-01-01"}, "segment"),
        ({"msisdn_hash": "k1:a", "segment": "x", "valid_from": "01/02/2025"}, "valid_from"),
        (
            {
                "msisdn_hash": "k1:a",
                "segment": "x",
                "valid_from": "2025-01-01",
                "tenure_months": "-1",
            },
            "tenure_months",
        ),
        ({"msisdn": "12", "segment": "x", "valid_from": "2025-01-01"}, "msisdn"),
    ],
)
def test_invalid_csv_lines_name_the_column_never_the_number(
    row: dict[str, str], problem: str
) -> None:
    with pytest.raises(InvalidSegmentRow, match=problem) as error:
        parse_segment_row(row, Pseudonymiser("k1", b"secret"), "SN")
    assert row.get("msisdn", "\0") not in str(error.value)
