"""Reading a request body the way a public API must: bounded, strict JSON, clear errors."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from ingest.logic import FieldError
from ingest.problems import Problem


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: Request, *, limit: int) -> Any:
    """The parsed JSON body, or a Problem: 415 not JSON, 413 too large, 400 malformed."""
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
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody will read the answer; a 4xx keeps it out of the server-error figures.
        raise Problem(400, "The client went away mid-body", code="client-disconnected") from None
    raw = b"".join(chunks)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
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
