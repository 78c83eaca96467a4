"""SQL of `terrain failed`: find failed submissions, and record their replays.

Rows are read with ``SELECT *`` on purpose: columns that later migrations add to
``terrain.failed_submissions`` (a SQLSTATE, a second hash) reach ``terrain failed show``
without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from terrain_runtime.db import Connection

# Columns every row has (migrations 0001, 0004 and 0007); anything else is shown as it is.
_KNOWN = frozenset(
    {
        "failure_id", "failed_at", "service", "service_version", "reason", "detail",
        "source_topic", "source_partition", "source_offset", "submission_id", "payload",
        "payload_sha256", "existing_payload_sha256", "trace_id", "replayed_at", "replay_count",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FailedSubmission:
    failure_id: int
    failed_at: datetime
    service: str
    service_version: str
    reason: str
    detail: str
    source_topic: str
    source_partition: int
    source_offset: int
    submission_id: UUID | None
    payload: bytes
    payload_sha256: str
    existing_payload_sha256: str | None
    trace_id: str | None
    replayed_at: datetime | None
    replay_count: int
    # Columns this module does not know by name, for `show`.
    other: dict[str, Any] = field(default_factory=dict)


def _failed(row: Any) -> FailedSubmission:
    values = dict(row)
    other = {name: value for name, value in values.items() if name not in _KNOWN}
    known = {name: value for name, value in values.items() if name in _KNOWN}
    return FailedSubmission(**known, other=other)


@dataclass(frozen=True, slots=True)
class FailureFilter:
    reason: str | None = None
    service: str | None = None
    since: datetime | None = None
    # None: both; False: only those never replayed.
    replayed: bool | None = None


def _where(selection: FailureFilter) -> tuple[str, list[Any]]:
    clauses = [
        "($1::text IS NULL OR reason = $1)",
        "($2::text IS NULL OR service = $2)",
        "($3::timestamptz IS NULL OR failed_at >= $3)",
        "($4::boolean IS NULL OR (replay_count > 0) = $4)",
    ]
    args = [selection.reason, selection.service, selection.since, selection.replayed]
    return " AND ".join(clauses), args


async def find_failures(
    *, connection: Connection, selection: FailureFilter, limit: int | None = None
) -> list[FailedSubmission]:
    """Failures matching ``selection``, newest first."""
    where, args = _where(selection)
    rows = await connection.fetch(
        f"SELECT * FROM terrain.failed_submissions WHERE {where}"  # noqa: S608 - constant clauses
        " ORDER BY failed_at DESC, failure_id DESC LIMIT $5",
        *args,
        limit,
    )
    return [_failed(row) for row in rows]


async def failure_ids(*, connection: Connection, selection: FailureFilter) -> list[int]:
    """Ids of the failures matching ``selection``, oldest first (the order to replay them)."""
    where, args = _where(selection)
    rows = await connection.fetch(
        f"SELECT failure_id FROM terrain.failed_submissions WHERE {where}"  # noqa: S608
        " ORDER BY failure_id",
        *args,
    )
    return [row["failure_id"] for row in rows]


async def get_failures(*, connection: Connection, ids: list[int]) -> list[FailedSubmission]:
    rows = await connection.fetch(
        "SELECT * FROM terrain.failed_submissions WHERE failure_id = ANY($1::bigint[])"
        " ORDER BY failure_id",
        ids,
    )
    return [_failed(row) for row in rows]


async def mark_replayed(*, connection: Connection, ids: list[int]) -> None:
    """Record that these failures were re-published (and acknowledged by Kafka) now."""
    await connection.execute(
        "UPDATE terrain.failed_submissions"
        " SET replayed_at = now(), replay_count = replay_count + 1"
        " WHERE failure_id = ANY($1::bigint[])",
        ids,
    )
