"""End to end: sustained submissions/s from the field app's request to the stored row,
their latency, the urgent alerts' latency, and each service's footprint.

The three services run as real processes (``python -m ingest|enrich|notify``) on a
throwaway database and fresh topics, with a level-1 manager per market whose webhook is a
loopback receiver. The field-day simulator sends a realistic day (outbox batches, single
POSTs, resends, a few invalid visits) as fast as the stack takes it, then checks every
promise. Figures:

- sustained rate: visits the stack stored / seconds from the first request to the last
  stored row (resends and invalid visits are sent but not counted);
- latency: ``stored_at - received_at`` of every stored visit (ingest's clock to the
  commit of enrich's transaction), and ``delivered_at - received_at`` of every alert;
- footprint: start-up (spawn to ready: ingest's /readyz, then a first visit stored and
  alerted), peak RSS and CPU per service over the load.

Raw limits in the same run: Kafka's ProducerPerformance (acks=all, idempotent, records of
the raw topic's size) and PostgreSQL COPY of the same rows into a copy of the table. The
pipeline writes every visit to Kafka twice and to PostgreSQL once, so the lower of the two
is what no pipeline on this machine could beat.

    uv run python -m bench.end_to_end                    # 150,000 visits (~6 min here)
    uv run python -m bench.end_to_end --visits 50000 --record
    uv run python -m bench.end_to_end --smoke            # seconds; what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import asyncpg
import httpx

from bench.kit import results
from bench.kit.copy_limit import copy_limit
from bench.kit.kafka_perf import perf_topic, producer_performance
from bench.kit.stack import UNTHROTTLED, Service, fresh_topics, start_service
from bench.kit.submissions import raw_record_size, raw_records
from terrain_simulator.generator import DayOptions
from terrain_simulator.simulate import SimulationResult, simulate
from terrain_testkit.database import throwaway_database
from terrain_testkit.factories import country_managers
from terrain_testkit.processes import free_port, service_env
from terrain_testkit.sinks import WebhookSink

SERVICES = ("ingest", "enrich", "notify")
TARGET_PER_S = 10_000
TARGET_ALERT_P99_S = 1.0
TARGET_RSS_MB = 200
LIBRARIES = ("fastapi", "uvicorn", "faststream", "aiokafka", "asyncpg", "pydantic")


@dataclass
class Figures:
    visits: int
    accepted: int
    stored: int
    sending_s: float
    stored_per_s: float
    store_p50_ms: float
    store_p99_ms: float
    alerts: int
    alert_p50_ms: float
    alert_p99_ms: float
    promises_kept: bool
    problems: list[str]
    senders: int = 1
    ingest_workers: int = 1
    steady_rate: float = 0.0
    steady_alerts: int = 0
    steady_alert_p50_ms: float = 0.0
    steady_alert_p99_ms: float = 0.0
    promises_kept_steady: bool = True
    generator_cpu_s: float = 0.0
    services: list[Service] = field(default_factory=list)
    kafka_per_s: float = 0.0
    copy_per_s: float = 0.0
    server: str = ""


async def _until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not reached in {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


async def _warm_up(services: dict[str, Service], url: str, ingest_url: str) -> None:
    """Spawn to ready, per service: ingest answers /readyz; enrich has stored and notify
    alerted a first visit (their consumer groups own their partitions by then)."""

    async def ingest_ready() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{ingest_url}/readyz", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    await _until(ingest_ready, 60, "ingest ready")
    services["ingest"].ready_s = time.monotonic() - services["ingest"].spawned
    warm = DayOptions(visits=20, seed=1, campaign_id="warm-up", invalid_share=0.0)
    result = await simulate(
        database_url=url, ingest_url=ingest_url, options=warm, rate=0, settle_s=60
    )
    if not result.verdict.ok:
        raise RuntimeError(f"warm-up failed: {result.verdict.problems[:5]}")
    now = time.monotonic()
    services["enrich"].ready_s = now - services["enrich"].spawned
    services["notify"].ready_s = now - services["notify"].spawned


async def _raw_limits(namespace: str, url: str, count: int) -> tuple[float, float]:
    records, _ = raw_records(count, seed=7)
    async with perf_topic(namespace) as topic:
        size = raw_record_size(records)
        kafka = await asyncio.to_thread(producer_performance, topic, max(count, 50_000), size, -1)
    copy = await copy_limit(url, records)
    return kafka.records_per_s, copy["per_s"]


async def _stored_latency(url: str, campaign: str) -> tuple[int, float, float, float]:
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            """SELECT count(*) AS n,
                      extract(epoch FROM max(stored_at) - min(received_at)) AS span_s,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50,
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99
               FROM (SELECT received_at, stored_at,
                            extract(epoch FROM stored_at - received_at) AS d
                     FROM terrain.submissions WHERE campaign_id = $1) t""",
            campaign,
        )
    finally:
        await connection.close()
    assert row is not None
    return int(row["n"]), float(row["span_s"] or 0), float(row["p50"] or 0), float(row["p99"] or 0)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


async def run(
    visits: int,
    raw_count: int,
    senders: int,
    ingest_workers: int = 1,
    steady_rate: float = 200.0,
    steady_visits: int = 12_000,
) -> Figures:
    namespace = f"e2e{uuid4().hex[:8]}."
    async with throwaway_database("terrain_bench") as url, fresh_topics(namespace):
        connection = await asyncpg.connect(url)
        server = str(await connection.fetchval("SHOW server_version"))
        services: dict[str, Service] = {}
        try:
            with WebhookSink() as sink:
                async with country_managers(url, sink):
                    port = free_port()
                    env = service_env(
                        url, namespace, TERRAIN_INGEST_PORT=str(port),
                        TERRAIN_INGEST_WORKERS=str(ingest_workers),
                        TERRAIN_NOTIFY_PORT=str(free_port()), TERRAIN_LOG_LEVEL="WARNING",
                        **UNTHROTTLED,
                    )  # fmt: skip
                    for service_name in SERVICES:
                        services[service_name] = await start_service(service_name, env)
                    ingest_url = f"http://127.0.0.1:{port}"
                    await _warm_up(services, url, ingest_url)
                    for service in services.values():
                        service.load_begins()
                    campaign = f"bench-{uuid4().hex[:6]}"
                    options = DayOptions(visits=visits, seed=2026, campaign_id=campaign)
                    result: SimulationResult = await simulate(
                        database_url=url, ingest_url=ingest_url, options=options, rate=0,
                        concurrency=32, settle_s=600, senders=senders,
                    )  # fmt: skip
                    for service in services.values():
                        service.load_ends()
                    # Then a steady day well below saturation: how soon an urgent complaint
                    # reaches its manager when the stack is busy but not drowning.
                    steady = await simulate(
                        database_url=url, ingest_url=ingest_url, rate=steady_rate,
                        options=DayOptions(
                            visits=steady_visits, seed=2027, campaign_id=f"{campaign}-steady"
                        ),
                        concurrency=32, settle_s=120, senders=senders,
                    )  # fmt: skip
        finally:
            for service in services.values():
                await service.stop()
            await connection.close()
        stored, span_s, p50, p99 = await _stored_latency(url, options.campaign_id)
        kafka_per_s, copy_per_s = await _raw_limits(namespace, url, raw_count)
    total = result.verdict.total()
    alerts = result.verdict.alert_latencies_s
    return Figures(
        visits=visits,
        accepted=total.accepted,
        stored=stored,
        sending_s=result.sender.stats.seconds,
        stored_per_s=stored / span_s if span_s else 0.0,
        store_p50_ms=p50 * 1000,
        store_p99_ms=p99 * 1000,
        alerts=len(alerts),
        alert_p50_ms=_percentile(alerts, 0.5) * 1000,
        alert_p99_ms=_percentile(alerts, 0.99) * 1000,
        promises_kept=result.verdict.ok,
        senders=senders,
        generator_cpu_s=result.sender.cpu_s,
        problems=result.verdict.problems[:5],
        services=list(services.values()),
        kafka_per_s=kafka_per_s,
        copy_per_s=copy_per_s,
        server=server,
        ingest_workers=ingest_workers,
        steady_rate=steady_rate,
        steady_alerts=len(steady.verdict.alert_latencies_s),
        steady_alert_p50_ms=_percentile(steady.verdict.alert_latencies_s, 0.5) * 1000,
        steady_alert_p99_ms=_percentile(steady.verdict.alert_latencies_s, 0.99) * 1000,
        promises_kept_steady=steady.verdict.ok,
    )


def table(f: Figures, note: str = "") -> str:
    limit = min(f.kafka_per_s, f.copy_per_s)

    def met(ok: bool) -> str:
        return "yes" if ok else "NO"

    lines = [
        "",
        results.heading("end_to_end"),
        "",
        f"- machine: {results.machine()}; Kafka {results.kafka_version()} and PostgreSQL "
        f"{f.server.split()[0]} on the same machine; {results.versions(LIBRARIES)}",
        f"- load average at the end: {results.load_average()}"
        + (f"; note: {note}" if note else ""),
        "",
        "| measure | Terrain | raw limit (same run) | ratio | target | met? |",
        "|---|---:|---:|---:|---:|---|",
        f"| sustained, request to stored row, visits/s | {f.stored_per_s:,.0f} | "
        f"{limit:,.0f} (Kafka {f.kafka_per_s:,.0f} rec/s, COPY {f.copy_per_s:,.0f} rows/s) | "
        f"{f.stored_per_s / limit if limit else 0:.3f} | ≥ {TARGET_PER_S:,} for 5 min | "
        f"{met(f.stored_per_s >= TARGET_PER_S and f.sending_s >= 300)} |",
        f"| request to stored row p50 / p99, ms | {f.store_p50_ms:,.0f} / {f.store_p99_ms:,.0f} "
        f"| | | | |",
        f"| urgent alert p50 / p99 while saturated, ms ({f.alerts} alerts) | "
        f"{f.alert_p50_ms:,.0f} / {f.alert_p99_ms:,.0f} | | | ≤ {TARGET_ALERT_P99_S * 1000:,.0f} | "
        f"{met(f.alert_p99_ms <= TARGET_ALERT_P99_S * 1000)} |",
        f"| urgent alert p50 / p99 at a steady {f.steady_rate:,.0f} visits/s, ms "
        f"({f.steady_alerts} alerts) | {f.steady_alert_p50_ms:,.0f} / "
        f"{f.steady_alert_p99_ms:,.0f} | | | ≤ {TARGET_ALERT_P99_S * 1000:,.0f} | "
        f"{met(f.steady_alert_p99_ms <= TARGET_ALERT_P99_S * 1000)} |",
        "",
        "| service | start-up to ready, s | peak RSS, MB | CPU over the load, s | "
        "share of a core | target RSS | met? |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in f.services:
        lines.append(
            f"| {s.name} | {s.ready_s:.1f} | {s.rss_peak_mb:.0f} | {s.cpu_load_s:.1f} | "
            f"{s.cpu_load_s / f.sending_s if f.sending_s else 0:.0%} | ≤ {TARGET_RSS_MB} | "
            f"{met(s.rss_peak_mb <= TARGET_RSS_MB)} |"
        )
    lines += [
        "",
        f"{f.visits:,} visits sent in {f.sending_s:.1f} s, {f.accepted:,} accepted, "
        f"{f.stored:,} stored; every promise kept: {'yes' if f.promises_kept else 'NO'}"
        f" (steady day: {'yes' if f.promises_kept_steady else 'NO'})"
        + (f" ({'; '.join(f.problems)})" if f.problems else ""),
        f"load generator (the simulator, {f.senders} process{'es' if f.senders > 1 else ''} "
        f"on the same 2 cores): {f.generator_cpu_s:.1f} s CPU, "
        f"{f.generator_cpu_s / f.sending_s if f.sending_s else 0:.0%} of a core; ingest ran "
        f"{f.ingest_workers} server process{'es' if f.ingest_workers > 1 else ''}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--visits", type=int, default=150_000)
    parser.add_argument("--raw", type=int, default=100_000, help="rows for the raw limits")
    parser.add_argument("--smoke", action="store_true", help="600 visits; checks that it runs")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--note", default="", help="a remark recorded with the run")
    parser.add_argument("--senders", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--ingest-workers", type=int, default=1, help="ingest server processes (see deploy/)"
    )
    parser.add_argument(
        "--steady-rate", type=float, default=200.0, help="visits/s of the steady day (alerts)"
    )
    parser.add_argument("--steady-s", type=float, default=60.0, help="length of the steady day")
    args = parser.parse_args(argv)
    if args.smoke:
        args.visits, args.raw, args.steady_s = 600, 5_000, 2.0
    figures = asyncio.run(
        run(
            args.visits,
            args.raw,
            args.senders,
            args.ingest_workers,
            steady_rate=args.steady_rate,
            steady_visits=int(args.steady_rate * args.steady_s),
        )
    )
    report = table(figures, args.note)
    print(report)
    if args.record:
        results.append(report)
    if not figures.promises_kept:
        sys.exit(1)


if __name__ == "__main__":
    main()
