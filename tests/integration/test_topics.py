from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from terrain_contracts.topics import TOPICS
from terrain_runtime.kafka import ensure_topics
from terrain_runtime.settings import TerrainSettings
from terrain_testkit.topics import KAFKA


async def test_registry_topics_exist_with_their_partitions(namespace: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        described = await admin.describe_topics([spec.name(namespace) for spec in TOPICS])
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described}
    for spec in TOPICS:
        assert partitions[spec.name(namespace)] == spec.partitions >= 6
    again = await ensure_topics(
        TerrainSettings(kafka_bootstrap_servers=KAFKA, topic_namespace=namespace)
    )
    assert again == []
