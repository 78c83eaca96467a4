"""Every benchmark at its smallest size still runs end to end and prints its table: ingest
(Kafka's ProducerPerformance, ingest as a process, the load generators), enrich + store
(records produced, enrich as a process, the raw COPY), notify latency, end to end (the
three services under each mix of requests, the COPY limit, the floor; with ``--profile``,
py-spy's stages of every service and the statements' costs) and the floor (what
the guarantees cost: validation, pseudonym, a batch produce, a batch store, a consume).
Only that each completes: figures are the benchmarks' business, never a test's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _smoke(module: str, timeout_s: float, *arguments: str) -> str:
    """``python -m bench.<module> --smoke``; its standard output once it succeeded."""
    completed = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--smoke", *arguments],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    return completed.stdout


def _has(output: str, *starts: str) -> None:
    lines = output.splitlines()
    for start in starts:
        assert any(line.startswith(start) for line in lines), f"no line {start!r} in {output}"


def test_ingest_bench_smoke_prints_its_table() -> None:
    output = _smoke("ingest", 100)
    _has(output, "| scenario", "| batch POST", "| single POST", "| p99 ms at")


def test_enrich_store_bench_smoke_prints_its_table() -> None:
    output = _smoke("enrich_store", 110)
    _has(output, "| enrich + store", "| raw COPY of the same rows", "enrich RSS")


def test_notify_latency_bench_smoke_prints_its_figures() -> None:
    output = _smoke("notify_latency", 100)
    figures = json.loads(output[output.index("{") :])
    assert {"p50_ms", "p99_ms", "alerts_delivered"} <= figures.keys()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("mix", ["batch", "realistic"])
def test_end_to_end_bench_smoke_prints_its_tables(mix: str) -> None:
    output = _smoke("end_to_end", 230, "--mix", mix)
    _has(output, "| sustained, request to stored row", "| urgent alert p50 / p99 from the 202")
    _has(output, *(f"| {name} |" for name in ("ingest", "enrich", "notify", "Kafka JVM")))
    _has(output, "| PostgreSQL backends |", "| load generator |", "load generator: ")


@pytest.mark.timeout(240)
def test_end_to_end_bench_smoke_profiles_every_service_or_says_why_not() -> None:
    output = _smoke("end_to_end", 230, "--mix", "batch", "--profile", "--no-floor")
    _has(output, "| sustained, request to stored row")
    if "--profile: no profile, py-spy is not available" in output:
        return
    _has(output, "### Profile: py-spy", *(f"**{name}**" for name in ("ingest", "enrich", "notify")))
    _has(output, "| stage | self, µs per visit", "| pseudonym", "| process", "| deliver")
    _has(output, "PostgreSQL statements of the run's database", "| statement | calls")


def test_floor_bench_smoke_prints_the_floor() -> None:
    output = _smoke("floor", 100)
    _has(output, "| validate the field document", "| pseudonym of the number")
    _has(output, "| produce acks=all", "| Kafka broker JVM: take", "| store once")
    _has(output, "| PostgreSQL backend", "| consume", "| **floor**", "floor: ")


def test_sampling_bench_smoke_prints_its_table() -> None:
    output = _smoke("sampling", 100)
    _has(output, "| ratio", "| 1.0", "| 0.01", "| off")


def test_notify_decide_bench_smoke_prints_its_figure() -> None:
    _has(_smoke("notify_decide", 60), "notify decode + decide:")
