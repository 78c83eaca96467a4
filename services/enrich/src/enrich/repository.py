"""SQL of enrich: the exactly-once store of submissions and of failed submissions.

A batch is written in one transaction: the rows are COPied (binary) into a temporary
table, then moved with ``INSERT ... ON CONFLICT DO NOTHING``. Redelivery of a batch
therefore changes nothing, and a different payload under a known id comes back as a
conflict instead of overwriting what analysts already see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from enrich.logic import Failed, SubmissionRow, conflict
from enrich.segments import SegmentRecord
from terrain_runtime.db import Connection
from terrain_runtime.tracing import trace_id_of

_COLUMNS = (
    "submission_id", "payload_sha256", "campaign_id", "agent_market", "agent_employee_id",
    "agent_function", "collected_at", "received_at", "device_id", "customer_kind",
    "msisdn_hash", "topics", "satisfaction", "nps", "urgent", "verbatim", "language", "lat",
    "lon", "app_version", "enrichment", "submission", "source_partition", "source_offset",
    "country_code", "region", "city", "h3_cell", "outside_market", "segment", "value_tier",
    "signals", "trace_id",
)  # fmt: skip
_COLUMN_LIST = ", ".join(_COLUMNS)

# Column names are constants of this module, never input: the f-strings are safe
# (S608 is silenced for this file in pyproject.toml for that reason).
_PREPARE = f"""
CREATE TEMP TABLE IF NOT EXISTS incoming_submissions
    AS SELECT {_COLUMN_LIST}, NULL::text AS msisdn_sealed FROM terrain.submissions WITH NO DATA;
"""

_MOVE = f"""
WITH inserted AS (
    INSERT INTO terrain.submissions ({_COLUMN_LIST})
    SELECT {_COLUMN_LIST} FROM incoming_submissions
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

_FAILED = """
INSERT INTO terrain.failed_submissions (
    service, service_version, reason, detail, source_topic, source_partition, source_offset,
    submission_id, payload, payload_sha256, existing_payload_sha256, trace_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                     $7::bigint[], $8::uuid[], $9::bytea[], $10::text[], $11::text[],
                     $12::text[])
ON CONFLICT (source_topic, source_partition, source_offset, reason) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class Stored:
    submission_id: UUID
    stored_at: datetime
    duplicate: bool


def _record(row: SubmissionRow) -> tuple[object, ...]:
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
        row.sealed_msisdn(),
    )


async def store_batch(
    *,
    connection: Connection,
    rows: list[SubmissionRow],
    failures: list[Failed],
    service: str,
    service_version: str,
) -> tuple[list[Stored], list[Failed]]:
    """Store rows and failures in one transaction; returns what is stored and every failure
    (the given ones plus conflicts with submissions stored earlier)."""
    stored: list[Stored] = []
    all_failures = list(failures)
    async with connection.transaction():
        if rows:
            await connection.execute(_PREPARE)
            await connection.execute("TRUNCATE incoming_submissions")
            await connection.copy_records_to_table(
                "incoming_submissions",
                records=[_record(row) for row in rows],
                columns=[*_COLUMNS, "msisdn_sealed"],
            )
            by_id = {row.submission_id: row for row in rows}
            for result in await connection.fetch(_MOVE):
                submission_id = result["submission_id"]
                if result["inserted_at"] is not None:
                    stored.append(Stored(submission_id, result["inserted_at"], duplicate=False))
                elif result["existing_sha256"] == by_id[submission_id].payload_sha256:
                    stored.append(Stored(submission_id, result["existing_at"], duplicate=True))
                else:
                    all_failures.append(conflict(by_id[submission_id], result["existing_sha256"]))
        if all_failures:
            await connection.execute(
                _FAILED, *_failure_columns(all_failures, service, service_version)
            )
    return stored, all_failures


def _failure_columns(
    failures: list[Failed], service: str, service_version: str
) -> list[list[object]]:
    return [
        [service] * len(failures),
        [service_version] * len(failures),
        [f.reason.value for f in failures],
        [f.detail for f in failures],
        [f.record.topic for f in failures],
        [f.record.partition for f in failures],
        [f.record.offset for f in failures],
        [f.submission_id for f in failures],
        [f.record.value for f in failures],
        [hashlib.sha256(f.record.value).hexdigest() for f in failures],
        [f.existing_payload_sha256 for f in failures],
        [trace_id_of(f.record.headers) for f in failures],
    ]


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
