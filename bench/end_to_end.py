"""End to end: visits/s from the field app's request to the stored row, sustained, what
every process spends per visit, each service's footprint and the urgent alerts' latency.

The three services run as real processes (``python -m ingest|enrich|notify``) on a
throwaway database and fresh topics, with a level-1 manager per market on a loopback
webhook. Load generators in processes of their own (``bench.kit.load``: pre-built request
bytes, fresh ids every pass) send one of two days, closed loop, for ``--duration``:

- ``--mix batch``: a batch-heavy day, 200 visits a request from several devices per
  market; target ≥ 10,000 visits/s sustained for 5 minutes and ≥ 0.45 × the COPY rate of
  the same rows, measured in the same run;
- ``--mix realistic``: the simulator's day (``terrain_simulator``: mostly single POSTs,
  outboxes of 20–150 visits, resends, 2 % invalid, urgent complaints); target ≥ 3,000/s.

Sustained is what the whole pipeline keeps up with: visits stored while the load ran /
its length (a backlog left in Kafka is not throughput). Then the stack drains, and every
process's CPU over load and drain is divided by the visits it handled: ingest, enrich,
notify, Kafka's JVM, the PostgreSQL backends of the run's database, the load generator
(at most 10 % of all of it, or it is the limit); beside each, its part of the floor
(``bench.floor``, measured in the same run). Each service's time to ready (spawn to
``/readyz`` for ingest; to a first record stored, alerted, for enrich, notify) and peak RSS.

    uv run python -m bench.end_to_end --mix batch                 # 5 minutes of load
    uv run python -m bench.end_to_end --mix realistic --duration 60 --record
    uv run python -m bench.end_to_end --mix batch --smoke         # seconds; what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from uuid import uuid4

import asyncpg

from bench import floor as floor_bench
from bench.kit import profile, pyspy, results, statements
from bench.kit.alerts import ALERTS, alert_latencies
from bench.kit.copy_limit import copy_limit
from bench.kit.load import Job, Outcome, Request, ready, run_job
from bench.kit.pipeline import WARM_UP, start_pipeline, wait_drained
from bench.kit.procstat import cpu_s
from bench.kit.stack import (
    LOGS,
    Backends,
    Service,
    admin_database_url,
    broker_pid,
    devices,
    fresh_topics,
)
from bench.kit.submissions import batch_requests, raw_records, realistic_requests
from bench.kit.wrk import available as wrk_available
from bench.kit.wrk import run_wrk
from terrain_simulator.generator import DayOptions
from terrain_testkit.database import throwaway_database
from terrain_testkit.factories import country_managers
from terrain_testkit.sinks import WebhookSink

SEED = 2026
TARGET_READY_S = 2.0
TARGET_RSS_MB = 150
TARGET_ALERT_P99_MS = 500
TARGET_GENERATOR_SHARE = 0.10
LIBRARIES = ("fastapi", "uvicorn", "faststream", "aiokafka", "asyncpg", "pydantic")


@dataclass(frozen=True)
class Mix:
    """One kind of day: how its requests are built and sent, and what it must sustain."""

    name: str
    target_per_s: int
    connections: int  # per load-generator process
    sustain_s: float = 0.0  # for how long the target must hold
    copy_ratio: float = 0.0  # of the COPY rate of the same rows, 0: no such target


MIXES = {
    "batch": Mix("batch", 10_000, connections=3, sustain_s=300, copy_ratio=0.45),
    "realistic": Mix("realistic", 3_000, connections=16),
}


@dataclass(frozen=True)
class Sizes:
    duration_s: float
    visits: int  # distinct visits in one pass of the requests (fresh ids every pass)
    devices_per_market: int
    copy_rows: int
    drain_s: float
    floor_visits: int


FULL = Sizes(300.0, 20_000, 4, 50_000, 120.0, 5_000)
SMOKE = Sizes(3.0, 600, 1, 2_000, 30.0, 300)


def build(mix: Mix, tokens: dict[str, list[str]], sizes: Sizes) -> list[Request]:
    if mix.name == "batch":
        return batch_requests(tokens, 200, max(1, sizes.visits // 200), SEED)
    options = DayOptions(visits=sizes.visits, seed=SEED, campaign_id="bench")
    return realistic_requests(tokens, options)[0]


@dataclass
class Run:
    mix: Mix
    sizes: Sizes
    senders: int
    ingest_workers: int
    rate: float = 0.0  # visits/s, open loop; 0: closed loop, as fast as the stack answers
    client: str = "python"  # the load generator: bench.kit.load, or wrk (bench.kit.wrk)
    load: Outcome = field(default_factory=Outcome)
    services: list[Service] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)  # Kafka, PostgreSQL, generator
    load_s: float = 0.0
    stored_in_load: int = 0
    stored: int = 0
    drained: bool = False
    namespace: str = field(default_factory=lambda: f"e2e{uuid4().hex[:8]}.")
    drain_s: float = 0.0
    alerts: int = 0
    alert_p50_ms: float = 0.0
    alert_p99_ms: float = 0.0
    alert_legs: str = ""
    copy_per_s: float = 0.0
    load_start: str = ""
    load_end: str = ""
    server: str = ""
    profile: bool = False  # py-spy on every service process, pg_stat_statements
    recording: pyspy.Recording | None = None
    statements: statements.Watch | None = None


def _send(run: Run, port: int, requests: list[Request]) -> None:
    """The load: ``run.senders`` processes for the mix's duration, closed loop or open loop
    at ``run.rate`` visits/s. Each gets a contiguous share of the requests, so a visit's
    resends stay in one process. With wrk, one process of ``run.senders`` threads, each
    cycling all the requests with ids of its own."""
    if run.client == "wrk":
        connections = run.senders * run.mix.connections
        run.load = run_wrk(port, requests, run.sizes.duration_s, run.senders, connections)
        return
    share = -(-len(requests) // run.senders)
    parts = [requests[i * share : (i + 1) * share] for i in range(run.senders)]
    # Open loop paces requests: visits/s into requests/s by the pass's visits per request.
    visits = sum(body.count(b'"submission_id"') for _, body in requests)
    jobs = [
        Job(
            port,
            worker,
            part,
            run.sizes.duration_s,
            run.mix.connections,
            rate=run.rate * len(part) / visits,
            count_batch=True,
        )
        for worker, part in enumerate(parts)
        if part
    ]
    with ProcessPoolExecutor(len(jobs), mp_context=get_context("spawn")) as pool:
        for worker in [pool.submit(ready) for _ in jobs]:
            worker.result()  # started and imported: their start is not timed
        for outcome in [pool.submit(run_job, job) for job in jobs]:
            run.load.merge(outcome.result())


_STORED = (
    "SELECT count(*) FROM terrain.submissions WHERE campaign_id <> $1"
    " AND ($2::float8 IS NULL OR stored_at <= to_timestamp($2))"
)


async def _stored(connection: asyncpg.Connection, until: float | None = None) -> int:
    return int(await connection.fetchval(_STORED, WARM_UP, until))


async def _load_and_drain(run: Run, url: str, ingest_url: str, requests: list[Request]) -> None:
    broker = broker_pid()
    connection = await asyncpg.connect(url)
    try:
        backends = Backends(url, {int(await connection.fetchval("SELECT pg_backend_pid()"))})
        for service in run.services:
            service.load_begins()
        database = url.rsplit("/", 1)[1]
        if run.profile:
            run.recording = pyspy.Recording(
                LOGS / "profile" / database, run.sizes.duration_s + run.sizes.drain_s + 60
            )
            for service in run.services:
                run.recording.start(service.name, service.process.pid)
            run.statements = statements.Watch(admin_database_url(), database)
            await run.statements.begin()
        kafka_before = cpu_s(broker)
        await backends.begin()
        started = time.time()
        port = int(ingest_url.rsplit(":", 1)[1])
        await asyncio.to_thread(_send, run, port, requests)
        ended = time.time()
        run.load_s = ended - started
        run.load_end = results.load_average()
        run.stored_in_load = await _stored(connection, ended)
        run.drained = await wait_drained(run.namespace, run.sizes.drain_s)
        run.stored = await _stored(connection)
        run.drain_s = time.time() - ended
        for service in run.services:
            service.load_ends()
        if run.recording and run.statements:
            run.recording.stop()
            await run.statements.end()
        run.cpu_s["Kafka JVM"] = cpu_s(broker) - kafka_before
        await backends.end()
        run.cpu_s["PostgreSQL backends"] = backends.cpu_s
        run.cpu_s["load generator"] = run.load.cpu_s
        alerts = await alert_latencies(connection, WARM_UP)
        run.alerts = alerts.count
        run.alert_p50_ms, run.alert_p99_ms = alerts.p50_ms, alerts.p99_ms
        run.alert_legs = alerts.legs
    finally:
        await connection.close()


async def measure(run: Run) -> Run:
    mix, sizes = run.mix, run.sizes
    namespace = run.namespace
    async with throwaway_database("terrain_bench") as url, fresh_topics(namespace):
        connection = await asyncpg.connect(url)
        try:
            run.server = str(await connection.fetchval("SHOW server_version")).split()[0]
        finally:
            await connection.close()
        tokens = await devices(url, sizes.devices_per_market)
        requests = build(mix, tokens, sizes)
        try:
            with WebhookSink() as sink:
                async with country_managers(url, sink):
                    ingest_url = await start_pipeline(
                        url, namespace, run.services, run.ingest_workers
                    )
                    run.load_start = results.load_average()
                    await _load_and_drain(run, url, ingest_url, requests)
        finally:
            for service in run.services:
                await service.stop()
        if mix.copy_ratio:
            copied = await copy_limit(url, raw_records(sizes.copy_rows, seed=SEED)[0])
            run.copy_per_s = copied["per_s"]
    return run


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def _cpu(run: Run) -> tuple[dict[str, float], dict[str, float]]:
    """CPU seconds of every process over load and drain, and µs of it per visit handled:
    ingest and the generator every accepted send, the rest the visits stored (a resend is
    stored once)."""
    cpu = {s.name: s.cpu_load_s for s in run.services} | run.cpu_s
    handled = {"ingest": run.load.submissions, "load generator": run.load.submissions}
    per_visit = {
        name: seconds / max(handled.get(name, run.stored), 1) * 1e6 for name, seconds in cpu.items()
    }
    return cpu, per_visit


def profile_tables(run: Run) -> str:
    """Where each service's CPU per visit goes, by stage (py-spy), and which statements the
    backends' time goes to (pg_stat_statements)."""
    if run.recording is None or run.statements is None:
        return ""
    cpu, per_visit = _cpu(run)
    lines = profile.report(run.recording, cpu, per_visit, "over load and drain")
    own = (_STORED, ALERTS)  # the bench's polls: not the services'
    return "\n".join(["\n", *lines, "", *run.statements.table(run.stored, own)])


def table(run: Run, floor: floor_bench.Floor | None, note: str) -> str:
    mix, load = run.mix, run.load
    per_s = run.stored_in_load / run.load_s if run.load_s else 0.0
    sustained = run.load_s >= mix.sustain_s and per_s >= mix.target_per_s
    target = f"≥ {mix.target_per_s:,}" + (
        f" for {mix.sustain_s / 60:.0f} min" if mix.sustain_s else ""
    )
    lines = [
        "",
        results.heading(f"end_to_end --mix {mix.name}"),
        "",
        f"- machine: {results.machine()}; Kafka {results.kafka_version()} and PostgreSQL "
        f"{run.server} on the same machine, shared; {results.versions(LIBRARIES)}",
        f"- load average (1/5/15 min) at the start {run.load_start}, at the end of the load "
        f"{run.load_end}" + (f"; note: {note}" if note else ""),
        f"- load generator {run.client}, "
        + ("1 process, " if run.client == "wrk" else "")
        + f"{run.senders} {'threads' if run.client == 'wrk' else 'processes'}, "
        + (
            f"open loop at {run.rate:,.0f} visits/s"
            if run.rate
            else f"{mix.connections} connections each, closed loop"
        )
        + f", {run.load_s:.0f} s; ingest: {run.ingest_workers} server process(es)",
        "",
        "| measure | Terrain | raw limit (same run) | ratio | target | met? |",
        "|---|---:|---:|---:|---:|---|",
        f"| sustained, request to stored row, visits/s | {per_s:,.0f} | "
        + (
            f"COPY {run.copy_per_s:,.0f} rows/s | {per_s / run.copy_per_s:.3f} | "
            f"{target}, ≥ {mix.copy_ratio} × COPY | "
            f"{_met(sustained and per_s >= mix.copy_ratio * run.copy_per_s)} |"
            if mix.copy_ratio and run.copy_per_s
            else f"| | {target} | {_met(sustained)} |"
        ),
        f"| urgent alert p50 / p99 from the 202, ms ({run.alerts:,} alerts) | "
        f"{run.alert_p50_ms:,.0f} / {run.alert_p99_ms:,.0f} | | | ≤ {TARGET_ALERT_P99_MS} at a "
        "steady 1,000 visits/s | "
        + (
            _met(run.alerts > 0 and run.alert_p99_ms <= TARGET_ALERT_P99_MS)
            if run.rate
            else "closed loop: see --rate"
        )
        + " |",
        "",
        f"accepted {load.submissions:,} submissions ({load.submissions / run.load_s:,.0f}/s, "
        f"resends included) in {load.requests_2xx:,} 2xx requests; non-2xx "
        f"{dict(sorted(load.non_2xx.items())) or 'none'}, errors {load.errors or 'none'}; "
        f"stored {run.stored_in_load:,} during the load, {run.stored:,} after "
        f"{run.drain_s:.0f} s of drain ({'drained' if run.drained else 'NOT drained'})",
        "",
        f"alerts by leg, p50 / p99 ms: received to {run.alert_legs} (to stored: ingest, Kafka"
        ", enrich; to outbox: Kafka, notify's consumer; to delivered: the sender, the webhook)",
        "",
        "| process | CPU, s | µs CPU per visit | floor part, µs | × floor | ready, s | "
        "peak RSS, MB | met? |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    cpu, per_visit = _cpu(run)
    services = {s.name: s for s in run.services}
    for name, seconds in cpu.items():
        part = floor.part_us(name) if floor else 0.0
        service = services.get(name)
        footprint = (
            f"{service.ready_s:.1f} | {service.rss_peak_mb:.0f} | "
            f"{_met(service.ready_s < TARGET_READY_S and service.rss_peak_mb <= TARGET_RSS_MB)}"
            if service
            else " | | "
        )
        lines.append(
            f"| {name} | {seconds:,.1f} | {per_visit[name]:,.0f} | "
            f"{f'{part:,.0f}' if floor and floor_bench.PARTS.get(name) else ''} | "
            f"{f'{per_visit[name] / part:,.1f}' if part else ''} | {footprint} |"
        )
    total_cpu = sum(cpu.values())
    share = cpu["load generator"] / total_cpu if total_cpu else 0.0
    lines += [
        f"| all | {total_cpu:,.1f} | {sum(per_visit.values()):,.0f} | "
        f"{f'{floor.total_us:,.0f}' if floor else ''} | "
        f"{f'{sum(per_visit.values()) / floor.total_us:,.1f}' if floor else ''} | | | |",
        "",
        f"load generator: {share:.1%} of all the CPU above (≤ {TARGET_GENERATOR_SHARE:.0%}: "
        f"{_met(share <= TARGET_GENERATOR_SHARE)}); targets: ready < {TARGET_READY_S:.0f} s, "
        f"≤ {TARGET_RSS_MB} MB RSS per service; the floor is bench.floor's, measured after "
        f"the run ({floor.visits if floor else 0:,} visits a step)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mix", choices=sorted(MIXES), default="batch")
    parser.add_argument("--duration", type=float, help="seconds of load (default 300)")
    parser.add_argument("--smoke", action="store_true", help="seconds: checks that it runs")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--note", default="", help="a remark recorded with the run")
    parser.add_argument(
        "--senders", type=int, default=2, help="load generator processes (wrk: threads)"
    )
    parser.add_argument("--ingest-workers", type=int, default=1, help="ingest server processes")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="visits/s, open loop (default: closed loop)"
    )
    parser.add_argument(
        "--client", choices=("python", "wrk"), default="python",
        help="load generator: bench.kit.load, or wrk (apt-get install wrk; closed loop only)",
    )  # fmt: skip
    parser.add_argument("--no-floor", action="store_true", help="skip the floor after the run")
    parser.add_argument(
        "--profile", action="store_true",
        help="py-spy on every service (uvx py-spy), pg_stat_statements: where the CPU goes",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.client == "wrk" and (args.rate or not wrk_available()):
        parser.error("--client wrk needs wrk installed (apt-get install wrk) and no --rate")
    sizes = SMOKE if args.smoke else FULL
    if args.duration:
        # A shorter load leaves a shorter backlog: the drain's limit follows it.
        drain_s = min(sizes.drain_s, max(args.duration, 30.0))
        sizes = replace(sizes, duration_s=args.duration, drain_s=drain_s)
    run = Run(MIXES[args.mix], sizes, args.senders, args.ingest_workers, args.rate, args.client)
    missing = pyspy.unavailable() if args.profile else None
    run.profile = args.profile and missing is None
    asyncio.run(measure(run))
    floor = None if args.no_floor else floor_bench.measure(sizes.floor_visits)
    report = table(run, floor, args.note) + profile_tables(run)
    if missing:
        report += f"\n\n--profile: no profile, py-spy is not available: {missing}"
    print(report)
    if args.record and not args.smoke:
        results.append(report)


if __name__ == "__main__":
    main()
