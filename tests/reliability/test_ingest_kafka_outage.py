"""Kafka stops while field apps keep sending: ingest answers 503 (never a 2xx it cannot
keep), the apps retry as their outbox does, and once Kafka is back every submission that
was answered 2xx is in the raw topic."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

from ingest.app import create_app
from ingest.repository import create_device
from ingest.settings import IngestSettings
from terrain_contracts.markets import Market
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_runtime.kafka import ensure_topics
from terrain_runtime.settings import TerrainSettings
from terrain_testkit.factories import field_submission
from terrain_testkit.processes import PrivateBroker


async def read_keys(bootstrap: str, topic: str, expect: int) -> set[bytes]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    keys: set[bytes] = set()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(keys) < expect and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                keys.update(r.key for r in records)
    finally:
        await consumer.stop()
    return keys


async def test_kafka_down_means_503_and_nothing_answered_2xx_is_lost(
    private_broker: PrivateBroker, settings_kwargs: dict[str, Any], database_url: str
) -> None:
    kwargs = settings_kwargs | {"kafka_bootstrap_servers": private_broker.bootstrap}
    await ensure_topics(TerrainSettings(**kwargs))
    connection = await asyncpg.connect(database_url)
    try:
        _, token = await create_device(connection=connection, market=Market.BF, label="outage")
    finally:
        await connection.close()
    headers = {"authorization": f"Bearer {token}"}
    submissions = [
        field_submission(agent__market="BF", customer__msisdn="70 12 34 56") for _ in range(60)
    ]
    answered: dict[str, list[int]] = {s["submission_id"]: [] for s in submissions}

    app = create_app(IngestSettings(**kwargs, publish_timeout_s=2.0, rate_limit_burst=10**6))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:

            async def send(submission: dict[str, Any]) -> int:
                response = await http.post("/v1/submissions", json=submission, headers=headers)
                answered[submission["submission_id"]].append(response.status_code)
                return response.status_code

            for submission in submissions[:20]:
                assert await send(submission) == 202
            await asyncio.to_thread(private_broker.stop)
            during = await asyncio.gather(*(send(s) for s in submissions[20:40]))
            assert set(during) == {503}, during
            assert (await http.get("/readyz")).status_code == 503
            await asyncio.to_thread(private_broker.start)
            # The field app's outbox: retry what was not acknowledged, until it is.
            pending = submissions[20:]
            for _ in range(30):
                codes = await asyncio.gather(*(send(s) for s in pending))
                pending = [s for s, code in zip(pending, codes, strict=True) if code != 202]
                if not pending:
                    break
                await asyncio.sleep(1)
            assert not pending

    assert all(codes[-1] == 202 for codes in answered.values())
    assert all(set(codes) <= {202, 503} for codes in answered.values())
    keys = await read_keys(
        private_broker.bootstrap, SUBMISSIONS_RAW.name(kwargs["topic_namespace"]), 60
    )
    assert keys == {s["submission_id"].encode() for s in submissions}
