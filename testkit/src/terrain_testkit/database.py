"""A throwaway PostgreSQL database with Terrain's schema, and reading it back."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import asyncpg

from terrain_runtime.db import migrate

ADMIN_DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgresql://terrain:terrain@127.0.0.1:54329/terrain"
)


async def create_database(prefix: str, *, admin_url: str | None = None) -> str:
    """A fresh database with Terrain's schema (migrated), next to ``admin_url``'s (default
    ``DATABASE_URL``): its URL. Tests and benchmarks start from a known state there."""
    admin_url = admin_url or ADMIN_DATABASE_URL
    name = f"{prefix}_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    connection = await asyncpg.connect(url)
    try:
        await migrate(connection)
    finally:
        await connection.close()
    return url


async def drop_database(url: str, *, admin_url: str | None = None) -> None:
    """Drop the database of ``url``, even with connections still open to it. An autovacuum
    worker on a freshly loaded table belongs to the server, which our role may not
    terminate (SQLSTATE 42501): it ends on its own within moments, so try again."""
    admin = await asyncpg.connect(admin_url or ADMIN_DATABASE_URL)
    try:
        for attempt in range(20):
            try:
                await admin.execute(
                    f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'
                )
                return
            except asyncpg.InsufficientPrivilegeError:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def throwaway_database(prefix: str, *, admin_url: str | None = None) -> AsyncIterator[str]:
    """``create_database``, dropped on the way out."""
    url = await create_database(prefix, admin_url=admin_url)
    try:
        yield url
    finally:
        await drop_database(url, admin_url=admin_url)


async def fetchval(url: str, sql: str, *args: Any) -> Any:
    """One value of one query, on a connection of its own."""
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(sql, *args)
    finally:
        await connection.close()


async def eventually(query: Any, *, timeout_s: float = 20.0, interval_s: float = 0.1) -> Any:
    """Poll ``query()`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await query()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(interval_s)
