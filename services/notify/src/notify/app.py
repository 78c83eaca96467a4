"""Wiring of notify: a batch consumer on the enriched topic, the outbox sender, the digest
and escalation loops, and the acknowledgement page, all in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from faststream import FastStream
from faststream.kafka.annotations import KafkaMessage

from notify.channels import (
    Channel,
    EmailChannel,
    MarketClients,
    SmsGatewayChannel,
    SmtpConfig,
    WebhookChannel,
)
from notify.escalation import Escalator
from notify.outbox import form_digests
from notify.rules import load_ruleset
from notify.sender import OutboxSender, every
from notify.settings import NotifySettings
from notify.stages import SERVICE, NotifyRuntime, process_batch
from notify.web import create_web_app
from terrain_contracts.topics import SUBMISSIONS_ENRICHED
from terrain_runtime.consumer import batch_subscriber, make_broker, source_records
from terrain_runtime.db import create_pool
from terrain_runtime.dlq import DeadLetterLimitExceeded
from terrain_runtime.kafka import make_producer
from terrain_runtime.lag import consumer_lag_monitor
from terrain_runtime.metrics import BATCH_DURATION
from terrain_runtime.telemetry import setup_tracing


class _EmbeddedServer(uvicorn.Server):
    """Uvicorn inside FastStream's process: FastStream owns SIGINT/SIGTERM, so uvicorn must
    not capture (and later re-raise) them; shutdown goes through ``should_exit``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_page(web: uvicorn.Server, port: int, log: logging.Logger) -> None:
    try:
        await web.serve()
    except SystemExit:
        # Uvicorn exits when it cannot bind. Alerts must still flow: the page being down is
        # logged loudly (and visible on /healthz from outside), not a reason to stop alerting.
        log.error("acknowledgement page could not start on port %d", port)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def build_channels(
    settings: NotifySettings, client: httpx.AsyncClient, webhooks: MarketClients
) -> list[Channel]:
    channels: list[Channel] = [
        WebhookChannel(webhooks.of, settings.webhook_signing_secret.get_secret_value().encode())
    ]
    if settings.smtp_host:
        channels.append(
            EmailChannel(
                SmtpConfig(
                    host=settings.smtp_host,
                    port=settings.smtp_port,
                    sender=settings.smtp_sender,
                    username=settings.smtp_username,
                    password=(
                        settings.smtp_password.get_secret_value()
                        if settings.smtp_password
                        else None
                    ),
                    starttls=settings.smtp_starttls,
                    timeout_s=settings.webhook_timeout_s,
                )
            )
        )
    if settings.sms_gateway_url:
        channels.append(
            SmsGatewayChannel(
                client,
                settings.sms_gateway_url,
                settings.sms_gateway_username,
                (
                    settings.sms_gateway_password.get_secret_value()
                    if settings.sms_gateway_password
                    else None
                ),
            )
        )
    return channels


def _report_death(task: asyncio.Task[Any]) -> None:
    # These loops run for the life of the process: one ending early is a bug to see at once,
    # not at shutdown.
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        logging.getLogger("terrain.notify").error(
            "%s stopped: %s", task.get_name(), error, exc_info=error
        )


def create_app(
    settings: NotifySettings | None = None, *, now: Callable[[], datetime] = _utcnow
) -> FastStream:
    """``now`` is the clock of escalation, links and acknowledgements (tests move it)."""
    settings = settings or NotifySettings()
    # Validated before anything connects: a broken rule file stops the start, loudly.
    ruleset = load_ruleset(settings.rules_file)
    tracer_provider = setup_tracing(settings, SERVICE)
    broker = make_broker(settings, client_id=f"terrain-{SERVICE}", tracer_provider=tracer_provider)
    state: dict[str, NotifyRuntime] = {}
    log = logging.getLogger(f"terrain.{SERVICE}")

    @batch_subscriber(
        broker,
        settings.topic(SUBMISSIONS_ENRICHED),
        group_id=settings.group_id,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
        fetch_min_bytes=settings.batch_fetch_min_bytes,
        fetch_max_wait_ms=settings.batch_fetch_max_wait_ms,
    )
    async def on_stored_submissions(message: KafkaMessage) -> None:
        records = source_records(message)
        try:
            with BATCH_DURATION.labels(SERVICE, SUBMISSIONS_ENRICHED.id).time():
                await process_batch(state["runtime"], records)
        except DeadLetterLimitExceeded as error:
            log.critical("stopping the consumer: %s", error)
            app.exit()
            raise

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        pool = await create_pool(
            settings.database_url.get_secret_value(),
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )
        # The same self-renewing producer as enrich's: after a broker restart, a dead
        # letter must not fail forever and hold its batch back with it.
        producer = make_producer(settings, client_id=f"terrain-{SERVICE}-producer")
        await producer.start()
        runtime = NotifyRuntime(
            settings=settings,
            pool=pool,
            ruleset=ruleset,
            producer=producer,
        )
        state["runtime"] = runtime
        sealer = settings.sealer()
        client = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
        webhooks = MarketClients(settings.webhook_timeout_s)
        sender = OutboxSender(
            settings=settings,
            pool=pool,
            channels=build_channels(settings, client, webhooks),
            sealer=sealer,
            wake=runtime.wake_sender,
            now=now,
        )
        escalator = Escalator(
            settings=settings, pool=pool, now=now, wake_sender=runtime.wake_sender
        )
        stopping = asyncio.Event()

        async def form_and_send_digests() -> None:
            async with pool.acquire() as connection:
                formed = await form_digests(connection=connection)
            if formed:
                runtime.wake_sender.set()

        web = _EmbeddedServer(
            uvicorn.Config(
                create_web_app(
                    pool=pool,
                    sealer=sealer,
                    link_secret=settings.ack_link_secret.get_secret_value().encode(),
                    now=now,
                ),
                host=settings.http_host,
                port=settings.http_port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )
        tasks = [
            asyncio.create_task(sender.run(), name="outbox-sender"),
            asyncio.create_task(
                every(settings.digest_interval_s, form_and_send_digests, stopping), name="digests"
            ),
            asyncio.create_task(
                every(settings.escalation_poll_s, escalator.escalate_overdue, stopping),
                name="escalation",
            ),
            asyncio.create_task(_serve_page(web, settings.http_port, log), name="ack-page"),
        ]
        for task in tasks:
            task.add_done_callback(_report_death)
        lag_monitor = consumer_lag_monitor(settings, service=SERVICE, source=SUBMISSIONS_ENRICHED)
        lag_monitor.start()
        log.info("rule set %s loaded; ack page on port %d", ruleset.version, settings.http_port)
        try:
            yield
        finally:
            await lag_monitor.stop()
            stopping.set()
            web.should_exit = True
            await sender.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()
            await webhooks.aclose()
            await producer.stop()
            await pool.close()
            tracer_provider.shutdown()

    app = FastStream(broker, lifespan=lifespan, logger=log)
    return app
