"""The sender in memory: a delivery's span is kept at ratio 0, in its submission's trace, and
delivered alerts are recorded a batch at a time (a fake pool counts the statements)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from notify.channels import Recipient
from notify.deliveries import ChannelResult, DeliveredAlerts, Delivery
from notify.outbox import DueAlert
from notify.sender import OutboxSender
from notify.settings import NotifySettings
from terrain_contracts.vocabulary import Severity
from terrain_runtime.sampling import KEEP
from tests.unit.exported import UNSAMPLED_TRACE_ID, UNSAMPLED_TRACEPARENT

DELIVERED_AT = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


class Outbox:
    """A pool whose connections answer the delivered-alerts statement, and count it."""

    def __init__(self, error: Exception | None = None) -> None:
        self.statements: list[list[UUID]] = []
        self.error = error

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Outbox]:
        yield self

    async def fetch(self, _: str, alert_ids: list[UUID], *__: Any) -> list[dict[str, Any]]:
        self.statements.append(alert_ids)
        if self.error is not None:
            raise self.error
        return [{"alert_id": a, "delivered_at": DELIVERED_AT} for a in dict.fromkeys(alert_ids)]


class Webhook:
    name = "webhook"

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def reaches(self, recipient: Recipient) -> bool:
        return bool(recipient.webhook_url)

    async def deliver(self, recipient: Recipient, alert: dict[str, Any]) -> str:
        self.bodies.append(alert)
        return "HTTP 200"


def due_alert(trace_context: dict[str, str] | None) -> DueAlert:
    return DueAlert(
        alert_id=uuid4(),
        submission_id=uuid4(),
        rule_id="p1-agent-urgent",
        severity=Severity.P1,
        market="SN",
        attempt=1,
        payload={"market": "SN"},
        received_at=DELIVERED_AT,
        channels_done=(),
        throttle_counted=False,
        manager_id=uuid4(),
        webhook_url="http://127.0.0.1:9/hook",
        email=None,
        sms_sealed=None,
        language="fr",
        trace_context=trace_context,
    )


def sender(outbox: Outbox, webhook: Webhook) -> OutboxSender:
    settings = NotifySettings(environment="test")
    return OutboxSender(
        settings=settings,
        pool=outbox,  # type: ignore[arg-type]
        channels=[webhook],
        sealer=settings.sealer(),
        wake=asyncio.Event(),
    )


async def test_every_delivery_of_an_alert_is_kept_in_its_submissions_trace(
    exported: InMemorySpanExporter,
) -> None:
    outbox, webhook = Outbox(), Webhook()
    # The alert's trace was not sampled upstream (a low ratio): its delivery still is.
    alert = due_alert({"traceparent": UNSAMPLED_TRACEPARENT.decode()})
    await sender(outbox, webhook)._deliver_once(alert)
    assert len(webhook.bodies) == 1 and outbox.statements == [[alert.alert_id]]
    spans = {s.name: s for s in exported.get_finished_spans()}
    assert set(spans) == {"deliver alert", "deliver webhook"}
    assert {s.context.trace_id for s in spans.values()} == {UNSAMPLED_TRACE_ID}
    delivery = spans["deliver alert"]
    assert (delivery.attributes or {})[KEEP] == "alert"
    assert (delivery.attributes or {})["terrain.alert_id"] == str(alert.alert_id)
    # The channel's span is a child of the kept one, so it is kept with it.
    assert spans["deliver webhook"].parent is not None
    assert spans["deliver webhook"].parent.span_id == delivery.context.span_id


def delivered(alert_id: UUID) -> Delivery:
    return Delivery(alert_id, 1, [ChannelResult("webhook", True, "HTTP 200")])


async def test_deliveries_that_end_together_are_recorded_in_one_statement() -> None:
    outbox = Outbox()
    recorder = DeliveredAlerts(outbox)
    ids = [uuid4() for _ in range(5)]
    at = await asyncio.gather(*(recorder.record(delivered(a)) for a in ids))
    assert at == [DELIVERED_AT] * 5
    assert outbox.statements == [ids]
    # A later one gets a statement of its own.
    assert await recorder.record(delivered(ids[0])) == DELIVERED_AT
    assert len(outbox.statements) == 2


async def test_a_failed_statement_reaches_every_delivery_it_held() -> None:
    outbox = Outbox(asyncpg.exceptions.CannotConnectNowError("the database is starting up"))
    recorder = DeliveredAlerts(outbox)
    outcomes = await asyncio.gather(
        *(recorder.record(delivered(uuid4())) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, asyncpg.exceptions.CannotConnectNowError) for o in outcomes)
    assert len(outbox.statements) == 1
    # The recorder is not left stuck: the next delivery is written.
    outbox.error = None
    assert await recorder.record(delivered(uuid4())) == DELIVERED_AT


@pytest.mark.parametrize("cancel_after", [0, 1])
async def test_shutdown_leaves_no_delivery_waiting_forever(cancel_after: int) -> None:
    release = asyncio.Event()

    class Slow(Outbox):
        async def fetch(self, *args: Any) -> list[dict[str, Any]]:
            await release.wait()
            return await super().fetch(*args)

    recorder = DeliveredAlerts(Slow())
    waiting = asyncio.ensure_future(recorder.record(delivered(uuid4())))
    for _ in range(cancel_after + 1):
        await asyncio.sleep(0)
    assert recorder._writing is not None
    recorder._writing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, timeout=5)
