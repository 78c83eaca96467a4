"""End-to-end fixtures: the three services as real processes against the real broker and
database (a fresh database for the session, fresh topics per test)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import free_port, service_env
from tests.integration.conftest import database_url, namespace  # noqa: F401 - shared fixtures

LOG_DIR = Path(os.environ.get("TERRAIN_STATE_DIR", ".local")) / "test-logs"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


class Stack:
    def __init__(self, env: dict[str, str], ingest_url: str, logs: dict[str, Path]) -> None:
        self.env = env
        self.ingest_url = ingest_url
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, service: str) -> None:
        # "ENRICH__X=1" in the environment means X=1 for enrich alone (e.g. its metrics port).
        prefix = f"{service.upper()}__"
        env = {k: v for k, v in self.env.items() if "__" not in k or k.startswith("__")}
        env |= {k.removeprefix(prefix): v for k, v in self.env.items() if k.startswith(prefix)}
        log = self.logs[service].open("ab")
        self.processes[service] = subprocess.Popen(
            [sys.executable, "-m", service], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, service: str) -> None:
        process = self.processes.pop(service)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def output(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.logs.values())


@pytest.fixture
def stack_env() -> dict[str, str]:
    """Extra environment for the services; a test module overrides it (e.g. OTLP endpoint)."""
    return {}


@pytest.fixture
def stack(
    database_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    request: pytest.FixtureRequest,
    stack_env: dict[str, str],
) -> Iterator[Stack]:
    port = free_port()
    env = service_env(
        database_url,
        namespace,
        TERRAIN_INGEST_PORT=str(port),
        TERRAIN_SENDER_POLL_S="0.2",
        **stack_env,
    )
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    logs = {s: LOG_DIR / f"{request.node.name}-{s}.log" for s in ("ingest", "enrich", "notify")}
    for path in logs.values():
        path.unlink(missing_ok=True)
    stack = Stack(env, f"http://127.0.0.1:{port}", logs)
    for service in ("ingest", "enrich", "notify"):
        stack.start(service)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{stack.ingest_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("ingest never became ready:\n" + stack.output()[-4000:])
            time.sleep(0.2)
        yield stack
    finally:
        for service in list(stack.processes):
            stack.stop(service)


def post(stack: Stack, path: str, token: str, body: Any) -> httpx.Response:
    return httpx.post(
        stack.ingest_url + path, json=body, headers={"authorization": f"Bearer {token}"}, timeout=15
    )
