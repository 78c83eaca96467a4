"""The alert webhook contract (terrain_contracts.alerts, the `webhooks` of ingest's OpenAPI)
is what notify sends: bodies built by notify's own builder and sent through its webhook
channel validate against the models and the committed document, with the documented
headers and a signature a receiver can check."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import httpx
import jsonschema
import pytest

from terrain_contracts import alerts
from terrain_contracts.alerts import AlertDigestWebhookV1, AlertWebhookV1
from terrain_contracts.messages import decode_stored_submission
from terrain_contracts.vocabulary import Severity
from terrain_testkit.factories import field_submission, stored_record

OPENAPI: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "docs/contracts/openapi-ingest.json").read_text("utf-8")
)
SECRET = b"webhook-secret-for-the-contract-test"


async def notify_sends(
    *, urgent: bool = False, escalated: bool = False, digest: bool = False
) -> httpx.Request:
    """One webhook request exactly as notify builds and sends it. The one place of this
    file that knows notify's modules (its rules, body builder, outbox row, channel)."""
    from notify.channels import Recipient, WebhookChannel
    from notify.deciding import decide
    from notify.outbox import DueAlert
    from notify.rules import load_ruleset
    from notify.sender import OutboxSender
    from notify.settings import NotifySettings
    from notify.stages import alert_payload

    document = field_submission(feedback__urgent=urgent)
    stored = decode_stored_submission(stored_record(document, ["money_lost", "fraud"])[1])
    decision = decide(stored, load_ruleset())
    assert decision is not None
    # The outbox keeps the payload as jsonb: what the sender reads back is its JSON.
    payload = json.loads(
        json.dumps(
            alert_payload(stored, decision.rule_id, decision.severity, list(decision.signals))
        )
    )
    if escalated:  # what escalation adds to the copy it sends one rung up
        payload |= {"escalated_level": 2, "escalated_to": "market"}
    if digest:
        held = [payload | {"alert_id": str(uuid4())}, payload | {"alert_id": str(uuid4())}]
        payload = {"market": stored.market.value, "digest": held}
    alert = DueAlert(
        alert_id=uuid4(),
        submission_id=uuid4() if digest else stored.submission_id,
        rule_id="digest" if digest else decision.rule_id,
        severity=Severity.P2 if digest else decision.severity,
        market=stored.market.value,
        attempt=1,
        payload=payload,
        received_at=stored.received_at,
        channels_done=(),
        throttle_counted=True,
        manager_id=uuid4(),
        webhook_url="https://receiver.example/hook",
        email=None,
        sms_sealed=None,
        language="fr",
    )
    settings = NotifySettings(environment="test")
    sender = OutboxSender(
        settings=settings,
        pool=cast(Any, None),
        channels=[],
        sealer=settings.sealer(),
        wake=asyncio.Event(),
    )
    sent: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        channel = WebhookChannel(lambda _: client, SECRET)
        await channel.deliver(
            Recipient(None, alert.webhook_url, None, "fr"),
            sender._body(alert),  # private, but it is what managers receive
        )
    (request,) = sent
    return request


def _webhook(name: str) -> dict[str, Any]:
    operation = OPENAPI["webhooks"][name]["post"]
    assert isinstance(operation, dict)
    return operation


def _validate_against_openapi(body: Any, name: str) -> None:
    reference = _webhook(name)["requestBody"]["content"]["application/json"]["schema"]
    schema = {"$ref": reference["$ref"], "components": OPENAPI["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


@pytest.mark.parametrize(
    ("urgent", "escalated", "fired"),
    [
        (False, False, ["money_lost", "fraud"]),
        (True, False, [alerts.AGENT_MARKED_URGENT]),
        (False, True, ["money_lost", "fraud"]),
    ],
    ids=["signals", "urgent", "escalated"],
)
async def test_an_alert_as_notify_sends_it_is_an_alert_webhook(
    urgent: bool, escalated: bool, fired: list[str]
) -> None:
    request = await notify_sends(urgent=urgent, escalated=escalated)
    body = json.loads(request.content)
    alert = AlertWebhookV1.model_validate(body)
    _validate_against_openapi(body, "alert")
    assert alert.signals == fired
    assert (alert.escalated_level is not None) is escalated


async def test_a_digest_as_notify_sends_it_is_a_digest_webhook() -> None:
    request = await notify_sends(digest=True)
    body = json.loads(request.content)
    digest = AlertDigestWebhookV1.model_validate(body)
    _validate_against_openapi(body, "alertDigest")
    assert len(digest.digest) == 2
    assert len({item.ack_url for item in digest.digest}) == 2


async def test_the_documented_headers_are_sent_and_the_signature_checks() -> None:
    request = await notify_sends()
    documented = {p["name"] for p in _webhook("alert")["parameters"] if p["in"] == "header"}
    assert documented == {alerts.IDEMPOTENCY_KEY, alerts.TIMESTAMP, alerts.SIGNATURE}
    assert documented <= set(request.headers)
    assert request.headers[alerts.IDEMPOTENCY_KEY] == json.loads(request.content)["alert_id"]
    signed = request.headers[alerts.TIMESTAMP].encode() + b"." + request.content
    expected = "sha256=" + hmac.new(SECRET, signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers[alerts.SIGNATURE], expected)
