"""py-spy recording the services while a benchmark loads them: one ``py-spy record`` a
process (``--nonblocking``: the process is never paused, so the recording does not slow
what it measures beyond py-spy's own CPU, which is reported), raw stacks to files that
``bench.kit.profile`` folds into stages.

py-spy comes from PyPI through ``uvx`` (uv's tool runner), not from the lock: a benchmark
without it says why and runs on without a profile."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.kit.procstat import tree, tree_cpu_s

RATE_HZ = 100
COMMAND = ("uvx", "py-spy")


def unavailable() -> str | None:
    """None when ``uvx py-spy`` runs here (the first call may fetch it from PyPI), else
    why it does not."""
    if shutil.which(COMMAND[0]) is None:
        return "uvx is not on PATH (it comes with uv: https://docs.astral.sh/uv/)"
    try:
        completed = subprocess.run(
            [*COMMAND, "--version"], capture_output=True, text=True, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`uvx py-spy --version` did not answer: {error}"
    if completed.returncode != 0:
        return f"`uvx py-spy --version` failed: {completed.stderr.strip()[-300:]}"
    return None


@dataclass
class Recording:
    """py-spy on every process of some services from ``start`` to ``stop``: the raw files
    of each service, py-spy's own CPU, and what went wrong (never raised: a profile is
    an addition to a benchmark, not a reason to fail it)."""

    directory: Path
    limit_s: float  # py-spy stops by itself after this, whatever happens to the bench
    files: dict[str, list[Path]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    cpu_s: float = 0.0  # py-spy's own, all recorders together
    _running: list[tuple[str, Path, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, service: str, root: int) -> None:
        """Record every process of a service: ``root`` and its children."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for pid in tree(root):
            out = self.directory / f"{service}-{pid}.txt"
            with out.with_suffix(".log").open("wb") as log:
                process = subprocess.Popen(
                    [
                        *COMMAND, "record", "--pid", str(pid), "--rate", str(RATE_HZ),
                        "--format", "raw", "--full-filenames", "--nonblocking",
                        "-d", str(int(self.limit_s)), "-o", str(out),
                    ],
                    stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own group: uvx and py-spy get the SIGINT
                )  # fmt: skip
            self._running.append((service, out, process))

    def stop(self) -> None:
        """Stop every recorder (SIGINT: py-spy writes what it sampled) and keep the files."""
        self.cpu_s = sum(tree_cpu_s(p.pid) for _, _, p in self._running if p.poll() is None)
        for _, _, process in self._running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for name, out, process in self._running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if out.exists() and out.stat().st_size:
                self.files.setdefault(name, []).append(out)
            else:
                log = out.with_suffix(".log").read_text(errors="replace").strip()
                self.problems.append(f"{out.name}: no samples ({log[-200:] or 'no output'})")
        self._running.clear()
