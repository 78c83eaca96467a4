"""Ingest against the real broker and database: what is answered 2xx is in Kafka, keyed by
submission_id, without the phone number in clear; bad input gets the documented 4xx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from ingest.app import create_app
from ingest.repository import create_device, revoke_device
from ingest.settings import IngestSettings
from terrain_contracts.markets import Market
from terrain_contracts.messages import decode_raw_submission
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_testkit.topics import read_topic


@pytest.fixture
async def device_token(database_url: str) -> str:
    connection = await asyncpg.connect(database_url)
    try:
        _, token = await create_device(connection=connection, market=Market.SN, label="test")
    finally:
        await connection.close()
    return token


@pytest.fixture
async def client(settings_kwargs: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(IngestSettings(**settings_kwargs))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
            yield http


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_accepted_submission_is_durable_keyed_and_pseudonymised(
    client: httpx.AsyncClient, device_token: str, dakar_example: dict[str, Any], namespace: str
) -> None:
    response = await client.post("/v1/submissions", json=dakar_example, headers=auth(device_token))
    assert response.status_code == 202, response.text
    assert response.json() == {
        "submission_id": dakar_example["submission_id"],
        "status": "accepted",
    }

    [record] = await read_topic(SUBMISSIONS_RAW.name(namespace), expect=1)
    assert record.key == dakar_example["submission_id"].encode()
    assert b"77 123 45 67" not in record.value and b"771234567" not in record.value
    envelope = decode_raw_submission(record.value)
    customer = envelope.submission.customer
    assert customer.msisdn_hash and customer.msisdn_hash.startswith("k1:")
    assert customer.msisdn_sealed  # consent: true
    assert envelope.device_market is Market.SN
    assert envelope.outbox_delay_s == pytest.approx(
        (envelope.received_at - envelope.submission.collected_at).total_seconds(), abs=0.01
    )
    headers = dict(record.headers)
    assert "traceparent" in headers


async def test_without_consent_no_sealed_number_and_no_name(
    client: httpx.AsyncClient, device_token: str, dakar_example: dict[str, Any], namespace: str
) -> None:
    dakar_example["customer"].update(consent=False, name="Awa Diop", phone2="77 765 43 21")
    response = await client.post("/v1/submissions", json=dakar_example, headers=auth(device_token))
    assert response.status_code == 202
    [record] = await read_topic(SUBMISSIONS_RAW.name(namespace), expect=1)
    customer = decode_raw_submission(record.value).submission.customer
    assert customer.msisdn_sealed is None and customer.msisdn_hash
    assert b"Awa Diop" not in record.value and b"765 43 21" not in record.value


async def test_batch_accepts_valid_items_and_names_the_invalid_ones(
    client: httpx.AsyncClient, device_token: str, dakar_example: dict[str, Any], namespace: str
) -> None:
    bad = json.loads(json.dumps(dakar_example)) | {"submission_id": str(uuid4())}
    bad["feedback"]["satisfaction"] = 7
    good = dakar_example | {"submission_id": str(uuid4())}
    response = await client.post(
        "/v1/submissions/batch", json={"submissions": [good, bad]}, headers=auth(device_token)
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["results"][0]["status"] == "accepted"
    assert body["results"][1]["status"] == "rejected"
    assert body["results"][1]["errors"][0]["field"] == "submissions.1.feedback.satisfaction"
    records = await read_topic(SUBMISSIONS_RAW.name(namespace), expect=1)
    assert [r.key.decode() for r in records] == [good["submission_id"]]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["feedback"].update(satisfaction=7), "feedback.satisfaction"),
        (lambda d: d["agent"].update(market="FR"), "agent.market"),
        (lambda d: d["location"].update(lat=123), "location.lat"),
        (lambda d: d["customer"].update(msisdn="not a number"), "customer.msisdn"),
        (lambda d: d.update(collected_at="2025-04-15T09:12:33"), "collected_at"),
    ],
)
async def test_contract_violation_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
    device_token: str,
    dakar_example: dict[str, Any],
    mutate: Any,
    field: str,
) -> None:
    mutate(dakar_example)
    response = await client.post("/v1/submissions", json=dakar_example, headers=auth(device_token))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_transport_errors(client: httpx.AsyncClient, device_token: str) -> None:
    headers = auth(device_token)
    malformed = await client.post(
        "/v1/submissions",
        content=b"{not json",
        headers=headers | {"content-type": "application/json"},
    )
    assert malformed.status_code == 400
    not_json = await client.post(
        "/v1/submissions", content=b"a=b", headers=headers | {"content-type": "text/plain"}
    )
    assert not_json.status_code == 415
    too_big = await client.post(
        "/v1/submissions",
        content=b"[" + b"1," * 100_000 + b"1]",
        headers=headers | {"content-type": "application/json"},
    )
    assert too_big.status_code == 413
    nan = await client.post(
        "/v1/submissions",
        content=b'{"x": NaN}',
        headers=headers | {"content-type": "application/json"},
    )
    assert nan.status_code == 400


async def test_tokens_are_required_and_revocation_applies(
    client: httpx.AsyncClient, dakar_example: dict[str, Any], database_url: str
) -> None:
    assert (await client.post("/v1/submissions", json=dakar_example)).status_code == 401
    unknown = await client.post("/v1/submissions", json=dakar_example, headers=auth("trn_nope"))
    assert unknown.status_code == 401
    connection = await asyncpg.connect(database_url)
    try:
        record, token = await create_device(connection=connection, market=Market.SN, label="x")
        await revoke_device(connection=connection, device_id=record.device_id)
    finally:
        await connection.close()
    revoked = await client.post("/v1/submissions", json=dakar_example, headers=auth(token))
    assert revoked.status_code == 401


async def test_probes_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200
    document = (await client.get("/openapi.json")).json()
    assert "FieldSubmission" in document["components"]["schemas"]


@pytest.fixture
async def strict_client(settings_kwargs: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    settings = IngestSettings(**settings_kwargs, rate_limit_per_minute=60, rate_limit_burst=2)
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
            yield http


async def test_rate_limit_is_per_device_with_retry_after(
    strict_client: httpx.AsyncClient, database_url: str, dakar_example: dict[str, Any]
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        _, flooder = await create_device(connection=connection, market=Market.SN, label="flood")
        _, calm = await create_device(connection=connection, market=Market.SN, label="calm")
    finally:
        await connection.close()
    statuses = [
        (
            await strict_client.post("/v1/submissions", json=dakar_example, headers=auth(flooder))
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [202, 202, 429]
    limited = await strict_client.post("/v1/submissions", json=dakar_example, headers=auth(flooder))
    assert int(limited.headers["retry-after"]) >= 1
    other = await strict_client.post("/v1/submissions", json=dakar_example, headers=auth(calm))
    assert other.status_code == 202


async def test_resend_is_accepted_again_with_the_same_key(
    client: httpx.AsyncClient, device_token: str, dakar_example: dict[str, Any], namespace: str
) -> None:
    dakar_example["future_field"] = {"from": "app 3.0"}
    for _ in range(2):
        response = await client.post(
            "/v1/submissions", json=dakar_example, headers=auth(device_token)
        )
        assert response.status_code == 202
    records = await read_topic(SUBMISSIONS_RAW.name(namespace), expect=2)
    assert {r.key for r in records} == {dakar_example["submission_id"].encode()}
    assert len({r.partition for r in records}) == 1
    assert decode_raw_submission(records[0].value).submission.model_extra == {
        "future_field": {"from": "app 3.0"}
    }


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"\xff\xfe{}", 400),
        (b"[" * 100_000 + b"]" * 100_000, 413),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, 400),
        (b'{"n": ' + b"9" * 10_000 + b"}", 422),  # "n": a number too large for a double
        (b'{"n": Infinity}', 400),
        (b"", 400),
    ],
)
async def test_hostile_bodies_are_4xx(
    client: httpx.AsyncClient, device_token: str, body: bytes, status: int
) -> None:
    response = await client.post(
        "/v1/submissions",
        content=body,
        headers=auth(device_token) | {"content-type": "application/json"},
    )
    assert response.status_code == status


async def test_chunked_body_is_cut_at_the_limit(
    client: httpx.AsyncClient, device_token: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(200):
            yield b" " * 4096

    response = await client.post(
        "/v1/submissions",
        content=chunks(),
        headers=auth(device_token) | {"content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_batch_limits_and_shape(
    client: httpx.AsyncClient, device_token: str, dakar_example: dict[str, Any]
) -> None:
    too_many = {"submissions": [dakar_example] * 501}
    response = await client.post("/v1/submissions/batch", json=too_many, headers=auth(device_token))
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "submissions"
    shapes: list[Any] = [{"submissions": "nope"}, [dakar_example], {"items": []}]
    for shape in shapes:
        response = await client.post(
            "/v1/submissions/batch", json=shape, headers=auth(device_token)
        )
        assert response.status_code == 422
    empty = await client.post(
        "/v1/submissions/batch", json={"submissions": []}, headers=auth(device_token)
    )
    assert empty.json() == {"accepted": 0, "rejected": 0, "results": []}
    weird = await client.post(
        "/v1/submissions/batch", json={"submissions": [3, None, "x"]}, headers=auth(device_token)
    )
    assert [r["errors"][0]["field"] for r in weird.json()["results"]] == [
        "submissions.0",
        "submissions.1",
        "submissions.2",
    ]


async def test_metrics_count_requests_and_outcomes(
    client: httpx.AsyncClient, device_token: str, dakar_example: dict[str, Any]
) -> None:
    await client.post("/v1/submissions", json=dakar_example, headers=auth(device_token))
    text = (await client.get("/metrics/")).text
    assert (
        'terrain_http_requests_total{route="/v1/submissions",service="ingest",status="202"}' in text
    )
    assert 'terrain_submissions_received_total{market="SN",outcome="accepted"}' in text
    assert "terrain_kafka_publish_duration_seconds_bucket" in text


async def test_a_100_mb_body_is_refused_without_being_read(
    client: httpx.AsyncClient, device_token: str
) -> None:
    produced = 0

    async def flood() -> AsyncIterator[bytes]:
        nonlocal produced
        chunk = b"x" * (1024 * 1024)
        for _ in range(100):
            produced += len(chunk)
            yield chunk

    response = await client.post(
        "/v1/submissions/batch",
        content=flood(),
        headers=auth(device_token) | {"content-type": "application/json"},
    )
    assert response.status_code == 413
    # Stopped at the 5 MB limit plus what is drained so the client reads the 413, not at 100.
    drained = IngestSettings().max_drained_body_bytes
    assert produced < 5 * 1024 * 1024 + drained + 4 * 1024 * 1024  # give or take a chunk
    declared = await client.post(
        "/v1/submissions",
        content=b"{}",
        headers=auth(device_token)
        | {"content-type": "application/json", "content-length": str(100 * 1024 * 1024)},
    )
    assert declared.status_code == 413


async def test_thousands_of_topics_is_a_422(
    client: httpx.AsyncClient, device_token: str, dakar_example: dict[str, Any]
) -> None:
    # 10,000 is over the body limit (413); 5,000 fits and breaks the contract.
    dakar_example["feedback"]["topics"] = ["billing"] * 5_000
    response = await client.post("/v1/submissions", json=dakar_example, headers=auth(device_token))
    assert response.status_code == 422
    assert "feedback.topics" in [e["field"] for e in response.json()["errors"]]
