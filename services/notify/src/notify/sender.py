"""The outbox sender: claims due alerts, delivers each in its own task, records attempts.

Each delivery runs on its own (bounded by a semaphore) so that a slow webhook in one market
never holds back another market's alert. Claims carry a lease, so several notify replicas
can send from one outbox and a crashed sender's claims come back after the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import asyncpg

from notify.channels import DeliveryFailed, WebhookChannel
from notify.repository import DueAlert, claim_due, record_attempt
from notify.settings import NotifySettings

log = logging.getLogger(__name__)


class Sender:
    def __init__(
        self,
        *,
        settings: NotifySettings,
        pool: asyncpg.Pool,
        webhook: WebhookChannel,
        wake: asyncio.Event,
        concurrency: int = 32,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._webhook = webhook
        self._wake = wake
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    @property
    def lease_s(self) -> float:
        return self._settings.webhook_timeout_s * 3 + 5

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                due = await claim_due(
                    connection=self._pool, limit=self._settings.sender_batch, lease_s=self.lease_s
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("outbox unavailable: %s", type(error).__name__)
                due = []
            for alert in due:
                await self._slots.acquire()
                task = asyncio.create_task(self._deliver(alert))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if len(due) < self._settings.sender_batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._settings.sender_poll_s)

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

    async def _deliver(self, alert: DueAlert) -> None:
        try:
            if not alert.webhook_url:
                # Email and SMS channels arrive with issue 5; until then no channel is a failure
                # recorded on the alert, never a silent drop.
                await self._record(
                    alert, "none", ok=False, detail="manager has no channel", retry=None
                )
                return
            body = {
                **alert.payload,
                "alert_id": str(alert.alert_id),
                "ack_url": self._ack_url(alert),
            }
            try:
                detail = await self._webhook.deliver(alert.webhook_url, body)
            except DeliveryFailed as failure:
                retry = None if failure.permanent else self._retry_in(alert.attempt)
                await self._record(alert, "webhook", ok=False, detail=str(failure), retry=retry)
                return
            await self._record(alert, "webhook", ok=True, detail=detail, retry=None)
        finally:
            self._slots.release()

    def _ack_url(self, alert: DueAlert) -> str:
        return f"{self._settings.public_base_url.rstrip('/')}/alerts/{alert.alert_id}"

    async def _record(
        self, alert: DueAlert, channel: str, *, ok: bool, detail: str, retry: float | None
    ) -> None:
        try:
            await record_attempt(
                connection=self._pool,
                alert_id=alert.alert_id,
                channel=channel,
                attempt=alert.attempt,
                ok=ok,
                detail=detail,
                retry_in_s=retry,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # The lease will bring the alert back; the receiver deduplicates on alert_id.
            log.error("could not record delivery of %s: %s", alert.alert_id, type(error).__name__)
