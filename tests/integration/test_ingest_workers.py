"""Ingest as several server processes on one port (TERRAIN_INGEST_WORKERS): every 202 is in
Kafka once, /metrics counts the whole service whichever process answers it, and a worker
that dies is replaced while the others go on serving."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_testkit.database import eventually
from terrain_testkit.factories import field_submission
from terrain_testkit.processes import ingest_process
from terrain_testkit.topics import read_topic
from tests.integration.test_ingest_fuzz import _token

WORKERS = 2
ACCEPTED = re.compile(r'^terrain_submissions_received_total\{[^}]*outcome="accepted"[^}]*\} (\S+)$')


def _workers(parent: int) -> list[int]:
    """The server processes uvicorn forked (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [
        pid
        for pid in map(int, children)
        if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


@pytest.fixture
def ingest_workers(database_url: str, namespace: str) -> Iterator[tuple[str, int]]:
    with ingest_process(database_url, namespace, TERRAIN_INGEST_WORKERS=str(WORKERS)) as (
        url,
        process,
    ):
        deadline = time.monotonic() + 30
        while len(_workers(process.pid)) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.1)
        yield url, process.pid


async def _send(url: str, token: str, count: int) -> list[str]:
    """``count`` visits, each on a fresh connection so the kernel spreads them."""

    async def one(document: dict[str, object]) -> str:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            answer = await client.post(
                "/v1/submissions", json=document, headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["submission_id"])

    documents = [field_submission() for _ in range(count)]
    return list(await asyncio.gather(*(one(d) for d in documents)))


def _accepted_total(url: str) -> float:
    with httpx.Client(base_url=url, follow_redirects=True) as fresh:  # a new connection
        text = fresh.get("/metrics").text
    return sum(float(m.group(1)) for m in map(ACCEPTED.match, text.splitlines()) if m)


async def test_workers_share_the_port_and_count_together(
    ingest_workers: tuple[str, int], database_url: str, namespace: str
) -> None:
    url, parent = ingest_workers
    token = await _token(database_url)
    first = await _send(url, token, 40)

    records = await read_topic(SUBMISSIONS_RAW.name(namespace), expect=40)
    assert sorted(r.key.decode() for r in records) == sorted(first)
    for _ in range(6):  # whichever worker answers, it tells the whole service's count
        assert _accepted_total(url) == 40

    # A worker killed outright: the other goes on, uvicorn starts a new one, and what the
    # dead one counted is still in the service's total.
    victim = _workers(parent)[0]
    os.kill(victim, signal.SIGKILL)
    second = await _send(url, token, 20)
    await eventually(
        lambda: asyncio.to_thread(
            lambda: len(_workers(parent)) == WORKERS and victim not in _workers(parent)
        ),
        timeout_s=30,
    )
    records = await read_topic(SUBMISSIONS_RAW.name(namespace), expect=60)
    assert sorted({r.key.decode() for r in records}) == sorted(first + second)
    assert _accepted_total(url) == 60
