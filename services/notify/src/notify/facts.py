"""What the alert rules read of an enriched record, and the slim model that reads only that.

Notify sees every enriched submission and alerts on a few (one in twenty on a field day).
Decoding the whole ``SubmissionStoredV1`` of each one (the submission, its location, its
enrichment, datetimes, UUIDs, redacted text checks) was most of notify's CPU per record;
the rules need six values. ``read_alert_facts`` validates only those from the same JSON
bytes (the rest of the document is parsed, not validated, and never becomes Python
objects), and notify decodes the whole envelope only for a record that raises an alert.

``AlertFacts`` is what deciding needs, as a protocol: the slim model and the whole
envelope both satisfy it, so a rule reads the same path in either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from terrain_contracts.markets import Market
from terrain_contracts.submission import CustomerKind, Topic


class FeedbackFacts(Protocol):
    @property
    def urgent(self) -> bool | None: ...
    @property
    def satisfaction(self) -> int: ...
    @property
    def topics(self) -> Sequence[Topic]: ...


class CustomerFacts(Protocol):
    @property
    def kind(self) -> CustomerKind: ...


class SubmissionFacts(Protocol):
    @property
    def feedback(self) -> FeedbackFacts: ...
    @property
    def customer(self) -> CustomerFacts: ...


class EnrichmentFacts(Protocol):
    @property
    def signals(self) -> Sequence[str]: ...


class AlertFacts(Protocol):
    """What the rules read of an enriched submission (``SubmissionStoredV1`` has it all)."""

    @property
    def submission_id(self) -> UUID: ...
    @property
    def market(self) -> Market: ...
    @property
    def enrichment(self) -> EnrichmentFacts: ...
    @property
    def submission(self) -> SubmissionFacts: ...


class _Slim(BaseModel):
    # Everything else the document holds is skipped: validated by enrich before it
    # published, and decoded in full here when the record raises an alert.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Feedback(_Slim):
    urgent: StrictBool | None = None
    satisfaction: StrictInt = Field(ge=1, le=5)
    topics: tuple[Topic, ...] = Field(min_length=1)


class _Customer(_Slim):
    kind: CustomerKind


class _Submission(_Slim):
    feedback: _Feedback
    customer: _Customer


class _Enrichment(_Slim):
    signals: tuple[str, ...] = ()


class SlimStoredSubmission(_Slim):
    """An enriched record as the rules see it: its version, id, market and the six facts."""

    schema_version: Literal[1]
    submission_id: UUID
    market: Market
    enrichment: _Enrichment
    submission: _Submission


def read_alert_facts(payload: bytes) -> SlimStoredSubmission:
    """The facts of an enriched record of the current version; raises ValueError (a
    pydantic ValidationError) for anything else, which the whole decoder then explains."""
    return SlimStoredSubmission.model_validate_json(payload)
