"""Wiring of enrich: a batch consumer on the raw topic, a pool, a producer."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from faststream import FastStream
from faststream.kafka.annotations import KafkaMessage

from enrich.geo import Gazetteer
from enrich.places import load_gazetteer
from enrich.segments import SegmentCache
from enrich.settings import EnrichSettings
from enrich.stages import SERVICE, EnrichRuntime, process_batch
from terrain_contracts.topics import SUBMISSIONS_ENRICHED, SUBMISSIONS_RAW
from terrain_runtime.consumer import batch_subscriber, make_broker, source_records
from terrain_runtime.db import create_pool
from terrain_runtime.dlq import DeadLetterLimitExceeded
from terrain_runtime.kafka import make_producer
from terrain_runtime.lag import consumer_lag_monitor
from terrain_runtime.metrics import BATCH_DURATION
from terrain_runtime.telemetry import setup_tracing

log = logging.getLogger(__name__)


@dataclass
class _Startup:
    """What the lifespan starts and the first batch completes: the runtime, once the
    gazetteer it loads meanwhile is there."""

    pending: Callable[..., EnrichRuntime] | None = None
    gazetteer: asyncio.Task[Gazetteer] | None = None
    runtime: EnrichRuntime | None = None

    async def ready(self, app: FastStream) -> EnrichRuntime:
        assert self.pending is not None and self.gazetteer is not None, "lifespan not run"
        try:
            gazetteer = await self.gazetteer
        except Exception:
            log.critical("stopping the consumer: the gazetteer did not load", exc_info=True)
            app.exit()
            raise
        self.runtime = self.pending(gazetteer=gazetteer)
        # What startup allocated (the gazetteer, modules) stays for the process's life:
        # out of the collector's way, a full collection no longer walks it.
        gc.freeze()
        return self.runtime


def create_app(settings: EnrichSettings | None = None) -> FastStream:
    settings = settings or EnrichSettings()
    tracer_provider = setup_tracing(settings, SERVICE)
    broker = make_broker(settings, client_id=f"terrain-{SERVICE}", tracer_provider=tracer_provider)
    startup = _Startup()

    @batch_subscriber(
        broker,
        settings.topic(SUBMISSIONS_RAW),
        group_id=settings.group_id,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
        fetch_min_bytes=settings.batch_fetch_min_bytes,
        fetch_max_wait_ms=settings.batch_fetch_max_wait_ms,
    )
    async def on_raw_submissions(message: KafkaMessage) -> None:
        records = source_records(message)
        runtime = startup.runtime or await startup.ready(app)
        try:
            with BATCH_DURATION.labels(SERVICE, SUBMISSIONS_RAW.id).time():
                await process_batch(runtime, records)
        except DeadLetterLimitExceeded as error:
            log.critical("stopping the consumer: %s", error)
            app.exit()
            raise

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        # About a second and ~30 MB, once per process, off the loop: while the consumer
        # joins its group (seconds), not before it starts to.
        gazetteer = asyncio.create_task(asyncio.to_thread(load_gazetteer))
        pool = await create_pool(
            settings.database_url.get_secret_value(),
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )
        producer = make_producer(settings, client_id=f"terrain-{SERVICE}-producer")
        await producer.start()
        startup.pending = functools.partial(
            EnrichRuntime,
            settings=settings,
            producer=producer,
            pool=pool,
            enriched_topic=settings.topic(SUBMISSIONS_ENRICHED),
            segments=SegmentCache(
                max_entries=settings.segment_cache_entries, ttl_s=settings.segment_cache_ttl_s
            ),
        )
        startup.gazetteer = gazetteer
        lag_monitor = consumer_lag_monitor(settings, service=SERVICE, source=SUBMISSIONS_RAW)
        lag_monitor.start()
        try:
            yield
        finally:
            gazetteer.cancel()
            await lag_monitor.stop()
            # The broker (consumer) stopped before this: no batch is publishing any more.
            await producer.stop()
            await pool.close()
            tracer_provider.shutdown()

    app = FastStream(broker, lifespan=lifespan, logger=logging.getLogger(f"terrain.{SERVICE}"))
    return app
