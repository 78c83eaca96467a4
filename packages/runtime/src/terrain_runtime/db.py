"""PostgreSQL: connection pools and the schema migration runner.

Why a small runner rather than Alembic or yoyo: Terrain talks to PostgreSQL only through
asyncpg and plain SQL (no ORM, no second driver). Migrations are numbered ``.sql`` files
applied in order, each in its own transaction, under an advisory lock so that several
replicas starting together apply each file once; a file changed after it was applied is
refused by checksum. That is all the features we use of those tools, without pulling in
SQLAlchemy or psycopg next to asyncpg.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

# Errors worth waiting out: the server restarting, the network blinking, a failover.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    # SQLSTATE class 08 (connection exceptions), ConnectionDoesNotExistError among them.
    asyncpg.exceptions.PostgresConnectionError,
    # 57P02: the server crashed and is restarting.
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)

_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works: it only has to be the same for every process that migrates.
_MIGRATION_LOCK_KEY = 0x7E77A1


# What repositories accept: a plain connection or one borrowed from a pool.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def available_migrations() -> list[Migration]:
    folder = resources.files("terrain_runtime").joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version: {versions}")
    return found


async def migrate(connection: asyncpg.Connection) -> list[Migration]:
    """Apply pending migrations; returns those applied now. Safe to run concurrently."""
    await connection.execute(
        """CREATE TABLE IF NOT EXISTS public.terrain_schema_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    applied_now: list[Migration] = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_KEY)
        rows = await connection.fetch(
            "SELECT version, checksum FROM public.terrain_schema_migrations"
        )
        done = {row["version"]: row["checksum"] for row in rows}
        for migration in available_migrations():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} changed after it"
                        " was applied: add a new migration instead of editing it"
                    )
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO public.terrain_schema_migrations (version, name, checksum)"
                    " VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
            applied_now.append(migration)
    return applied_now


async def applied_versions(connection: asyncpg.Connection) -> list[int]:
    rows = await connection.fetch(
        "SELECT version FROM public.terrain_schema_migrations ORDER BY version"
    )
    return [row["version"] for row in rows]


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        # Fail a query that hangs on a dead server instead of blocking a consumer forever.
        command_timeout=30,
        # And a connection attempt to a server that is going down or coming up: asyncpg's
        # default is 60 s, during which whoever waits for the pool waits too.
        timeout=5,
    )
    if pool is None:  # asyncpg types it Optional; it never is when awaited
        raise RuntimeError("asyncpg returned no pool")
    return pool
