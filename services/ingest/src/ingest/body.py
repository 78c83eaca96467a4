"""Reading a request body the way a public API must: bounded, strict JSON, clear errors."""

from __future__ import annotations

import asyncio
import json
import math
import sys
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.problems import Problem
from ingest.screening import FieldError, may_hold_forbidden


class BodyBudget:
    """Bytes of request bodies held in memory by all requests together. Each body is
    bounded by its own limit, but a few hundred clients each streaming up to that limit
    would still add up to gigabytes: past this budget a request is shed with a 503 and
    Retry-After (the app keeps the visit in its outbox) instead of growing the process."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit_bytes:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        self.held -= size


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@dataclass(frozen=True, slots=True)
class JsonBody:
    document: Any
    may_hold_forbidden: bool  # see ingest.screening.may_hold_forbidden


async def read_json(request: Request, *, limit: int, budget: BodyBudget | None = None) -> JsonBody:
    """The parsed JSON body, or a Problem: 415 not JSON, 413 too large, 400 malformed, 503
    when the bodies being read already hold the ``budget``."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Problem(
            415,
            "The body must be JSON (Content-Type: application/json)",
            errors=[FieldError("(header) Content-Type", f"is {media_type or 'missing'}")],
            code="unsupported-media-type",
        )
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Problem(400, "Invalid Content-Length", code="malformed-request")
        if int(declared) > limit:
            raise _too_large(limit)
    # Count while streaming: a chunked body without Content-Length is cut off at the limit
    # instead of being read whole into memory.
    held = 0
    try:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                if budget is not None:
                    if not budget.take(len(chunk)):
                        raise Problem(
                            503,
                            "Too many large requests at once; keep the submissions and retry",
                            retry_after_s=1,
                            code="overloaded",
                        )
                    held += len(chunk)
                chunks.append(chunk)
        except ClientDisconnect:
            # Nobody will read the answer; a 4xx keeps it out of the server-error figures.
            raise Problem(
                400, "The client went away mid-body", code="client-disconnected"
            ) from None
        return _parse(b"".join(chunks))
    finally:
        if budget is not None:
            budget.give_back(held)


def _parse_int(text: str) -> int | float:
    # Past Python's limit on digits, int() refuses the text and the whole body would be a
    # 400 naming no field; as infinity it is refused where it stands, "too large for a
    # double", like 1e400.
    limit = sys.get_int_max_str_digits()  # 0: no limit
    if limit and len(text) - text.startswith("-") > limit:
        return -math.inf if text.startswith("-") else math.inf
    return int(text)


# Made once (json.loads with options makes a decoder a call). The first reads integers in C;
# the second calls _parse_int for each (5 % of a single POST), so it only reads a body the
# first refused for an integer past Python's limit on digits.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_HUGE_INT_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_parse_int)


def _decode(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # not a syntax error: an integer too long, or NaN/Infinity
        return _HUGE_INT_DECODER.decode(text)


def _parse(raw: bytes) -> JsonBody:
    try:
        text = raw.decode("utf-8")
        return JsonBody(_decode(text), may_hold_forbidden(text))
    except UnicodeDecodeError:
        raise Problem(
            400,
            "The body is not valid UTF-8",
            errors=[FieldError("(body)", "is not valid UTF-8")],
            code="malformed-json",
        ) from None
    except (ValueError, RecursionError) as error:
        detail = str(error) if isinstance(error, ValueError) else "nesting is too deep"
        raise Problem(
            400,
            "The body is not valid JSON",
            errors=[FieldError("(body)", detail[:200])],
            code="malformed-json",
        ) from None


def _too_large(limit: int) -> Problem:
    return Problem(
        413,
        f"The body is larger than {limit} bytes",
        errors=[FieldError("(body)", f"exceeds {limit} bytes")],
        code="payload-too-large",
    )


class DrainUnreadBody:
    """Reads what is left of a request body before an answer given early (413, 401, 503...)
    goes out, up to ``max_bytes`` and ``timeout_s``.

    A server that answers and closes with unread bytes in its socket makes the kernel reset
    the connection, and a client still sending its body (urllib, most phones' HTTP stacks)
    then sees the reset instead of the answer, so it never learns that its body was too
    large. Past either bound ingest stops reading: nobody can make it read gigabytes, and
    a body declared larger than ``max_bytes`` is not read at all. Nothing is kept in
    memory. A client that asked ``Expect: 100-continue`` has not sent its body and is not
    asked to; an answer that sheds load (5xx) reads nothing more.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        finished = False
        asked = False

        async def tracked_receive() -> Message:
            nonlocal finished, asked
            asked = True
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                finished = True
            return message

        async def drain_then_send(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start" and not finished:
                finished = True
                # A 5xx sheds load (memory, Kafka): reading more is the last thing to do
                # then, and the app keeps the visit in its outbox whatever it reads.
                if message["status"] < 500 and self._worth_draining(scope, asked):
                    await self._drain(receive)
            await send(message)

        await self.app(scope, tracked_receive, drain_then_send)

    def _worth_draining(self, scope: Scope, asked: bool) -> bool:
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"expect" and not asked:
                return False
        if length is not None:
            return 0 < length <= self.max_bytes
        return chunked

    async def _drain(self, receive: Receive) -> None:
        read = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                while read <= self.max_bytes:
                    message = await receive()
                    if message["type"] != "http.request":
                        return
                    read += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return
        except TimeoutError:
            return
