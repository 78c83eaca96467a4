"""The generated documents: JSON Schema per contract, AsyncAPI of the topic registry,
OpenAPI of ingest. Generated from code so they cannot drift; a test fails when the copies in
``docs/contracts`` are stale."""

from __future__ import annotations

import json
from typing import Any

from terrain_contracts.asyncapi import asyncapi_document
from terrain_contracts.submission import FieldSubmission
from terrain_contracts.topics import TOPICS


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def json_schemas() -> dict[str, str]:
    documents = {"schemas/field_submission.v1.json": _dump(FieldSubmission.model_json_schema())}
    for spec in TOPICS:
        documents[f"schemas/{spec.name()}.json"] = _dump(spec.value.model_json_schema())
    return documents


def asyncapi() -> str:
    return _dump(asyncapi_document())


def openapi() -> str:
    from ingest.app import create_app

    return _dump(create_app().openapi())


def render_all() -> dict[str, str]:
    return {**json_schemas(), "asyncapi.json": asyncapi(), "openapi-ingest.json": openapi()}
