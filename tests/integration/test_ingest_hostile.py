"""Hostile input at the edge, against the real broker and database: what the pipeline
cannot carry is a 422 naming the field, never a 500; a client that sends a too-large body
in full reads its 413; a number in free text never reaches Kafka in clear."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from ingest.app import create_app
from ingest.repository import create_device
from ingest.settings import IngestSettings
from terrain_contracts.markets import Market
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_testkit.privacy import phone_numbers_in
from terrain_testkit.processes import ingest_process
from terrain_testkit.topics import read_topic


@pytest.fixture
async def device_token(database_url: str) -> str:
    connection = await asyncpg.connect(database_url)
    try:
        _, token = await create_device(connection=connection, market=Market.SN, label="hostile")
    finally:
        await connection.close()
    return token


@pytest.fixture
async def client(settings_kwargs: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(IngestSettings(**settings_kwargs, rate_limit_burst=10**6))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
            yield http


def _with(document: dict[str, Any], members: str, where: str = "") -> bytes:
    """``document`` as JSON with members spliced in as written (escapes stay escapes), at
    the top level or inside the object ``where``."""
    target = document[where] if where else document
    for key in [k for k in target if members.startswith(f'"{k}":')]:
        del target[key]  # the spliced member replaces it (a duplicate key's last one wins)
    text = json.dumps(document)
    if not where:
        return (text[:-1] + ", " + members + "}").encode()
    marker = f'"{where}": {{'
    return text.replace(marker, marker + members + ", ", 1).encode()


def _nested(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


HOSTILE = [
    # (members as written, inside which object, field named, words of the problem)
    ('"note": "a\\u0000b"', "", "note", "U+0000"),
    ('"verbatim": "tr\\u0000op"', "feedback", "feedback.verbatim", "U+0000"),
    ('"campaign_id": "mcmb\\u0000"', "", "campaign_id", "U+0000"),
    ('"employee_id": "SN\\u0007"', "agent", "agent.employee_id", "U+0007"),
    ('"place": "Dakar\\b"', "location", "location.place", "U+0008"),
    ('"msisdn": "77\\u001f"', "customer", "customer.msisdn", "U+001F"),
    ('"x": "\\ud800"', "", "x", "lone surrogate U+D800"),
    ('"x": {"y": ["\\udc00"]}', "app", "app.x.y.0", "lone surrogate U+DC00"),
    ('"verbatim": "\\ud83d"', "feedback", "feedback.verbatim", "lone surrogate U+D83D"),
    ('"k\\u0000": 1', "customer", "customer.k\\u0000", "the key holds"),
    ('"\\udfffk": 1', "", "\\udfffk", "the key holds a lone surrogate"),
    (f'"deep": {_nested(300)}', "", "deep.a.a.a.a.a.a.a.a", "deeper than 8"),
    (f'"deep": {_nested(900)}', "feedback", "feedback.deep.a.a.a.a.a.a.a.a", "deeper than 8"),
    ('"big": 1e400', "", "big", "too large for a double"),
    ('"big": [-1e400]', "location", "location.big.0", "too large for a double"),
    (f'"big": {"9" * 400}', "", "big", "too large for a double"),
    # Past Python's 4,300-digit limit on int(): the parser itself refused it, naming no field.
    (f'"big": {"9" * 5000}', "customer", "customer.big", "too large for a double"),
    (f'"big": [-{"9" * 5000}]', "", "big.0", "too large for a double"),
    ('"wide": {' + ", ".join(f'"k{i}": {i}' for i in range(150)) + "}", "", "wide", "150 keys"),
    ('"long": [' + ", ".join("0" * 600) + "]", "", "long", "600 items"),
    ('"text": "' + "x" * 9000 + '"', "agent", "agent.text", "9000 characters"),
]


@pytest.mark.parametrize(("members", "where", "field", "problem"), HOSTILE)
async def test_what_the_pipeline_cannot_carry_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
    device_token: str,
    dakar_example: dict[str, Any],
    members: str,
    where: str,
    field: str,
    problem: str,
) -> None:
    headers = {"authorization": f"Bearer {device_token}", "content-type": "application/json"}
    good = json.dumps(dakar_example | {"submission_id": str(uuid4())})
    body = _with(dakar_example, members, where)
    single = await client.post("/v1/submissions", content=body, headers=headers)
    assert single.status_code == 422, single.text
    assert single.headers["content-type"] == "application/problem+json"
    errors = {e["field"]: e["problem"] for e in single.json()["errors"]}
    assert field in errors and problem in errors[field], errors
    assert "(body)" not in errors, errors  # the field is named, and only it

    batch = b'{"submissions": [' + good.encode() + b", " + body + b"]}"
    answer = await client.post("/v1/submissions/batch", content=batch, headers=headers)
    assert answer.status_code == 200, answer.text
    [accepted, rejected] = answer.json()["results"]
    assert accepted["status"] == "accepted" and rejected["status"] == "rejected"
    named = {e["field"]: e["problem"] for e in rejected["errors"]}
    assert f"submissions.1.{field}" in named and problem in named[f"submissions.1.{field}"]


async def test_a_batch_item_with_a_bad_id_is_refused_without_echoing_it(
    client: httpx.AsyncClient, device_token: str, dakar_example: dict[str, Any]
) -> None:
    headers = {"authorization": f"Bearer {device_token}", "content-type": "application/json"}
    item = json.dumps(dakar_example).replace(dakar_example["submission_id"], "\\ud800\\u0000", 1)
    answer = await client.post(
        "/v1/submissions/batch", content=f'{{"submissions": [{item}]}}'.encode(), headers=headers
    )
    assert answer.status_code == 200
    [result] = answer.json()["results"]
    assert result["submission_id"] is None
    assert "submissions.0.submission_id" in {e["field"] for e in result["errors"]}


async def test_non_characters_and_private_use_are_accepted(
    client: httpx.AsyncClient, device_token: str, dakar_example: dict[str, Any], namespace: str
) -> None:
    dakar_example["feedback"]["verbatim"] = "ok \ufffe\uffff\ue000 \U0010fffd"
    response = await client.post(
        "/v1/submissions", json=dakar_example, headers={"authorization": f"Bearer {device_token}"}
    )
    assert response.status_code == 202
    [record] = await read_topic(SUBMISSIONS_RAW.name(namespace), expect=1)
    assert json.loads(record.value)["submission"]["feedback"]["verbatim"].startswith("ok \ufffe")


async def test_escaped_text_and_surrogate_pairs_are_text(
    client: httpx.AsyncClient, device_token: str, dakar_example: dict[str, Any], namespace: str
) -> None:
    # What a client that escapes everything sends: accents, an emoji as a surrogate pair.
    dakar_example["feedback"]["verbatim"] = "réseau coupé 😡, ligne\ttab"
    body = json.dumps(dakar_example, ensure_ascii=True).encode()
    assert b"\\ud83d\\ude21" in body
    response = await client.post(
        "/v1/submissions",
        content=body,
        headers={"authorization": f"Bearer {device_token}", "content-type": "application/json"},
    )
    assert response.status_code == 202, response.text
    [record] = await read_topic(SUBMISSIONS_RAW.name(namespace), expect=1)
    verbatim = json.loads(record.value)["submission"]["feedback"]["verbatim"]
    assert verbatim == "réseau coupé 😡, ligne\ttab"


async def test_numbers_in_free_text_never_reach_the_raw_topic(
    client: httpx.AsyncClient, device_token: str, dakar_example: dict[str, Any], namespace: str
) -> None:
    dakar_example["customer"]["consent"] = False
    dakar_example["feedback"]["verbatim"] = (
        "appelez mon frère au 77 765 43 21 ou au +221 76.111.22.33, j'ai perdu 50 000 FCFA"
    )
    dakar_example["feedback"]["followup"] = {"note": "whatsapp 78-222-33-44"}
    dakar_example["agent"]["remark"] = "chef d'équipe 0022170 333 44 55"
    dakar_example["callback"] = [{"when": "demain", "text": "écrire à awa.diop@orange.sn"}]
    dakar_example["customer"]["prenom"] = "Awa"
    response = await client.post(
        "/v1/submissions", json=dakar_example, headers={"authorization": f"Bearer {device_token}"}
    )
    assert response.status_code == 202, response.text
    [record] = await read_topic(SUBMISSIONS_RAW.name(namespace), expect=1)
    numbers = {"777654321", "761112233", "782223344", "703334455", "771234567"}
    seen = record.value.decode() + "".join(f"{k}{v!r}" for k, v in record.headers)
    assert not phone_numbers_in(seen, numbers)
    assert "awa.diop" not in seen and "Awa" not in seen
    assert "50 000 FCFA" in json.loads(record.value)["submission"]["feedback"]["verbatim"]
    assert seen.count("[phone:k1:") == 4 and seen.count("[email:k1:") == 1


# --- a real server process: what a client on the network reads -----------------------

_SINGLE_LIMIT = 64 * 1024
_BATCH_LIMIT = 5 * 1024 * 1024


@pytest.fixture
def ingest_url(database_url: str, namespace: str) -> Iterator[str]:
    with ingest_process(database_url, namespace) as (url, _):
        yield url


def _urllib_post(url: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("path", "size"),
    [("/v1/submissions", 8 * 1024 * 1024), ("/v1/submissions/batch", 12 * 1024 * 1024)],
)
async def test_a_client_sending_a_too_large_body_in_full_reads_the_413(
    ingest_url: str, device_token: str, path: str, size: int
) -> None:
    headers = {"authorization": f"Bearer {device_token}", "content-type": "application/json"}
    status, body = _urllib_post(ingest_url + path, b" " * size, headers)
    assert status == 413 and body["type"].endswith("/payload-too-large")

    def chunked() -> Iterator[bytes]:
        for _ in range(size // 65536):
            yield b" " * 65536

    status, body = _urllib_post(ingest_url + path, chunked(), headers)
    assert status == 413 and body["type"].endswith("/payload-too-large")


@pytest.mark.timeout(120)
async def test_a_raw_socket_reads_the_413_then_the_connection_serves_again(
    ingest_url: str, device_token: str
) -> None:
    address = urlsplit(ingest_url)
    size = 4 * 1024 * 1024
    with socket.create_connection((address.hostname, address.port), timeout=30) as raw:
        raw.sendall(_head(device_token, size) + b" " * size)
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: ingest\r\n\r\n")
        received = b""
        while received.count(b"HTTP/1.1 ") < 2 or not received.endswith(b'{"status":"ok"}'):
            chunk = raw.recv(65536)
            assert chunk, received
            received += chunk
    assert received.startswith(b"HTTP/1.1 413 ")
    assert b"HTTP/1.1 200 OK" in received  # the same connection, kept alive


@pytest.mark.timeout(120)
async def test_a_raw_socket_that_asks_to_close_reads_the_413(
    ingest_url: str, device_token: str
) -> None:
    # What urllib does: Connection: close, the whole body, and only then read.
    address = urlsplit(ingest_url)
    size = 4 * 1024 * 1024
    with socket.create_connection((address.hostname, address.port), timeout=30) as raw:
        raw.sendall(_head(device_token, size, "Connection: close\r\n") + b" " * size)
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 413 ")
    assert received.endswith(b"}")


def _head(token: str, size: int, extra: str = "") -> bytes:
    return (
        "POST /v1/submissions HTTP/1.1\r\nHost: ingest\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: {size}\r\n\r\n"
    ).encode()


@pytest.mark.timeout(120)
async def test_a_body_beyond_the_drain_allowance_is_not_read(
    ingest_url: str, device_token: str
) -> None:
    # Declared far beyond what ingest drains: it answers at once and reads nothing.
    address = urlsplit(ingest_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as raw:
        raw.sendall(
            (
                "POST /v1/submissions HTTP/1.1\r\nHost: ingest\r\n"
                f"Authorization: Bearer {device_token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {10 * 1024**3}\r\n\r\n"
            ).encode()
        )
        answer = raw.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
