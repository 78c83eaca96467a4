"""The receipt as field apps back online read it, checked against what the day expects.

After the day each device asks ``POST /v1/submissions/status`` for the visits it sent; the
verdict then holds, per market: every visit answered 2xx (a resend of the same content too)
is ``stored``, with ``alert_raised`` for every visit an alert is expected for; a visit the
ingest refused is ``unknown``; a receipt is ``failed`` only where the database has a
failure. Nothing here does I/O: the receipts come in as the devices received them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from terrain_contracts.markets import Market
from terrain_contracts.receipts import ReceiptStatus, SubmissionReceipt


@dataclass(frozen=True, slots=True)
class ExpectedReceipt:
    """What one visit's receipt must say, from what the ingest answered and the database
    holds."""

    submission_id: str
    market: Market
    accepted: bool  # answered 2xx; False: refused (422)
    failure_recorded: bool = False  # terrain.failed_submissions has a row for the id
    alert: bool = False  # the verdict expects an alert for the visit


@dataclass
class ReceiptTally:
    """A market's receipts: how many told what was expected, and each wrong one and why."""

    accepted: int = 0
    stored: int = 0
    failed_as_recorded: int = 0
    alerts_expected: int = 0
    alerts_raised: int = 0
    refused: int = 0
    unknown_as_refused: int = 0
    wrong: list[str] = field(default_factory=list)

    @property
    def asked(self) -> int:
        return self.accepted + self.refused

    @property
    def right(self) -> int:
        """Receipts that told what was expected."""
        return self.asked - len(self.wrong)

    def add(self, other: ReceiptTally) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


def wrong_receipt(expected: ExpectedReceipt, got: SubmissionReceipt | None) -> str | None:
    """Why ``got`` is not the receipt ``expected`` calls for, or None when it is."""
    if got is None:
        return "no receipt in the answer"
    if not expected.accepted:
        return None if got.status is ReceiptStatus.UNKNOWN else f"refused but {got.status}"
    if got.status is ReceiptStatus.FAILED:
        if expected.failure_recorded:
            return None
        return f"failed ({got.failure_reason}) though the database has no failure"
    if got.status is ReceiptStatus.UNKNOWN:
        return "accepted but unknown"
    if got.stored_at is None:
        return "stored without stored_at"
    if expected.alert and got.alert_raised is not True:
        return "stored without the alert raised"
    return None


def compare(
    expected: Iterable[ExpectedReceipt], received: Mapping[str, SubmissionReceipt]
) -> dict[Market, ReceiptTally]:
    """Each market's tally of the receipts received against those expected."""
    tallies: dict[Market, ReceiptTally] = {}
    for want in expected:
        tally = tallies.setdefault(want.market, ReceiptTally())
        got = received.get(want.submission_id)
        why = wrong_receipt(want, got)
        if why is not None:
            tally.wrong.append(f"{want.submission_id}: {why}")
        if not want.accepted:
            tally.refused += 1
            tally.unknown_as_refused += why is None
            continue
        tally.accepted += 1
        if got is None:
            continue
        if got.status is ReceiptStatus.STORED:
            tally.stored += 1
        elif got.status is ReceiptStatus.FAILED and why is None:
            tally.failed_as_recorded += 1
        if want.alert:
            tally.alerts_expected += 1
            tally.alerts_raised += got.status is ReceiptStatus.STORED and got.alert_raised is True
    return tallies


def total(tallies: Mapping[Market, ReceiptTally]) -> ReceiptTally:
    """Every market's tally summed."""
    whole = ReceiptTally()
    for tally in tallies.values():
        whole.add(tally)
    return whole


def receipts_line(tallies: Mapping[Market, ReceiptTally]) -> str:
    """The verdict's receipts line: ``receipts: N of N stored, M of M alerts raised ...``."""
    whole = total(tallies)
    failed = whole.failed_as_recorded
    failed_text = f", {failed:,} failed as the database records" if failed else ""
    return (
        f"receipts: {whole.stored:,} of {whole.accepted:,} accepted stored{failed_text},"
        f" {whole.alerts_raised:,} of {whole.alerts_expected:,} alerts raised as expected,"
        f" {whole.unknown_as_refused:,} of {whole.refused:,} refused unknown,"
        f" {len(whole.wrong):,} wrong"
    )
