"""The verdict's receipt check: what each visit's receipt must say against what it said."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from terrain_contracts.markets import Market
from terrain_contracts.receipts import ReceiptStatus, SubmissionReceipt
from terrain_contracts.vocabulary import FailureReason
from terrain_simulator.receipts import (
    ExpectedReceipt,
    compare,
    receipts_line,
    total,
    wrong_receipt,
)
from terrain_simulator.verify import Verdict

AT = datetime(2025, 4, 15, 11, 40, tzinfo=UTC)
SN = next(iter(Market))


def expected(**fields: bool) -> ExpectedReceipt:
    return ExpectedReceipt(str(uuid4()), SN, **{"accepted": True, **fields})


def stored(want: ExpectedReceipt, *, alert: bool = False) -> SubmissionReceipt:
    return SubmissionReceipt(
        submission_id=UUID(want.submission_id),
        status=ReceiptStatus.STORED,
        stored_at=AT,
        alert_raised=alert,
    )


def told(want: ExpectedReceipt, status: ReceiptStatus) -> SubmissionReceipt:
    failed = status is ReceiptStatus.FAILED
    return SubmissionReceipt(
        submission_id=UUID(want.submission_id),
        status=status,
        failure_reason=FailureReason.CONFLICT if failed else None,
        failed_at=AT if failed else None,
    )


def test_an_accepted_visit_stored_is_right() -> None:
    want = expected()
    assert wrong_receipt(want, stored(want)) is None


def test_an_expected_alert_must_be_raised() -> None:
    want = expected(alert=True)
    assert wrong_receipt(want, stored(want, alert=True)) is None
    assert wrong_receipt(want, stored(want)) == "stored without the alert raised"


def test_an_alert_nobody_expected_is_not_wrong() -> None:
    # Rules beyond urgency (text signals) may alert too; the receipt only tells it.
    want = expected()
    assert wrong_receipt(want, stored(want, alert=True)) is None


def test_an_accepted_visit_unknown_or_missing_is_wrong() -> None:
    want = expected()
    assert wrong_receipt(want, told(want, ReceiptStatus.UNKNOWN)) == "accepted but unknown"
    assert wrong_receipt(want, None) == "no receipt in the answer"


def test_failed_only_where_the_database_has_a_failure() -> None:
    clean, recorded = expected(), expected(failure_recorded=True)
    why = wrong_receipt(clean, told(clean, ReceiptStatus.FAILED))
    assert why is not None and "no failure" in why
    assert wrong_receipt(recorded, told(recorded, ReceiptStatus.FAILED)) is None


def test_a_refused_visit_is_unknown() -> None:
    want = expected(accepted=False)
    assert wrong_receipt(want, told(want, ReceiptStatus.UNKNOWN)) is None
    assert wrong_receipt(want, stored(want)) == "refused but stored"


def test_compare_tallies_per_market_and_names_each_wrong_receipt() -> None:
    ok, alerted, refused, lost, failed = (
        expected(),
        expected(alert=True),
        expected(accepted=False),
        expected(alert=True),
        expected(failure_recorded=True),
    )
    other = ExpectedReceipt(str(uuid4()), list(Market)[1], accepted=True)
    received = {
        str(r.submission_id): r
        for r in (
            stored(ok),
            stored(alerted, alert=True),
            told(refused, ReceiptStatus.UNKNOWN),
            stored(lost),
            told(failed, ReceiptStatus.FAILED),
            stored(other),
        )
    }
    tallies = compare([ok, alerted, refused, lost, failed, other], received)
    tally = tallies[SN]
    assert (tally.accepted, tally.stored, tally.failed_as_recorded) == (4, 3, 1)
    assert (tally.alerts_expected, tally.alerts_raised) == (2, 1)
    assert (tally.refused, tally.unknown_as_refused) == (1, 1)
    assert tally.wrong == [f"{lost.submission_id}: stored without the alert raised"]
    assert (tally.right, tally.asked) == (4, 5)
    assert tallies[list(Market)[1]].wrong == []
    whole = total(tallies)
    assert (whole.accepted, whole.stored, len(whole.wrong)) == (5, 4, 1)
    assert receipts_line(tallies) == (
        "receipts: 4 of 5 accepted stored, 1 failed as the database records,"
        " 1 of 2 alerts raised as expected, 1 of 1 refused unknown, 1 wrong"
    )


def test_total_leaves_each_market_as_it_was() -> None:
    want = expected()
    tallies = compare([want], {})
    total(tallies)
    total(tallies)
    assert len(tallies[SN].wrong) == 1


def test_a_wrong_receipt_is_a_broken_promise_of_the_verdict() -> None:
    want = expected()
    verdict = Verdict(expected_receipts=[want])
    verdict.judge_receipts({want.submission_id: told(want, ReceiptStatus.UNKNOWN)})
    assert not verdict.ok
    assert verdict.problems == [
        f"{SN.value}: 1 wrong receipts, e.g. {want.submission_id}: accepted but unknown"
    ]
    kept = Verdict(expected_receipts=[want])
    kept.judge_receipts({want.submission_id: stored(want)})
    assert kept.ok
