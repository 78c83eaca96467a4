"""The catch-all itself: an error no handler foresaw is a 500 problem document with the
trace id, logged once with its stack and without what the request held."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import Depends

from ingest.app import create_app
from ingest.settings import IngestSettings

SECRET = "77 123 45 67"


def _explode() -> None:
    raise RuntimeError(f"a message quoting the request: {SECRET}")


async def test_an_unforeseen_error_is_a_problem_document_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(IngestSettings(environment="test"))

    @app.post("/v1/submissions/explode", dependencies=[Depends(_explode)])
    async def explode() -> None:
        raise AssertionError("the dependency raises first")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    with caplog.at_level(logging.ERROR):
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            response = await client.post("/v1/submissions/explode", content=b"{}")
            metrics = (await client.get("/metrics/")).text

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/internal-error") and body["status"] == 500
    assert isinstance(body["trace_id"], str) and len(body["trace_id"]) == 32
    int(body["trace_id"], 16)
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    text = record.getMessage()
    assert "RuntimeError" in text and "_explode" in text  # the type and the stack
    assert "77 123 45 67" not in text and record.exc_info is None
    assert (
        'terrain_http_requests_total{route="/v1/submissions/explode",service="ingest",'
        'status="500"}' in metrics
    )
