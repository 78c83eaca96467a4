"""Kafka plumbing shared by the services and the CLI: the durable producer's factory and
the topic bootstrap, on aiokafka alone (consuming, on FastStream, is
``terrain_runtime.consumer``: ingest, which only produces, never loads FastStream).

Every producer in Terrain is idempotent with acks=all: a record is acknowledged only once
all in-sync replicas have it, and a retried send cannot duplicate it in the log. That is
what lets ingest answer 2xx only when a submission is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from terrain_contracts.topics import TOPICS, TopicSpec
from terrain_runtime.producer import DurableProducer
from terrain_runtime.settings import TerrainSettings

log = logging.getLogger(__name__)

# A few ms of linger lets concurrent requests share a produce request: higher throughput at
# a latency cost far below the field app's network round trip.
LINGER_MS = 5


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
