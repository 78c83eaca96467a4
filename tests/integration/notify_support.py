"""Shared pieces of notify's integration tests: real loopback servers and settings."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import asyncpg

from notify.directory import ManagerSpec
from notify.managers import store_managers
from notify.settings import NotifySettings
from terrain_testkit.factories import field_submission
from terrain_testkit.processes import free_port

__all__ = [
    "BlockingHook",
    "Clock",
    "add",
    "alerts_of",
    "notify_settings",
    "own_directory",
    "submission",
    "until",
]


class Clock:
    """A clock the test moves: escalation, links and acknowledgements read it."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def notify_settings(settings_kwargs: dict[str, Any], **overrides: Any) -> NotifySettings:
    port = free_port()
    values: dict[str, Any] = {
        **settings_kwargs,
        "http_port": port,
        "public_base_url": f"http://127.0.0.1:{port}",
        "sender_poll_s": 0.1,
        "retry_base_s": 0.2,
        "retry_max_s": 1.0,
        "escalation_poll_s": 0.2,
    }
    values.update(overrides)
    return NotifySettings(**values)


class BlockingHook:
    """An HTTP receiver whose answers wait until the test releases them: a slow webhook."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.received: list[bytes] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.received.append(self.rfile.read(int(self.headers["content-length"])))
                hook.release.wait(timeout=60)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/slow"

    def __enter__(self) -> BlockingHook:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


async def alerts_of(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def until(predicate: Any, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def own_directory(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection, with the directory and outbox of earlier tests retired: each test
    sees only its own managers and alerts, and leaves none behind."""
    connection = await asyncpg.connect(database_url)
    await connection.execute("UPDATE terrain.managers SET active = false")
    await connection.execute(
        """UPDATE terrain.alerts SET status = 'failed', escalated_at = now()
           WHERE status IN ('pending', 'held') OR escalated_at IS NULL"""
    )
    try:
        yield connection
    finally:
        # Leave no active manager behind: later tests count a market's managers.
        await connection.execute("UPDATE terrain.managers SET active = false")
        await connection.close()


async def add(connection: asyncpg.Connection, settings: NotifySettings, **fields: Any) -> UUID:
    spec = ManagerSpec(role=fields.pop("role", "country_manager"), **fields)
    (manager_id,) = await store_managers(
        connection=connection, specs=[spec], sealer=settings.sealer()
    )
    return manager_id


def submission(market: str, **changes: Any) -> dict[str, Any]:
    # The example's number is Senegalese: in international form it is valid in any market.
    base = {
        "feedback__satisfaction": 4,
        "feedback__topics": ["offers"],
        "customer__msisdn": "+221771234567",
    }
    return field_submission(agent__market=market, **{**base, **changes})
