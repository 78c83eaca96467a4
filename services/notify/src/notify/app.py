"""Wiring of notify: a batch consumer on the enriched topic and the outbox sender."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from faststream import FastStream
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy

from notify.channels import WebhookChannel
from notify.handlers import SERVICE, NotifyRuntime, process_batch
from notify.sender import Sender
from notify.settings import NotifySettings
from terrain_contracts.topics import SUBMISSIONS_ENRICHED
from terrain_runtime.db import create_pool
from terrain_runtime.dlq import SourceRecord
from terrain_runtime.kafka import make_broker
from terrain_runtime.telemetry import setup_tracing


async def keep_bytes(message: StreamMessage[Any]) -> Any:
    return message.body


def create_app(settings: NotifySettings | None = None) -> FastStream:
    settings = settings or NotifySettings()
    tracer_provider = setup_tracing(settings, SERVICE)
    broker = make_broker(settings, client_id=f"terrain-{SERVICE}", tracer_provider=tracer_provider)
    state: dict[str, NotifyRuntime] = {}

    @broker.subscriber(
        settings.topic(SUBMISSIONS_ENRICHED),
        group_id=settings.group_id,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=keep_bytes,
    )
    async def on_stored_submissions(message: KafkaMessage) -> None:
        records = [
            SourceRecord(r.topic, r.partition, r.offset, r.key, r.value or b"")
            for r in message.raw_message
        ]
        await process_batch(state["runtime"], records)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        pool = await create_pool(
            settings.database_url.get_secret_value(),
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )
        runtime = NotifyRuntime(settings=settings, pool=pool)
        state["runtime"] = runtime
        client = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
        sender = Sender(
            settings=settings,
            pool=pool,
            webhook=WebhookChannel(
                client, settings.webhook_signing_secret.get_secret_value().encode()
            ),
            wake=runtime.wake_sender,
        )
        sender_task = asyncio.create_task(sender.run(), name="outbox-sender")
        try:
            yield
        finally:
            await sender.stop()
            await sender_task
            await client.aclose()
            await pool.close()
            tracer_provider.shutdown()

    return FastStream(broker, lifespan=lifespan, logger=logging.getLogger(f"terrain.{SERVICE}"))
