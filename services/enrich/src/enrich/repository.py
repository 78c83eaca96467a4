"""SQL of enrich: the exactly-once store of submissions.

A batch is one statement: its rows travel as one array per column (``unnest``),
``INSERT ... ON CONFLICT DO NOTHING`` leaves every id already stored as it is, and the
contacts of the rows it inserted go in with them, so the batch is atomic by itself (when
PostgreSQL refuses one row nothing is written, which the pipeline's bisection relies on).
Only the ids it did not insert (a redelivery, a resend, a conflict) are looked up
afterwards: redelivery of a batch therefore changes nothing, a resend (same content, later
``sent_at``) only counts one more send, and a different content under a known id comes
back as a conflict instead of overwriting what analysts already see. Failed submissions
are stored by ``terrain_runtime.dlq.store_failures``, the same for every service.

Why arrays, and COPY only for big batches: at the batch sizes real traffic gives (tens of
records), COPY into a temporary table, its TRUNCATE and the transaction around them cost
three more round trips and about 30 % more server CPU a row than one statement; from
about a thousand rows (a backlog) a binary COPY, then the same statement reading the
temporary table, is the cheaper one again (bench/README.md has the numbers).
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
# submission_values(), with the type each travels as; public because the benchmarks COPY
# the very same rows. The two text[] columns travel as array literals (an array of arrays
# cannot be unnested row by row) and are cast back in the statement.
SUBMISSION_TYPES = {
    "submission_id": "uuid", "payload_sha256": "text", "campaign_id": "text",
    "agent_market": "text", "agent_employee_id": "text", "agent_function": "text",
    "collected_at": "timestamptz", "received_at": "timestamptz", "device_id": "text",
    "customer_kind": "text", "msisdn_hash": "text", "topics": "text", "satisfaction": "int2",
    "nps": "int2", "urgent": "bool", "verbatim": "text", "language": "text",
    "lat": "float8", "lon": "float8", "app_version": "text", "enrichment": "jsonb",
    "submission": "jsonb", "source_partition": "int4", "source_offset": "int8",
    "country_code": "text", "region": "text", "city": "text", "h3_cell": "text",
    "outside_market": "bool", "segment": "text", "value_tier": "text", "signals": "text",
    "trace_id": "text", "last_sent_at": "timestamptz",
}  # fmt: skip
SUBMISSION_COLUMNS = tuple(SUBMISSION_TYPES)
_ARRAY_LITERALS = frozenset({"topics", "signals"})
_TOPICS = SUBMISSION_COLUMNS.index("topics")
_SIGNALS = SUBMISSION_COLUMNS.index("signals")
_V2 = f"{CONTENT_HASH_VERSION}:"

# Column names and types are constants of this module, never input: the f-strings are
# safe (S608 is silenced for this file in pyproject.toml for that reason).
_COLUMN_LIST = ", ".join(SUBMISSION_COLUMNS)
_ARRAYS = ", ".join(
    f"${n}::{kind}[]"
    for n, kind in enumerate([*SUBMISSION_TYPES.values(), "int4", "text"], start=1)
)
_SELECTED = ", ".join(
    f"{column}::text[]" if column in _ARRAY_LITERALS else column for column in SUBMISSION_COLUMNS
)
_INSERT = f"""
WITH incoming AS (
    SELECT * FROM unnest({_ARRAYS}) AS i ({_COLUMN_LIST}, send_count, msisdn_sealed)
), inserted AS (
    INSERT INTO terrain.submissions ({_COLUMN_LIST}, send_count)
    SELECT {_SELECTED}, send_count FROM incoming
    ON CONFLICT (submission_id) DO NOTHING
    RETURNING submission_id, stored_at
), contacts AS (
    INSERT INTO terrain.customer_contacts (submission_id, msisdn_sealed)
    SELECT i.submission_id, i.msisdn_sealed
    FROM incoming i JOIN inserted USING (submission_id)
    WHERE i.msisdn_sealed IS NOT NULL
    ON CONFLICT (submission_id) DO NOTHING
)
SELECT submission_id, stored_at FROM inserted
"""

# From this many rows a batch is COPied (binary) into a temporary table and moved by the
# same INSERT, in one transaction: measured at 2,000 rows, 25 % less CPU than the arrays.
COPY_FROM_ROWS = 1000
_COPIED = ("incoming_submissions", [*SUBMISSION_COLUMNS, "send_count", "msisdn_sealed"])
_PREPARE = f"""
CREATE TEMP TABLE IF NOT EXISTS {_COPIED[0]}
    AS SELECT {_COLUMN_LIST}, send_count, NULL::text AS msisdn_sealed
    FROM terrain.submissions WITH NO DATA;
TRUNCATE {_COPIED[0]};
"""
_MOVE = _INSERT.replace(
    f"SELECT * FROM unnest({_ARRAYS}) AS i ({_COLUMN_LIST}, send_count, msisdn_sealed)",
    f"SELECT * FROM {_COPIED[0]}",
).replace(_SELECTED, _COLUMN_LIST)

# What is stored under the ids the insert left alone. Only rows hashed before version 2
# need their document (see logic.same_content): the others never carry it back.
_EXISTING = f"""
SELECT submission_id, stored_at, payload_sha256,
       CASE WHEN payload_sha256 LIKE '{_V2}%' THEN NULL ELSE submission::text END AS document
FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])
"""

# A resend counts once: only sent_ats later than the last one seen add to the count, so a
# redelivered Kafka record (same sent_at) changes nothing. Run only for the batch's
# duplicates, by primary key: the common batch, all new visits, pays nothing for it. A row
# still hashed under v1 gets its v2 hash here, since its content was just found equal;
# rows stored before last_sent_at existed count from their document's sent_at, the first
# send. $1/$2 are every (id, sent_at) of the batch's resent visits, $3..$5 one per visit.
_LAST_SENT = "COALESCE(s.last_sent_at, (s.submission->>'sent_at')::timestamptz, '-infinity')"
_RESENT = f"""
WITH sends AS (
    SELECT * FROM unnest($1::uuid[], $2::timestamptz[]) AS t (submission_id, sent_at)
), incoming AS (
    SELECT * FROM unnest($3::uuid[], $4::timestamptz[], $5::text[])
        AS i (submission_id, last_sent_at, payload_sha256)
)
UPDATE terrain.submissions s
SET send_count = s.send_count + (
        SELECT count(*) FROM sends t
        WHERE t.submission_id = s.submission_id AND t.sent_at > {_LAST_SENT}),
    last_sent_at = GREATEST(s.last_sent_at, i.last_sent_at),
    payload_sha256 = i.payload_sha256
FROM incoming i
WHERE s.submission_id = i.submission_id
  AND (i.last_sent_at > {_LAST_SENT} OR s.payload_sha256 <> i.payload_sha256)
"""


@dataclass(frozen=True, slots=True)
class Stored:
    submission_id: UUID
    stored_at: datetime
    duplicate: bool


def submission_values(row: SubmissionRow) -> tuple[object, ...]:
    """A row's values in ``SUBMISSION_COLUMNS`` order (``topics`` and ``signals`` as lists),
    then its sealed number (stored in ``terrain.customer_contacts``, not in the submission)."""
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


def _array_literal(values: Sequence[str]) -> str:
    """``{"a","b"}``: a text[] literal (the values are vocabulary words; quoting keeps any
    other text intact all the same)."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def _columns(rows: Sequence[SubmissionRow]) -> list[list[object]]:
    """The batch as one list per parameter of ``_INSERT``: the columns, send_count, the
    sealed number."""
    values = []
    for row in rows:
        each = list(submission_values(row))
        each[_TOPICS] = _array_literal(each[_TOPICS])  # type: ignore[arg-type]
        each[_SIGNALS] = _array_literal(each[_SIGNALS])  # type: ignore[arg-type]
        each.insert(-1, max(len(row.sent_ats), 1))
        values.append(each)
    return [list(column) for column in zip(*values, strict=True)]


async def store_batch(
    *, connection: Connection, rows: Sequence[SubmissionRow]
) -> tuple[list[Stored], list[Failure]]:
    """Store rows in one statement (after a COPY, for big batches); returns what is stored
    (new or a duplicate of what was), in the order of ``rows``, and the conflicts with
    submissions stored earlier. Atomic: when PostgreSQL refuses one row, nothing of the
    batch is written and the error propagates. The resend bookkeeping after it is
    idempotent: redone on redelivery, it counts nothing twice."""
    if not rows:
        return [], []
    if len(rows) < COPY_FROM_ROWS:
        inserted = {r[0]: r[1] for r in await connection.fetch(_INSERT, *_columns(rows))}
        return await _sort_out(connection, rows, inserted)
    async with connection.transaction():
        await connection.execute(_PREPARE)
        await connection.copy_records_to_table(
            _COPIED[0],
            records=[_copied(row) for row in rows],
            columns=_COPIED[1],
        )
        inserted = {r[0]: r[1] for r in await connection.fetch(_MOVE)}
        return await _sort_out(connection, rows, inserted)


def _copied(row: SubmissionRow) -> tuple[object, ...]:
    *values, sealed = submission_values(row)
    return (*values, max(len(row.sent_ats), 1), sealed)


async def _sort_out(
    connection: Connection, rows: Sequence[SubmissionRow], inserted: dict[UUID, datetime]
) -> tuple[list[Stored], list[Failure]]:
    """The rows not inserted: a duplicate (its resends counted) or a conflict."""
    others = [row.submission_id for row in rows if row.submission_id not in inserted]
    existing = {r[0]: r for r in await connection.fetch(_EXISTING, others)} if others else {}
    stored: list[Stored] = []
    conflicts: list[Failure] = []
    resent: list[SubmissionRow] = []
    for row in rows:
        submission_id = row.submission_id
        if (stored_at := inserted.get(submission_id)) is not None:
            stored.append(Stored(submission_id, stored_at, duplicate=False))
            continue
        found = existing[submission_id]
        if same_content(found["payload_sha256"], found["document"], row.payload_sha256):
            stored.append(Stored(submission_id, found["stored_at"], duplicate=True))
            if row.sent_ats or found["payload_sha256"] != row.payload_sha256:
                resent.append(row)
        else:
            conflicts.append(conflict(row, found["payload_sha256"]))
    if resent:
        sends = [(row.submission_id, sent_at) for row in resent for sent_at in row.sent_ats]
        await connection.execute(
            _RESENT,
            [submission_id for submission_id, _ in sends],
            [sent_at for _, sent_at in sends],
            [row.submission_id for row in resent],
            [max(row.sent_ats) if row.sent_ats else None for row in resent],
            [row.payload_sha256 for row in resent],
        )
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
