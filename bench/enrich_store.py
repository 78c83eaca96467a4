"""Enrich + store throughput against PostgreSQL's raw COPY of the same rows, same run.

    uv run python -m bench.enrich_store             # 100,000 submissions
    uv run python -m bench.enrich_store --record    # same, appended to bench/RESULTS.md
    uv run python -m bench.enrich_store --smoke     # 3,000: checks that it still runs

1. Build N distinct raw-topic records the way ingest writes them, from a thousand visits
   of the simulator's field day (``bench.kit.submissions``), and produce them all to a
   fresh raw topic first, so the consumer is measured, not the producer.
2. Import CRM segments for a third of the numbers (the lookup path is exercised).
3. Start enrich as a real process (``python -m enrich``) and time from its first stored
   row to its last: decode, geo, segment lookup, signals, COPY + INSERT ON CONFLICT,
   failed-submissions, publish to the enriched topic, offset commit. Its RSS is sampled.
4. Raw limit: one binary COPY of the very same rows (as enrich shapes them) into a fresh
   table shaped and indexed like terrain.submissions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.kit import profile, pyspy, results, statements
from bench.kit.copy_limit import copy_limit
from bench.kit.procstat import cpu_s, rss_mb
from bench.kit.stack import LOGS, ROOT, admin_database_url, fresh_topics
from bench.kit.submissions import RawRecord, ingest_headers, raw_records
from enrich.repository import fetch_segment_histories, import_segments
from enrich.segments import SegmentRecord
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_testkit.database import throwaway_database
from terrain_testkit.processes import service_env
from terrain_testkit.topics import KAFKA

TARGET_PER_S = 15_000  # what enrich + store must sustain on 2 cores
LIBRARIES = ("faststream", "aiokafka", "asyncpg", "pydantic", "timezonefinder", "h3")


async def produce_all(topic: str, records: list[RawRecord]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=20,
        max_batch_size=512 * 1024,
    )  # fmt: skip
    await producer.start()
    try:
        pending = []
        for n, (key, value) in enumerate(records):
            pending.append(await producer.send(topic, value, key=key, headers=ingest_headers(n)))
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


@dataclass
class Profiling:
    """``--profile``: py-spy on every enrich process and the database's statements, from
    the first stored row to the last (the window the CPU per submission is measured in)."""

    recording: pyspy.Recording
    statements: statements.Watch

    async def begin(self, pids: list[int]) -> None:
        for pid in pids:
            self.recording.start("enrich", pid)
        await self.statements.begin()

    async def end(self) -> None:
        self.recording.stop()
        await self.statements.end()

    def tables(self, count: int, cpu_us: float) -> str:
        cpu_s = cpu_us * count / 1e6
        window = "from the first stored row to the last"
        lines = profile.report(self.recording, {"enrich": cpu_s}, {"enrich": cpu_us}, window)
        return "\n".join(["\n", *lines, "", *self.statements.table(count, [_COUNT])])


_COUNT = "SELECT count(*) FROM terrain.submissions"


async def run_enrich(
    url: str, namespace: str, count: int, consumers: int, profiling: Profiling | None = None
) -> dict[str, float]:
    env = service_env(
        url,
        namespace,
        KAFKA_BOOTSTRAP_SERVERS=KAFKA,
        TERRAIN_LOG_LEVEL="WARNING",
        TERRAIN_BATCH_MAX_RECORDS="2000",
        TERRAIN_BATCH_TIMEOUT_MS="100",
    )
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
    backends_at_first: dict[int, float] = {}
    idle_rss = peak = 0.0
    try:
        while True:
            stored = await connection.fetchval(_COUNT)
            now = time.monotonic()
            current, peak = rss_mb(process.pid)
            if stored == 0:
                idle_rss = current
            if stored and first is None:
                first = now
                cpu_at_first = sum(cpu_s(p.pid) for p in processes)
                backends_at_first = await backend_cpu(connection)
                if profiling:
                    await profiling.begin([p.pid for p in processes])
            if stored >= count:
                break
            if any(p.returncode is not None for p in processes) or now - started > 900:
                raise RuntimeError(f"enrich stopped or stalled at {stored} of {count}")
            await asyncio.sleep(0.05)
        end_rss, peak = rss_mb(process.pid)
        cpu_used = sum(cpu_s(p.pid) for p in processes) - cpu_at_first
        if profiling:
            await profiling.end()
        backends = await backend_cpu(connection)
        backend_used = sum(s - backends_at_first.get(pid, 0.0) for pid, s in backends.items())
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
        "backend_us_per_submission": backend_used / count * 1e6,
        "load_1m": os.getloadavg()[0],
    }


async def backend_cpu(connection: asyncpg.Connection[asyncpg.Record]) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving the bench's database (enrich's pool),
    this watching connection left out: the server's share of a stored submission."""
    pids = await connection.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    found = {}
    for row in pids:
        with contextlib.suppress(OSError):
            found[row["pid"]] = cpu_s(row["pid"])
    return found


async def run_steady(
    url: str, namespace: str, records: list[RawRecord], rate: int
) -> dict[str, float]:
    """Enrich with its own batch settings, fed ``rate`` records/s (open loop, 10 ms ticks)
    once it stored a warm-up record: the small batches a real day gives. Latency is from
    the record's Kafka timestamp (stamped as it is sent) to its ``stored_at``; batches are
    counted by distinct ``stored_at`` (``now()`` is one per statement)."""
    topic = SUBMISSIONS_RAW.name(namespace)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "enrich", cwd=ROOT, stdout=subprocess.DEVNULL,
        env=service_env(url, namespace, KAFKA_BOOTSTRAP_SERVERS=KAFKA, TERRAIN_LOG_LEVEL="WARNING"),
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True)
    await producer.start()
    connection = await asyncpg.connect(url)
    count = "SELECT count(*) FROM terrain.submissions"
    try:
        await producer.send_and_wait(
            topic, records[0][1], key=records[0][0], headers=ingest_headers(0)
        )
        while not await connection.fetchval(count):
            if process.returncode is not None:
                raise RuntimeError("enrich stopped")
            await asyncio.sleep(0.1)
        cpu_at_start, backends_at_start = cpu_s(process.pid), await backend_cpu(connection)
        pending = []
        started = time.monotonic()
        for n, (key, value) in enumerate(records[1:], start=1):
            if (due := started + n / rate - time.monotonic()) > 0:
                await asyncio.sleep(due)
            pending.append(await producer.send(topic, value, key=key, headers=ingest_headers(n)))
        sent = await asyncio.gather(*pending)
        while await connection.fetchval(count) < len(records):
            if process.returncode is not None:
                raise RuntimeError("enrich stopped")
            await asyncio.sleep(0.05)
        cpu_used = cpu_s(process.pid) - cpu_at_start
        backends = await backend_cpu(connection)
        rows = await connection.fetch(
            "SELECT source_partition, source_offset, stored_at FROM terrain.submissions"
        )
    finally:
        await connection.close()
        await producer.stop()
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=60)
    stored = {(r["source_partition"], r["source_offset"]): r["stored_at"] for r in rows}
    latencies = sorted(
        stored[(m.partition, m.offset)].timestamp() - m.timestamp / 1000 for m in sent
    )
    backend_used = sum(s - backends_at_start.get(pid, 0.0) for pid, s in backends.items())
    return {
        "rate": rate,
        "visits": len(sent),
        "batches": len({r["stored_at"] for r in rows}) - 1,  # the warm-up's left out
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "cpu_us_per_submission": cpu_used / len(sent) * 1e6,
        "backend_us_per_submission": backend_used / len(sent) * 1e6,
        "load_1m": os.getloadavg()[0],
    }


def steady_line(steady: dict[str, float]) -> str:
    return (
        f"steady {steady['rate']:,.0f}/s: {steady['visits']:,.0f} visits in "
        f"{steady['batches']:,.0f} batches ({steady['visits'] / steady['batches']:.0f} a batch);"
        f" Kafka timestamp to stored_at p50 {steady['p50_ms']:.0f} ms, p99 "
        f"{steady['p99_ms']:.0f} ms; enrich CPU {steady['cpu_us_per_submission']:.0f} µs, its "
        f"PostgreSQL backends {steady['backend_us_per_submission']:.0f} µs per submission; "
        f"load average (1 min) {steady['load_1m']:.2f}"
    )


async def main(count: int, record: bool, consumers: int, rate: int, profiled: bool) -> None:
    namespace = f"bench{uuid4().hex[:8]}."
    async with (
        throwaway_database("terrain_bench", admin_url=admin_database_url()) as url,
        fresh_topics(namespace),
    ):
        connection = await asyncpg.connect(url)
        t = time.monotonic()
        records, hashes = raw_records(count, seed=7)
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
        if rate:
            print(steady_line(await run_steady(url, namespace, records, rate)))
            return
        t = time.monotonic()
        await produce_all(SUBMISSIONS_RAW.name(namespace), records)
        print(f"produced in {time.monotonic() - t:.1f}s", file=sys.stderr)
        profiling = (
            Profiling(
                pyspy.Recording(LOGS / "profile" / url.rsplit("/", 1)[1], 900),
                statements.Watch(admin_database_url(), url.rsplit("/", 1)[1]),
            )
            if profiled
            else None
        )
        enrich = await run_enrich(url, namespace, count, consumers, profiling)
        copy = await copy_limit(url, records, histories)
        # Before the database is dropped: a drop refused (an autovacuum worker on the
        # fresh table) must not lose the run.
        report = table(count, enrich, copy, server, consumers)
        if profiling:
            report += profiling.tables(count, enrich["cpu_us_per_submission"])
        print(report, flush=True)
        if record:
            results.append(report)


def table(
    count: int, enrich: dict[str, float], copy: dict[str, float], server: str, consumers: int
) -> str:
    ratio = enrich["per_s"] / copy["per_s"]
    return "\n".join(
        [
            "",
            results.heading("enrich_store"),
            "",
            f"machine: {platform.machine()}, {results.machine()}; PostgreSQL {server}, Kafka "
            f"{results.kafka_version()} (both on this machine); {results.versions(LIBRARIES)}"
            f"; load average {results.load_average()}",
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
            f"per submission (all processes; the first batch's share is left out), its "
            f"PostgreSQL backends {enrich['backend_us_per_submission']:.0f} µs per submission; "
            f"load average (1 min) as enrich finished {enrich['load_1m']:.2f}",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="3,000 submissions")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--consumers", type=int, default=1, help="enrich processes, one group")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument(
        "--rate", type=int, default=0, help="instead: feed --count records at this rate/s"
    )
    parser.add_argument(
        "--profile", action="store_true",
        help="py-spy on enrich (uvx py-spy), pg_stat_statements: where the CPU goes",
    )  # fmt: skip
    args = parser.parse_args()
    count = 3_000 if args.smoke else args.count
    if args.profile and args.rate:
        parser.error("--profile profiles the backlog run, not --rate")
    missing = pyspy.unavailable() if args.profile else None
    if missing:
        print(f"--profile: no profile, py-spy is not available: {missing}")
    profiled = args.profile and missing is None
    asyncio.run(main(count, args.record, args.consumers, args.rate, profiled))
