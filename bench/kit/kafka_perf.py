"""Kafka's own limit, measured in the same run as the service: the broker's
``ProducerPerformance`` tool (through ``deploy/local/kafka.sh tool``) with Terrain's producer
settings, on a topic shaped like the raw topic."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.kit.stack import ROOT
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_runtime.kafka import topic_configs
from terrain_runtime.settings import TerrainSettings
from terrain_testkit.topics import KAFKA

PERF_SUMMARY = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec .*?([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th"
)


@dataclass(frozen=True)
class PerfResult:
    records_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@asynccontextmanager
async def perf_topic(namespace: str) -> AsyncIterator[str]:
    """A fresh topic with the raw topic's partitions and configuration: its name. Deleted
    on the way out."""
    replicas = TerrainSettings().kafka_replication_factor
    name = f"{namespace}bench.producer-performance"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name=name,
                    num_partitions=SUBMISSIONS_RAW.partitions,
                    replication_factor=replicas,
                    topic_configs=topic_configs(SUBMISSIONS_RAW, replicas),
                )
            ]
        )
        yield name
    finally:
        try:
            await admin.delete_topics([name])
        finally:
            await admin.close()


def producer_performance(topic: str, records: int, record_size: int, throughput: int) -> PerfResult:
    """Kafka's ProducerPerformance with ingest's producer settings (acks=all, idempotent,
    linger 5 ms), at full speed (``throughput`` -1) or at a rate; its last summary line."""
    completed = subprocess.run(
        [
            str(ROOT / "deploy/local/kafka.sh"),
            "tool",
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(record_size),
            "--throughput",
            str(throughput),
            "--producer-props",
            f"bootstrap.servers={KAFKA}",
            "acks=all",
            "enable.idempotence=true",
            "linger.ms=5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found = PERF_SUMMARY.findall(completed.stdout)
    if completed.returncode != 0 or not found:
        raise RuntimeError(f"ProducerPerformance failed:\n{completed.stdout}\n{completed.stderr}")
    _, rate, _, _, p50, p95, p99 = found[-1]
    return PerfResult(float(rate), float(p50), float(p95), float(p99))
