"""SQL of enrich: the exactly-once store of submissions and of failed submissions.

A batch is written in one transaction: the rows are COPied (binary) into a temporary
table, then moved with ``INSERT ... ON CONFLICT DO NOTHING``. Redelivery of a batch
therefore changes nothing, and a different payload under a known id comes back as a
conflict instead of overwriting what analysts already see.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from enrich.logic import Failed, SubmissionRow, conflict
from terrain_runtime.db import Connection

_COLUMNS = (
    "submission_id", "payload_sha256", "campaign_id", "agent_market", "agent_employee_id",
    "agent_function", "collected_at", "received_at", "device_id", "customer_kind",
    "msisdn_hash", "topics", "satisfaction", "nps", "urgent", "verbatim", "language", "lat",
    "lon", "app_version", "enrichment", "submission", "source_partition", "source_offset",
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
    submission_id, payload, payload_sha256, existing_payload_sha256)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                     $7::bigint[], $8::uuid[], $9::bytea[], $10::text[], $11::text[])
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
    ]
