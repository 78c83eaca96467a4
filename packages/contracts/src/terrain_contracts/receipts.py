"""The receipt: what the field app learns about a visit after its 202.

Ingest answers ``GET /v1/submissions/{id}`` with one ``SubmissionReceipt`` and
``POST /v1/submissions/status`` (a ``ReceiptQuery``) with a ``ReceiptList``. A receipt holds
no personal data: the id the app made, a status, times, a failure reason from the
vocabulary and whether an alert was raised; never the visit's content nor a failure's
detail (a detail may quote a value the agent typed).

``unknown`` is both "not stored yet" (accepted, on its way through Kafka and enrich) and
"never received": ingest keeps no record of what it accepted (a write on every accepted
visit would cost the hot path a database round trip), and the app knows whether it got a
202. A visit the device neither sent nor shares the market of is answered as ``unknown``
too, so an answer never tells that an id exists elsewhere. Resending a visit is always
safe: the id is the idempotency key.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from terrain_contracts.vocabulary import FailureReason

MAX_RECEIPT_IDS = 500


class ReceiptStatus(StrEnum):
    """Where a visit is, as far as the device may know."""

    # In PostgreSQL, exactly once: the analysts see it, notify has decided its alerts.
    STORED = "stored"
    # In the failed-submissions store with its reason; an agent or an operator acts on it.
    FAILED = "failed"
    # Not stored yet, never received, or not this device's market to know.
    UNKNOWN = "unknown"


class SubmissionReceipt(BaseModel):
    """One visit's receipt."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "submission_id": "0b9f2f4e-6a4f-4c1e-9b53-2f1d3c7f9a10",
                    "status": "stored",
                    "stored_at": "2025-04-15T11:40:03.512000Z",
                    "alert_raised": True,
                }
            ]
        },
    )

    submission_id: UUID
    status: ReceiptStatus
    stored_at: AwareDatetime | None = Field(
        default=None,
        description="When the visit was stored; for a conflict, when the first content sent"
        " under this id was stored (that content stays).",
    )
    alert_raised: bool | None = Field(
        default=None,
        description="Stored visits only: whether notify raised an alert to a manager (or"
        " recorded that nobody could receive it). False may still turn true seconds after"
        " storing, while notify decides.",
    )
    failure_reason: FailureReason | None = Field(
        default=None,
        description="Failed visits only: why. `conflict` means another content was already"
        " stored under this id; the others mean the pipeline refused this content.",
    )
    failed_at: AwareDatetime | None = Field(
        default=None, description="Failed visits only: when the failure was recorded."
    )


class ReceiptQuery(BaseModel):
    """The ids an app back online asks about, usually its outbox's."""

    # Fields a newer app adds are ignored, as the field-app contract keeps unknown fields.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "submission_ids": [
                        "0b9f2f4e-6a4f-4c1e-9b53-2f1d3c7f9a10",
                        "5d0c8a8e-2b7f-4a39-8f57-7a0a4c1b2e33",
                    ]
                }
            ]
        },
    )

    submission_ids: Annotated[list[UUID], Field(min_length=1, max_length=MAX_RECEIPT_IDS)]


class ReceiptList(BaseModel):
    """One receipt per distinct id asked, in the order asked."""

    model_config = ConfigDict(frozen=True)

    receipts: list[SubmissionReceipt]
