"""The enrich + store benchmark at smoke size: it still runs end to end (records built,
produced, enrich as a process, the raw COPY) and prints its table. Only that it
completes: figures are the benchmark's business, never a test's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_enrich_store_bench_smoke_prints_its_table() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.enrich_store", "--smoke"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert any(line.startswith("| enrich + store") for line in lines), completed.stdout
    assert any(line.startswith("| raw COPY of the same rows") for line in lines)
    assert any(line.startswith("enrich RSS") for line in lines)
