"""Hostile floods against ingest as a real process: many clients streaming 100 MB bodies at
once, and requests with thousands of headers. Every one is refused with a 4xx (or a 503
when ingest sheds load), never another 5xx; ingest's memory stays bounded; and a field
device is served normally right afterwards."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx

from ingest.repository import create_device
from terrain_contracts.markets import Market
from terrain_testkit.factories import field_submission
from terrain_testkit.processes import Stack

CLIENTS = 48
# Idle, ingest holds ~125 MB; bodies in flight may add max_buffered_body_bytes (48 MB).
MEMORY_BOUND_MB = 240


def rss_peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) / 1024


async def test_a_flood_of_huge_bodies_and_headers_is_refused_in_bounded_memory(
    stack: Stack, database_url: str
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        _, token = await create_device(connection=connection, market=Market.CI, label="flood")
    finally:
        await connection.close()
    auth = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    statuses: Counter[int | str] = Counter()

    async def huge() -> AsyncIterator[bytes]:
        chunk = b"[" * (1024 * 1024)  # deep nesting too, should anything parse it
        for _ in range(100):
            yield chunk

    async def one_huge(client: httpx.AsyncClient) -> None:
        try:
            response = await client.post("/v1/submissions/batch", content=huge(), headers=auth)
            statuses[response.status_code] += 1
        except httpx.HTTPError:
            statuses["closed"] += 1  # ingest may close a connection after its 413

    async def one_with_headers(client: httpx.AsyncClient) -> None:
        headers = {**auth, **{f"x-junk-{i}": "y" * 100 for i in range(2_000)}}
        try:
            response = await client.post("/v1/submissions", content=b"{}", headers=headers)
            statuses[response.status_code] += 1
        except httpx.HTTPError:
            statuses["closed"] += 1

    limits = httpx.Limits(max_connections=CLIENTS * 2)
    async with httpx.AsyncClient(base_url=stack.ingest_url, timeout=60, limits=limits) as client:
        await asyncio.gather(
            *(one_huge(client) for _ in range(CLIENTS)),
            *(one_with_headers(client) for _ in range(CLIENTS)),
        )
        visit = field_submission(agent__market="CI", customer__msisdn="+225 07 08 09 10 11")
        after = await client.post("/v1/submissions", json=visit, headers=auth)

    ingest = stack.processes["ingest"]
    assert ingest.poll() is None, "ingest died"
    server_errors = {s: n for s, n in statuses.items() if isinstance(s, int) and s >= 500}
    assert set(server_errors) <= {503}, statuses
    assert sum(statuses.values()) == CLIENTS * 2
    assert after.status_code == 202, after.text
    peak = rss_peak_mb(ingest.pid)
    assert peak < MEMORY_BOUND_MB, f"ingest peaked at {peak:.0f} MB; answers {statuses}"
