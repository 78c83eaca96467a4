"""SQL of ingest: field devices and their bearer tokens (stored only as SHA-256), and what
a receipt reads of the stored and failed submissions (enrich's and notify's tables)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg

from ingest.logic import Device
from ingest.receipts import Origin, RecordedFailure, StoredVisit, failure_origin
from terrain_contracts.markets import Market
from terrain_contracts.vocabulary import FailureReason
from terrain_runtime.db import Connection

TOKEN_PREFIX = "trn_"  # noqa: S105 - a prefix that makes leaked tokens greppable


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    device_id: UUID
    market: Market
    label: str
    created_at: datetime
    revoked_at: datetime | None


async def create_device(
    *, connection: Connection, market: Market, label: str
) -> tuple[DeviceRecord, str]:
    """A new device and its token; the token is returned once and never stored in clear."""
    token = new_token()
    row = await connection.fetchrow(
        """INSERT INTO terrain.devices (device_id, market, label, token_hash)
           VALUES ($1, $2, $3, $4)
           RETURNING device_id, market, label, created_at, revoked_at""",
        uuid4(),
        market.value,
        label,
        hash_token(token),
    )
    assert row is not None
    return _record(row), token


async def list_devices(
    *, connection: Connection, market: Market | None = None
) -> list[DeviceRecord]:
    rows = await connection.fetch(
        """SELECT device_id, market, label, created_at, revoked_at FROM terrain.devices
           WHERE $1::text IS NULL OR market = $1 ORDER BY created_at""",
        market.value if market else None,
    )
    return [_record(row) for row in rows]


async def revoke_device(*, connection: Connection, device_id: UUID) -> bool:
    result: str = await connection.execute(
        "UPDATE terrain.devices SET revoked_at = now() WHERE device_id = $1 AND revoked_at IS NULL",
        device_id,
    )
    return result.endswith(" 1")


async def find_active_device(*, connection: Connection, token: str) -> Device | None:
    row = await connection.fetchrow(
        """SELECT device_id, market, label FROM terrain.devices
           WHERE token_hash = $1 AND revoked_at IS NULL""",
        hash_token(token),
    )
    if row is None:
        return None
    return Device(
        device_id=row["device_id"], market=Market(row["market"].strip()), label=row["label"]
    )


def _record(row: asyncpg.Record) -> DeviceRecord:
    return DeviceRecord(
        device_id=row["device_id"],
        market=Market(row["market"].strip()),
        label=row["label"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


# A failed record's payload is read only to tell who sent it. One larger than any visit
# ingest takes is left unread (its sender stays unknown), and rows are read a few at a time
# through a cursor: a query of 500 ids never holds more than a few megabytes of payloads.
_MAX_READ_PAYLOAD_BYTES = 131_072
_PAYLOADS_AT_ONCE = 32


async def find_stored_visits(*, connection: Connection, ids: list[UUID]) -> list[StoredVisit]:
    """The stored rows among ``ids``, each with whether notify raised an alert for it (an
    alert to a manager, or one recorded as reaching nobody)."""
    rows = await connection.fetch(
        """SELECT s.submission_id, s.stored_at, s.agent_market, s.device_id,
                  EXISTS (SELECT 1 FROM terrain.alerts a WHERE a.submission_id = s.submission_id)
                  OR EXISTS (SELECT 1 FROM terrain.unroutable_alerts u
                             WHERE u.submission_id = s.submission_id) AS alert_raised
           FROM terrain.submissions s WHERE s.submission_id = ANY($1::uuid[])""",
        ids,
    )
    return [
        StoredVisit(
            submission_id=row["submission_id"],
            stored_at=row["stored_at"],
            origin=Origin(market=row["agent_market"].strip(), device_id=row["device_id"]),
            alert_raised=row["alert_raised"],
        )
        for row in rows
    ]


async def find_failures(*, connection: Connection, ids: list[UUID]) -> list[RecordedFailure]:
    """The failures recorded for ``ids``; their detail is not read (it may quote input).
    Runs inside the caller's transaction (a cursor needs one)."""
    failures = []
    async for row in connection.cursor(
        """SELECT submission_id, reason, failed_at,
                  CASE WHEN octet_length(payload) <= $2 THEN payload END AS payload
           FROM terrain.failed_submissions WHERE submission_id = ANY($1::uuid[])""",
        ids,
        _MAX_READ_PAYLOAD_BYTES,
        prefetch=_PAYLOADS_AT_ONCE,
    ):
        failures.append(
            RecordedFailure(
                submission_id=row["submission_id"],
                reason=FailureReason(row["reason"]),
                failed_at=row["failed_at"],
                origin=failure_origin(row["payload"]),
            )
        )
    return failures
