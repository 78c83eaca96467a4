"""The ingest and floor benchmarks at their smallest sizes: each still runs end to end
(ingest: Kafka's ProducerPerformance, ingest as a process, the load generators; floor:
the library steps, Kafka and COPY) and prints its table. Only that it completes: figures
are the benchmark's business, never a test's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ingest_bench_smoke_prints_its_table() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.ingest", "--smoke"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert any(line.startswith("| scenario") and "ratio" in line for line in lines)
    for scenario in ("batch POST", "single POST", "p99 ms at"):
        assert any(line.startswith(f"| {scenario}") for line in lines), completed.stdout


def test_floor_bench_smoke_prints_its_ceilings() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.floor", "--smoke"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    for step in ("| aiokafka: produce", "| Kafka broker: take", "| PostgreSQL: COPY a row"):
        assert any(line.startswith(step) for line in lines), completed.stdout
    for stage in ("| ingest, batch endpoint", "| enrich + store", "| end to end"):
        assert any(line.startswith(stage) for line in lines), completed.stdout
