"""Shared pieces of notify's integration tests: real loopback servers and settings."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg

from notify.settings import NotifySettings
from tests.helpers import SmtpSink, free_port

__all__ = ["BlockingHook", "Clock", "SmtpSink", "alerts_of", "notify_settings", "until"]


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
