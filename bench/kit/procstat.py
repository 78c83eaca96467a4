"""What a benchmark reads of a process it started: CPU seconds and resident memory, from
/proc (Linux), so no sampling thread runs beside the process being measured."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def tree(pid: int) -> list[int]:
    """A process and its descendants (a server's workers, say), parents first."""
    found = [pid]
    for parent in found:
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found.extend(int(child) for child in children)
    return found


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its live descendants, plus what its reaped children
    used (a worker that exited still counts)."""
    total = 0.0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if member == pid:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """(sum, largest) current resident memory over a process and its descendants, in MB."""
    sizes = []
    for member in tree(pid):
        try:
            sizes.append(rss_mb(member)[0])
        except (OSError, KeyError):
            continue
    return sum(sizes), max(sizes, default=0.0)


def listening_pid(port: int) -> int | None:
    """The process listening on TCP ``port`` on this machine (the shared Kafka broker,
    say, when it was started from another checkout and left no pid file here)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (process / "fd").iterdir()):
                return int(process.name)
        except OSError:
            continue
    return None
