"""Helpers for tests that run against the real broker and database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from email.message import Message
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream import FastStream

from terrain_contracts.topics import TOPICS

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
ADMIN_DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgresql://terrain:terrain@127.0.0.1:54329/terrain"
)


LOCAL_DEPLOY = Path(__file__).resolve().parents[1] / "deploy/local"


def local_service(service: str, action: str) -> subprocess.CompletedProcess[str]:
    """Run deploy/local/<service>.sh <action> (start, stop, status): the faults tests inject
    into the local broker or cluster. Status fails when they are not the local ones (for
    example services of docker compose), and those tests then skip."""
    return subprocess.run(
        [str(LOCAL_DEPLOY / f"{service}.sh"), action],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def create_database(prefix: str, *, admin_url: str | None = None) -> str:
    """A fresh database with Terrain's schema (migrated), next to ``admin_url``'s (default
    ``DATABASE_URL``): its URL. Tests and benchmarks start from a known state there."""
    from terrain_runtime.db import migrate

    admin_url = admin_url or ADMIN_DATABASE_URL
    name = f"{prefix}_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    connection = await asyncpg.connect(url)
    try:
        await migrate(connection)
    finally:
        await connection.close()
    return url


async def drop_database(url: str, *, admin_url: str | None = None) -> None:
    admin = await asyncpg.connect(admin_url or ADMIN_DATABASE_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def throwaway_database(prefix: str, *, admin_url: str | None = None) -> AsyncIterator[str]:
    """``create_database``, dropped on the way out."""
    url = await create_database(prefix, admin_url=admin_url)
    try:
        yield url
    finally:
        await drop_database(url, admin_url=admin_url)


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


@contextlib.contextmanager
def ingest_process(
    database_url: str, namespace: str, **environment: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m ingest`` on a free port, ready (its /readyz answers): its URL and process.
    ``environment`` adds to or overrides the test settings (``TERRAIN_...`` variables)."""
    import httpx

    port = free_port()
    env = service_env(database_url, namespace, TERRAIN_INGEST_PORT=str(port), **environment)
    process = subprocess.Popen([sys.executable, "-m", "ingest"], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("ingest did not become ready in 60 s")
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def new_namespace() -> str:
    """A topic prefix of its own for one test: fresh topics, no cross-talk."""
    return f"t{uuid4().hex[:10]}."


async def delete_topics(namespace: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        names = [spec.name(namespace) for spec in TOPICS]
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def read_topic(topic: str, *, expect: int, timeout_s: float = 20.0) -> list[Any]:
    """Read records from the beginning until ``expect`` arrived (or the timeout)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def produce(topic: str, values: Sequence[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def produce_junk(topic: str, count: int) -> None:
    """``count`` records that no consumer can decode (not even UTF-8), keyed junk0, junk1..."""
    await produce(topic, [(f"junk{i}".encode(), b"\xff not json") for i in range(count)])


async def until_it_stops(app: FastStream, *, timeout_s: float = 60) -> None:
    """Run a FastStream app until it exits on its own (its dead-letter limit, say); if it
    has not within ``timeout_s``, stop it and fail."""
    task = asyncio.create_task(app.run(sleep_time=0.02))
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=timeout_s)
    finally:
        if not task.done():
            app.exit()
            await asyncio.wait_for(task, timeout=30)


@contextlib.asynccontextmanager
async def running(app: FastStream) -> AsyncIterator[FastStream]:
    """Run a FastStream app in this event loop until the block ends, then drain it."""
    task = asyncio.create_task(app.run(sleep_time=0.02))
    try:
        while not getattr(app, "running", False):
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield app
    finally:
        app.exit()
        await asyncio.wait_for(task, timeout=30)


async def eventually(query: Any, *, timeout_s: float = 20.0, interval_s: float = 0.1) -> Any:
    """Poll ``query()`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await query()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(interval_s)


async def fetchval(url: str, sql: str, *args: Any) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(sql, *args)
    finally:
        await connection.close()


class WebhookSink:
    """A real HTTP server on loopback that records every webhook it receives."""

    def __init__(self, *, status: int = 200, answer_after_s: float = 0.0) -> None:
        """``answer_after_s``: a slow receiver, which has the request (it counts as received)
        well before the sender has the answer."""
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.status = status
        self.answer_after_s = answer_after_s
        # Called (in the server's thread) with each request's path as it is received.
        self.on_receive: Callable[[str], None] | None = None
        received = self.received
        sink = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as a real receiver offers: a connection per webhook would measure
            # TCP handshakes, not Terrain.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                declared = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(declared)
                if len(body) < declared:
                    return  # the sender died mid-request: nothing was received
                received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if sink.on_receive is not None:
                    sink.on_receive(self.path)
                if sink.answer_after_s:
                    time.sleep(sink.answer_after_s)
                self.send_response(sink.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            # socketserver listens with a backlog of 5: a burst of alerts overflowed it and
            # each dropped SYN cost the sender a 1 s (then 3 s) retransmission.
            request_queue_size = 128
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def bodies(self, path: str | None = None) -> list[dict[str, Any]]:
        import json

        return [json.loads(body) for p, _, body in list(self.received) if path is None or p == path]

    def by_idempotency_key(self, path: str | None = None) -> Counter[str]:
        """Raw receptions per ``idempotency-key`` header: what a receiver dedupes on."""
        return Counter(
            headers.get("idempotency-key", "")
            for p, headers, _ in list(self.received)
            if path is None or p == path
        )

    def by_reference(self, path: str | None = None) -> Counter[str]:
        """Raw receptions per JSON ``reference`` field: what an SMS gateway dedupes on."""
        return Counter(str(body.get("reference", "")) for body in self.bodies(path))

    def text(self) -> str:
        """Every request received, headers and body, as one text to scan."""
        return "\n".join(
            f"{p} {headers} {body.decode('utf-8', 'replace')}"
            for p, headers, body in list(self.received)
        )


def notify_receivers_env(smtp: SmtpSink, sms_gateway: WebhookSink) -> dict[str, str]:
    """What the stack's notify needs to send its emails to ``smtp`` and its SMS through
    ``sms_gateway``: the e2e and reliability tests count every alert at these receivers."""
    return {
        "NOTIFY__TERRAIN_SMTP_HOST": "127.0.0.1",
        "NOTIFY__TERRAIN_SMTP_PORT": str(smtp.port),
        "NOTIFY__TERRAIN_SMS_GATEWAY_URL": sms_gateway.url("/sms"),
    }


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts."""

    def __init__(self, port: int | None = None) -> None:
        from email import message_from_bytes

        from aiosmtpd.controller import Controller

        self.port = port or free_port()
        self.messages: list[Message] = []
        self.raw: list[bytes] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                sink.raw.append(envelope.content)
                sink.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    def by_message_id(self) -> Counter[str]:
        """Raw receptions per Message-ID: what a mail system dedupes on."""
        return Counter(str(m["Message-ID"]) for m in list(self.messages))

    def text(self) -> str:
        """Every message as received (headers and body, decoded), as one text to scan."""
        parts = []
        for message in list(self.messages):
            parts.append(str(message.items()))
            for part in message.walk():
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    parts.append(payload.decode("utf-8", "replace"))
        return "\n".join(parts)


class OtlpReceiver:
    """An OTLP/HTTP (protobuf) trace receiver on loopback: what the services export."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        self.spans: list[dict[str, Any]] = []
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as a real receiver offers: a connection per webhook would measure
            # TCP handshakes, not Terrain.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    service = next(
                        (a.value.string_value for a in resource_spans.resource.attributes
                         if a.key == "service.name"),
                        "?",
                    )  # fmt: skip
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            spans.append(
                                {
                                    "service": service,
                                    "name": span.name,
                                    "trace_id": span.trace_id.hex(),
                                    "span_id": span.span_id.hex(),
                                    "parent_id": span.parent_span_id.hex(),
                                    "attributes": {
                                        a.key: a.value.string_value or a.value.int_value
                                        for a in span.attributes
                                    },
                                    "links": [link.trace_id.hex() for link in span.links],
                                }
                            )
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            # socketserver listens with a backlog of 5: a burst of alerts overflowed it and
            # each dropped SYN cost the sender a 1 s (then 3 s) retransmission.
            request_queue_size = 128
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.asynccontextmanager
async def country_managers(
    database_url: str,
    sink: WebhookSink,
    *,
    markets: Sequence[str] | None = None,
    email: bool = False,
    sms: bool = False,
    director: bool = False,
) -> AsyncIterator[list[Any]]:
    """A level-1 manager per market (or per one of ``markets``) whose webhook is ``sink``,
    with an email address (``email``) and an SMS number (``sms``) too if asked, and a
    regional director ('*', level 3) on ``sink``'s /dir if ``director``; deactivated
    afterwards so the next test's expectations are not inflated by managers whose inbox is
    gone. Each manager's email is <market>@managers.test, its SMS number a Senegalese one."""
    from notify.directory import ManagerSpec
    from notify.managers import store_managers
    from terrain_contracts.markets import Market
    from terrain_runtime.settings import TerrainSettings

    specs = [
        ManagerSpec(
            market=market, name=f"CM {market}", role="country_manager",
            webhook=sink.url(f"/{market}"),
            email=f"{market.lower()}@managers.test" if email else None,
            sms=f"+22177{index:07d}" if sms else None,
        )
        for index, market in enumerate(markets if markets is not None else [m.value for m in Market])
    ]  # fmt: skip
    if director:
        specs.append(
            ManagerSpec(
                market="*", name="Regional director", role="regional_director", level=3,
                webhook=sink.url("/dir"), email="dir@managers.test" if email else None,
            )
        )  # fmt: skip
    connection = await asyncpg.connect(database_url)
    try:
        sealer = TerrainSettings(environment="test").sealer()
        ids: list[Any] = await store_managers(connection=connection, specs=specs, sealer=sealer)
    finally:
        await connection.close()
    try:
        yield ids
    finally:
        # A connection of its own: the test may have restarted the database meanwhile.
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(
                "UPDATE terrain.managers SET active = false WHERE manager_id = ANY($1::uuid[])",
                ids,
            )
        finally:
            await connection.close()


# What is not a phone number but is made of digits: timestamps, UUIDs, hex digests
# (pseudonyms), base64 (sealed numbers). Removed before looking for numbers in clear, so
# the privacy scans do not match a number by chance inside them.
_NOT_A_NUMBER = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:?\d{2}|Z)?"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}|[A-Za-z0-9+/]{24,}={0,2}"
)


def national_numbers(msisdns: dict[str, str]) -> set[str]:
    """National significant numbers of {msisdn as sent: market}: what must never show."""
    import phonenumbers

    found = set()
    for raw, market in msisdns.items():
        try:
            number = phonenumbers.parse(raw, market)
        except phonenumbers.NumberParseException:
            continue
        national = phonenumbers.national_significant_number(number)
        if len(national) >= 8:
            found.add(national)
    return found


def phone_numbers_in(text: str, numbers: set[str]) -> set[str]:
    """Which of ``numbers`` appear in ``text`` in clear, whatever the spacing or prefix."""
    cleaned = _NOT_A_NUMBER.sub(" ", text)
    cleaned = re.sub(r"(?<=\d)[ .\-()]+(?=\d)", "", cleaned)
    runs = re.findall(r"\d{8,}", cleaned)
    return {n for n in numbers if any(n in run for run in runs)}


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


async def database_text(
    database_url: str, schemas: Sequence[str] = ("terrain", "analytics")
) -> dict[str, str]:
    """Every text, json, array and bytea column of every table and view of ``schemas``
    (found in information_schema, so a new table or column is scanned without anyone
    listing it), as one text per column: what a privacy scan reads."""
    connection = await asyncpg.connect(database_url)
    try:
        columns = await connection.fetch(
            """SELECT table_schema, table_name, column_name, data_type
               FROM information_schema.columns
               WHERE table_schema = ANY($1::text[])
                 AND (data_type IN ('text', 'character varying', 'character', 'json', 'jsonb',
                                    'bytea', 'ARRAY', 'USER-DEFINED'))
               ORDER BY 1, 2, 3""",
            list(schemas),
        )
        found: dict[str, str] = {}
        for column in columns:
            table = f'"{column["table_schema"]}"."{column["table_name"]}"'
            name = f'"{column["column_name"]}"'
            if column["data_type"] == "bytea":
                values = [
                    (r[0] or b"").decode("utf-8", "replace")
                    for r in await connection.fetch(f"SELECT {name} FROM {table}")
                ]
            else:
                values = [
                    r[0] or "" for r in await connection.fetch(f"SELECT {name}::text FROM {table}")
                ]
            found[f"{table}.{name}"] = "\n".join(values)
        return found
    finally:
        await connection.close()


async def topics_text(namespace: str) -> dict[str, str]:
    """Every record of every topic of ``namespace``, from the beginning: keys, values and
    headers, one text per topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if t.startswith(namespace))
    finally:
        await admin.close()
    found: dict[str, str] = {}
    for name in names:
        records = await read_topic(name, expect=10**9, timeout_s=3)
        parts = []
        for record in records:
            parts.append((record.key or b"").decode("utf-8", "replace"))
            parts.append((record.value or b"").decode("utf-8", "replace"))
            for header, value in record.headers or ():
                parts.append(f"{header}={(value or b'').decode('utf-8', 'replace')}")
        found[name] = "\n".join(parts)
    return found


def emails_in(text: str, emails: set[str]) -> set[str]:
    """Which of ``emails`` appear in ``text`` in clear (case-insensitive)."""
    present = {e.lower() for e in EMAIL.findall(text)}
    return {e for e in emails if e.lower() in present}
