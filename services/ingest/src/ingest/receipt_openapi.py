"""OpenAPI of the receipt endpoints: their answers are ``terrain_contracts.receipts``'
models (added to the components by ``ingest.openapi.build_openapi``), every error has an
example."""

from __future__ import annotations

from typing import Any

from ingest.openapi import (
    MALFORMED,
    NOT_JSON,
    RATE_LIMITED,
    REF,
    SECURITY,
    TOO_LARGE,
    UNAUTHORIZED,
)
from ingest.problems import problem_schema_example
from terrain_contracts.receipts import MAX_RECEIPT_IDS

_STORED = {
    "submission_id": "0b9f2f4e-6a4f-4c1e-9b53-2f1d3c7f9a10",
    "status": "stored",
    "stored_at": "2025-04-15T11:40:03.512000Z",
    "alert_raised": True,
}
_CONFLICT = {
    "submission_id": "5d0c8a8e-2b7f-4a39-8f57-7a0a4c1b2e33",
    "status": "failed",
    "stored_at": "2025-04-15T11:40:03.861000Z",
    "failure_reason": "conflict",
    "failed_at": "2025-04-15T13:02:41.207000Z",
}
_UNKNOWN = {"submission_id": "9a4e7c1d-3f2b-4d8e-a6c5-1b0f9e8d7c6a", "status": "unknown"}

_UNAVAILABLE = problem_schema_example(
    503,
    "receipts-unavailable",
    "Receipts cannot be read right now; ask again later",
    [],
    retry_after=True,
)

_WHO = (
    " Readable by the device that sent the visit and by any device of the visit's market;"
    " a visit of another market is answered as one never received."
)


def _receipt_answer(description: str, model: str, examples: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format(model=model)},
                "examples": {name: {"value": value} for name, value in examples.items()},
            }
        },
    }


RECEIPT_OPENAPI: dict[str, Any] = {
    "summary": "What became of one visit: stored, or failed and why",
    "description": "`stored` with when and whether an alert was raised, or `failed` with its"
    " reason. 404 when nothing is stored or failed under the id: not stored yet (enrich"
    " stores a visit seconds after its 202), or never received; resending is always safe." + _WHO,
    "security": SECURITY,
    "parameters": [
        {
            "name": "submission_id",
            "in": "path",
            "required": True,
            "description": "The id the app made when the visit was saved.",
            "schema": {"type": "string", "format": "uuid"},
            "example": _STORED["submission_id"],
        }
    ],
    "responses": {
        "200": _receipt_answer(
            "Stored or failed", "SubmissionReceipt", {"stored": _STORED, "conflict": _CONFLICT}
        ),
        "401": UNAUTHORIZED,
        "404": problem_schema_example(
            404,
            "unknown-submission",
            "No stored or failed submission with this id for this device (not stored yet,"
            " or never received)",
            [],
        ),
        "422": problem_schema_example(
            422,
            "invalid-query",
            "The receipt query names no valid submission",
            [{"field": "(path) submission_id", "problem": "must be a UUID"}],
        ),
        "429": RATE_LIMITED,
        "503": _UNAVAILABLE,
    },
}

RECEIPTS_OPENAPI: dict[str, Any] = {
    "summary": f"What became of up to {MAX_RECEIPT_IDS} visits, for an app back online",
    "description": "One receipt per distinct id, in the order asked: `stored`, `failed` with"
    " its reason, or `unknown` (not stored yet, or never received: ingest keeps no record of"
    " what it accepted; the app knows whether it got a 202)." + _WHO,
    "security": SECURITY,
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format(model="ReceiptQuery")},
                "example": {
                    "submission_ids": [
                        _STORED["submission_id"],
                        _CONFLICT["submission_id"],
                        _UNKNOWN["submission_id"],
                    ]
                },
            }
        },
    },
    "responses": {
        "200": _receipt_answer(
            "A receipt per id",
            "ReceiptList",
            {"outbox": {"receipts": [_STORED, _CONFLICT, _UNKNOWN]}},
        ),
        "400": MALFORMED,
        "401": UNAUTHORIZED,
        "413": TOO_LARGE,
        "415": NOT_JSON,
        "422": problem_schema_example(
            422,
            "invalid-query",
            "The receipt query names no valid submission",
            [
                {
                    "field": "submission_ids",
                    "problem": "List should have at most 500 items after validation, not 501",
                }
            ],
        ),
        "429": RATE_LIMITED,
        "503": _UNAVAILABLE,
    },
}
