"""The pipeline as a benchmark runs it: ingest, enrich and notify as real processes on a
throwaway database and fresh topics, spawned together and each timed to ready."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from bench.kit.stack import UNTHROTTLED, Service, start_service
from enrich.settings import EnrichSettings
from notify.settings import NotifySettings
from terrain_contracts.topics import SUBMISSIONS_ENRICHED, SUBMISSIONS_RAW
from terrain_runtime.lag import GroupOffsets
from terrain_simulator.generator import DayOptions, field_day
from terrain_testkit.factories import raw_record
from terrain_testkit.processes import free_port, service_env
from terrain_testkit.topics import KAFKA

SERVICES = ("ingest", "enrich", "notify")
WARM_UP = "warm-up"  # the campaign of the record that times enrich's and notify's start


def _warm_up_record() -> tuple[bytes, bytes]:
    """An urgent visit as ingest publishes it: stored by enrich, alerted by notify."""
    options = DayOptions(visits=500, seed=1, campaign_id=WARM_UP, invalid_share=0.0,
                         resend_share=0.0)  # fmt: skip
    for visit in field_day(options, now=datetime.now(UTC)):
        if visit.urgent:
            return raw_record(visit.document)
    raise AssertionError("a field day of 500 visits has urgent ones")


async def start_pipeline(
    url: str, namespace: str, services: list[Service], ingest_workers: int = 1
) -> str:
    """Ingest, enrich and notify spawned together on ``url`` and ``namespace``, each timed
    from spawn to ready (``Service.ready_s``), and ingest's URL. They are added to
    ``services`` as they spawn, for the caller to stop whatever happens. Ready: ingest answers
    ``/readyz``; enrich has stored, notify alerted, an urgent record put on the raw topic
    at spawn, so a consumer's time includes joining its group. The record's campaign is
    ``WARM_UP``."""
    key, value = _warm_up_record()
    port = free_port()
    env = service_env(
        url, namespace, TERRAIN_INGEST_PORT=str(port),
        TERRAIN_INGEST_WORKERS=str(ingest_workers), TERRAIN_NOTIFY_PORT=str(free_port()),
        TERRAIN_LOG_LEVEL="WARNING", **UNTHROTTLED,
    )  # fmt: skip
    spawned = time.time()
    for name in SERVICES:
        services.append(await start_service(name, env))
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True)
    await producer.start()
    try:  # on the raw topic at once: enrich reads it from the start when its group joins
        await producer.send_and_wait(SUBMISSIONS_RAW.name(namespace), value, key=key)
    finally:
        await producer.stop()
    ingest_url = f"http://127.0.0.1:{port}"
    ingest, enrich, notify = services
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"{ingest_url}/readyz", timeout=2)).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() - spawned > 60:
                raise RuntimeError("ingest not ready in 60 s")
            await asyncio.sleep(0.05)
    ingest.ready_s = time.time() - spawned
    connection = await asyncpg.connect(url)
    try:
        for _ in range(1200):
            row = await connection.fetchrow(
                "SELECT extract(epoch FROM s.stored_at) AS stored,"
                " extract(epoch FROM min(a.created_at)) AS alerted"
                " FROM terrain.submissions s LEFT JOIN terrain.alerts a USING (submission_id)"
                " WHERE s.campaign_id = $1 GROUP BY s.stored_at",
                WARM_UP,
            )
            if row is not None and row["alerted"] is not None:
                enrich.ready_s = float(row["stored"]) - spawned
                notify.ready_s = float(row["alerted"]) - spawned
                return ingest_url
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    raise RuntimeError("the warm-up visit was not stored and alerted in 60 s")


async def wait_drained(namespace: str, limit_s: float) -> bool:
    """Wait until enrich and notify have committed everything on their topics (their
    offsets are committed only once their effects are stored), at most ``limit_s``; True
    if they did. Read from the groups' offsets, not by counting rows: a count scans the
    table, and a long run's millions of rows made it take a core from the services."""
    groups = [
        (EnrichSettings.model_fields["consumer_group"].default, SUBMISSIONS_RAW),
        (NotifySettings.model_fields["consumer_group"].default, SUBMISSIONS_ENRICHED),
    ]
    readers = [
        GroupOffsets(
            bootstrap_servers=KAFKA,
            group_id=f"{namespace}{group}",
            topics=[topic.name(namespace)],
            timeout_s=10.0,
        )
        for group, topic in groups
    ]
    deadline = time.monotonic() + limit_s
    try:
        while time.monotonic() < deadline:
            offsets = [await reader.read() for reader in readers]
            if all(o.lag == 0 for read in offsets for o in read.values()):
                return True
            await asyncio.sleep(1.0)
        return False
    finally:
        for reader in readers:
            await reader.close()
