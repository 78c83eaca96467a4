"""The field app's receipt against the real PostgreSQL and the ingest app: rows written in
enrich's and notify's tables (and the failed-submissions store, through its real writer)
are told to the devices of the visit's market, never to another market's, and never with
personal data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from enrich.app import create_app as create_enrich
from enrich.settings import EnrichSettings
from ingest.app import create_app
from ingest.repository import create_device
from ingest.settings import IngestSettings
from terrain_contracts.markets import Market
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_contracts.vocabulary import FailureReason
from terrain_runtime.dlq import Failure, SourceRecord, store_failures
from terrain_testkit.database import eventually
from terrain_testkit.factories import field_submission, raw_envelope
from terrain_testkit.topics import running


@dataclass(frozen=True)
class Devices:
    sender_id: UUID
    sender: dict[str, str]  # headers of the device that sent the visits
    colleague: dict[str, str]  # another device of the same market
    abroad: dict[str, str]  # a device of another market


@pytest.fixture
async def devices(database_url: str) -> Devices:
    connection = await asyncpg.connect(database_url)
    try:
        sender, sender_token = await create_device(
            connection=connection, market=Market.SN, label="sender"
        )
        _, colleague = await create_device(connection=connection, market=Market.SN, label="sn")
        _, abroad = await create_device(connection=connection, market=Market.ML, label="ml")
    finally:
        await connection.close()
    return Devices(sender.device_id, auth(sender_token), auth(colleague), auth(abroad))


@pytest.fixture
async def client(settings_kwargs: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(IngestSettings(**settings_kwargs))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
            yield http


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def store(connection: asyncpg.Connection, document: dict[str, Any], device: UUID) -> datetime:
    """What enrich stores of ``document`` sent by ``device``; its stored_at."""
    envelope = raw_envelope(document)
    stored_at: datetime = await connection.fetchval(
        """INSERT INTO terrain.submissions
               (submission_id, payload_sha256, campaign_id, agent_market, agent_employee_id,
                agent_function, collected_at, received_at, device_id, customer_kind, topics,
                satisfaction, submission, source_partition, source_offset)
           VALUES ($1, 'v2:first', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, 0, 0)
           RETURNING stored_at""",
        envelope.submission_id,
        envelope.submission.campaign_id,
        envelope.submission.agent.market.value,
        envelope.submission.agent.employee_id,
        envelope.submission.agent.function.value,
        envelope.submission.collected_at,
        envelope.received_at,
        str(device),
        envelope.submission.customer.kind.value,
        [topic.value for topic in envelope.submission.feedback.topics],
        envelope.submission.feedback.satisfaction,
        envelope.submission.model_dump_json(),
    )
    return stored_at


async def alert(connection: asyncpg.Connection, submission_id: str) -> None:
    """What notify writes when it raises an alert for the visit."""
    manager_id = await connection.fetchval(
        # Inactive: the other tests of this database's session route nothing to it.
        """INSERT INTO terrain.managers (market, name, role, active)
           VALUES ('SN', 'Awa', 'country_manager', false) RETURNING manager_id"""
    )
    await connection.execute(
        """INSERT INTO terrain.alerts
               (submission_id, manager_id, rule_id, severity, market, received_at, payload)
           VALUES ($1, $2, 'money_lost', 'P1', 'SN', now(), '{}'::jsonb)""",
        UUID(submission_id),
        manager_id,
    )


async def fail(
    connection: asyncpg.Connection,
    document: dict[str, Any],
    reason: FailureReason,
    namespace: str,
) -> None:
    """What enrich's dead-letter stage records of ``document`` (sent by the test device)."""
    envelope = raw_envelope(document)
    record = SourceRecord(
        topic=SUBMISSIONS_RAW.name(namespace),
        partition=0,
        offset=int(uuid4().int % 2**62),
        key=str(envelope.submission_id).encode(),
        value=envelope.model_dump_json().encode(),
    )
    failure = Failure(
        record, reason, "content differs: 77 123 45 67", submission_id=envelope.submission_id
    )
    await store_failures(
        connection=connection, failures=[failure], service="enrich", service_version="test"
    )


def assert_no_personal_data(response: httpx.Response, document: dict[str, Any]) -> None:
    for secret in ("77 123 45 67", document["agent"]["employee_id"], "FCFA", "debit"):
        assert secret not in response.text


async def test_a_stored_visit_is_told_with_its_alert_to_the_devices_of_its_market(
    client: httpx.AsyncClient, devices: Devices, connection: asyncpg.Connection
) -> None:
    document = field_submission()
    stored_at = await store(connection, document, devices.sender_id)
    await alert(connection, document["submission_id"])

    for headers in (devices.sender, devices.colleague):
        response = await client.get(f"/v1/submissions/{document['submission_id']}", headers=headers)
        assert response.status_code == 200, response.text
        receipt = response.json()
        assert receipt == {
            "submission_id": document["submission_id"],
            "status": "stored",
            "stored_at": receipt["stored_at"],
            "alert_raised": True,
        }
        assert datetime.fromisoformat(receipt["stored_at"]) == stored_at
        assert_no_personal_data(response, document)


async def test_a_visit_sent_through_ingest_and_stored_by_enrich_gets_its_receipt(
    client: httpx.AsyncClient, devices: Devices, settings_kwargs: dict[str, Any]
) -> None:
    document = field_submission()
    url = f"/v1/submissions/{document['submission_id']}"
    sent = await client.post("/v1/submissions", json=document, headers=devices.sender)
    assert sent.status_code == 202
    assert (await client.get(url, headers=devices.sender)).status_code == 404  # not yet stored

    async def stored() -> dict[str, Any] | None:
        response = await client.get(url, headers=devices.colleague)
        return response.json() if response.status_code == 200 else None

    async with running(create_enrich(EnrichSettings(**settings_kwargs))):
        receipt = await eventually(stored, timeout_s=60)
    assert receipt is not None and receipt["status"] == "stored"
    assert receipt["alert_raised"] is False  # notify is not running


async def test_a_conflict_is_told_as_failed_with_its_reason_and_never_its_detail(
    client: httpx.AsyncClient,
    devices: Devices,
    connection: asyncpg.Connection,
    namespace: str,
) -> None:
    first = field_submission()
    await store(connection, first, devices.sender_id)
    edited = json.loads(json.dumps(first))
    edited["feedback"]["satisfaction"] = 5
    await fail(connection, edited, FailureReason.CONFLICT, namespace)

    response = await client.get(f"/v1/submissions/{first['submission_id']}", headers=devices.sender)
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert (receipt["status"], receipt["failure_reason"]) == ("failed", "conflict")
    assert {"stored_at", "failed_at"} <= set(receipt)
    assert "content differs" not in response.text
    assert_no_personal_data(response, first)


async def test_an_unknown_id_and_another_markets_visit_are_answered_alike(
    client: httpx.AsyncClient,
    devices: Devices,
    connection: asyncpg.Connection,
    namespace: str,
) -> None:
    stored, failed = field_submission(), field_submission()
    await store(connection, stored, devices.sender_id)
    await fail(connection, failed, FailureReason.STORE_REJECTED, namespace)
    never = str(uuid4())

    answers = [
        await client.get(f"/v1/submissions/{never}", headers=devices.sender),
        await client.get(f"/v1/submissions/{stored['submission_id']}", headers=devices.abroad),
        await client.get(f"/v1/submissions/{failed['submission_id']}", headers=devices.abroad),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert answers[0].headers["content-type"] == "application/problem+json"
    assert {a.json()["title"] for a in answers} == {answers[0].json()["title"]}

    ids = [stored["submission_id"], failed["submission_id"], never]
    response = await client.post(
        "/v1/submissions/status", json={"submission_ids": ids}, headers=devices.abroad
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"receipts": [{"submission_id": i, "status": "unknown"} for i in ids]}


async def test_an_outbox_is_answered_at_once_in_the_order_asked(
    client: httpx.AsyncClient,
    devices: Devices,
    connection: asyncpg.Connection,
    namespace: str,
) -> None:
    stored, failed = field_submission(), field_submission()
    await store(connection, stored, devices.sender_id)
    await fail(connection, failed, FailureReason.STORE_REJECTED, namespace)
    ids = [str(uuid4()), failed["submission_id"], stored["submission_id"]]
    ids += [str(uuid4()) for _ in range(497)]

    response = await client.post(
        "/v1/submissions/status", json={"submission_ids": ids}, headers=devices.colleague
    )
    assert response.status_code == 200, response.text
    receipts = response.json()["receipts"]
    assert [r["submission_id"] for r in receipts] == ids
    assert [r["status"] for r in receipts[:3]] == ["unknown", "failed", "stored"]
    assert receipts[1]["failure_reason"] == "store_rejected"
    assert receipts[2]["alert_raised"] is False
    assert {r["status"] for r in receipts[3:]} == {"unknown"}


async def test_501_ids_are_refused_naming_the_field(
    client: httpx.AsyncClient, devices: Devices
) -> None:
    ids = [str(uuid4()) for _ in range(501)]
    response = await client.post(
        "/v1/submissions/status", json={"submission_ids": ids}, headers=devices.sender
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["submission_ids"]


async def test_a_bad_id_is_a_422_naming_the_field(
    client: httpx.AsyncClient, devices: Devices
) -> None:
    response = await client.get("/v1/submissions/not-an-id", headers=devices.sender)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["(path) submission_id"]

    response = await client.post(
        "/v1/submissions/status",
        json={"submission_ids": [str(uuid4()), "77 123 45 67"]},
        headers=devices.sender,
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["submission_ids.1"]
    assert "77 123 45 67" not in response.text


async def test_a_receipt_needs_a_device_token(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/submissions/{uuid4()}")
    assert response.status_code == 401
    response = await client.post("/v1/submissions/status", json={"submission_ids": [str(uuid4())]})
    assert response.status_code == 401
