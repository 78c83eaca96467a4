"""Terrain's services as processes for a benchmark: started on a throwaway database and
fresh topics, watched from ``/proc`` (CPU and resident memory of a service and of the
server processes it forks), stopped at the end."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.kit.procstat import cpu_s, listening_pid, rss_mb, tree, tree_cpu_s, tree_rss_mb
from terrain_runtime.kafka import ensure_topics
from terrain_runtime.settings import TerrainSettings
from terrain_testkit.processes import service_env
from terrain_testkit.topics import KAFKA, delete_topics

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / ".local" / "bench"

# The per-device limiter protects ingest from one runaway phone; a benchmark is a handful
# of devices sending everything, which it must not throttle.
UNTHROTTLED = {
    "TERRAIN_RATE_LIMIT_PER_MINUTE": "1000000000",
    "TERRAIN_RATE_LIMIT_BURST": "1000000000",
    # Traced as the deployed stack is (docker-compose.yml's ratio), not as a test run:
    # every urgent, failed and alerted submission still keeps its spans.
    "TERRAIN_OTEL_SAMPLE_RATIO": os.environ.get("TERRAIN_OTEL_SAMPLE_RATIO", "0.1"),
}


def admin_database_url() -> str:
    """``DATABASE_URL``, else the local PostgreSQL's (``deploy/local/postgres.sh url``):
    where the throwaway databases are created."""
    from_env = os.environ.get("DATABASE_URL")
    if from_env:
        return from_env
    return subprocess.run(
        [str(ROOT / "deploy/local/postgres.sh"), "url"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@asynccontextmanager
async def fresh_topics(namespace: str) -> AsyncIterator[None]:
    """The registry's topics under ``namespace``, deleted on the way out."""
    try:
        await ensure_topics(
            TerrainSettings(kafka_bootstrap_servers=KAFKA, topic_namespace=namespace)
        )
        yield
    finally:
        await delete_topics(namespace)


def broker_pid() -> int:
    """The process id of the local Kafka broker, whose CPU a benchmark reads beside the
    client's: from ``deploy/local/kafka.sh``'s pid file, else the process listening on
    the broker's port (a broker started from another checkout)."""
    state = Path(os.environ.get("TERRAIN_STATE_DIR", ROOT / ".local"))
    pid_file = state / "kafka" / "kafka.pid"
    if pid_file.exists():
        return int(pid_file.read_text().split()[0])
    pid = listening_pid(int(KAFKA.rsplit(":", 1)[1]))
    if pid is not None:
        return pid
    brokers = [
        int(process.name)
        for process in Path("/proc").iterdir()
        if process.name.isdigit() and b"kafka.Kafka" in _cmdline(process)
    ]
    if len(brokers) != 1:
        raise RuntimeError(f"no single Kafka broker found for {KAFKA}: {brokers}")
    return brokers[0]


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:
        return b""


def log_file(name: str) -> Path:
    """Where a service started by a benchmark writes its output."""
    LOGS.mkdir(parents=True, exist_ok=True)
    return LOGS / f"{name}.log"


def start_ingest(
    database_url: str, namespace: str, port: int, command: list[str], workers: int = 1
) -> subprocess.Popen[bytes]:
    """Ingest (``python <command>``, ``-m ingest`` or a candidate file) with ``workers``
    server processes, unthrottled, once its ``/readyz`` answers 200."""
    log = log_file("ingest")
    env = service_env(
        database_url,
        namespace,
        TERRAIN_INGEST_WORKERS=str(workers),
        TERRAIN_INGEST_PORT=str(port),
        **UNTHROTTLED,
    )
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


async def devices(url: str, per_market: int = 1) -> dict[str, list[str]]:
    """``per_market`` field devices in every market: their bearer tokens, by market."""
    from ingest.repository import create_device
    from terrain_contracts.markets import Market

    connection = await asyncpg.connect(url)
    try:
        tokens: dict[str, list[str]] = {}
        for market in Market:
            for number in range(per_market):
                _, token = await create_device(
                    connection=connection, market=market, label=f"bench {market.value} {number}"
                )
                tokens.setdefault(market.value, []).append(token)
    finally:
        await connection.close()
    return tokens


class Backends:
    """CPU of the PostgreSQL backends that serve one database (the services' pools), from
    /proc: the backends alive at ``begin`` and those that connected since; one that exited
    in between is not counted, nor are the shared writer and checkpointer processes."""

    def __init__(self, url: str, exclude: set[int]) -> None:
        """``exclude``: backends of the benchmark's own connections."""
        self._url = url
        self._exclude = exclude
        self._before: dict[int, float] = {}
        self.cpu_s = 0.0

    async def _pids(self) -> list[int]:
        connection = await asyncpg.connect(self._url)
        try:
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await connection.close()
        return [int(row["pid"]) for row in rows if int(row["pid"]) not in self._exclude]

    async def begin(self) -> None:
        self._before = {pid: _cpu_or_zero(pid) for pid in await self._pids()}

    async def end(self) -> None:
        self.cpu_s = sum(
            _cpu_or_zero(pid) - self._before.get(pid, 0.0) for pid in await self._pids()
        )


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_s(pid)
    except OSError:
        return 0.0


@dataclass
class Service:
    """A service started by ``start_service`` and what it cost over the load."""

    name: str
    process: asyncio.subprocess.Process
    spawned: float
    ready_s: float = 0.0
    cpu_before: float = 0.0
    cpu_load_s: float = 0.0
    rss_peak_mb: float = 0.0

    def load_begins(self) -> None:
        self.cpu_before = tree_cpu_s(self.process.pid)

    def load_ends(self) -> None:
        self.cpu_load_s = tree_cpu_s(self.process.pid) - self.cpu_before
        self.rss_peak_mb = peak_rss_mb(self.process.pid)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), timeout=30)


async def start_service(name: str, env: dict[str, str]) -> Service:
    """``python -m <name>`` with ``env``, its output in its log file; not waited for."""
    out = log_file(name).open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", name, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
    )
    return Service(name, process, time.monotonic())


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a service: of all its processes together (their peaks
    summed, which bounds the true simultaneous peak from above) when it runs several."""
    return sum(rss_mb(member)[1] for member in tree(pid))


class ProcessWatch:
    """RSS and CPU of a service (its server processes too, when it runs several), from
    /proc, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_mb = 0.0  # all of the service's processes together
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
