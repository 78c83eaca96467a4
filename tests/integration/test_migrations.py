from __future__ import annotations

import asyncpg

from terrain_runtime.db import applied_versions, available_migrations, migrate


async def test_migrations_are_applied_once_and_rerun_is_a_no_op(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        assert await migrate(connection) == []
        assert await applied_versions(connection) == [m.version for m in available_migrations()]
    finally:
        await connection.close()
