"""The end-to-end benchmark at smoke size: it still runs (the three services as processes,
the simulator's day, Kafka's ProducerPerformance and the raw COPY) and prints its tables.
Only that it completes: figures are the benchmark's business, never a test's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_end_to_end_bench_smoke_prints_its_tables() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.end_to_end", "--smoke"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    lines = completed.stdout.splitlines()
    assert any(line.startswith("| sustained, request to stored row") for line in lines)
    assert any(line.startswith("| urgent alert p50 / p99") for line in lines)
    for service in ("ingest", "enrich", "notify"):
        assert any(line.startswith(f"| {service} |") for line in lines), completed.stdout
