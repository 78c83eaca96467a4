"""One database connection for one command, from the same settings as the services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from terrain_runtime.settings import TerrainSettings

T = TypeVar("T")


def run_with_connection(work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on a connection to the configured database, closed when it returns."""

    async def main() -> T:
        settings = TerrainSettings()
        connection = await asyncpg.connect(settings.database_url.get_secret_value())
        try:
            return await work(connection)
        finally:
            await connection.close()

    return asyncio.run(main())
