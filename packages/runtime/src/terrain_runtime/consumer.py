"""Consuming with FastStream: the broker of a consumer service, the one way Terrain
subscribes (batches of raw bytes, offsets committed after the handler), and the backoff
after a failed batch.

Apart from ``terrain_runtime.kafka`` (the producer and the topics, aiokafka alone) so that
a service that only produces, ingest, never imports FastStream: a few hundred ms of its
start and several MB.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.middlewares import AckPolicy
from opentelemetry.trace import TracerProvider

from terrain_runtime.dlq import SourceRecord
from terrain_runtime.kafka import LINGER_MS
from terrain_runtime.settings import TerrainSettings

log = logging.getLogger(__name__)


def make_broker(
    settings: TerrainSettings,
    *,
    client_id: str,
    tracer_provider: TracerProvider | None = None,
    **options: Any,
) -> KafkaBroker:
    """A FastStream Kafka broker whose producer is durable (acks=all) and idempotent."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        request_timeout_ms=10_000,
        middlewares=[KafkaTelemetryMiddleware(tracer_provider=tracer_provider), ErrorBackoff()],
        # A plain stdlib logger: its records go through our JSON handler, not FastStream's
        # own coloured console handler.
        logger=logging.getLogger(f"terrain.{client_id}.broker"),
        **options,
    )


class ErrorBackoff:
    """Broker middleware: after a handler fails, wait before the batch is redelivered.

    Transient failures are retried inside the handlers; what reaches here is unexpected
    (a bug, a dependency down for longer than the handler waits). Redelivering at once
    would spin a core replaying the same batch; waiting with exponential backoff keeps the
    process responsive and the logs readable while nothing is committed.
    """

    def __init__(self, *, base_s: float = 0.5, max_s: float = 30.0) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.consecutive_failures = 0

    def __call__(self, msg: Any, /, *, context: Any) -> _ErrorBackoffMiddleware:
        return _ErrorBackoffMiddleware(msg, context=context, policy=self)

    def delay_s(self) -> float:
        delay: float = min(self.max_s, self.base_s * 2 ** max(0, self.consecutive_failures - 1))
        return delay


class _ErrorBackoffMiddleware(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: Any, policy: ErrorBackoff) -> None:
        super().__init__(msg, context=context)
        self.policy = policy

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        try:
            result = await call_next(msg)
        except Exception:
            self.policy.consecutive_failures += 1
            delay = self.policy.delay_s()
            log.error(
                "handler failed (%d in a row); redelivery in %.1fs",
                self.policy.consecutive_failures,
                delay,
                exc_info=True,
            )
            await asyncio.sleep(delay)
            raise
        self.policy.consecutive_failures = 0
        return result


async def keep_bytes(message: Any) -> Any:
    """Decoder that leaves decoding to the handler: a garbage record must become a dead
    letter, not an exception in FastStream's JSON decoder that fails (and replays) the batch."""
    return message.body


def batch_subscriber(
    broker: KafkaBroker,
    topic: str,
    *,
    group_id: str,
    max_records: int,
    timeout_ms: int,
    fetch_min_bytes: int = 1,
    fetch_max_wait_ms: int = 500,
) -> Callable[[Callable[[Any], Awaitable[None]]], Any]:
    """The one way Terrain consumes: batches of raw bytes, offsets committed only after the
    handler returns; on an exception the batch is rewound so nothing is committed past an
    unprocessed record (and ErrorBackoff waits before it comes back).

    A poll returns what is already fetched, however little: ``fetch_min_bytes`` lets the
    broker hold a fetch until that much is there, for at most ``fetch_max_wait_ms``, so
    that a moderate rate still gives batches worth their per-batch costs."""
    subscriber: Callable[[Callable[[Any], Awaitable[None]]], Any] = broker.subscriber(
        topic,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=timeout_ms,
        fetch_min_bytes=fetch_min_bytes,
        fetch_max_wait_ms=fetch_max_wait_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=keep_bytes,
    )
    return subscriber


def source_records(message: Any) -> list[SourceRecord]:
    """The batch's ConsumerRecords, with their coordinates and headers, as plain values."""
    return [
        SourceRecord(r.topic, r.partition, r.offset, r.key, r.value or b"", tuple(r.headers))
        for r in message.raw_message
    ]
