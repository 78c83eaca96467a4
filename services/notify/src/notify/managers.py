"""The managers' directory in PostgreSQL: who is stored, and who can receive a market's
alerts (routing.py reads the ladder from it). What operators write is validated first, in
directory.py. Every statement takes parameters only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID, uuid4

from notify.directory import ManagerSpec
from terrain_runtime.db import Connection
from terrain_runtime.privacy import Sealer

# The market of regional directors, above every market.
REGIONAL = "*"

# Who can receive an alert: an active manager with at least one channel. The markets asked
# for, and the regional directors above every market.
_RECEIVERS = """
SELECT manager_id, market, level FROM terrain.managers
WHERE active AND market = ANY($1::text[])
  AND coalesce(webhook_url, '') || coalesce(email, '') || coalesce(sms_sealed, '') <> ''
"""


@dataclass(frozen=True, slots=True)
class Receiver:
    """An active manager with at least one channel, on the rung (market or ``*``, level)
    where the directory put them."""

    manager_id: UUID
    market: str
    level: int


async def receivers_in(*, connection: Connection, markets: Iterable[str]) -> list[Receiver]:
    """Everyone who can receive alerts of these markets: their own managers and the
    regional directors."""
    rows = await connection.fetch(_RECEIVERS, sorted({*markets, REGIONAL}))
    return [Receiver(r["manager_id"], r["market"], r["level"]) for r in rows]


@dataclass(frozen=True, slots=True)
class Manager:
    manager_id: UUID
    market: str
    name: str
    role: str
    level: int
    email: str | None
    webhook_url: str | None
    has_sms: bool
    language: str
    timezone: str
    working_hours: str
    active: bool


async def add_manager(
    *,
    connection: Connection,
    market: str,
    name: str,
    role: str,
    level: int = 1,
    email: str | None = None,
    webhook_url: str | None = None,
    sms_sealed: str | None = None,
    language: str = "fr",
    timezone: str = "UTC",
    working_hours: str = "08:00-18:00",
    manager_id: UUID | None = None,
) -> UUID:
    """Add a manager; pass ``manager_id`` when the SMS number was sealed for that id."""
    new_id: UUID = await connection.fetchval(
        """INSERT INTO terrain.managers
               (manager_id, market, name, role, level, email, webhook_url, sms_sealed,
                language, timezone, working_hours)
           VALUES (coalesce($1, gen_random_uuid()), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           RETURNING manager_id""",
        manager_id,
        market,
        name,
        role,
        level,
        email,
        webhook_url,
        sms_sealed,
        language,
        timezone,
        working_hours,
    )
    return new_id


async def list_managers(*, connection: Connection, market: str | None = None) -> list[Manager]:
    rows = await connection.fetch(
        """SELECT manager_id, market, name, role, level, email, webhook_url,
                  sms_sealed IS NOT NULL AS has_sms, language, timezone, working_hours, active
           FROM terrain.managers WHERE $1::text IS NULL OR market = $1
           ORDER BY market, level, name""",
        market,
    )
    return [Manager(**dict(row)) for row in rows]


async def deactivate_manager(*, connection: Connection, manager_id: UUID) -> bool:
    status: str = await connection.execute(
        "UPDATE terrain.managers SET active = false WHERE manager_id = $1 AND active", manager_id
    )
    return status.endswith(" 1")


async def store_managers(
    *, connection: Connection, specs: list[ManagerSpec], sealer: Sealer
) -> list[UUID]:
    """Add every manager; the SMS number is sealed for its manager's id (the AEAD context),
    so a sealed number copied onto another row does not open."""
    ids = []
    for spec in specs:
        manager_id = uuid4()
        e164 = spec.e164_sms()
        sealed = sealer.seal(e164, context=manager_id.bytes) if e164 else None
        ids.append(
            await add_manager(
                connection=connection,
                manager_id=manager_id,
                market=spec.market,
                name=spec.name,
                role=spec.role,
                level=spec.level,
                email=spec.email,
                webhook_url=spec.webhook,
                sms_sealed=sealed,
                language=spec.language,
                timezone=spec.timezone,
                working_hours=spec.working_hours,
            )
        )
    return ids
