"""Terrain's services as real processes, and the local infrastructure's own scripts: what
the end-to-end and reliability tests start, kill and read the output of.

Paths are those of the source tree this kit is installed from (a workspace member, editable):
``deploy/local`` holds the scripts that run the local broker and database."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[3]
LOCAL_DEPLOY = ROOT / "deploy/local"
LOG_DIR = Path(os.environ.get("TERRAIN_STATE_DIR", ".local")) / "test-logs"
SERVICES = ("ingest", "enrich", "notify")


def free_port() -> int:
    """A TCP port nobody listens on now, on the loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def service_env(database_url: str, namespace: str, **settings: str) -> dict[str, str]:
    """The environment of a Terrain service started as a process by a test or a bench: test
    mode, this database, these topics; ``settings`` add or override ``TERRAIN_...`` ones."""
    return {
        **os.environ,
        "TERRAIN_ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "TERRAIN_TOPIC_NAMESPACE": namespace,
        **settings,
    }


def wait_until_ready(url: str, *, failure: Callable[[], str], timeout_s: float = 60) -> None:
    """Poll ``url``/readyz until it answers 200; past ``timeout_s``, raise with ``failure()``
    (what the service printed, say) as the message."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(failure())
        time.sleep(0.2)


@contextlib.contextmanager
def ingest_process(
    database_url: str, namespace: str, **environment: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m ingest`` on a free port, ready (its /readyz answers): its URL and process.
    ``environment`` adds to or overrides the test settings (``TERRAIN_...`` variables)."""
    port = free_port()
    env = service_env(database_url, namespace, TERRAIN_INGEST_PORT=str(port), **environment)
    process = subprocess.Popen([sys.executable, "-m", "ingest"], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, failure=lambda: "ingest did not become ready in 60 s")
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


class Stack:
    """The three services as processes sharing one environment, each writing to its log."""

    def __init__(self, env: dict[str, str], ingest_url: str, logs: dict[str, Path]) -> None:
        self.env = env
        self.ingest_url = ingest_url
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, service: str) -> None:
        """Start ``service`` (again): ``python -m <service>``, appending to its log."""
        # "ENRICH__X=1" in the environment means X=1 for enrich alone (e.g. its metrics port).
        prefix = f"{service.upper()}__"
        env = {k: v for k, v in self.env.items() if "__" not in k or k.startswith("__")}
        env |= {k.removeprefix(prefix): v for k, v in self.env.items() if k.startswith(prefix)}
        log = self.logs[service].open("ab")
        self.processes[service] = subprocess.Popen(  # noqa: S603 - one of our own services
            [sys.executable, "-m", service], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, service: str) -> None:
        """Stop ``service`` as an orchestrator does: SIGTERM, then SIGKILL after 30 s."""
        process = self.processes.pop(service)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def output(self) -> str:
        """Everything the services printed so far, one log after the other."""
        return "\n".join(path.read_text(errors="replace") for path in self.logs.values())


@contextlib.contextmanager
def running_stack(
    database_url: str, namespace: str, name: str, **environment: str
) -> Iterator[Stack]:
    """The three services on this database and these topics, ingest ready, their logs in
    ``LOG_DIR`` as ``<name>-<service>.log``; stopped on the way out. ``environment`` adds
    to or overrides the test settings ("NOTIFY__X" for notify alone)."""
    port = free_port()
    env = service_env(
        database_url,
        namespace,
        TERRAIN_INGEST_PORT=str(port),
        TERRAIN_SENDER_POLL_S="0.2",
        **environment,
    )
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    logs = {s: LOG_DIR / f"{name}-{s}.log" for s in SERVICES}
    for path in logs.values():
        path.unlink(missing_ok=True)
    stack = Stack(env, f"http://127.0.0.1:{port}", logs)
    for service in SERVICES:
        stack.start(service)
    try:
        wait_until_ready(
            stack.ingest_url,
            failure=lambda: "ingest never became ready:\n" + stack.output()[-4000:],
        )
        yield stack
    finally:
        for service in list(stack.processes):
            stack.stop(service)


def post(stack: Stack, path: str, token: str, body: Any) -> httpx.Response:
    """POST ``body`` as JSON to the stack's ingest, as the field app holding ``token``."""
    return httpx.post(
        stack.ingest_url + path, json=body, headers={"authorization": f"Bearer {token}"}, timeout=15
    )


def local_service(service: str, action: str) -> subprocess.CompletedProcess[str]:
    """Run deploy/local/<service>.sh <action> (start, stop, status): the faults tests inject
    into the local broker or cluster. Status fails when they are not the local ones (for
    example services of docker compose), and those tests then skip."""
    return subprocess.run(  # noqa: S603 - a script of deploy/local, named by the test
        [str(LOCAL_DEPLOY / f"{service}.sh"), action],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


class PrivateBroker:
    """A second real Kafka broker on other ports, sharing the first one's jars: a test that
    stops Kafka stops this one, so the shared one keeps serving the rest."""

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
        subprocess.run(  # noqa: S603 - deploy/local's own Kafka script
            [str(LOCAL_DEPLOY / "kafka.sh"), action],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        """Start the broker (deploy/local/kafka.sh start with this broker's ports)."""
        self._run("start")

    def stop(self) -> None:
        """Stop the broker."""
        self._run("stop")
