"""The outbox sender: claims due alerts, delivers each in its own task, records attempts.

Each delivery runs on its own, and each market has a bounded number of deliveries in flight:
the claim skips markets that are at their bound, so a slow webhook or SMTP server in one
market never holds back another market's alert. The channels of one alert run side by side
and a retry only goes to the channels that did not take it yet. Claims carry a short lease
that this sender renews while it delivers, so several notify replicas can send from one
outbox, a slow channel keeps its claim, and a crashed sender's claims come back within one
lease (seconds, not minutes: the alert is urgent).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from opentelemetry import trace

from notify.channels import Channel, DeliveryFailed, Recipient
from notify.deliveries import (
    ChannelResult,
    DeliveredAlerts,
    Delivery,
    DeliveryRecorded,
    record_delivery,
)
from notify.links import ack_link
from notify.metrics import ALERT_DELIVERY_ATTEMPTS, ALERT_LATENCY, ALERTS_HELD, ALERTS_SENT
from notify.outbox import DueAlert, admit_p2, claim_due, extend_leases
from notify.routing import report_unroutable
from notify.settings import NotifySettings
from terrain_contracts.vocabulary import DeliveryOutcome, Severity
from terrain_runtime.db import TRANSIENT_DB_ERRORS
from terrain_runtime.privacy import Sealer, SealingError
from terrain_runtime.sampling import Keep
from terrain_runtime.tracing import context_from_carrier, span_in, submission_attributes

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("terrain.notify")

# SMS wakes people up: only P1 goes there. Digests are P2 by nature.
SMS_SEVERITIES = frozenset({Severity.P1})


class OutboxSender:
    """Delivers the outbox's alerts to managers' channels until ``stop``; ``wake`` tells it
    that new alerts are due (it polls every ``sender_poll_s`` anyway)."""

    def __init__(
        self,
        *,
        settings: NotifySettings,
        pool: asyncpg.Pool,
        channels: Sequence[Channel],
        sealer: Sealer,
        wake: asyncio.Event,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._channels = list(channels)
        self._sealer = sealer
        self._wake = wake
        self._now = now
        self._in_flight: set[asyncio.Task[None]] = set()
        self._per_market: Counter[str] = Counter()
        # Alerts being delivered by this sender, with the attempt each claim was made for.
        self._claims: dict[Any, int] = {}
        self._stopping = asyncio.Event()
        self._delivered = DeliveredAlerts(pool)

    @property
    def lease_s(self) -> float:
        return self._settings.sender_lease_s

    async def run(self) -> None:
        renewing = asyncio.create_task(self._renew_leases())
        try:
            await self._claim_and_deliver()
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _renew_leases(self) -> None:
        # A third of the lease: two renewals may fail (a blip of the database) before the
        # claim lapses. Should it lapse anyway, another sender may deliver again, and
        # receivers deduplicate on alert_id.
        while True:
            await asyncio.sleep(self.lease_s / 3)
            if not self._claims:
                continue
            try:
                async with (
                    asyncio.timeout(self.lease_s / 3),
                    self._pool.acquire() as connection,
                ):
                    await extend_leases(
                        connection=connection, claims=dict(self._claims), lease_s=self.lease_s
                    )
            except TRANSIENT_DB_ERRORS as error:
                log.warning("could not renew leases: %s", type(error).__name__)
            except Exception:
                log.exception("renewing leases failed unexpectedly")

    async def _claim_and_deliver(self) -> None:
        settings = self._settings
        while not self._stopping.is_set():
            free = settings.sender_concurrency - len(self._in_flight)
            room = {m: settings.sender_per_market - n for m, n in self._per_market.items()}
            due: list[DueAlert] = []
            if free > 0:
                try:
                    # Bounded: a pool waiting on a server that went away must not stall
                    # every alert behind it.
                    async with (
                        asyncio.timeout(self.lease_s),
                        self._pool.acquire() as connection,
                    ):
                        due = await claim_due(
                            connection=connection,
                            limit=min(settings.sender_batch, free),
                            lease_s=self.lease_s,
                            per_market=settings.sender_per_market,
                            room=room,
                        )
                except TRANSIENT_DB_ERRORS as error:
                    log.warning("outbox unavailable: %s", type(error).__name__)
                except Exception:
                    # Whatever it is, the loop that sends every alert must not end with it.
                    log.exception("claiming alerts failed unexpectedly")
            for alert in due:
                self._per_market[alert.market] += 1
                self._claims[alert.alert_id] = alert.attempt
                task = asyncio.create_task(self._deliver(alert))
                self._in_flight.add(task)
                task.add_done_callback(
                    functools.partial(self._done, market=alert.market, alert_id=alert.alert_id)
                )
            if not due or len(due) < settings.sender_batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=settings.sender_poll_s)

    def _done(self, task: asyncio.Task[None], *, market: str, alert_id: Any) -> None:
        self._in_flight.discard(task)
        self._claims.pop(alert_id, None)
        self._per_market[market] -= 1
        if self._per_market[market] <= 0:
            del self._per_market[market]
        # A market's slot is free again: its next alert may be waiting.
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self._settings.webhook_timeout_s + 1)

    def _retry_in(self, attempt: int) -> float | None:
        if attempt >= self._settings.max_attempts:
            return None
        base = min(self._settings.retry_base_s * 2 ** (attempt - 1), self._settings.retry_max_s)
        jittered: float = base * random.uniform(0.8, 1.2)
        return jittered

    def _ack_url(self, alert_id: Any, manager_id: Any) -> str:
        expires = self._now() + timedelta(seconds=self._settings.ack_link_ttl_s)
        link = ack_link(
            alert_id,
            manager_id,
            expires,
            self._settings.ack_link_secret.get_secret_value().encode(),
        )
        return f"{self._settings.public_base_url.rstrip('/')}/alerts/{alert_id}?{link.query()}"

    def _body(self, alert: DueAlert) -> dict[str, Any]:
        body: dict[str, Any] = {
            **alert.payload,
            "alert_id": str(alert.alert_id),
            "submission_id": str(alert.submission_id),
            "severity": alert.severity,
            "rule": alert.rule_id,
        }
        if "digest" in alert.payload:
            body["digest"] = [
                {**item, "ack_url": self._ack_url(item["alert_id"], alert.manager_id)}
                for item in alert.payload["digest"]
            ]
        else:
            body["ack_url"] = self._ack_url(alert.alert_id, alert.manager_id)
        return body

    def _recipient(self, alert: DueAlert) -> Recipient:
        sms = None
        if alert.sms_sealed and alert.severity in SMS_SEVERITIES:
            try:
                sms = self._sealer.open(alert.sms_sealed, context=alert.manager_id.bytes)
            except SealingError:
                log.error("manager %s: SMS number does not open", alert.manager_id)
        return Recipient(alert.email, alert.webhook_url, sms, alert.language)

    async def _deliver(self, alert: DueAlert) -> None:
        try:
            await self._deliver_once(alert)
        except TRANSIENT_DB_ERRORS as error:
            # The lease brings the alert back; receivers deduplicate on alert_id.
            log.error("could not record delivery of %s: %s", alert.alert_id, type(error).__name__)
        except Exception:
            log.exception("delivery of %s failed unexpectedly", alert.alert_id)

    async def _deliver_once(self, alert: DueAlert) -> None:
        settings = self._settings
        if not alert.manager_active:
            # Someone who left holds no customer's complaint: the alert is not sent, and
            # if nobody else of its ladder got it, it is recorded as unroutable.
            await self._give_up(alert, "manager deactivated before delivery")
            return
        if (
            alert.severity == Severity.P2
            and alert.rule_id != "digest"
            and not alert.throttle_counted
        ):
            async with self._pool.acquire() as connection:
                admitted = await admit_p2(
                    connection=connection,
                    alert_id=alert.alert_id,
                    manager_id=alert.manager_id,
                    limit=settings.throttle_p2_per_window,
                    window_s=settings.throttle_window_s,
                )
            if not admitted:
                ALERTS_HELD.inc()
                return
        recipient = self._recipient(alert)
        reachable = [c for c in self._channels if c.reaches(recipient)]
        todo = [c for c in reachable if c.name not in alert.channels_done]
        if not reachable:
            # A channel this deployment does not run (email without SMTP, SMS of a P2).
            await self._give_up(alert, "manager has no reachable channel")
            return
        body = self._body(alert)
        with span_in(
            _tracer,
            "deliver alert",
            context_from_carrier(alert.trace_context),
            attributes={
                # Every delivery is kept whatever the sampling ratio.
                **submission_attributes(alert.submission_id, alert.market, keep=Keep.ALERT),
                "terrain.alert_id": str(alert.alert_id),
                "terrain.severity": alert.severity,
                "terrain.attempt": str(alert.attempt),
            },
        ):
            outcomes = await asyncio.gather(*(self._try(c, recipient, body) for c in todo))
        results = [r for r, _ in outcomes]
        transient = any(not r.ok and not permanent for r, permanent in outcomes)
        any_ok = bool(alert.channels_done) or any(r.ok for r in results)
        retry = self._retry_in(alert.attempt) if transient else None
        if transient and retry is not None:
            outcome = DeliveryOutcome.RETRY
        elif any_ok:
            outcome = DeliveryOutcome.DELIVERED
        else:
            outcome = DeliveryOutcome.FAILED
        for r, permanent in outcomes:
            # A channel's attempt: "ok", or the alert's outcome for a channel that did not
            # take it (a permanent refusal is not retried, whatever the others do).
            label: str
            if r.ok:
                label = "ok"
            elif outcome == DeliveryOutcome.RETRY and not permanent:
                label = DeliveryOutcome.RETRY
            else:
                label = DeliveryOutcome.FAILED
            ALERT_DELIVERY_ATTEMPTS.labels(r.channel, label).inc()
            if r.ok:
                ALERTS_SENT.labels(alert.market, alert.severity, r.channel).inc()
        recorded = await self._record(alert, results, outcome, retry_in_s=retry)
        if recorded.unroutable is not None:
            # This was the last recipient who could have received the complaint.
            report_unroutable(recorded.unroutable)
        if recorded.delivered_at is not None and alert.rule_id != "digest":
            latency = (recorded.delivered_at - alert.received_at).total_seconds()
            ALERT_LATENCY.labels(alert.severity).observe(max(latency, 0.0))

    async def _record(
        self,
        alert: DueAlert,
        results: list[ChannelResult],
        outcome: DeliveryOutcome,
        *,
        retry_in_s: float | None = None,
    ) -> DeliveryRecorded:
        if outcome == DeliveryOutcome.DELIVERED:
            delivery = Delivery(alert.alert_id, alert.attempt, results)
            return DeliveryRecorded(delivered_at=await self._delivered.record(delivery))
        async with self._pool.acquire() as connection:
            return await record_delivery(
                connection=connection,
                alert_id=alert.alert_id,
                attempt=alert.attempt,
                results=results,
                outcome=outcome,
                retry_in_s=retry_in_s,
            )

    async def _give_up(self, alert: DueAlert, reason: str) -> None:
        recorded = await self._record(
            alert, [ChannelResult("none", False, reason)], DeliveryOutcome.FAILED
        )
        if recorded.unroutable is not None:
            report_unroutable(recorded.unroutable)

    async def _try(
        self, channel: Channel, recipient: Recipient, body: dict[str, Any]
    ) -> tuple[ChannelResult, bool]:
        with _tracer.start_as_current_span(
            f"deliver {channel.name}", kind=trace.SpanKind.CLIENT,
            attributes={"terrain.channel": channel.name},
        ) as span:  # fmt: skip
            try:
                detail = await channel.deliver(recipient, body)
            except DeliveryFailed as failure:
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(failure)[:200]))
                return ChannelResult(channel.name, False, str(failure)), failure.permanent
            return ChannelResult(channel.name, True, detail), False


async def every(
    interval_s: float, work: Callable[[], Awaitable[object]], stopping: asyncio.Event
) -> None:
    """Run ``work`` every ``interval_s`` until ``stopping``; a database outage is a skipped
    turn, not a dead loop. Neither is anything else: escalation and digests must outlive a
    bad row or a bug in one turn, so that is logged with its traceback and retried."""
    name = getattr(work, "__name__", "work")
    while not stopping.is_set():
        try:
            await work()
        except TRANSIENT_DB_ERRORS as error:
            log.warning("%s skipped: %s", name, type(error).__name__)
        except Exception:
            log.exception("%s failed; trying again in %.0f s", name, interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=interval_s)
