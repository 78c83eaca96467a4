"""Property-based fuzzing of ingest against the real broker: whatever a client sends, the
answer is never a 5xx. Schemathesis drives the API from its own OpenAPI document (the
service runs as a process); hypothesis mutates real submissions field by field."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.app import create_app
from ingest.repository import create_device
from ingest.settings import IngestSettings
from terrain_contracts.examples import load
from terrain_contracts.markets import Market
from terrain_testkit.processes import ingest_process

# CI runs a short fuzz; `TERRAIN_FUZZ_EXAMPLES=2000 make test` is the long one.
FUZZ_EXAMPLES = int(os.environ.get("TERRAIN_FUZZ_EXAMPLES", "40"))


async def _token(database_url: str) -> str:
    connection = await asyncpg.connect(database_url)
    try:
        _, token = await create_device(connection=connection, market=Market.CI, label="fuzz")
    finally:
        await connection.close()
    return token


@pytest.fixture
def ingest_url(database_url: str, namespace: str) -> Iterator[str]:
    limits = {"TERRAIN_RATE_LIMIT_PER_MINUTE": "1000000", "TERRAIN_RATE_LIMIT_BURST": "1000000"}
    with ingest_process(database_url, namespace, **limits) as (url, _):
        yield url


async def test_schemathesis_finds_no_server_error(ingest_url: str, database_url: str) -> None:
    token = await _token(database_url)
    command = [
        shutil.which("schemathesis") or "schemathesis",
        "run",
        f"{ingest_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(FUZZ_EXAMPLES),
        "--seed",
        "20250415",
        "--suppress-health-check",
        "all",
    ]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=110, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.fixture
async def app_client(settings_kwargs: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(IngestSettings(**settings_kwargs, rate_limit_burst=10**9))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
            yield http


# Every category of Unicode (controls and lone surrogates too), numbers beyond a double,
# and nesting beyond what any later stage could serialise.
_any_text = st.text(st.characters(codec=None), max_size=50)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**308) * 10**10, 2**63])
    | st.floats(allow_nan=False)
    | _any_text,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(codec=None), max_size=10), children, max_size=4)
    ),
    max_leaves=10,
) | st.integers(min_value=1, max_value=400).map(lambda depth: _nested(depth))


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": [value]}
    return value


_paths = st.sampled_from(
    [
        ("submission_id",),
        ("campaign_id",),
        ("collected_at",),
        ("sent_at",),
        ("agent",),
        ("agent", "market"),
        ("agent", "function"),
        ("location", "lat"),
        ("location", "lon"),
        ("location", "accuracy_m"),
        ("customer",),
        ("customer", "msisdn"),
        ("customer", "consent"),
        ("customer", "kind"),
        ("feedback", "topics"),
        ("feedback", "satisfaction"),
        ("feedback", "nps"),
        ("feedback", "verbatim"),
        ("feedback", "language"),
        ("app",),
        ("future_field",),
        ("agent", "future_field"),
        ("customer", "future_field"),
        ("feedback", "future_field"),
        ("location", "future_field"),
        ("app", "future_field"),
    ]
)


async def test_mutated_submissions_never_get_a_5xx(
    app_client: httpx.AsyncClient, database_url: str
) -> None:
    token = await _token(database_url)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    seen: list[int] = []

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutations=st.lists(st.tuples(_paths, _json_values), min_size=1, max_size=4))
    def property_test(mutations: list[tuple[tuple[str, ...], Any]]) -> None:
        document: Any = load("field_submission.dakar")
        for path, value in mutations:
            target = document
            for key in path[:-1]:
                if not isinstance(target.get(key), dict):
                    target[key] = {}
                target = target[key]
            target[path[-1]] = value
        body = json.dumps(document).encode()
        seen.append(len(body))
        pending.append(body)

    pending: list[bytes] = []
    property_test()
    for body in pending:
        response = await app_client.post("/v1/submissions", content=body, headers=headers)
        assert response.status_code in (202, 400, 413, 422), (response.status_code, body[:500])
    assert seen
