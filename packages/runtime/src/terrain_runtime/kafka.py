"""Kafka plumbing shared by the services: the broker factory and the topic bootstrap.

Every producer in Terrain is idempotent with acks=all: a record is acknowledged only once
all in-sync replicas have it, and a retried send cannot duplicate it in the log. That is
what lets ingest answer 2xx only when a submission is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.middlewares import AckPolicy
from opentelemetry.trace import TracerProvider

from terrain_contracts.topics import TOPICS, TopicSpec
from terrain_runtime.dlq import SourceRecord
from terrain_runtime.producer import DurableProducer
from terrain_runtime.settings import TerrainSettings

log = logging.getLogger(__name__)

# A few ms of linger lets concurrent requests share a produce request: higher throughput at
# a latency cost far below the field app's network round trip.
LINGER_MS = 5


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


# The broker refuses a record batch above the topic's max.message.bytes (1 MiB + 12 by
# default): a batch of 500 field submissions (about 550 kB) fits whole, one partition.
MAX_BATCH_BYTES = 1_000_000


def make_producer(settings: TerrainSettings, *, client_id: str) -> DurableProducer:
    """A bare durable producer (acks=all, idempotent) for hot paths that publish many
    records per request: FastStream's per-message middleware chain cost ingest a third of
    its CPU. Callers put the trace context in the headers themselves."""
    return DurableProducer(
        lambda: AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=LINGER_MS,
            max_batch_size=MAX_BATCH_BYTES,
            request_timeout_ms=10_000,
        ),
        client_id=client_id,
    )


async def kafka_reachable(producer: DurableProducer | AIOKafkaProducer, timeout_s: float) -> bool:
    """True when the cluster answers a metadata request within the timeout."""
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=timeout_s)
    except Exception:
        return False
    return True


def topic_id(name: str) -> str:
    """The registry id of a (namespaced) topic name: bounded metric labels."""
    for spec in TOPICS:
        if name.endswith(spec.name()):
            return spec.id
    return "other"


def topic_configs(spec: TopicSpec, replication_factor: int) -> dict[str, str]:
    return {
        "retention.ms": str(spec.retention_ms),
        # With 3 replicas, acks=all then means "on at least 2 brokers".
        "min.insync.replicas": str(min(2, replication_factor)),
        "cleanup.policy": "delete",
    }


async def ensure_topics(
    settings: TerrainSettings, topics: tuple[TopicSpec, ...] = TOPICS
) -> list[str]:
    """Create the registry's topics (idempotent); returns the names that were created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    created: list[str] = []
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=spec.name(settings.topic_namespace),
                num_partitions=spec.partitions,
                replication_factor=settings.kafka_replication_factor,
                topic_configs=topic_configs(spec, settings.kafka_replication_factor),
            )
            for spec in topics
            if spec.name(settings.topic_namespace) not in existing
        ]
        if wanted:
            # Another process (a second replica starting) may create them first: fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
            created = [topic.name for topic in wanted]
            await _until_ready(admin, {t.name: t.num_partitions for t in wanted})
            log.info("created topics", extra={"topics": created})
    finally:
        await admin.close()
    return created


async def _until_ready(
    admin: AIOKafkaAdminClient, partitions: dict[str, int], timeout_s: float = 30.0
) -> None:
    """Return once every topic has all its partitions with a leader: a created topic takes a
    moment to reach the metadata, and whoever runs next (a service, a test) must find it."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = await admin.describe_topics(list(partitions))
        ready = {
            t["topic"]
            for t in described
            if t["error_code"] == 0
            and len(t["partitions"]) == partitions[t["topic"]]
            and all(p["leader"] >= 0 for p in t["partitions"])
        }
        if ready >= set(partitions):
            return
        if asyncio.get_running_loop().time() > deadline:
            missing = sorted(set(partitions) - ready)
            raise RuntimeError(f"topics not ready after {timeout_s:.0f} s: {missing}")
        await asyncio.sleep(0.1)


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
