"""Problem documents (RFC 9457) for every error ingest answers.

Each names the fields that are wrong and what is wrong with them, so the field app can
show the agent what to fix. Input values are never echoed back (they may hold a number).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse

from ingest.logic import FieldError

PROBLEM_JSON = "application/problem+json"


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
    status: int, code: str, title: str, errors: list[dict[str, str]]
) -> dict[str, Any]:
    """An OpenAPI response entry for one error status, with an example body."""
    example: dict[str, Any] = {
        "type": f"https://terrain.example/problems/{code}",
        "title": title,
        "status": status,
    }
    if errors:
        example["errors"] = errors
    return {
        "description": title,
        "content": {
            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}, "example": example}
        },
    }
