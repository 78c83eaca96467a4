"""An answer's writes leave as one send, in order, and nothing is lost when the connection
closes right after them."""

from __future__ import annotations

import asyncio
from typing import Any

from ingest.wire import _JoinedWrites


class _Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return f"info {name}"


async def test_the_writes_of_one_loop_turn_are_one_send() -> None:
    transport = _Transport()
    joined = _JoinedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    joined.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
    joined.write(b'{"status":"accepted"}')
    assert transport.sent == []
    await asyncio.sleep(0)
    assert transport.sent == [b'HTTP/1.1 202 Accepted\r\n\r\n{"status":"accepted"}']
    joined.write(b"next")
    await asyncio.sleep(0)
    assert transport.sent[1:] == [b"next"]


async def test_closing_sends_what_is_pending_first() -> None:
    transport = _Transport()
    joined = _JoinedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    joined.write(b"head")
    joined.write(b"body")
    joined.close()
    assert transport.sent == [b"headbody"] and transport.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
    assert transport.sent == [b"headbody"]


async def test_everything_else_is_the_transports() -> None:
    joined = _JoinedWrites(_Transport(), asyncio.get_running_loop())  # type: ignore[arg-type]
    assert joined.get_extra_info("peername") == "info peername"
