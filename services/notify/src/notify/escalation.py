"""Escalation: an alert nobody acknowledged within its SLA goes to the next rung of its
market's ladder (routing.py), the one above the rung it was routed or escalated to.

The clock is injected (``now``) so tests can move time forward; the deadline itself is
pure logic (P1: wall-clock minutes; P2: working hours in the manager's timezone).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from notify.acknowledgements import awaiting_acknowledgement
from notify.metrics import ALERTS_ESCALATED
from notify.routing import escalate
from notify.settings import NotifySettings
from notify.working_time import WorkingTime, acknowledgement_deadline

log = logging.getLogger(__name__)


class Escalator:
    PAGE = 500
    MAX_PAGES = 200  # bounds one pass; the next pass goes on from the start

    def __init__(
        self,
        *,
        settings: NotifySettings,
        pool: asyncpg.Pool,
        now: Callable[[], datetime],
        wake_sender: asyncio.Event,
    ) -> None:
        self._pool = pool
        self._now = now
        self._wake_sender = wake_sender
        self._p1 = timedelta(minutes=settings.sla_p1_minutes)
        self._p2 = timedelta(hours=settings.sla_p2_working_hours)

    async def escalate_overdue(self) -> int:
        """One pass: escalate every overdue alert; returns how many were escalated."""
        now = self._now()
        escalated = 0
        after = None
        for _ in range(self.MAX_PAGES):
            async with self._pool.acquire() as connection:
                page = await awaiting_acknowledgement(
                    connection=connection,
                    p1_created_before=now - self._p1,
                    p2_created_before=now - self._p2,
                    after=after,
                    limit=self.PAGE,
                )
            for alert in page:
                work = WorkingTime.parse(alert.timezone, alert.working_hours, alert.working_days)
                deadline = acknowledgement_deadline(
                    alert.created_at, alert.severity, work, p1_sla=self._p1, p2_working_sla=self._p2
                )
                if now < deadline:
                    continue
                async with self._pool.acquire() as connection:
                    detail = await escalate(connection=connection, alert_id=alert.alert_id, now=now)
                if detail is not None:
                    escalated += 1
                    ALERTS_ESCALATED.labels(alert.severity).inc()
                    log.info("alert %s %s", alert.alert_id, detail)
            if len(page) < self.PAGE:
                break
            after = (page[-1].created_at, page[-1].alert_id)
        if escalated:
            self._wake_sender.set()
        return escalated
