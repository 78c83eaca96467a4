"""Enrich + store throughput against PostgreSQL's raw COPY of the same rows, same run.

    uv run python -m bench.enrich_store             # 100,000 submissions
    uv run python -m bench.enrich_store --record    # same, appended to bench/RESULTS.md
    uv run python -m bench.enrich_store --smoke     # 3,000: checks that it still runs

1. Build N distinct raw-topic records the way ingest writes them (17 markets, GPS fixes
   around real towns with jitter, some typed places, CRM-known and unknown customers,
   verbatims in five languages), and produce them all to a fresh raw topic first, so the
   consumer is measured, not the producer.
2. Import CRM segments for a third of the customers (the lookup path is exercised).
3. Start enrich as a real process (``python -m enrich``) and time from its first stored
   row to its last: decode, geo, segment lookup, signals, COPY + INSERT ON CONFLICT,
   failed-submissions, publish to the enriched topic, offset commit. Its RSS is sampled.
4. Raw limit: one binary COPY of the very same rows (as enrich shapes them) into a fresh
   table shaped and indexed like terrain.submissions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.procstat import cpu_s, rss_mb
from enrich.geo import load_gazetteer
from enrich.logic import decode, plan_batch
from enrich.repository import _COLUMNS, _record, fetch_segment_histories, import_segments
from enrich.segments import SegmentRecord
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_runtime.dlq import SourceRecord
from terrain_runtime.kafka import ensure_topics
from terrain_runtime.settings import TerrainSettings
from tests.factories import field_submission, raw_envelope
from tests.helpers import KAFKA, delete_topics, throwaway_database

ROOT = Path(__file__).resolve().parents[1]
TARGET_PER_S = 15_000
LIBRARIES = ("faststream", "aiokafka", "asyncpg", "pydantic", "timezonefinder", "h3")
TEMPLATES = 1_000

TOWNS = [
    ("SN", 14.6928, -17.4467), ("SN", 14.7910, -16.9359), ("CI", 5.3600, -4.0083),
    ("CI", 7.6906, -5.0391), ("ML", 12.6392, -8.0029), ("BF", 12.3714, -1.5197),
    ("CM", 4.0511, 9.7679), ("CM", 3.8480, 11.5021), ("CD", -4.3217, 15.3125),
    ("CD", -11.6609, 27.4794), ("CF", 4.3947, 18.5582), ("GN", 9.6412, -13.5784),
    ("GW", 11.8636, -15.5977), ("LR", 6.3156, -10.8074), ("SL", 8.4657, -13.2317),
    ("MG", -18.8792, 47.5079), ("BW", -24.6282, 25.9231), ("EG", 30.0444, 31.2357),
    ("EG", 31.2001, 29.9187), ("JO", 31.9539, 35.9106), ("MA", 33.5731, -7.5898),
    ("MA", 34.0209, -6.8416), ("TN", 36.8065, 10.1815), ("TN", 34.7406, 10.7603),
]  # fmt: skip
VERBATIMS = [
    "J'ai envoyé 50 000 FCFA hier, le destinataire n'a rien reçu et l'argent a été débité.",
    "Pas de réseau depuis trois jours dans tout le quartier.",
    "The agent at the shop was rude and shouted at me.",
    "Vou mudar de operadora se não resolverem.",
    "flousi ma wsaltch, 3 jours w ana nestanna",
    "مفيش شبكة خالص في البيت من امبارح",
    "Très bon service, rien à signaler, merci Orange.",
    "Data is slow in the evening but it works.",
    None,
]


def build_records(count: int, rng: random.Random) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """``count`` distinct raw records from ``TEMPLATES`` realistic ones (new ids each)."""
    templates: list[tuple[str, str]] = []
    hashes: list[str] = []
    for i in range(TEMPLATES):
        market, lat, lon = rng.choice(TOWNS)
        location: dict[str, Any] = {"place": "Marché central"}
        if i % 10:  # one in ten without GPS
            location = {
                "lat": round(lat + rng.uniform(-0.05, 0.05), 5),
                "lon": round(lon + rng.uniform(-0.05, 0.05), 5),
                "accuracy_m": rng.choice([8, 15, 40, 900]),
            }
        document = field_submission(
            agent={"employee_id": f"{market}-{i:06d}", "function": "sales", "market": market},
            location=location,
            customer={"kind": rng.choice(["consumer", "orange_money", "enterprise"]),
                      "consent": i % 3 == 0, "msisdn": f"+221 77 {i:03d} {i % 100:02d} 45",
                      "company": "Pharmacie du Marché SARL"},
            feedback={"topics": ["network_coverage"], "satisfaction": rng.randint(1, 5),
                      "verbatim": rng.choice(VERBATIMS)},
        )  # fmt: skip
        envelope = raw_envelope(document)
        hashes.append(envelope.submission.customer.msisdn_hash or "")
        templates.append((str(envelope.submission_id), envelope.model_dump_json()))
    records: list[tuple[bytes, bytes]] = []
    for n in range(count):
        old_id, text = templates[n % TEMPLATES]
        new_id = str(uuid4())
        records.append((new_id.encode(), text.replace(old_id, new_id).encode()))
    return records, hashes


async def produce_all(topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=20,
        max_batch_size=512 * 1024,
    )  # fmt: skip
    await producer.start()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def run_enrich(url: str, namespace: str, count: int, consumers: int) -> dict[str, float]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "TERRAIN_TOPIC_NAMESPACE": namespace,
        "TERRAIN_ENVIRONMENT": "test",
        "TERRAIN_LOG_LEVEL": "WARNING",
        "TERRAIN_BATCH_MAX_RECORDS": "2000",
        "TERRAIN_BATCH_TIMEOUT_MS": "100",
    }
    started = time.monotonic()
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "enrich", env=env, cwd=ROOT, stdout=subprocess.DEVNULL
        )
        for _ in range(consumers)  # one consumer group: the partitions are shared out
    ]
    process = processes[0]
    connection = await asyncpg.connect(url)
    first: float | None = None
    cpu_at_first = 0.0
    idle_rss = peak = 0.0
    try:
        while True:
            stored = await connection.fetchval("SELECT count(*) FROM terrain.submissions")
            now = time.monotonic()
            current, peak = rss_mb(process.pid)
            if stored == 0:
                idle_rss = current
            if stored and first is None:
                first = now
                cpu_at_first = sum(cpu_s(p.pid) for p in processes)
            if stored >= count:
                break
            if any(p.returncode is not None for p in processes) or now - started > 900:
                raise RuntimeError(f"enrich stopped or stalled at {stored} of {count}")
            await asyncio.sleep(0.05)
        end_rss, peak = rss_mb(process.pid)
        cpu_used = sum(cpu_s(p.pid) for p in processes) - cpu_at_first
    finally:
        await connection.close()
        for each in processes:
            each.terminate()
        for each in processes:
            await asyncio.wait_for(each.wait(), timeout=60)
    assert first is not None
    return {
        "seconds": now - first,
        "per_s": count / max(now - first, 1e-9),
        "startup_s": first - started,
        "rss_idle_mb": idle_rss,
        "rss_end_mb": end_rss,
        "rss_peak_mb": peak,
        "cpu_us_per_submission": cpu_used / count * 1e6,
    }


async def raw_copy(
    url: str, records: list[tuple[bytes, bytes]], histories: dict[str, Any]
) -> dict[str, float]:
    gazetteer = load_gazetteer()
    decoded = [decode(SourceRecord("raw", 0, i, k, v)) for i, (k, v) in enumerate(records)]
    rows, _ = plan_batch(decoded, gazetteer=gazetteer, segment_histories=histories)  # type: ignore[arg-type]
    tuples = [_record(row)[:-1] for row in rows]  # the sealed number goes to another table
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "CREATE TABLE terrain.bench_copy (LIKE terrain.submissions INCLUDING ALL)"
        )
        started = time.monotonic()
        await connection.copy_records_to_table(
            "bench_copy", schema_name="terrain", records=tuples, columns=list(_COLUMNS)
        )
        seconds = time.monotonic() - started
    finally:
        await connection.close()
    return {"seconds": seconds, "per_s": len(tuples) / seconds}


async def main(count: int, record: bool, consumers: int) -> None:
    admin_url = os.environ.get(
        "DATABASE_URL", "postgresql://terrain:terrain@127.0.0.1:54329/terrain"
    )
    namespace = f"bench{uuid4().hex[:8]}."
    async with throwaway_database("terrain_bench", admin_url=admin_url) as url:
        try:
            await ensure_topics(
                TerrainSettings(kafka_bootstrap_servers=KAFKA, topic_namespace=namespace)
            )
            connection = await asyncpg.connect(url)
            rng = random.Random(7)
            t = time.monotonic()
            records, hashes = build_records(count, rng)
            known = [h for h in hashes[::3] if h]
            since = datetime(2024, 1, 1, tzinfo=UTC)
            await import_segments(
                connection=connection,
                records=[SegmentRecord(h, since, "youth", "gold") for h in known],
            )
            histories = await fetch_segment_histories(connection=connection, msisdn_hashes=hashes)
            server = str(await connection.fetchval("SHOW server_version"))
            await connection.close()
            print(f"built {count} records in {time.monotonic() - t:.1f}s", file=sys.stderr)
            t = time.monotonic()
            await produce_all(SUBMISSIONS_RAW.name(namespace), records)
            print(f"produced in {time.monotonic() - t:.1f}s", file=sys.stderr)
            enrich = await run_enrich(url, namespace, count, consumers)
            copy = await raw_copy(url, records, histories)
        finally:
            await delete_topics(namespace)
    report = table(count, enrich, copy, server, consumers)
    print(report)
    if record:
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as out:
            out.write(report + "\n")


def table(
    count: int, enrich: dict[str, float], copy: dict[str, float], server: str, consumers: int
) -> str:
    ratio = enrich["per_s"] / copy["per_s"]
    load = os.getloadavg()
    return "\n".join(
        [
            f"\n## enrich_store — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
            f"Python {platform.python_version()}, PostgreSQL {server}, Kafka 4.1 "
            f"(both on this machine); "
            + ", ".join(f"{lib} {metadata.version(lib)}" for lib in LIBRARIES)
            + f"; load average {load[0]:.2f}",
            "",
            "| measure | submissions | seconds | per second | ratio to raw COPY | target | met? |",
            "|---|---:|---:|---:|---:|---:|---|",
            f"| enrich + store ({consumers} process{'es' if consumers > 1 else ''}) | {count} | "
            f"{enrich['seconds']:.2f} | "
            f"{enrich['per_s']:,.0f} | {ratio:.2f} | {TARGET_PER_S:,} | "
            f"{'yes' if enrich['per_s'] >= TARGET_PER_S else 'no'} |",
            f"| raw COPY of the same rows | {count} | {copy['seconds']:.2f} | "
            f"{copy['per_s']:,.0f} | 1.00 | | |",
            "",
            f"enrich RSS (one process): {enrich['rss_idle_mb']:.0f} MB ready, "
            f"{enrich['rss_end_mb']:.0f} MB at "
            f"the end, {enrich['rss_peak_mb']:.0f} MB peak; startup to first stored row "
            f"{enrich['startup_s']:.1f}s; enrich CPU {enrich['cpu_us_per_submission']:.0f} µs "
            f"per submission (all processes; the first batch's share is left out)",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="3,000 submissions")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--consumers", type=int, default=1, help="enrich processes, one group")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    asyncio.run(main(3_000 if args.smoke else args.count, args.record, args.consumers))
