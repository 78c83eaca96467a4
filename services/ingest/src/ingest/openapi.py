"""OpenAPI of ingest: the request bodies are the contract models, every error has an example.

The routes read bodies themselves (to answer 400/413/415/422 exactly as documented), so
the request schemas are declared here and the models' definitions added to the components.
Operation ids are explicit and stable (clients generate code from them), and the
``webhooks`` section describes what Terrain sends out: the alert a manager's system
receives from notify's webhook channel (``terrain_contracts.alerts``).
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from ingest.problems import problem_schema_example
from terrain_contracts import alerts
from terrain_contracts.alerts import AlertDigestWebhookV1, AlertWebhookV1
from terrain_contracts.examples import load
from terrain_contracts.receipts import ReceiptList, ReceiptQuery
from terrain_contracts.submission import FieldSubmission

REF = "#/components/schemas/{model}"

SUBMISSIONS_TAG = "submissions"
PROBES_TAG = "probes"
ALERTS_TAG = "alerts"
TAGS: list[dict[str, Any]] = [
    {
        "name": SUBMISSIONS_TAG,
        "description": "The field app sends customer visits and asks what became of them.",
    },
    {"name": PROBES_TAG, "description": "Liveness and readiness, for the orchestrator."},
    {
        "name": ALERTS_TAG,
        "description": "What managers' systems receive from Terrain (webhooks).",
    },
]

UNAUTHORIZED = problem_schema_example(
    401,
    "unauthorized",
    "Unknown or revoked device token",
    [{"field": "(header) Authorization", "problem": "token is unknown or revoked"}],
)
RATE_LIMITED = problem_schema_example(
    429, "rate-limited", "Too many requests from this device", [], retry_after=True
)
_UNAVAILABLE = problem_schema_example(
    503,
    "unavailable",
    "Submissions cannot be stored right now; keep them in the outbox and retry",
    [],
    retry_after=True,
)
MALFORMED = problem_schema_example(
    400,
    "malformed-json",
    "The body is not valid JSON",
    [{"field": "(body)", "problem": "Expecting value: line 1 column 1 (char 0)"}],
)
NOT_JSON = problem_schema_example(
    415,
    "unsupported-media-type",
    "The body must be JSON (Content-Type: application/json)",
    [{"field": "(header) Content-Type", "problem": "is text/plain"}],
)
TOO_LARGE = problem_schema_example(
    413,
    "payload-too-large",
    "The body is larger than 65536 bytes",
    [{"field": "(body)", "problem": "exceeds 65536 bytes"}],
)
SECURITY: list[dict[str, list[str]]] = [{"deviceToken": []}]

SINGLE_OPENAPI: dict[str, Any] = {
    "summary": "Send one customer visit",
    "description": "Answered 202 only once Kafka holds the submission durably (acks=all). "
    "Resending the same submission_id is safe and answered 202 again.",
    "security": SECURITY,
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format(model="FieldSubmission")},
                "example": load("field_submission.dakar"),
            }
        },
    },
    "responses": {
        "202": {
            "description": "Accepted and durable",
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model="Accepted")},
                    "example": {
                        "submission_id": "0b9f2f4e-6a4f-4c1e-9b53-2f1d3c7f9a10",
                        "status": "accepted",
                    },
                }
            },
        },
        "400": MALFORMED,
        "401": UNAUTHORIZED,
        "413": TOO_LARGE,
        "415": NOT_JSON,
        "422": problem_schema_example(
            422,
            "invalid-submission",
            "The submission breaks the field-app contract",
            [
                {
                    "field": "feedback.satisfaction",
                    "problem": "Input should be less than or equal to 5",
                }
            ],
        ),
        "429": RATE_LIMITED,
        "503": _UNAVAILABLE,
    },
}

BATCH_OPENAPI: dict[str, Any] = {
    "summary": "Send an outbox of visits at once (up to 500 items, 5 MB)",
    "description": "Valid items are accepted even when others are not; the answer lists every "
    "item in order. It is sent only once every accepted item is durable in Kafka.",
    "security": SECURITY,
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format(model="SubmissionBatch")},
                "example": {
                    "submissions": [
                        load("field_submission.dakar"),
                        load("field_submission.minimal"),
                    ]
                },
            }
        },
    },
    "responses": {
        "200": {
            "description": "Every item with its status",
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model="BatchResult")},
                    "example": {
                        "accepted": 1,
                        "rejected": 1,
                        "results": [
                            {
                                "index": 0,
                                "submission_id": "0b9f2f4e-6a4f-4c1e-9b53-2f1d3c7f9a10",
                                "status": "accepted",
                            },
                            {
                                "index": 1,
                                "submission_id": "5d0c8a8e-2b7f-4a39-8f57-7a0a4c1b2e33",
                                "status": "rejected",
                                "errors": [
                                    {
                                        "field": "submissions.1.agent.market",
                                        "problem": "Input should be 'BW', 'BF', ...",
                                    }
                                ],
                            },
                        ],
                    },
                }
            },
        },
        "400": MALFORMED,
        "401": UNAUTHORIZED,
        "413": problem_schema_example(
            413,
            "batch-too-large",
            "A batch holds at most 500 submissions",
            [{"field": "submissions", "problem": "has 501 items, more than 500"}],
        ),
        "415": NOT_JSON,
        "422": problem_schema_example(
            422,
            "invalid-batch",
            "A batch is an object with a list of submissions",
            [{"field": "submissions", "problem": "must be a list of submissions"}],
        ),
        "429": RATE_LIMITED,
        "503": _UNAVAILABLE,
    },
}

_EXTRA_SCHEMAS: dict[str, Any] = {
    "Accepted": {
        "type": "object",
        "required": ["submission_id", "status"],
        "properties": {
            "submission_id": {"type": "string", "format": "uuid"},
            "status": {"const": "accepted"},
        },
    },
    "SubmissionBatch": {
        "type": "object",
        "required": ["submissions"],
        "properties": {
            "submissions": {
                "type": "array",
                "maxItems": 500,
                "items": {"$ref": REF.format(model="FieldSubmission")},
            }
        },
    },
    "BatchResult": {
        "type": "object",
        "required": ["accepted", "rejected", "results"],
        "properties": {
            "accepted": {"type": "integer"},
            "rejected": {"type": "integer"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "status"],
                    "properties": {
                        "index": {"type": "integer"},
                        "submission_id": {"type": ["string", "null"]},
                        "status": {"enum": ["accepted", "rejected"]},
                        "errors": {
                            "type": "array",
                            "items": {"$ref": REF.format(model="FieldError")},
                        },
                    },
                },
            },
        },
    },
    "FieldError": {
        "type": "object",
        "required": ["field", "problem"],
        "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
    },
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "errors": {"type": "array", "items": {"$ref": REF.format(model="FieldError")}},
        },
    },
}


_SIGNED_HEADERS: list[dict[str, Any]] = [
    {
        "name": alerts.IDEMPOTENCY_KEY,
        "in": "header",
        "required": True,
        "description": "The alert id: a resend after a lost answer carries the same one.",
        "schema": {"type": "string", "format": "uuid"},
    },
    {
        "name": alerts.TIMESTAMP,
        "in": "header",
        "required": True,
        "description": "Unix seconds when the body was signed; refuse an old one.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": alerts.SIGNATURE,
        "in": "header",
        "required": True,
        "description": "`sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body bytes>` under"
        " the deployment's webhook signing secret.",
        "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
    },
]

_RECEIVER_ANSWERS: dict[str, Any] = {
    "2XX": {"description": "Delivered: the alert is not sent again."},
    "408": {"description": "Retried with backoff."},
    "429": {"description": "Retried with backoff."},
    "4XX": {"description": "Any other 4xx: given up, the alert is recorded as failed."},
    "5XX": {"description": "Retried with backoff."},
}


def _webhook(model: type[Any], operation_id: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "tags": [ALERTS_TAG],
            "summary": inspect.cleandoc(model.__doc__ or "").split("\n\n", 1)[0],
            "description": inspect.cleandoc(alerts.__doc__ or ""),
            "parameters": _SIGNED_HEADERS,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}
                },
            },
            "responses": _RECEIVER_ANSWERS,
        }
    }


WEBHOOKS: dict[str, Any] = {
    "alert": _webhook(AlertWebhookV1, "receiveAlert"),
    "alertDigest": _webhook(AlertDigestWebhookV1, "receiveAlertDigest"),
}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title="Terrain ingest",
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=TAGS,
    )
    document["webhooks"] = WEBHOOKS
    _, definitions = models_json_schema(
        [
            (model, "validation")
            for model in (
                FieldSubmission,
                ReceiptQuery,
                ReceiptList,
                AlertWebhookV1,
                AlertDigestWebhookV1,
            )
        ],
        ref_template=REF,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(definitions["$defs"])
    schemas.update(_EXTRA_SCHEMAS)
    components["securitySchemes"] = {
        "deviceToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "The field device's token (`terrain devices create`).",
        }
    }
    app.openapi_schema = document
    return document
