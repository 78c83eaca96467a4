"""Problem documents (RFC 9457) for every error ingest answers.

Each names the fields that are wrong and what is wrong with them, so the field app can
show the agent what to fix. Input values are never echoed back (they may hold a number).
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.screening import FieldError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        *,
        errors: Sequence[FieldError] = (),
        retry_after_s: int | None = None,
        code: str,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.errors = list(errors)
        self.retry_after_s = retry_after_s
        self.code = code

    def body(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": f"https://terrain.example/problems/{self.code}",
            "title": self.title,
            "status": self.status,
        }
        if self.errors:
            document["errors"] = [error.as_dict() for error in self.errors]
        return document

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after_s)} if self.retry_after_s else None
        return JSONResponse(
            self.body(), status_code=self.status, headers=headers, media_type=PROBLEM_JSON
        )


def problem_schema_example(
    status: int, code: str, title: str, errors: list[dict[str, str]], *, retry_after: bool = False
) -> dict[str, Any]:
    """An OpenAPI response entry for one error status, with an example body (and the
    Retry-After header the answer carries, for a 429 or a 503)."""
    example: dict[str, Any] = {
        "type": f"https://terrain.example/problems/{code}",
        "title": title,
        "status": status,
    }
    if errors:
        example["errors"] = errors
    entry: dict[str, Any] = {
        "description": title,
        "content": {
            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}, "example": example}
        },
    }
    if retry_after:
        entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return entry


class UnforeseenErrors:
    """Anything no route foresaw is answered as a problem document (500, with the trace id
    an SRE looks up) instead of a plain-text "Internal Server Error", and logged once.

    The log line holds the exception's type and stack, not its message: a message may quote
    a value of the request, and a value may be a phone number. No input is meant to get
    here; the tests of hostile input check that none does.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as error:
            span = trace.get_current_span()
            span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
            context = span.get_span_context()
            trace_id = format(context.trace_id, "032x") if context.is_valid else None
            log.error(
                "unforeseen %s on %s %s\n%s",
                type(error).__qualname__,
                scope.get("method"),
                scope.get("path"),
                "".join(traceback.format_tb(error.__traceback__)),
            )
            if started:
                return  # part of an answer is out: the server closes the connection
            document: dict[str, Any] = {
                "type": "https://terrain.example/problems/internal-error",
                "title": "Ingest failed unexpectedly; keep the visit in the outbox and retry",
                "status": 500,
                "trace_id": trace_id,
            }
            body = json.dumps(document).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
