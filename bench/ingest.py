"""Ingest benchmark: how many field submissions ingest turns into durable (acks=all) Kafka
records, and how fast it answers, against what Kafka takes from its own producer.

One run, one machine: first Kafka's ProducerPerformance measures what the broker takes from
a producer with ingest's settings (acks=all, idempotent, linger 5 ms, records of the size
ingest writes, a topic shaped like the raw topic), then ingest runs as a real process
against fresh topics and a throwaway database, and load generators in separate processes
drive it (``bench.kit.load``) with the simulator's field day:

- batch: closed loop, 500 distinct submissions per request, a few connections;
- single: closed loop, many connections, one submission per request;
- latency: open loop at a fixed rate (requests leave on the clock, not after the previous
  answer, so a stall shows up in the latency of every request it delayed).

Only 2xx answers count; the load generator's CPU is printed beside ingest's.

    uv run python -m bench.ingest            # full run, ~2.5 minutes
    uv run python -m bench.ingest --smoke    # tiny sizes, for CI: completes and prints
    uv run python -m bench.ingest --record   # full run, appended to bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from multiprocessing import get_context

from bench.kit import results
from bench.kit.kafka_perf import PerfResult, perf_topic, producer_performance
from bench.kit.load import Job, Outcome, Request, ready, run_job, spread
from bench.kit.stack import (
    ProcessWatch,
    admin_database_url,
    devices,
    fresh_topics,
    start_ingest,
)
from bench.kit.submissions import (
    TEMPLATES,
    batch_requests,
    raw_record_size,
    raw_records,
    single_requests,
)
from bench.kit.wrk import available as wrk_available
from bench.kit.wrk import run_wrk
from terrain_testkit.database import throwaway_database
from terrain_testkit.processes import free_port

# What ingest must sustain on 2 cores with Kafka on the same machine.
TARGET_BATCH_PER_S = 25_000
TARGET_SINGLE_PER_S = 5_000
TARGET_P99_MS = 20.0
LATENCY_RATE = 1_000
SEED = 3  # same submissions every run: runs compare
LIBRARIES = ("fastapi", "uvicorn", "uvloop", "faststream", "aiokafka", "pydantic")


@dataclass(frozen=True)
class Sizes:
    raw_records: int  # ProducerPerformance at full speed
    raw_latency_records: int  # ProducerPerformance at LATENCY_RATE records/s
    batch_items: int
    batch_bodies: int  # distinct batch requests, cycled
    batch_workers: int
    batch_connections: int  # per worker
    single_bodies: int  # distinct single requests, cycled
    single_workers: int
    single_connections: int  # per worker
    duration_s: float  # of each throughput scenario
    latency_rate: int
    latency_s: float
    warmup_s: float
    overlap_setup: bool = False


FULL = Sizes(
    raw_records=400_000,
    raw_latency_records=10_000,
    batch_items=500,
    batch_bodies=16,
    batch_workers=2,
    batch_connections=3,
    single_bodies=4_000,
    single_workers=2,
    single_connections=32,
    duration_s=20.0,
    latency_rate=LATENCY_RATE,
    latency_s=20.0,
    warmup_s=3.0,
)
SMOKE = Sizes(
    raw_records=2_000,
    raw_latency_records=200,
    batch_items=20,
    batch_bodies=2,
    batch_workers=1,
    batch_connections=1,
    single_bodies=200,
    single_workers=1,
    single_connections=2,
    duration_s=0.5,
    latency_rate=100,
    latency_s=1.0,
    warmup_s=0.5,
    overlap_setup=True,
)


@dataclass
class Scenario:
    name: str
    outcome: Outcome
    ingest_cpu_s: float

    def percentile_ms(self, q: float) -> float:
        values = sorted(self.outcome.latencies_s)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    @property
    def per_s(self) -> float:
        return self.outcome.submissions / self.outcome.elapsed_s if self.outcome.elapsed_s else 0

    @property
    def clean(self) -> bool:
        return not self.outcome.non_2xx and not self.outcome.errors

    def failures(self) -> str:
        outcome = self.outcome
        parts = [f"{status}×{count}" for status, count in sorted(outcome.non_2xx.items())]
        parts += [f"{kind}×{count}" for kind, count in sorted(outcome.errors.items())]
        return ", ".join(parts) or "none"


def drive_wrk(
    port: int, requests: list[Request], sizes: Sizes, watch: ProcessWatch, name: str
) -> Scenario:
    """A closed-loop scenario sent by wrk with the Python client's processes × connections
    (as threads × connections)."""
    batch = name == "batch"
    threads = sizes.batch_workers if batch else sizes.single_workers
    connections = threads * (sizes.batch_connections if batch else sizes.single_connections)
    cpu = watch.cpu_s()
    outcome = run_wrk(port, requests, sizes.duration_s, threads, connections)
    return Scenario(name, outcome, watch.cpu_s() - cpu)


def drive(pool: ProcessPoolExecutor, jobs: list[Job], watch: ProcessWatch, name: str) -> Scenario:
    cpu = watch.cpu_s()
    outcome = Outcome()
    for result in [pool.submit(run_job, job) for job in jobs]:
        outcome.merge(result.result())
    return Scenario(name, outcome, watch.cpu_s() - cpu)


@dataclass
class Run:
    sizes: Sizes
    record_size: int
    raw: PerfResult
    raw_at_rate: PerfResult
    batch: Scenario
    single: Scenario
    latency: Scenario
    peak_rss_mb: float
    peak_process_rss_mb: float
    end_rss_mb: float
    workers: int
    load_start: str
    load_end: str
    started_at: datetime


def _measure(
    sizes: Sizes, url: str, namespace: str, topic: str, tokens: dict[str, list[str]],
    ingest_command: list[str], ingest_workers: int, client: str,
) -> Run:  # fmt: skip
    started_at = datetime.now(UTC)
    load_start = results.load_average()
    record_size = raw_record_size(raw_records(TEMPLATES, SEED)[0])
    batches = batch_requests(tokens, sizes.batch_items, sizes.batch_bodies, SEED)
    singles = single_requests(tokens, sizes.single_bodies, SEED + 1)
    port = free_port()
    process = None
    try:
        # A full run measures Kafka alone, then ingest; a smoke run only checks the bench
        # runs, so it overlaps the two JVM starts and ingest's start to stay quick.
        with ThreadPoolExecutor(3 if sizes.overlap_setup else 1) as setup:
            raw_run = setup.submit(producer_performance, topic, sizes.raw_records, record_size, -1)
            rate_run = setup.submit(
                producer_performance,
                topic,
                sizes.raw_latency_records,
                record_size,
                sizes.latency_rate,
            )
            started = setup.submit(
                start_ingest, url, namespace, port, ingest_command, ingest_workers
            )
            process = started.result()
            raw, raw_at_rate = raw_run.result(), rate_run.result()
        watch = ProcessWatch(process.pid)
        workers = max(sizes.batch_workers, sizes.single_workers)
        # Spawned workers import this script first, as spawn does; `ready` waits for that.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for worker in [pool.submit(ready) for _ in range(workers)]:
                worker.result()  # workers imported and waiting: their start is not timed
            drive(pool, [Job(port, 250, singles, sizes.warmup_s, connections=8)], watch, "warm-up")
            if client == "wrk":  # the same requests, from a compiled client
                batch = drive_wrk(port, batches, sizes, watch, "batch")
                single = drive_wrk(port, singles, sizes, watch, "single")
            else:
                batch = drive(pool, _jobs(port, 0, batches, sizes, batch=True), watch, "batch")
                single = drive(pool, _jobs(port, 16, singles, sizes, batch=False), watch, "single")
            latency = drive(
                pool,
                [Job(port, 32, singles, sizes.latency_s, rate=sizes.latency_rate)],
                watch,
                "latency",
            )
        watch.stop()
        return Run(
            sizes=sizes,
            record_size=record_size,
            raw=raw,
            raw_at_rate=raw_at_rate,
            batch=batch,
            single=single,
            latency=latency,
            peak_rss_mb=watch.peak_rss_mb,
            peak_process_rss_mb=watch.peak_process_rss_mb,
            end_rss_mb=watch.last_rss_mb,
            workers=ingest_workers,
            load_start=load_start,
            load_end=results.load_average(),
            started_at=started_at,
        )
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


def _jobs(
    port: int, first: int, requests: list[Request], sizes: Sizes, *, batch: bool
) -> list[Job]:
    """A closed-loop job per worker process, each with its share of ``requests``."""
    workers = sizes.batch_workers if batch else sizes.single_workers
    connections = sizes.batch_connections if batch else sizes.single_connections
    return [
        Job(port, first + worker, part, sizes.duration_s, connections, count_batch=batch)
        for worker, part in enumerate(spread(requests, workers))
    ]


async def run(
    sizes: Sizes, ingest_command: list[str], ingest_workers: int, client: str = "python"
) -> Run:
    """A throwaway database with a device per market, fresh topics and the perf topic
    around one measurement, which runs in a thread (it blocks on its worker processes)."""
    namespace = f"b{uuid.uuid4().hex[:10]}."
    async with (
        throwaway_database("terrain_bench", admin_url=admin_database_url()) as url,
        fresh_topics(namespace),
        perf_topic(namespace) as topic,
    ):
        tokens = await devices(url)
        return await asyncio.to_thread(
            _measure, sizes, url, namespace, topic, tokens, ingest_command, ingest_workers, client
        )


def table(result: Run) -> str:
    raw = result.raw.records_per_s
    batch, single, latency = result.batch, result.single, result.latency
    p99 = latency.percentile_ms(0.99)
    # Met only if ingest also kept up with the rate, every request answered 2xx.
    on_rate = (
        latency.outcome.submissions >= 0.99 * result.sizes.latency_rate * result.sizes.latency_s
    )
    rows = [
        (
            "batch POST, submissions/s",
            f"{batch.per_s:,.0f}",
            f"{raw:,.0f} rec/s",
            f"{batch.per_s / raw:.3f}",
            f"≥ {TARGET_BATCH_PER_S:,}",
            "yes" if batch.per_s >= TARGET_BATCH_PER_S and batch.clean else "NO",
        ),
        (
            "single POST, requests/s",
            f"{single.per_s:,.0f}",
            f"{raw:,.0f} rec/s",
            f"{single.per_s / raw:.3f}",
            f"≥ {TARGET_SINGLE_PER_S:,}",
            "yes" if single.per_s >= TARGET_SINGLE_PER_S and single.clean else "NO",
        ),
        (
            f"p99 ms at {result.sizes.latency_rate:,} POST/s (open loop)",
            f"{p99:.1f}",
            f"{result.raw_at_rate.p99_ms:.0f} ms (Kafka p99)",
            f"{p99 / max(result.raw_at_rate.p99_ms, 1.0):.2f}",
            f"< {TARGET_P99_MS:.0f} ms",
            "yes" if p99 < TARGET_P99_MS and latency.clean and on_rate else "NO",
        ),
    ]
    header = ("scenario", "Terrain", "raw limit (same run)", "ratio", "target", "met?")
    details = [
        "",
        f"record size: {result.record_size} bytes (a raw-topic record of the simulated day, "
        f"mean); Kafka ProducerPerformance acks=all idempotent linger.ms=5, 12 partitions: "
        f"{raw:,.0f} rec/s at full speed (p99 {result.raw.p99_ms:.0f} ms); at "
        f"{result.sizes.latency_rate:,} rec/s p50/p95/p99 {result.raw_at_rate.p50_ms:.0f}/"
        f"{result.raw_at_rate.p95_ms:.0f}/{result.raw_at_rate.p99_ms:.0f} ms",
    ]
    for scenario in (batch, single, latency):
        outcome = scenario.outcome
        cpu = scenario.ingest_cpu_s
        details.append(
            f"{scenario.name:<8} 2xx requests {outcome.requests_2xx:,} in {outcome.elapsed_s:.1f} s"
            f" ({outcome.requests_2xx / max(outcome.elapsed_s, 1e-9):,.0f}/s), submissions "
            f"{outcome.submissions:,}; non-2xx/errors: {scenario.failures()}; latency "
            f"p50/p95/p99/max {scenario.percentile_ms(0.5):.1f}/"
            f"{scenario.percentile_ms(0.95):.1f}/{scenario.percentile_ms(0.99):.1f}/"
            f"{max(outcome.latencies_s, default=0) * 1000:.1f} ms; CPU ingest {cpu:.1f} s "
            f"({cpu / max(outcome.elapsed_s, 1e-9):.0%}"
            f" of a core, {cpu / max(outcome.submissions, 1) * 1e6:,.0f} µs per"
            f" submission: at most {outcome.submissions / max(cpu, 1e-9):,.0f}/s"
            f" on a whole core), load generator {outcome.cpu_s:.1f} s"
            f" ({outcome.cpu_s / max(outcome.submissions, 1) * 1e6:,.0f} µs per submission,"
            f" {outcome.cpu_s / max(cpu + outcome.cpu_s, 1e-9):.0%} of its and ingest's CPU)"
        )
    details.append(
        f"ingest: {result.workers} server process(es)"
        f"{' and their supervisor' if result.workers > 1 else ''}; RSS of all: peak"
        f" {result.peak_rss_mb:.0f} MiB, at end {result.end_rss_mb:.0f} MiB; largest process"
        f" {result.peak_process_rss_mb:.0f} MiB; load average (1/5/15 min) at start "
        f"{result.load_start}, at end {result.load_end}"
    )
    return "\n".join(results.aligned_table(header, rows) + details)


def entry(result: Run, text: str, note: str) -> str:
    """The run as a RESULTS.md entry: context, then the table as printed."""
    lines = [
        results.heading("ingest", result.started_at),
        "",
        f"- machine: {results.machine()}; Kafka and PostgreSQL on the same machine",
        f"- versions: Kafka {results.kafka_version()}, {results.versions(LIBRARIES)}",
        f"- command: `uv run python -m bench.ingest {' '.join(sys.argv[1:])}`",
        *([f"- note: {note}"] if note else []),
        "",
        "```",
        text,
        "```",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: completes quickly")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--note", default="", help="a line of context for the recorded entry")
    parser.add_argument(
        "--ingest",
        default="-m ingest",
        help="how the Python interpreter starts ingest (default '-m ingest'); to measure a "
        "candidate change against the same raw limit, e.g. '/tmp/variant.py'",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="ingest server processes (TERRAIN_INGEST_WORKERS); default: one per core",
    )
    parser.add_argument(
        "--duration", type=float, help="seconds of each throughput and latency scenario (20)"
    )
    parser.add_argument(
        "--client", choices=("python", "wrk"), default="python",
        help="load generator of the batch and single scenarios: bench.kit.load, or wrk "
        "(apt-get install wrk); the latency scenario is open loop, always bench.kit.load",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.client == "wrk" and not wrk_available():
        parser.error("--client wrk needs wrk installed: apt-get install wrk")
    sizes = SMOKE if args.smoke else FULL
    if args.duration:
        sizes = replace(sizes, duration_s=args.duration, latency_s=args.duration)
    result = asyncio.run(run(sizes, args.ingest.split(), args.workers, args.client))
    text = table(result)
    print(text)
    if args.record and not args.smoke:
        results.append(entry(result, text, args.note))
    elif args.record:
        print("(smoke runs are not recorded)")


if __name__ == "__main__":
    main()
