"""What a benchmark's report says about the run (machine, versions, load) and where a run
worth keeping goes: ``bench/RESULTS.md``, append-only, one entry per run."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.kit.stack import ROOT

RESULTS = ROOT / "bench" / "RESULTS.md"


def heading(benchmark: str, at: datetime | None = None) -> str:
    """An entry's title: the benchmark and when it ran."""
    return f"## {benchmark} — {at or datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


def machine() -> str:
    """Cores, memory and system of this machine."""
    memory = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    gib = int(memory.group(1)) / 1024 / 1024 if memory else 0
    return f"{os.cpu_count()} cores, memory {gib:.1f} GiB, {platform.platform()}"


def kafka_version() -> str:
    """The local broker's version, from its client library's file name."""
    libs = sorted((ROOT / ".local/kafka/libs").glob("kafka-clients-*.jar"))
    return libs[0].stem.removeprefix("kafka-clients-") if libs else "unknown"


def versions(libraries: Iterable[str]) -> str:
    """Python's version and those of ``libraries``."""
    found = ", ".join(f"{name} {metadata.version(name)}" for name in libraries)
    return f"Python {platform.python_version()}, {found}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine shows there."""
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def aligned_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table whose columns line up in a terminal too."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return [
        "| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |"
        for line in (header, tuple("-" * w for w in widths), *rows)
    ]


def append(entry: str) -> None:
    """Add an entry at the end of RESULTS.md (created with its title if missing)."""
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nAppend-only: each run adds its own entry at the end.\n"
        )
    with RESULTS.open("a", encoding="utf-8") as results:
        results.write("\n" + entry.strip("\n") + "\n")
