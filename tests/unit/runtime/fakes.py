"""Fakes of what the consumer pipeline stores into: a table that refuses what PostgreSQL
refuses, and a pool whose first connections fail as a restarting server's do."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from terrain_runtime.dlq import Failure


def server_error(sqlstate: str, message: str, **fields: str) -> asyncpg.PostgresError:
    """An error as asyncpg builds it from the server's ErrorResponse fields."""
    return asyncpg.PostgresError.new({"C": sqlstate, "M": message, **fields})


class Table:
    """An all-or-nothing store that refuses rows holding U+0000, as PostgreSQL does."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.attempts = 0

    async def store(self, rows: Sequence[str]) -> tuple[list[str], list[Failure]]:
        self.attempts += 1
        if any("\x00" in row for row in rows):
            raise server_error("22021", 'invalid byte sequence for encoding "UTF8": 0x00')
        self.rows.extend(rows)
        return list(rows), []


class FlakyPool:
    """A pool whose first connections fail as a restarting server's do."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.error = error or OSError("connection refused")
        self.acquired = 0
        self.connections: list[Connection] = []

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        self.acquired += 1
        if self.acquired <= self.failures:
            raise self.error
        self.connections.append(Connection())
        yield self.connections[-1]


class Connection:
    def __init__(self) -> None:
        self.executed: list[tuple[str, tuple[Any, ...]]] = []

    async def execute(self, sql: str, *args: Any) -> str:
        self.executed.append((sql, args))
        return "INSERT 0 1"
