"""Alert latency under load: received_at -> delivered, p50 / p99.

notify runs as a real process (``python -m notify``) on fresh topics and a throwaway
database, with one level-1 manager per market whose webhook is a loopback receiver. The
bench produces a background of 1,000 enriched submissions/s that raise no alert, plus a
trickle of urgent ones (P1) whose ``received_at`` is stamped at the instant they are
produced. Latency is the alert's ``delivered_at - received_at`` as notify records it (the
``terrain_alert_latency_seconds`` metric measures the same), so it includes Kafka, the
consumer's batch, the outbox write, the sender's claim and the webhook round trip. Target:
p99 <= 500 ms on a 2-core machine.

    uv run python -m bench.notify_latency            # 30 s of load
    uv run python -m bench.notify_latency --smoke    # a few seconds; checks that it runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.kit.procstat import cpu_s, rss_mb
from bench.kit.stack import fresh_topics
from terrain_contracts.topics import SUBMISSIONS_ENRICHED
from terrain_testkit.database import throwaway_database
from terrain_testkit.factories import country_managers, field_submission, stored_record
from terrain_testkit.processes import service_env
from terrain_testkit.sinks import WebhookSink
from terrain_testkit.topics import KAFKA

RECEIVED_AT = re.compile(rb'"received_at":"[^"]+"')


def templates() -> tuple[bytes, bytes, str]:
    """A calm record (repeated as background) and an urgent one (re-stamped per alert)."""
    calm = field_submission(feedback__satisfaction=5, feedback__topics=["offers"])
    urgent = field_submission(feedback__urgent=True, feedback__satisfaction=2)
    return stored_record(calm)[1], stored_record(urgent)[1], urgent["submission_id"]


async def load(
    topic: str, seconds: float, background_rate: int, alert_rate: int
) -> tuple[int, int]:
    calm, urgent, urgent_id = templates()
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=5)
    await producer.start()
    sent_background = sent_alerts = 0
    tick = 0.01  # open loop: every 10 ms, what is due by then leaves, whatever came before
    try:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            due_background = int(elapsed * background_rate) - sent_background
            for _ in range(due_background):
                # send() only queues (its future is settled by flush), so the pace holds.
                await producer.send(topic, calm, key=uuid4().bytes)
            sent_background += max(due_background, 0)
            due_alerts = int(elapsed * alert_rate) - sent_alerts
            for _ in range(due_alerts):
                now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                value = RECEIVED_AT.sub(f'"received_at":"{now}"'.encode(), urgent).replace(
                    urgent_id.encode(), str(uuid4()).encode()
                )
                await producer.send(topic, value, key=uuid4().bytes)
            sent_alerts += max(due_alerts, 0)
            await asyncio.sleep(tick)
        await producer.flush()
    finally:
        await producer.stop()
    return sent_background, sent_alerts


async def warm_up(topic: str, connection: asyncpg.Connection) -> list[str]:
    """Send urgent submissions until one is delivered (left out of the figures)."""
    _, urgent, urgent_id = templates()
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
    await producer.start()
    sent: list[str] = []
    try:
        for _ in range(120):
            submission_id = str(uuid4())
            sent.append(submission_id)
            await producer.send_and_wait(
                topic, urgent.replace(urgent_id.encode(), submission_id.encode())
            )
            await asyncio.sleep(0.5)
            if await connection.fetchval(
                "SELECT count(*) FROM terrain.alerts WHERE status = 'delivered'"
            ):
                return sent
    finally:
        await producer.stop()
    raise RuntimeError("notify never delivered a warm-up alert")


async def main(seconds: float, background_rate: int, alert_rate: int) -> dict[str, Any]:
    namespace = f"b{uuid4().hex[:10]}."
    async with throwaway_database("terrain_bench") as url, fresh_topics(namespace):
        connection = await asyncpg.connect(url)
        process = None
        try:
            with WebhookSink() as sink:
                async with country_managers(url, sink):
                    env = service_env(
                        url, namespace, TERRAIN_NOTIFY_PORT="0", TERRAIN_LOG_LEVEL="WARNING"
                    )
                    process = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "notify", env=env
                    )
                    # The consumer group has its partitions once a warm-up alert comes through.
                    warm = await warm_up(SUBMISSIONS_ENRICHED.name(namespace), connection)
                    await asyncio.sleep(1.0)
                    cpu_before = cpu_s(process.pid)
                    background, alerts = await load(
                        SUBMISSIONS_ENRICHED.name(namespace), seconds, background_rate, alert_rate
                    )
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline:
                        delivered = await connection.fetchval(
                            "SELECT count(*) FROM terrain.alerts WHERE status = 'delivered'"
                        )
                        if delivered >= alerts + len(warm):
                            break
                        await asyncio.sleep(0.2)
                    cpu = cpu_s(process.pid) - cpu_before
                    current, peak = rss_mb(process.pid)
                    row = await connection.fetchrow(
                        """SELECT count(*) AS n,
                              percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50,
                              percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99,
                              max(d) AS max
                           FROM (SELECT extract(epoch FROM delivered_at - received_at) AS d
                                 FROM terrain.alerts
                                 WHERE status = 'delivered'
                                   AND NOT submission_id = ANY($1::uuid[])) t""",
                        warm,
                    )
                    assert row is not None
        finally:
            if process is not None:
                process.terminate()
                await asyncio.wait_for(process.wait(), timeout=30)
            await connection.close()
    return {
        "seconds": seconds,
        "background_sent": background,
        "alerts_sent": alerts,
        "alerts_delivered": row["n"],
        "p50_ms": round(float(row["p50"] or 0) * 1000, 1),
        "p99_ms": round(float(row["p99"] or 0) * 1000, 1),
        "max_ms": round(float(row["max"] or 0) * 1000, 1),
        "notify_cpu_share_of_a_core": round(cpu / seconds, 2),
        "notify_rss_peak_mb": round(peak, 1),
        "notify_rss_end_mb": round(current, 1),
        "target_p99_ms": 500,
        "met": row["n"] == alerts and float(row["p99"] or 99) <= 0.5,
        "loadavg": os.getloadavg(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=1000, help="background submissions/s")
    parser.add_argument("--alerts", type=int, default=10, help="urgent submissions/s")
    arguments = parser.parse_args()
    if arguments.smoke:
        arguments.seconds, arguments.rate, arguments.alerts = 3.0, 200, 5
    result = asyncio.run(main(arguments.seconds, arguments.rate, arguments.alerts))
    print(json.dumps(result, indent=2))
    if not arguments.smoke and not result["met"]:
        sys.exit(1)
