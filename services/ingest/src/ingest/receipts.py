"""The field app's receipt: what a device may learn about a visit after its 202.

Nothing here does I/O: the route hands in what PostgreSQL holds about the ids (the stored
row, the failures, whether an alert was raised) and the authenticated device.

Who may read a receipt: the device that sent the visit, or any device of the visit's
market (the agent's market). A field app keeps its outbox through a new device token (a
phone re-registered after a loss, a revocation or a reinstall gets a new device id), the
answer holds nothing personal, and a submission id is a random UUID made on the phone:
knowing one means having had the visit. Anything else is answered as an id never received,
``unknown`` (404 for a single id), so an answer never tells that an id exists elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from ingest.logic import Device, field_errors
from ingest.problems import Problem
from ingest.screening import FieldError
from terrain_contracts.receipts import ReceiptQuery, ReceiptStatus, SubmissionReceipt
from terrain_contracts.vocabulary import FailureReason


@dataclass(frozen=True, slots=True)
class Origin:
    """Who sent a visit and which market it is about, as far as a row or payload tells."""

    market: str | None
    device_id: str | None

    def readable_by(self, device: Device) -> bool:
        return self.device_id == str(device.device_id) or self.market == device.market.value


@dataclass(frozen=True, slots=True)
class StoredVisit:
    """A row of terrain.submissions, and whether notify raised an alert for it."""

    submission_id: UUID
    stored_at: datetime
    origin: Origin
    alert_raised: bool


@dataclass(frozen=True, slots=True)
class RecordedFailure:
    """A row of terrain.failed_submissions; its detail is never read (it may quote input)."""

    submission_id: UUID
    reason: FailureReason
    failed_at: datetime
    origin: Origin | None  # None: the payload does not tell (undecodable, too large)


def failure_origin(payload: bytes | None) -> Origin | None:
    """The origin a failed record's payload names: a raw envelope (``device_id``, the
    agent's market) or an enriched one (``market``); None when it names neither."""
    if payload is None:
        return None
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):  # undecodable: the bytes as Kafka held them
        return None
    if not isinstance(document, dict):
        return None
    submission = document.get("submission")
    agent = submission.get("agent") if isinstance(submission, dict) else None
    market = agent.get("market") if isinstance(agent, dict) else document.get("market")
    device_id = document.get("device_id")
    origin = Origin(
        market=market if isinstance(market, str) else None,
        device_id=device_id if isinstance(device_id, str) else None,
    )
    return origin if origin.market or origin.device_id else None


def receipt(
    submission_id: UUID,
    device: Device,
    stored: StoredVisit | None,
    failures: Iterable[RecordedFailure],
) -> SubmissionReceipt:
    """One id's receipt from what the device may read of it.

    A conflict is told even though the first content under the id is stored: the content
    the app sent last is not the one kept. Any other failure is told only while the visit is
    not stored (a failure replayed once its cause was fixed ends stored)."""
    if stored is not None and not stored.origin.readable_by(device):
        stored = None
    readable = [f for f in failures if f.origin is not None and f.origin.readable_by(device)]
    conflicts = [f for f in readable if f.reason is FailureReason.CONFLICT]
    if conflicts or (stored is None and readable):
        failure = max(conflicts or readable, key=lambda f: f.failed_at)
        return SubmissionReceipt(
            submission_id=submission_id,
            status=ReceiptStatus.FAILED,
            stored_at=stored.stored_at if stored else None,
            failure_reason=failure.reason,
            failed_at=failure.failed_at,
        )
    if stored is not None:
        return SubmissionReceipt(
            submission_id=submission_id,
            status=ReceiptStatus.STORED,
            stored_at=stored.stored_at,
            alert_raised=stored.alert_raised,
        )
    return SubmissionReceipt(submission_id=submission_id, status=ReceiptStatus.UNKNOWN)


def receipts(
    ids: Sequence[UUID],
    device: Device,
    stored: Iterable[StoredVisit],
    failures: Iterable[RecordedFailure],
) -> list[SubmissionReceipt]:
    """A receipt per id, in the order of ``ids``."""
    by_id = {visit.submission_id: visit for visit in stored}
    failed: dict[UUID, list[RecordedFailure]] = {}
    for failure in failures:
        failed.setdefault(failure.submission_id, []).append(failure)
    return [receipt(i, device, by_id.get(i), failed.get(i, ())) for i in ids]


def path_submission_id(text: str) -> UUID:
    """The id of ``GET /v1/submissions/{id}``, or a 422 naming the path parameter."""
    try:
        return UUID(text)
    except ValueError:
        raise _invalid([FieldError("(path) submission_id", "must be a UUID")]) from None


def queried_ids(document: Any) -> list[UUID]:
    """The distinct ids of a status query, in the order asked, or a 422 naming each wrong
    field (``submission_ids.3``); a repeated id is answered once."""
    try:
        query = ReceiptQuery.model_validate(document)
    except ValidationError as error:
        raise _invalid(field_errors(error)[:50]) from None
    return list(dict.fromkeys(query.submission_ids))


def _invalid(errors: list[FieldError]) -> Problem:
    return Problem(
        422, "The receipt query names no valid submission", errors=errors, code="invalid-query"
    )
