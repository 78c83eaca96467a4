"""SQL of enrich: the exactly-once store of submissions.

A batch is written in one transaction: the rows are COPied (binary) into a temporary
table, then moved with ``INSERT ... ON CONFLICT DO NOTHING``. Redelivery of a batch
therefore changes nothing, a resend (same content, later ``sent_at``) only counts one more
send, and a different content under a known id comes back as a conflict instead of
overwriting what analysts already see. Failed submissions are stored by
``terrain_runtime.dlq.store_failures``, the same for every service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from enrich.logic import CONTENT_HASH_VERSION, SubmissionRow, conflict, same_content
from enrich.segments import SegmentRecord
from terrain_runtime.db import Connection
from terrain_runtime.dlq import Failure
from terrain_runtime.tracing import trace_id_of

# The columns of terrain.submissions that a stored row fills, in the order of
# submission_values(); public because the benchmarks COPY the very same rows.
SUBMISSION_COLUMNS = (
    "submission_id", "payload_sha256", "campaign_id", "agent_market", "agent_employee_id",
    "agent_function", "collected_at", "received_at", "device_id", "customer_kind",
    "msisdn_hash", "topics", "satisfaction", "nps", "urgent", "verbatim", "language", "lat",
    "lon", "app_version", "enrichment", "submission", "source_partition", "source_offset",
    "country_code", "region", "city", "h3_cell", "outside_market", "segment", "value_tier",
    "signals", "trace_id", "last_sent_at",
)  # fmt: skip
_COLUMN_LIST = ", ".join(SUBMISSION_COLUMNS)
_V2 = f"{CONTENT_HASH_VERSION}:"

# Column names are constants of this module, never input: the f-strings are safe
# (S608 is silenced for this file in pyproject.toml for that reason).
_PREPARE = f"""
CREATE TEMP TABLE IF NOT EXISTS incoming_submissions
    AS SELECT {_COLUMN_LIST}, NULL::text AS msisdn_sealed, NULL::timestamptz[] AS sent_ats
    FROM terrain.submissions WITH NO DATA;
"""

_MOVE = f"""
WITH inserted AS (
    INSERT INTO terrain.submissions ({_COLUMN_LIST}, send_count)
    SELECT {_COLUMN_LIST}, GREATEST(cardinality(sent_ats), 1) FROM incoming_submissions
    ON CONFLICT (submission_id) DO NOTHING
    RETURNING submission_id, stored_at
), contacts AS (
    INSERT INTO terrain.customer_contacts (submission_id, msisdn_sealed)
    SELECT i.submission_id, i.msisdn_sealed
    FROM incoming_submissions i JOIN inserted USING (submission_id)
    WHERE i.msisdn_sealed IS NOT NULL
    ON CONFLICT (submission_id) DO NOTHING
)
SELECT i.submission_id,
       inserted.stored_at AS inserted_at,
       existing.stored_at AS existing_at,
       existing.payload_sha256 AS existing_sha256
FROM incoming_submissions i
LEFT JOIN inserted USING (submission_id)
LEFT JOIN terrain.submissions existing
       ON existing.submission_id = i.submission_id AND inserted.submission_id IS NULL
"""


# A resend counts once: only sent_ats later than the last one seen add to the count, so a
# redelivered Kafka record (same sent_at) changes nothing. Run only for the batch's
# duplicates, by primary key: the common batch, all new visits, pays nothing for it (as one
# more CTE of _MOVE it doubled the statement's time). A row still hashed under v1 gets its
# v2 hash here, since its content was just found equal; rows stored before last_sent_at
# existed count from their document's sent_at, the first send.
_LAST_SENT = "COALESCE(s.last_sent_at, (s.submission->>'sent_at')::timestamptz, '-infinity')"
_RESENT = f"""
UPDATE terrain.submissions s
SET send_count = s.send_count + (
        SELECT count(*) FROM unnest(COALESCE(i.sent_ats, ARRAY[i.last_sent_at])) AS t (sent_at)
        WHERE t.sent_at > {_LAST_SENT}),
    last_sent_at = GREATEST(s.last_sent_at, i.last_sent_at),
    payload_sha256 = i.payload_sha256
FROM incoming_submissions i
WHERE s.submission_id = ANY($1::uuid[]) AND i.submission_id = s.submission_id
  AND (i.last_sent_at > {_LAST_SENT} OR s.payload_sha256 <> i.payload_sha256)
"""


# Only rows hashed before version 2 need their document (see logic.same_content): fetched
# apart, for them only, so that the move never carries documents for nothing.
_DOCUMENTS = """
SELECT submission_id, submission::text AS document FROM terrain.submissions
WHERE submission_id = ANY($1::uuid[])
"""


@dataclass(frozen=True, slots=True)
class Stored:
    submission_id: UUID
    stored_at: datetime
    duplicate: bool


def submission_values(row: SubmissionRow) -> tuple[object, ...]:
    """A row's values in ``SUBMISSION_COLUMNS`` order, then its sealed number (stored in
    ``terrain.customer_contacts``, not in the submission): what a batch COPies."""
    received = row.received
    submission = received.submission
    location = submission.location
    geo = row.enrichment.geo
    segment = row.enrichment.segment
    return (
        received.submission_id,
        row.payload_sha256,
        submission.campaign_id,
        submission.agent.market.value,
        submission.agent.employee_id,
        submission.agent.function.value,
        submission.collected_at,
        received.received_at,
        received.device_id,
        submission.customer.kind.value,
        submission.customer.msisdn_hash,
        [topic.value for topic in submission.feedback.topics],
        submission.feedback.satisfaction,
        submission.feedback.nps,
        bool(submission.feedback.urgent),
        submission.feedback.verbatim,
        row.enrichment.language,
        float(location.lat) if location and location.lat is not None else None,
        float(location.lon) if location and location.lon is not None else None,
        submission.app.version if submission.app else None,
        row.enrichment.model_dump_json(),
        row.stored_document(),
        row.record.partition,
        row.record.offset,
        geo.country_code,
        geo.region,
        geo.city,
        geo.h3_cell,
        "outside_market" in geo.flags,
        segment.segment,
        segment.value_tier,
        row.enrichment.signals,
        trace_id_of(row.record.headers),
        max(row.sent_ats) if row.sent_ats else None,
        row.sealed_msisdn(),
    )


async def store_batch(
    *, connection: Connection, rows: Sequence[SubmissionRow]
) -> tuple[list[Stored], list[Failure]]:
    """Store rows in one transaction; returns what is stored (new or a duplicate of what
    was) and the conflicts with submissions stored earlier. Atomic: when PostgreSQL
    refuses one row, nothing of the batch is written and the error propagates."""
    stored: list[Stored] = []
    conflicts: list[Failure] = []
    resent: list[UUID] = []
    if not rows:
        return stored, conflicts
    async with connection.transaction():
        await connection.execute(_PREPARE)
        await connection.execute("TRUNCATE incoming_submissions")
        await connection.copy_records_to_table(
            "incoming_submissions",
            # The sent_ats of a visit sent more than once within the batch; NULL (cheaper
            # to encode) for the usual single send, whose sent_at is last_sent_at.
            records=[
                (*submission_values(row), sorted(row.sent_ats) if len(row.sent_ats) > 1 else None)
                for row in rows
            ],
            columns=[*SUBMISSION_COLUMNS, "msisdn_sealed", "sent_ats"],
        )
        by_id = {row.submission_id: row for row in rows}
        results = await connection.fetch(_MOVE)
        legacy = [
            r["submission_id"]
            for r in results
            if r["inserted_at"] is None and not r["existing_sha256"].startswith(_V2)
        ]
        documents: dict[UUID, str] = {}
        if legacy:
            documents = {
                r["submission_id"]: r["document"]
                for r in await connection.fetch(_DOCUMENTS, legacy)
            }
        for result in results:
            submission_id = result["submission_id"]
            row = by_id[submission_id]
            if result["inserted_at"] is not None:
                stored.append(Stored(submission_id, result["inserted_at"], duplicate=False))
            elif same_content(
                result["existing_sha256"], documents.get(submission_id), row.payload_sha256
            ):
                stored.append(Stored(submission_id, result["existing_at"], duplicate=True))
                if row.sent_ats or result["existing_sha256"] != row.payload_sha256:
                    resent.append(submission_id)
            else:
                conflicts.append(conflict(row, result["existing_sha256"]))
        if resent:
            await connection.execute(_RESENT, resent)
    return stored, conflicts


async def fetch_segment_histories(
    *, connection: Connection, msisdn_hashes: Sequence[str]
) -> dict[str, list[SegmentRecord]]:
    """Every CRM record of these customers, in one query for a whole batch."""
    if not msisdn_hashes:
        return {}
    rows = await connection.fetch(
        """SELECT msisdn_hash, valid_from, segment, value_tier, plan, tenure_months
           FROM terrain.customer_segments WHERE msisdn_hash = ANY($1::text[])""",
        list(msisdn_hashes),
    )
    histories: dict[str, list[SegmentRecord]] = {}
    for row in rows:
        histories.setdefault(row["msisdn_hash"], []).append(
            SegmentRecord(
                msisdn_hash=row["msisdn_hash"],
                valid_from=row["valid_from"],
                segment=row["segment"],
                value_tier=row["value_tier"],
                plan=row["plan"],
                tenure_months=row["tenure_months"],
            )
        )
    return histories


_SEGMENT_COLUMNS = ("msisdn_hash", "valid_from", "segment", "value_tier", "plan", "tenure_months")

_UPSERT_SEGMENTS = """
INSERT INTO terrain.customer_segments AS s
    (msisdn_hash, valid_from, segment, value_tier, plan, tenure_months)
SELECT DISTINCT ON (msisdn_hash, valid_from)
    msisdn_hash, valid_from, segment, value_tier, plan, tenure_months
FROM incoming_segments
ORDER BY msisdn_hash, valid_from
ON CONFLICT (msisdn_hash, valid_from) DO UPDATE SET
    segment = excluded.segment, value_tier = excluded.value_tier, plan = excluded.plan,
    tenure_months = excluded.tenure_months, imported_at = now()
WHERE (s.segment, s.value_tier, s.plan, s.tenure_months) IS DISTINCT FROM
      (excluded.segment, excluded.value_tier, excluded.plan, excluded.tenure_months)
"""


async def import_segments(*, connection: Connection, records: Iterable[SegmentRecord]) -> int:
    """Upsert one chunk of CRM records in one transaction; returns the rows that changed.

    Importing the same extract again changes nothing (rows equal to what is stored are not
    even rewritten); a corrected extract replaces the values of the same (customer, date).
    """
    async with connection.transaction():
        await connection.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incoming_segments"
            " (LIKE terrain.customer_segments INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await connection.copy_records_to_table(
            "incoming_segments",
            records=[
                (r.msisdn_hash, r.valid_from, r.segment, r.value_tier, r.plan, r.tenure_months)
                for r in records
            ],
            columns=list(_SEGMENT_COLUMNS),
        )
        status = await connection.execute(_UPSERT_SEGMENTS)
    return int(status.split()[-1])
