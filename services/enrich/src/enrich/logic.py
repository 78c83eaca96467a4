"""Pure logic of enrich: decode a raw record, enrich it, and shape the row to store.

The stream plumbing (handlers) calls these functions; they never touch Kafka or PostgreSQL,
so each rule is tested on its own. The flow for a batch is decode -> enrich -> rows, and
only the repository writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pydantic import ValidationError

from enrich.geo import Gazetteer, locate_batch
from enrich.segments import SegmentRecord, customer_segment
from enrich.text import LEXICON_VERSION, detect_language, detect_signals
from terrain_contracts.messages import (
    Enrichment,
    FailureReason,
    PseudonymisedSubmission,
    SubmissionReceivedV1,
    UnknownSchemaVersion,
    decode_raw_submission,
)
from terrain_runtime.dlq import SourceRecord

# Bumped with any change of what enrichment computes (the lexicon has its own version).
ENRICHER_VERSION = f"2+lexicon.{LEXICON_VERSION}"


@dataclass(frozen=True, slots=True)
class Decoded:
    record: SourceRecord
    received: SubmissionReceivedV1


@dataclass(frozen=True, slots=True)
class Failed:
    record: SourceRecord
    reason: FailureReason
    detail: str
    submission_id: UUID | None = None
    existing_payload_sha256: str | None = None


def decode(record: SourceRecord) -> Decoded | Failed:
    try:
        return Decoded(record, decode_raw_submission(record.value))
    except UnknownSchemaVersion as error:
        return Failed(record, FailureReason.UNKNOWN_SCHEMA_VERSION, str(error))
    except ValidationError as error:
        detail = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        )
        return Failed(record, FailureReason.INVALID, detail)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        return Failed(record, FailureReason.UNDECODABLE, f"not a JSON object: {error}"[:500])


def canonical_document(submission: PseudonymisedSubmission) -> str:
    """What the field sent, as canonical JSON (sorted keys): stored, and hashed.

    The sealed number is left out: it is encrypted with a fresh nonce at each request, so
    two resends of one visit differ there while meaning the same thing (and it lives in
    terrain.customer_contacts, never in the document).
    """
    document = submission.model_dump(mode="json", exclude_none=True)
    document.get("customer", {}).pop("msisdn_sealed", None)
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(submission: PseudonymisedSubmission) -> str:
    """Hash of what the field sent: equal for every resend of the same visit."""
    return _sha256(canonical_document(submission))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def enrich_batch(
    received: Sequence[SubmissionReceivedV1],
    *,
    gazetteer: Gazetteer,
    segment_histories: Mapping[str, Sequence[SegmentRecord]],
) -> list[Enrichment]:
    """Geo, segment and text signals of a batch (one nearest-place query for all fixes)."""
    places = locate_batch(
        gazetteer,
        [r.submission.agent.market for r in received],
        [r.submission.location for r in received],
    )
    enrichments: list[Enrichment] = []
    for item, place in zip(received, places, strict=True):
        submission = item.submission
        verbatim = submission.feedback.verbatim
        enrichments.append(
            Enrichment(
                geo=place,
                segment=customer_segment(
                    submission.customer, submission.collected_at, segment_histories
                ),
                language=detect_language(verbatim, hint=submission.feedback.language),
                signals=detect_signals(verbatim),
                enricher_version=ENRICHER_VERSION,
            )
        )
    return enrichments


@dataclass(frozen=True, slots=True)
class SubmissionRow:
    """One submission ready for terrain.submissions (and its sealed contact, if any)."""

    received: SubmissionReceivedV1
    enrichment: Enrichment
    payload_sha256: str
    record: SourceRecord
    document: str  # canonical_document(): serialised once, hashed and stored

    @property
    def submission_id(self) -> UUID:
        return self.received.submission_id

    def sealed_msisdn(self) -> str | None:
        return self.received.submission.customer.msisdn_sealed

    def stored_document(self) -> str:
        return self.document


@dataclass(frozen=True, slots=True)
class StoreResult:
    submission_id: UUID
    stored_at: datetime
    duplicate: bool


def plan_batch(
    decoded: list[Decoded],
    *,
    gazetteer: Gazetteer,
    segment_histories: Mapping[str, Sequence[SegmentRecord]],
) -> tuple[list[SubmissionRow], list[Failed]]:
    """Rows to store, and in-batch conflicts: a batch may carry one visit twice."""
    rows: dict[UUID, SubmissionRow] = {}
    failures: list[Failed] = []
    enrichments = enrich_batch(
        [item.received for item in decoded],
        gazetteer=gazetteer,
        segment_histories=segment_histories,
    )
    for item, enrichment in zip(decoded, enrichments, strict=True):
        document = canonical_document(item.received.submission)
        row = SubmissionRow(
            received=item.received,
            enrichment=enrichment,
            payload_sha256=_sha256(document),
            record=item.record,
            document=document,
        )
        first = rows.get(row.submission_id)
        if first is None:
            rows[row.submission_id] = row
        elif first.payload_sha256 != row.payload_sha256:
            failures.append(conflict(row, first.payload_sha256))
    return list(rows.values()), failures


def conflict(row: SubmissionRow, existing_sha256: str) -> Failed:
    return Failed(
        row.record,
        FailureReason.CONFLICT,
        "same submission_id with different content: the first one stays",
        submission_id=row.submission_id,
        existing_payload_sha256=existing_sha256,
    )
