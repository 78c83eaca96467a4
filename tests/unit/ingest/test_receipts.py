"""The receipt's pure logic: who may read what, which status wins, and the 422s."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from ingest.logic import Device
from ingest.problems import Problem
from ingest.receipts import (
    Origin,
    RecordedFailure,
    StoredVisit,
    failure_origin,
    path_submission_id,
    queried_ids,
    receipt,
    receipts,
)
from terrain_contracts.markets import Market
from terrain_contracts.receipts import ReceiptStatus
from terrain_contracts.vocabulary import FailureReason
from terrain_testkit.factories import raw_record, stored_record

SENDER = Device(UUID(int=1), Market.SN, "sender")
COLLEAGUE = Device(uuid4(), Market.SN, "same market")
ABROAD = Device(uuid4(), Market.ML, "another market")
T0 = datetime(2025, 4, 15, 11, 40, tzinfo=UTC)
SENT_IN_SN = Origin(market="SN", device_id=str(SENDER.device_id))


def _stored(submission_id: UUID, *, alert: bool = False) -> StoredVisit:
    return StoredVisit(submission_id, T0, SENT_IN_SN, alert_raised=alert)


def _failure(
    submission_id: UUID,
    reason: FailureReason,
    *,
    at: datetime = T0,
    origin: Origin | None = SENT_IN_SN,
) -> RecordedFailure:
    return RecordedFailure(submission_id, reason, at, origin)


@pytest.mark.parametrize("device", [SENDER, COLLEAGUE])
def test_a_stored_visit_is_told_to_its_sender_and_its_market(device: Device) -> None:
    visit_id = uuid4()
    answer = receipt(visit_id, device, _stored(visit_id, alert=True), [])
    assert answer.status is ReceiptStatus.STORED
    assert (answer.stored_at, answer.alert_raised) == (T0, True)
    assert answer.failure_reason is None


def test_another_market_learns_nothing_not_even_that_the_id_exists() -> None:
    visit_id = uuid4()
    failure = _failure(visit_id, FailureReason.CONFLICT)
    answer = receipt(visit_id, ABROAD, _stored(visit_id), [failure])
    assert answer == receipt(visit_id, ABROAD, None, [])
    assert answer.status is ReceiptStatus.UNKNOWN
    assert answer.stored_at is None and answer.alert_raised is None


def test_the_sender_reads_its_visit_about_another_market() -> None:
    visit_id = uuid4()
    visit = StoredVisit(visit_id, T0, Origin("ML", str(SENDER.device_id)), alert_raised=False)
    assert receipt(visit_id, SENDER, visit, []).status is ReceiptStatus.STORED
    assert receipt(visit_id, COLLEAGUE, visit, []).status is ReceiptStatus.UNKNOWN
    assert receipt(visit_id, ABROAD, visit, []).status is ReceiptStatus.STORED


def test_a_conflict_is_told_although_the_first_content_is_stored() -> None:
    visit_id = uuid4()
    later = T0 + timedelta(hours=2)
    answer = receipt(
        visit_id, SENDER, _stored(visit_id), [_failure(visit_id, FailureReason.CONFLICT, at=later)]
    )
    assert answer.status is ReceiptStatus.FAILED
    assert answer.failure_reason is FailureReason.CONFLICT
    assert (answer.stored_at, answer.failed_at) == (T0, later)
    assert answer.alert_raised is None


def test_a_failure_fixed_by_a_replay_ends_stored() -> None:
    visit_id = uuid4()
    failure = _failure(visit_id, FailureReason.STORE_REJECTED)
    assert receipt(visit_id, SENDER, _stored(visit_id), [failure]).status is ReceiptStatus.STORED


def test_the_latest_failure_is_told_while_nothing_is_stored() -> None:
    visit_id = uuid4()
    failures = [
        _failure(visit_id, FailureReason.ENRICHMENT_ERROR),
        _failure(visit_id, FailureReason.STORE_REJECTED, at=T0 + timedelta(minutes=5)),
    ]
    answer = receipt(visit_id, COLLEAGUE, None, failures)
    assert (answer.status, answer.failure_reason) == (
        ReceiptStatus.FAILED,
        FailureReason.STORE_REJECTED,
    )
    assert answer.stored_at is None


def test_a_failure_whose_payload_names_no_sender_is_not_told() -> None:
    visit_id = uuid4()
    failure = _failure(visit_id, FailureReason.UNDECODABLE, origin=None)
    assert receipt(visit_id, SENDER, None, [failure]).status is ReceiptStatus.UNKNOWN


def test_receipts_answer_every_id_in_the_order_asked() -> None:
    stored_id, failed_id, unknown_id = uuid4(), uuid4(), uuid4()
    answers = receipts(
        [unknown_id, failed_id, stored_id],
        SENDER,
        [_stored(stored_id)],
        [_failure(failed_id, FailureReason.INVALID)],
    )
    assert [(a.submission_id, a.status) for a in answers] == [
        (unknown_id, ReceiptStatus.UNKNOWN),
        (failed_id, ReceiptStatus.FAILED),
        (stored_id, ReceiptStatus.STORED),
    ]


def test_the_origin_of_a_raw_record_is_its_device_and_agent_market() -> None:
    _, value = raw_record()  # sent by UUID(int=1) in SN
    assert failure_origin(value) == Origin(market="SN", device_id=str(UUID(int=1)))


def test_the_origin_of_an_enriched_record_is_its_market() -> None:
    _, value = stored_record()
    assert failure_origin(value) == Origin(market="SN", device_id=None)


@pytest.mark.parametrize(
    "payload",
    [None, b"\xff\xfe not json", b"[1, 2]", b'{"submission": 3}', b"[" * 100_000],
)
def test_a_payload_that_names_nobody_has_no_origin(payload: bytes | None) -> None:
    assert failure_origin(payload) is None


def test_a_payload_with_odd_types_is_read_as_far_as_it_goes() -> None:
    payload = json.dumps({"device_id": 7, "submission": {"agent": {"market": "SN"}}}).encode()
    assert failure_origin(payload) == Origin(market="SN", device_id=None)


def test_a_bad_path_id_is_a_422_naming_the_parameter() -> None:
    with pytest.raises(Problem) as raised:
        path_submission_id("not-a-uuid")
    assert raised.value.status == 422
    assert [e.field for e in raised.value.errors] == ["(path) submission_id"]
    assert path_submission_id("0B9F2F4E-6A4F-4C1E-9B53-2F1D3C7F9A10") == UUID(
        "0b9f2f4e-6a4f-4c1e-9b53-2f1d3c7f9a10"
    )


def test_queried_ids_are_distinct_in_the_order_asked_and_extras_are_ignored() -> None:
    first, second = uuid4(), uuid4()
    document = {"submission_ids": [str(first), str(second), str(first)], "app": "2.4.0"}
    assert queried_ids(document) == [first, second]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"submission_ids": [str(uuid4()), "nope"]}, "submission_ids.1"),
        ({"submission_ids": [str(uuid4())] * 501}, "submission_ids"),
        ({"submission_ids": []}, "submission_ids"),
        ({"ids": [str(uuid4())]}, "submission_ids"),
        ([str(uuid4())], "(body)"),
        ({"submission_ids": ["\ud800"]}, "submission_ids.0"),
    ],
)
def test_a_bad_query_is_a_422_naming_the_field(document: object, field: str) -> None:
    with pytest.raises(Problem) as raised:
        queried_ids(document)
    assert raised.value.status == 422
    assert [e.field for e in raised.value.errors] == [field]
    assert "nope" not in json.dumps(raised.value.body())
