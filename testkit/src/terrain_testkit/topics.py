"""Throwaway Kafka topics on the real broker: reading and producing records, and Terrain's
consumers run in the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream import FastStream

from terrain_contracts.topics import TOPICS
from terrain_runtime.kafka import ensure_topics
from terrain_runtime.settings import TerrainSettings

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def new_namespace() -> str:
    """A topic prefix of its own for one test: fresh topics, no cross-talk."""
    return f"t{uuid4().hex[:10]}."


async def delete_topics(namespace: str) -> None:
    """Delete Terrain's topics under ``namespace`` (those that exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        names = [spec.name(namespace) for spec in TOPICS]
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def throwaway_topics() -> AsyncIterator[str]:
    """Terrain's topics created under a ``new_namespace``, deleted on the way out: the
    namespace."""
    namespace = new_namespace()
    await ensure_topics(TerrainSettings(kafka_bootstrap_servers=KAFKA, topic_namespace=namespace))
    try:
        yield namespace
    finally:
        await delete_topics(namespace)


async def list_topics(namespace: str) -> list[str]:
    """Every topic of the broker under ``namespace``, sorted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(namespace))
    finally:
        await admin.close()


async def read_topic(topic: str, *, expect: int, timeout_s: float = 20.0) -> list[Any]:
    """Read records from the beginning until ``expect`` arrived (or the timeout)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def produce(topic: str, values: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Produce (key, value) records to ``topic``, each acknowledged by the broker."""
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def produce_junk(topic: str, count: int) -> None:
    """``count`` records that no consumer can decode (not even UTF-8), keyed junk0, junk1..."""
    await produce(topic, [(f"junk{i}".encode(), b"\xff not json") for i in range(count)])


async def until_it_stops(app: FastStream, *, timeout_s: float = 60) -> None:
    """Run a FastStream app until it exits on its own (its dead-letter limit, say); if it
    has not within ``timeout_s``, stop it and fail."""
    task = asyncio.create_task(app.run(sleep_time=0.02))
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=timeout_s)
    finally:
        if not task.done():
            app.exit()
            await asyncio.wait_for(task, timeout=30)


@contextlib.asynccontextmanager
async def running(app: FastStream) -> AsyncIterator[FastStream]:
    """Run a FastStream app in this event loop until the block ends, then drain it."""
    task = asyncio.create_task(app.run(sleep_time=0.02))
    try:
        while not getattr(app, "running", False):
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield app
    finally:
        app.exit()
        await asyncio.wait_for(task, timeout=30)
