"""Reliability fixtures: faults are real (a broker stopped, a process killed). A test that
stops Kafka gets a private broker of its own, so the shared one keeps serving the rest."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import stack, stack_env  # noqa: F401 - the services as processes
from tests.helpers import throwaway_database
from tests.integration.conftest import namespace, settings_kwargs  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A database per scenario: a notify killed mid-delivery leaves alerts due, and the next
    scenario's notify would deliver them to its own receivers, where they count as
    duplicates or strangers."""
    async with throwaway_database("terrain_reliability") as url:
        yield url


class PrivateBroker:
    """A second real Kafka broker on other ports, sharing the first one's jars."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.bootstrap = f"127.0.0.1:{port}"
        state_root = Path(os.environ.get("TERRAIN_STATE_DIR", ROOT / ".local"))
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"},
            "TERRAIN_STATE_DIR": str(state_dir),
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(port + 1),
            "KAFKA_LIBS_DIR": str(state_root / "kafka" / "libs"),
            "KAFKA_HEAP_OPTS": "-Xms128m -Xmx256m",
        }

    def _run(self, action: str) -> None:
        subprocess.run(
            [str(ROOT / "deploy/local/kafka.sh"), action],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path, 19092)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
