"""The receipt routes in memory, the database faked: the answers and problem documents a
field app gets, the same rate limit as the writes, and a 503 when PostgreSQL is away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ingest import receipt_routes
from ingest.body import BodyBudget
from ingest.devices import DeviceDirectory
from ingest.logic import Device
from ingest.problems import Problem
from ingest.ratelimit import RateLimiter
from ingest.receipts import Origin, StoredVisit
from ingest.settings import IngestSettings
from terrain_contracts.markets import Market

DEVICE = Device(uuid4(), Market.SN, "test")
STORED_ID = uuid4()
HEADERS = {"authorization": "Bearer trn_test"}


class Connection:
    @contextlib.asynccontextmanager
    async def transaction(self, **_: object) -> AsyncIterator[None]:
        yield


class Pool:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        if self.error is not None:
            raise self.error
        yield Connection()


async def _stored(*, connection: object, ids: list[UUID]) -> list[StoredVisit]:
    at = datetime(2025, 4, 15, 11, 40, tzinfo=UTC)
    origin = Origin("SN", None)
    return [StoredVisit(i, at, origin, alert_raised=False) for i in ids if i == STORED_ID]


async def _no_failures(*, connection: object, ids: list[UUID]) -> list[object]:
    return []


def client(monkeypatch: pytest.MonkeyPatch, *, pool: Pool, burst: int = 10) -> httpx.AsyncClient:
    monkeypatch.setattr(receipt_routes, "find_stored_visits", _stored)
    monkeypatch.setattr(receipt_routes, "find_failures", _no_failures)

    async def lookup(token: str) -> Device | None:
        return DEVICE if token == "trn_test" else None

    app = FastAPI()
    app.include_router(receipt_routes.receipt_router)
    app.state.runtime = SimpleNamespace(
        settings=IngestSettings(environment="test"),
        devices=DeviceDirectory(lookup, ttl_s=5.0),
        limiter=RateLimiter(per_minute=60, burst=burst),
        bodies=BodyBudget(1_000_000),
        pool=pool,
        receipt_reads=asyncio.Semaphore(1),
    )

    @app.exception_handler(Problem)
    async def problem_handler(_: Request, problem: Problem) -> JSONResponse:
        return problem.response()

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest")


async def test_a_stored_visit_is_answered_without_empty_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with client(monkeypatch, pool=Pool()) as http:
        response = await http.get(f"/v1/submissions/{STORED_ID}", headers=HEADERS)
    assert response.status_code == 200
    assert response.json() == {
        "submission_id": str(STORED_ID),
        "status": "stored",
        "stored_at": "2025-04-15T11:40:00Z",
        "alert_raised": False,
    }


async def test_an_unknown_id_is_a_404_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    async with client(monkeypatch, pool=Pool()) as http:
        response = await http.get(f"/v1/submissions/{uuid4()}", headers=HEADERS)
    assert response.status_code == 404
    assert response.json()["type"].endswith("/unknown-submission")


async def test_a_query_that_is_not_json_is_a_415(monkeypatch: pytest.MonkeyPatch) -> None:
    async with client(monkeypatch, pool=Pool()) as http:
        response = await http.post(
            "/v1/submissions/status",
            content=b"submission_ids=1",
            headers=HEADERS | {"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 415


@pytest.mark.parametrize("error", [OSError("refused"), TimeoutError()])
async def test_a_database_away_is_a_503_with_retry_after(
    monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    async with client(monkeypatch, pool=Pool(error)) as http:
        response = await http.post(
            "/v1/submissions/status", json={"submission_ids": [str(uuid4())]}, headers=HEADERS
        )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


async def test_receipts_share_the_devices_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    async with client(monkeypatch, pool=Pool(), burst=2) as http:
        statuses = [
            (await http.get(f"/v1/submissions/{STORED_ID}", headers=HEADERS)).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 429]


async def test_an_unknown_token_is_a_401(monkeypatch: pytest.MonkeyPatch) -> None:
    async with client(monkeypatch, pool=Pool()) as http:
        response = await http.get(
            f"/v1/submissions/{STORED_ID}", headers={"authorization": "Bearer other"}
        )
    assert response.status_code == 401
