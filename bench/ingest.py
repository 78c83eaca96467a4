"""Ingest benchmark (issue 3): ingest's throughput and latency against Kafka's own limit.

One run, one machine: first Kafka's ProducerPerformance measures what the broker takes from
a producer with ingest's settings (acks=all, idempotent, linger 5 ms, records of the size
ingest writes, a 12-partition topic), then ingest runs as a real process against fresh
topics and a throwaway database, and load generators in separate processes drive it:

- batch: closed loop, 500 distinct submissions per request, a few connections;
- single: closed loop, many connections, one submission per request;
- latency: open loop at a fixed rate (requests leave on the clock, not after the previous
  answer, so a stall shows up in the latency of every request it delayed).

The load generator is a minimal HTTP/1.1 client on asyncio streams (uvloop) with request
bytes built before timing: on 2 cores, every CPU cycle the client spends is taken from
ingest or Kafka, and this client costs a few percent of what ingest spends per request
(the table shows both CPU figures so the reader can check). Only 2xx answers count.

    uv run python -m bench.ingest            # full run, ~2 minutes
    uv run python -m bench.ingest --smoke    # tiny sizes, for CI: completes and prints
    uv run python -m bench.ingest --record   # full run, appended to bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.procstat import tree_cpu_s, tree_rss_mb

ROOT = Path(__file__).resolve().parents[1]

# The 8 hex digits at the head of every submission id in a body template: the load
# generator writes a per-request counter there, so every request carries fresh ids.
ID_SLOT = b"@@@@@@@@"
ACCEPTED = re.compile(rb'"accepted":\s*(\d+)')
PERF_SUMMARY = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec .*?([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th"
)

TARGET_BATCH_PER_S = 20_000
TARGET_SINGLE_PER_S = 2_000
TARGET_P99_MS = 50.0
LATENCY_RATE = 1_000
OPEN_LOOP_CONNECTIONS = 256
OPEN_LOOP_GRACE_S = 5.0


@dataclass(frozen=True)
class Sizes:
    raw_records: int  # ProducerPerformance at full speed
    raw_latency_records: int  # ProducerPerformance at LATENCY_RATE records/s
    batch_items: int
    batch_workers: int
    batch_connections: int  # per worker
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
    batch_workers=2,
    batch_connections=3,
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
    batch_workers=1,
    batch_connections=1,
    single_workers=1,
    single_connections=2,
    duration_s=0.5,
    latency_rate=100,
    latency_s=1.0,
    warmup_s=0.5,
    overlap_setup=True,
)


# --- the load generator (runs in worker processes: stdlib and uvloop only) ----------------


@dataclass(frozen=True)
class Job:
    """What one load-generator process does: closed loop (rate 0) or open loop (rate > 0)."""

    port: int
    worker: int
    requests: list[tuple[bytes, bytes]]  # (head, body template with ID_SLOT in every id)
    duration_s: float
    connections: int = 1
    rate: float = 0.0
    count_batch: bool = False  # count accepted submissions from a batch answer


@dataclass
class Outcome:
    requests_2xx: int = 0
    submissions: int = 0
    non_2xx: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    sent: int = 0

    def merge(self, other: Outcome) -> None:
        self.requests_2xx += other.requests_2xx
        self.submissions += other.submissions
        for status, count in other.non_2xx.items():
            self.non_2xx[status] = self.non_2xx.get(status, 0) + count
        for kind, count in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count
        self.latencies_s.extend(other.latencies_s)
        self.elapsed_s = max(self.elapsed_s, other.elapsed_s)
        self.cpu_s += other.cpu_s
        self.sent += other.sent


class _Requests:
    """Request bytes with fresh submission ids: one counter value per request."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self._next = 0

    def next(self) -> bytes:
        head, body = self._job.requests[self._next % len(self._job.requests)]
        stamp = f"{self._job.worker:02x}{self._next:06x}".encode()
        self._next += 1
        return head + body.replace(ID_SLOT, stamp)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


def _record(outcome: Outcome, job: Job, status: int, body: bytes) -> None:
    if 200 <= status < 300:
        outcome.requests_2xx += 1
        if job.count_batch:
            found = ACCEPTED.search(body)
            outcome.submissions += int(found.group(1)) if found else 0
        else:
            outcome.submissions += 1
    else:
        outcome.non_2xx[status] = outcome.non_2xx.get(status, 0) + 1


def _error(outcome: Outcome, error: BaseException) -> None:
    kind = type(error).__name__
    outcome.errors[kind] = outcome.errors.get(kind, 0) + 1


async def _closed_loop(job: Job) -> Outcome:
    outcome = Outcome()
    requests = _Requests(job)
    started = time.perf_counter()
    deadline = started + job.duration_s

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", job.port)
        try:
            while time.perf_counter() < deadline:
                request = requests.next()
                sent = time.perf_counter()
                outcome.sent += 1
                try:
                    status, body = await asyncio.wait_for(
                        _exchange(reader, writer, request), timeout=30
                    )
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
                    _error(outcome, error)
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", job.port)
                    continue
                outcome.latencies_s.append(time.perf_counter() - sent)
                _record(outcome, job, status, body)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(job.connections)))
    outcome.elapsed_s = time.perf_counter() - started
    return outcome


async def _open_loop(job: Job) -> Outcome:
    """Request i leaves at start + i/rate whatever happened before; its latency counts from
    that scheduled instant, so time spent waiting for a free connection is included.

    At most OPEN_LOOP_CONNECTIONS connections (a real fleet of phones is many clients, but
    an unbounded client would only measure the kernel's accept queue); a request still
    unanswered OPEN_LOOP_GRACE_S after the last one was due is counted as an error."""
    outcome = Outcome()
    requests = _Requests(job)
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    opened = 0
    total = int(job.rate * job.duration_s)
    start = time.perf_counter() + 0.05

    async def one(scheduled: float, request: bytes) -> None:
        nonlocal opened
        if idle.empty() and opened < OPEN_LOOP_CONNECTIONS:
            opened += 1
            try:
                connection = await asyncio.open_connection("127.0.0.1", job.port)
            except OSError as error:
                opened -= 1
                _error(outcome, error)
                return
        else:
            connection = await idle.get()
        reader, writer = connection
        try:
            status, body = await _exchange(reader, writer, request)
        except (OSError, asyncio.IncompleteReadError) as error:
            _error(outcome, error)
            writer.close()
            opened -= 1
            return
        outcome.latencies_s.append(time.perf_counter() - scheduled)
        _record(outcome, job, status, body)
        idle.put_nowait(connection)

    tasks = []
    for index in range(total):
        scheduled = start + index / job.rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        outcome.sent += 1
        tasks.append(asyncio.create_task(one(scheduled, requests.next())))
    _, late = await asyncio.wait(tasks, timeout=OPEN_LOOP_GRACE_S)
    for task in late:
        task.cancel()
    if late:
        outcome.errors["unanswered"] = len(late)
    outcome.elapsed_s = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait()[1].close()
    return outcome


def run_job(job: Job) -> Outcome:
    """Entry point of a load-generator process."""
    import uvloop

    cpu = time.process_time()
    outcome = uvloop.run(_open_loop(job) if job.rate else _closed_loop(job))
    outcome.cpu_s = time.process_time() - cpu
    return outcome


def _ready() -> bool:
    return True


# --- realistic submissions ----------------------------------------------------------------

# A local-format number per market, as agents type them; the digits after the first three
# are randomised per submission (normalise_msisdn accepts all of them, checked at build).
LOCAL_NUMBERS = {
    "BW": "71 234 567",
    "BF": "70 12 34 56",
    "CM": "6 71 23 45 67",
    "CF": "75 04 12 34",
    "CI": "07 07 12 34 56",
    "CD": "081 234 5678",
    "EG": "0100 123 4567",
    "GN": "620 12 34 56",
    "GW": "955 123 456",
    "JO": "07 7712 3456",
    "LR": "077 012 3456",
    "MG": "032 12 345 67",
    "ML": "76 12 34 56",
    "MA": "06 61 23 45 67",
    "SN": "77 123 45 67",
    "SL": "076 123456",
    "TN": "20 123 456",
}
VERBATIMS = {
    "fr": [
        "J'ai envoyé 50 000 FCFA hier, le destinataire n'a rien reçu et l'argent a été débité.",
        "Le réseau coupe tout le temps au marché central, surtout le soir.",
        "La 4G est lente depuis deux semaines, je ne peux plus regarder mes vidéos.",
        "L'agence était propre et l'accueil rapide, merci à la conseillère.",
        "Les forfaits internet sont trop chers par rapport à la concurrence.",
    ],
    "en": [
        "No signal at all in the village since the storm last week.",
        "Mobile money withdrawal failed twice and I was charged fees.",
        "Good service at the shop, the staff explained the new bundles well.",
    ],
    "ar": [
        "الشبكة ضعيفة جدا في الحي ولا أستطيع إجراء مكالمات",
        "تم خصم الرصيد مرتين هذا الشهر بدون سبب",
    ],
    "pt": ["A rede cai sempre que chove e o atendimento não resolve nada."],
    "mg": ["Tsy misy tambajotra eto an-tanàna hatramin'ny herinandro lasa."],
}
LANGUAGES = {
    "EG": "ar",
    "JO": "ar",
    "MA": "fr",
    "TN": "fr",
    "BW": "en",
    "LR": "en",
    "SL": "en",
    "GW": "pt",
    "MG": "mg",
}
FUNCTIONS = ["sales", "network", "finance", "hr", "it", "marketing", "customer_care", "other"]
KINDS = ["consumer", "consumer", "consumer", "enterprise", "orange_money", "partner"]
TOPICS = [
    "network_coverage",
    "data_speed",
    "voice_quality",
    "orange_money",
    "billing",
    "pricing",
    "offers",
    "customer_service",
    "shop_experience",
    "device",
    "other",
]


def _msisdn(rng: random.Random, market: str) -> str:
    template = LOCAL_NUMBERS[market]
    seen = 0
    digits = []
    for char in template:
        if char.isdigit():
            seen += 1
            digits.append(char if seen <= 3 else str(rng.randrange(10)))
        else:
            digits.append(char)
    return "".join(digits)


def submission(rng: random.Random, market: str, now: datetime) -> dict[str, Any]:
    """One field visit as the app sends it; its id starts with ID_SLOT."""
    from terrain_contracts.markets import MARKETS, Market

    info = MARKETS[Market(market)]
    language = LANGUAGES.get(market, "fr")
    collected = now - timedelta(seconds=rng.randrange(60, 8 * 3600))
    kind = rng.choice(KINDS)
    consent = rng.random() < 0.7
    customer: dict[str, Any] = {"kind": kind, "consent": consent}
    if rng.random() < 0.8:
        customer["msisdn"] = _msisdn(rng, market)
    if kind == "enterprise":
        customer["company"] = rng.choice(["Sotrac", "Boulangerie du Port", "Clinique Espoir"])
    feedback: dict[str, Any] = {
        "topics": rng.sample(TOPICS, rng.randrange(1, 4)),
        "satisfaction": rng.randrange(1, 6),
        "verbatim": rng.choice(VERBATIMS[language]),
        "language": language,
    }
    if rng.random() < 0.6:
        feedback["nps"] = rng.randrange(0, 11)
    if rng.random() < 0.05:
        feedback["urgent"] = True
    document: dict[str, Any] = {
        "submission_id": ID_SLOT.decode() + str(uuid.uuid4())[8:],
        "campaign_id": "mcmb-2025",
        "collected_at": collected.isoformat(),
        "sent_at": (collected + timedelta(seconds=rng.randrange(1, 3600))).isoformat(),
        "agent": {
            "employee_id": f"{market}-{rng.randrange(1, 999_999):06d}",
            "function": rng.choice(FUNCTIONS),
            "market": market,
        },
        "feedback": feedback,
        "app": {"name": "field-app", "version": "2.3.1", "device_id": uuid.uuid4().hex[:12]},
    }
    if rng.random() < 0.85:
        document["location"] = {
            "lat": round(info.capital_lat + rng.uniform(-0.2, 0.2), 5),
            "lon": round(info.capital_lon + rng.uniform(-0.2, 0.2), 5),
            "accuracy_m": rng.randrange(3, 60),
        }
    else:
        document["location"] = {"place": f"Marché de {info.capital}"}
    document["customer"] = customer
    return document


def _check_numbers(documents: list[dict[str, Any]]) -> None:
    from terrain_runtime.privacy import normalise_msisdn

    for document in documents:
        number = document["customer"].get("msisdn")
        if number is not None:
            normalise_msisdn(number, document["agent"]["market"])  # raises if ingest would 422


def _head(path: str, token: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def batch_requests(
    rng: random.Random, tokens: dict[str, str], items: int, count: int
) -> list[tuple[bytes, bytes]]:
    """`count` batch bodies, each from one market's device, each of `items` submissions."""
    now = datetime.now(UTC)
    built = []
    markets = list(tokens)
    for index in range(count):
        market = markets[index % len(markets)]
        documents = [submission(rng, market, now) for _ in range(items)]
        _check_numbers(documents)
        body = json.dumps({"submissions": documents}, ensure_ascii=False).encode()
        built.append((_head("/v1/submissions/batch", tokens[market], len(body)), body))
    return built


def single_requests(
    rng: random.Random, tokens: dict[str, str], count: int
) -> list[tuple[bytes, bytes]]:
    now = datetime.now(UTC)
    built = []
    markets = list(tokens)
    for index in range(count):
        market = markets[index % len(markets)]
        document = submission(rng, market, now)
        _check_numbers([document])
        body = json.dumps(document, ensure_ascii=False).encode()
        built.append((_head("/v1/submissions", tokens[market], len(body)), body))
    return built


# --- Kafka's own limit ----------------------------------------------------------------------


@dataclass(frozen=True)
class PerfResult:
    records_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def producer_performance(topic: str, records: int, record_size: int, throughput: int) -> PerfResult:
    """Kafka's ProducerPerformance with ingest's producer settings; its last summary line."""
    from tests.helpers import KAFKA

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


# --- ingest as a process --------------------------------------------------------------------


class ProcessWatch:
    """RSS and CPU of ingest (its server processes too, when it runs several), from /proc,
    sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_mb = 0.0  # all of ingest's processes together
        self.peak_process_rss_mb = 0.0  # the largest one
        self.last_rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def cpu_s(self) -> float:
        return tree_cpu_s(self.pid)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            total, largest = tree_rss_mb(self.pid)
            if total:
                self.last_rss_mb = total
                self.peak_rss_mb = max(self.peak_rss_mb, total)
                self.peak_process_rss_mb = max(self.peak_process_rss_mb, largest)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_ingest(
    database_url: str, namespace: str, port: int, log: Path, command: list[str], workers: int = 1
) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "TERRAIN_ENVIRONMENT": "test",
        "TERRAIN_INGEST_WORKERS": str(workers),
        "DATABASE_URL": database_url,
        "TERRAIN_TOPIC_NAMESPACE": namespace,
        "TERRAIN_INGEST_PORT": str(port),
        # The per-device limiter protects ingest from one runaway phone; the bench is a
        # handful of devices sending everything, which it must not throttle.
        "TERRAIN_RATE_LIMIT_PER_MINUTE": "1000000000",
        "TERRAIN_RATE_LIMIT_BURST": "1000000000",
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, *command], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ingest exited with {process.returncode}: see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return process
        except OSError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"ingest did not become ready within 60 s: see {log}")


# --- the run --------------------------------------------------------------------------------


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


def drive(pool: ProcessPoolExecutor, jobs: list[Job], watch: ProcessWatch, name: str) -> Scenario:
    cpu = watch.cpu_s()
    outcome = Outcome()
    for result in [pool.submit(run_job, job) for job in jobs]:
        outcome.merge(result.result())
    return Scenario(name, outcome, watch.cpu_s() - cpu)


def _spread(requests: list[tuple[bytes, bytes]], workers: int) -> list[list[tuple[bytes, bytes]]]:
    return [requests[index::workers] for index in range(workers)]


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
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    started_at: datetime


async def _setup(database_url: str, namespace: str) -> tuple[str, dict[str, str], str]:
    """A throwaway database with a device per market; fresh topics; the raw perf topic."""
    import asyncpg
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from ingest.repository import create_device
    from terrain_contracts.markets import Market
    from terrain_contracts.topics import SUBMISSIONS_RAW
    from terrain_runtime.kafka import ensure_topics, topic_configs
    from terrain_runtime.settings import TerrainSettings
    from tests.helpers import KAFKA, create_database

    url = await create_database("terrain_bench", admin_url=database_url)
    connection = await asyncpg.connect(url)
    try:
        tokens = {}
        for market in Market:
            _, token = await create_device(
                connection=connection, market=market, label=f"bench {market.value}"
            )
            tokens[market.value] = token
    finally:
        await connection.close()
    settings = TerrainSettings(kafka_bootstrap_servers=KAFKA, topic_namespace=namespace)
    await ensure_topics(settings)
    perf_topic = f"{namespace}bench.producer-performance"
    kafka_admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await kafka_admin.start()
    try:
        await kafka_admin.create_topics(
            [
                NewTopic(
                    name=perf_topic,
                    num_partitions=SUBMISSIONS_RAW.partitions,
                    replication_factor=settings.kafka_replication_factor,
                    topic_configs=topic_configs(SUBMISSIONS_RAW, settings.kafka_replication_factor),
                )
            ]
        )
    finally:
        await kafka_admin.close()
    return url, tokens, perf_topic


async def _teardown(database_url: str, bench_url: str, namespace: str, perf_topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from tests.helpers import KAFKA, delete_topics, drop_database

    await delete_topics(namespace)
    kafka_admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await kafka_admin.start()
    try:
        await kafka_admin.delete_topics([perf_topic])
    finally:
        await kafka_admin.close()
    await drop_database(bench_url, admin_url=database_url)


def _admin_database_url() -> str:
    from_env = os.environ.get("DATABASE_URL")
    if from_env:
        return from_env
    return subprocess.run(
        [str(ROOT / "deploy/local/postgres.sh"), "url"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def run(sizes: Sizes, ingest_command: list[str], ingest_workers: int) -> Run:
    from tests.factories import raw_record

    started_at = datetime.now(UTC)
    load_start = os.getloadavg()
    rng = random.Random(3)  # same submissions every run: runs compare
    record_size = len(raw_record()[1])
    database_url = _admin_database_url()
    namespace = f"b{uuid.uuid4().hex[:10]}."
    bench_url, tokens, perf_topic = asyncio.run(_setup(database_url, namespace))
    process: subprocess.Popen[bytes] | None = None
    try:
        single_count = 4_000 if sizes is FULL else 200
        batches = batch_requests(rng, tokens, sizes.batch_items, 16 if sizes is FULL else 2)
        singles = single_requests(rng, tokens, single_count)
        port = _free_port()
        logs = ROOT / ".local" / "bench"
        logs.mkdir(parents=True, exist_ok=True)
        # A full run measures Kafka alone, then ingest; a smoke run only checks the bench
        # runs, so it overlaps the two JVM starts and ingest's start to stay quick.
        with ThreadPoolExecutor(3 if sizes.overlap_setup else 1) as setup:
            raw_run = setup.submit(
                producer_performance, perf_topic, sizes.raw_records, record_size, -1
            )
            rate_run = setup.submit(
                producer_performance,
                perf_topic,
                sizes.raw_latency_records,
                record_size,
                sizes.latency_rate,
            )
            started = setup.submit(
                start_ingest,
                bench_url,
                namespace,
                port,
                logs / "ingest.log",
                ingest_command,
                ingest_workers,
            )
            process = started.result()
            raw, raw_at_rate = raw_run.result(), rate_run.result()
        watch = ProcessWatch(process.pid)
        workers = max(sizes.batch_workers, sizes.single_workers)
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for ready in [pool.submit(_ready) for _ in range(workers)]:
                ready.result()  # workers imported and waiting: their start is not timed
            drive(
                pool,
                [Job(port, 250, singles, sizes.warmup_s, connections=8)],
                watch,
                "warm-up",
            )
            batch = drive(
                pool,
                [
                    Job(port, worker, part, sizes.duration_s, sizes.batch_connections, 0, True)
                    for worker, part in enumerate(_spread(batches, sizes.batch_workers))
                ],
                watch,
                "batch",
            )
            single = drive(
                pool,
                [
                    Job(port, 16 + worker, part, sizes.duration_s, sizes.single_connections)
                    for worker, part in enumerate(_spread(singles, sizes.single_workers))
                ],
                watch,
                "single",
            )
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
            load_end=os.getloadavg(),
            started_at=started_at,
        )
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        asyncio.run(_teardown(database_url, bench_url, namespace, perf_topic))


# --- reporting ------------------------------------------------------------------------------


def _failures(scenario: Scenario) -> str:
    parts = [f"{status}×{count}" for status, count in sorted(scenario.outcome.non_2xx.items())]
    parts += [f"{kind}×{count}" for kind, count in sorted(scenario.outcome.errors.items())]
    return ", ".join(parts) or "none"


def _clean(scenario: Scenario) -> bool:
    return not scenario.outcome.non_2xx and not scenario.outcome.errors


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
            "yes" if batch.per_s >= TARGET_BATCH_PER_S and _clean(batch) else "NO",
        ),
        (
            "single POST, requests/s",
            f"{single.per_s:,.0f}",
            f"{raw:,.0f} rec/s",
            f"{single.per_s / raw:.3f}",
            f"≥ {TARGET_SINGLE_PER_S:,}",
            "yes" if single.per_s >= TARGET_SINGLE_PER_S and _clean(single) else "NO",
        ),
        (
            f"p99 ms at {result.sizes.latency_rate:,} POST/s (open loop)",
            f"{p99:.1f}",
            f"{result.raw_at_rate.p99_ms:.0f} ms (Kafka p99)",
            f"{p99 / max(result.raw_at_rate.p99_ms, 1.0):.2f}",
            f"< {TARGET_P99_MS:.0f} ms",
            "yes" if p99 < TARGET_P99_MS and _clean(latency) and on_rate else "NO",
        ),
    ]
    header = ("scenario", "Terrain", "raw limit (same run)", "ratio", "target", "met?")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |"
        for line in (header, tuple("-" * w for w in widths), *rows)
    ]
    details = [
        "",
        f"record size: {result.record_size} bytes (tests.factories.raw_record()); "
        f"Kafka ProducerPerformance acks=all idempotent linger.ms=5, 12 partitions: "
        f"{raw:,.0f} rec/s at full speed (p99 {result.raw.p99_ms:.0f} ms); at "
        f"{result.sizes.latency_rate:,} rec/s p50/p95/p99 {result.raw_at_rate.p50_ms:.0f}/"
        f"{result.raw_at_rate.p95_ms:.0f}/{result.raw_at_rate.p99_ms:.0f} ms",
    ]
    for scenario in (batch, single, latency):
        outcome = scenario.outcome
        details.append(
            f"{scenario.name:<8} 2xx requests {outcome.requests_2xx:,} in {outcome.elapsed_s:.1f} s"
            f" ({outcome.requests_2xx / max(outcome.elapsed_s, 1e-9):,.0f}/s), submissions "
            f"{outcome.submissions:,}; non-2xx/errors: {_failures(scenario)}; latency "
            f"p50/p95/p99/max {scenario.percentile_ms(0.5):.1f}/"
            f"{scenario.percentile_ms(0.95):.1f}/{scenario.percentile_ms(0.99):.1f}/"
            f"{max(outcome.latencies_s, default=0) * 1000:.1f} ms; CPU ingest "
            f"{scenario.ingest_cpu_s:.1f} s "
            f"({scenario.ingest_cpu_s / max(outcome.elapsed_s, 1e-9):.0%}"
            f" of a core, {scenario.ingest_cpu_s / max(outcome.submissions, 1) * 1e6:,.0f} µs per"
            f" submission: at most {outcome.submissions / max(scenario.ingest_cpu_s, 1e-9):,.0f}/s"
            f" on a whole core), load generator {outcome.cpu_s:.1f} s"
        )
    details.append(
        f"ingest: {result.workers} server process(es)"
        f"{' and their supervisor' if result.workers > 1 else ''}; RSS of all: peak"
        f" {result.peak_rss_mb:.0f} MiB, at end {result.end_rss_mb:.0f} MiB; largest process"
        f" {result.peak_process_rss_mb:.0f} MiB; "
        f"load average (1/5/15 min) at start {'/'.join(f'{v:.2f}' for v in result.load_start)}, "
        f"at end {'/'.join(f'{v:.2f}' for v in result.load_end)}"
    )
    return "\n".join(lines + details)


def _versions() -> str:
    libs = sorted((ROOT / ".local/kafka/libs").glob("kafka-clients-*.jar"))
    kafka = libs[0].stem.removeprefix("kafka-clients-") if libs else "unknown"
    packages = ["fastapi", "uvicorn", "uvloop", "faststream", "aiokafka", "pydantic"]
    found = ", ".join(f"{name} {metadata.version(name)}" for name in packages)
    return f"Kafka {kafka}, Python {platform.python_version()}, {found}"


def _machine() -> str:
    memory = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    gib = int(memory.group(1)) / 1024 / 1024 if memory else 0
    return f"nproc {os.cpu_count()}, memory {gib:.1f} GiB, {platform.system()} {platform.release()}"


def record(result: Run, text: str, note: str) -> None:
    results = ROOT / "bench" / "RESULTS.md"
    if not results.exists():
        results.write_text(
            "# Benchmark results\n\nAppend-only: each run adds its own entry at the end.\n"
        )
    lines = [
        f"## ingest — {result.started_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {_machine()}; Kafka and PostgreSQL on the same machine",
        f"- versions: {_versions()}",
        f"- command: `uv run python -m bench.ingest {' '.join(sys.argv[1:])}`",
        *([f"- note: {note}"] if note else []),
        "",
        "```",
        text,
        "```",
    ]
    entry = "\n" + "\n".join(lines) + "\n"
    with results.open("a") as sink:
        sink.write(entry)


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
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    result = run(sizes, args.ingest.split(), args.workers)
    text = table(result)
    print(text)
    if args.record and not args.smoke:
        record(result, text, args.note)
    elif args.record:
        print("(smoke runs are not recorded)")


if __name__ == "__main__":
    main()
