"""Pure logic of enrich: decode a raw record, enrich it, and shape the row to store.

The pipeline stages (stages.py) call these functions; they never touch Kafka or PostgreSQL,
so each rule is tested on its own. The flow for a batch is decode -> enrich -> rows, and
only the repository writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from enrich.geo import Gazetteer, locate_batch
from enrich.lexicon import LEXICON_VERSION
from enrich.segments import SegmentRecord, customer_segment
from enrich.text import detect_language, detect_signals
from terrain_contracts.messages import (
    Enrichment,
    PseudonymisedSubmission,
    SubmissionReceivedV1,
    decode_raw_submission,
)
from terrain_contracts.vocabulary import FailureReason
from terrain_runtime.dlq import Failure, SourceRecord
from terrain_runtime.pipeline import decode_envelope

# Bumped with any change of what enrichment computes (the lexicon has its own version).
ENRICHER_VERSION = f"2+lexicon.{LEXICON_VERSION}"


@dataclass(frozen=True, slots=True)
class Decoded:
    record: SourceRecord
    received: SubmissionReceivedV1


def decode(record: SourceRecord) -> Decoded | Failure:
    """A raw record as enrich reads it: one the field app sent that does not fit the
    contract is INVALID (its mistake, kept for its team)."""
    return decode_envelope(
        record, decode_raw_submission, Decoded, FailureReason.INVALID, unreadable=_not_json
    )


def _not_json(record: SourceRecord, error: BaseException) -> Failure:
    return Failure(record, FailureReason.UNDECODABLE, f"not a JSON object: {error}"[:500])


# How the app sent a visit, not what the agent recorded: stamped anew (sent_at) or updated
# (the app block, when the app was upgraded between two sends) by every resend, so they are
# left out of the content hash. Ingest's own facts (received_at, device, outbox delay) live
# in the envelope, never in the submission: they are not hashed either, and the stored row
# keeps those of the first receipt.
SEND_FIELDS = ("sent_at", "app")
CONTENT_HASH_VERSION = "v2"
_V2 = f"{CONTENT_HASH_VERSION}:"


def _canonical(document: object) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def documents(submission: PseudonymisedSubmission) -> tuple[str, str]:
    """The submission as stored (JSON text) and its content hash ``v2:<hex>``.

    The stored document is everything the field sent, the first ``sent_at`` and ``app``
    included; the hash covers what the agent recorded (the document without
    ``SEND_FIELDS``), so every resend of a visit hashes alike. The sealed number is in
    neither: it is encrypted with a fresh nonce at each request (and lives in
    terrain.customer_contacts). One dump serves both: the send fields are appended to the
    hashed text, since PostgreSQL's jsonb does not keep key order anyway.
    """
    document = submission.model_dump(mode="json", exclude_none=True)
    document.get("customer", {}).pop("msisdn_sealed", None)
    sent = {field: document.pop(field) for field in SEND_FIELDS if field in document}
    hashed = _canonical(document)
    content_sha256 = _V2 + hashlib.sha256(hashed.encode()).hexdigest()
    if not sent:
        return hashed, content_sha256
    return f"{hashed[:-1]},{_canonical(sent)[1:]}", content_sha256


def same_content(stored_sha256: str, stored_document: str | None, content_sha256: str) -> bool:
    """Whether a stored submission has the content hashed ``content_sha256``.

    Rows stored before hash version 2 carry the v1 hash, which covered ``sent_at`` and the
    app block: no resend with a fresh ``sent_at`` could ever match it. Their stored
    document is exactly what v1 hashed, so the v2 hash is computed from it instead (only
    for those rows, only when a record with their id comes again). Rewriting the old
    hashes in a migration would need this same Python code over the whole table.
    """
    if stored_sha256.startswith(_V2):
        return stored_sha256 == content_sha256
    if stored_document is None:
        return False
    document = json.loads(stored_document)
    for field in SEND_FIELDS:
        document.pop(field, None)
    return _V2 + hashlib.sha256(_canonical(document).encode()).hexdigest() == content_sha256


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
    payload_sha256: str  # the content hash, ``v2:<hex>`` (see documents())
    record: SourceRecord
    document: str  # documents(): serialised once, stored
    # Every distinct sent_at of this visit in the batch: the app may send it twice within
    # one batch (a timeout, then a retry), and each send counts once.
    sent_ats: tuple[datetime, ...] = ()

    @property
    def submission_id(self) -> UUID:
        return self.received.submission_id

    def sealed_msisdn(self) -> str | None:
        return self.received.submission.customer.msisdn_sealed

    def stored_document(self) -> str:
        return self.document


def plan_batch(
    decoded: list[Decoded],
    *,
    gazetteer: Gazetteer,
    segment_histories: Mapping[str, Sequence[SegmentRecord]],
) -> tuple[list[SubmissionRow], list[Failure]]:
    """Rows to store, and in-batch conflicts: a batch may carry one visit twice."""
    rows: dict[UUID, SubmissionRow] = {}
    failures: list[Failure] = []
    enrichments = enrich_batch(
        [item.received for item in decoded],
        gazetteer=gazetteer,
        segment_histories=segment_histories,
    )
    for item, enrichment in zip(decoded, enrichments, strict=True):
        document, content_sha256 = documents(item.received.submission)
        row = SubmissionRow(
            received=item.received,
            enrichment=enrichment,
            payload_sha256=content_sha256,
            record=item.record,
            document=document,
            sent_ats=(sent_at,) if (sent_at := item.received.submission.sent_at) else (),
        )
        first = rows.get(row.submission_id)
        if first is None:
            rows[row.submission_id] = row
        elif first.payload_sha256 != row.payload_sha256:
            failures.append(conflict(row, first.payload_sha256))
        elif row.sent_ats and row.sent_ats[0] not in first.sent_ats:
            rows[row.submission_id] = replace(first, sent_ats=first.sent_ats + row.sent_ats)
    return list(rows.values()), failures


def conflict(row: SubmissionRow, existing_sha256: str) -> Failure:
    return Failure(
        row.record,
        FailureReason.CONFLICT,
        "same submission_id with different recorded content: the first one stays",
        submission_id=row.submission_id,
        content_sha256=row.payload_sha256,
        existing_content_sha256=existing_sha256,
    )


def store_rejected(row: SubmissionRow, detail: str) -> Failure:
    """PostgreSQL refused this row (its values, never quoted, are in the payload)."""
    return Failure(
        row.record, FailureReason.STORE_REJECTED, detail, submission_id=row.submission_id
    )
