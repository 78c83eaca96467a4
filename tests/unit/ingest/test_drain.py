"""DrainUnreadBody in memory: an early answer first reads what is left of the body, within
its bounds, and never asks a client for a body it has not sent."""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Receive, Scope, Send

from ingest.body import DrainUnreadBody


class Client:
    """The server side of one request: the body in chunks, and what the app sent."""

    def __init__(self, chunks: int, size: int = 1000) -> None:
        self.left = chunks
        self.size = size
        self.read = 0
        self.sent: list[Message] = []
        self.answered_after_read: int | None = None

    async def receive(self) -> Message:
        self.left -= 1
        self.read += self.size
        return {"type": "http.request", "body": b" " * self.size, "more_body": self.left > 0}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.answered_after_read = self.read
        self.sent.append(message)


async def early_answer(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()  # one chunk, then the answer: "too large"
    await send({"type": "http.response.start", "status": 413, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def scope(**headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


async def test_an_early_answer_reads_the_rest_of_the_body_first() -> None:
    client = Client(chunks=10)
    app = DrainUnreadBody(early_answer, max_bytes=1_000_000, timeout_s=5)
    await app(scope(content_length="10000"), client.receive, client.send)
    assert client.answered_after_read == 10_000 and client.left == 0
    assert client.sent[0]["status"] == 413


async def test_the_drain_is_bounded() -> None:
    client = Client(chunks=1000)
    app = DrainUnreadBody(early_answer, max_bytes=5000, timeout_s=5)
    await app(scope(transfer_encoding="chunked"), client.receive, client.send)
    assert client.answered_after_read is not None and client.answered_after_read <= 7000


async def test_a_body_declared_beyond_the_bound_is_not_read() -> None:
    client = Client(chunks=1000)
    app = DrainUnreadBody(early_answer, max_bytes=5000, timeout_s=5)
    await app(scope(content_length="1000000"), client.receive, client.send)
    assert client.answered_after_read == 1000  # the app's own chunk, nothing more


async def test_a_client_waiting_for_100_continue_is_not_asked_for_its_body() -> None:
    async def refuses_at_once(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    client = Client(chunks=10)
    app = DrainUnreadBody(refuses_at_once, max_bytes=1_000_000, timeout_s=5)
    await app(scope(content_length="10000", expect="100-continue"), client.receive, client.send)
    assert client.answered_after_read == 0


async def test_a_body_read_in_full_is_not_drained_again() -> None:
    async def reads_all(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    client = Client(chunks=3)
    app = DrainUnreadBody(reads_all, max_bytes=1_000_000, timeout_s=5)
    await app(scope(content_length="3000"), client.receive, client.send)
    assert client.answered_after_read == 3000 and client.left == 0


async def test_an_answer_that_sheds_load_reads_nothing_more() -> None:
    async def sheds(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    client = Client(chunks=10)
    app = DrainUnreadBody(sheds, max_bytes=1_000_000, timeout_s=5)
    await app(scope(content_length="10000"), client.receive, client.send)
    assert client.answered_after_read == 1000
