"""Wiring of ingest: settings, telemetry, Kafka producer, database pool, routes."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app

from ingest import SERVICE, __version__
from ingest.body import BodyBudget, DrainUnreadBody
from ingest.devices import DeviceDirectory, DirectoryUnavailable
from ingest.door import SubmissionDoor
from ingest.logic import Device
from ingest.observability import RequestMetrics, RequestSpan
from ingest.openapi import build_openapi
from ingest.overload import LoadShedding
from ingest.problems import Problem, UnforeseenErrors
from ingest.ratelimit import RateLimiter
from ingest.receipt_routes import receipt_router
from ingest.repository import find_active_device
from ingest.routes import IngestRuntime, router
from ingest.settings import IngestSettings
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_runtime.db import TRANSIENT_DB_ERRORS, create_pool
from terrain_runtime.kafka import make_producer
from terrain_runtime.metrics import metrics_registry
from terrain_runtime.telemetry import setup_tracing


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()

    tracer_provider = setup_tracing(settings, SERVICE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = make_producer(settings, client_id=f"terrain-{SERVICE}")
        pool = await create_pool(
            settings.database_url.get_secret_value(),
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )

        async def lookup(token: str) -> Device | None:
            try:
                async with asyncio.timeout(settings.device_lookup_timeout_s):
                    async with pool.acquire() as connection:
                        return await find_active_device(connection=connection, token=token)
            except TRANSIENT_DB_ERRORS as error:
                raise DirectoryUnavailable(type(error).__name__) from error

        await producer.start()
        app.state.runtime = IngestRuntime(
            settings=settings,
            producer=producer,
            devices=DeviceDirectory(
                lookup, ttl_s=settings.device_cache_ttl_s, stale_s=settings.device_cache_stale_s
            ),
            limiter=RateLimiter(
                per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst
            ),
            pseudonymiser=settings.pseudonymiser(),
            sealer=settings.sealer(),
            raw_topic=settings.topic(SUBMISSIONS_RAW),
            bodies=BodyBudget(settings.max_buffered_body_bytes),
            limits=settings.unknown_field_limits(),
            pool=pool,
            receipt_reads=asyncio.Semaphore(settings.receipt_connection_share()),
        )
        # What start-up built (routes, models, phone metadata) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it.
        gc.freeze()
        try:
            yield
        finally:
            # Uvicorn has drained in-flight requests by now: every 2xx already has its ack.
            await producer.stop()  # flushes what is in flight
            await pool.close()
            tracer_provider.shutdown()

    app = FastAPI(
        title="Terrain ingest",
        version=__version__,
        description="The field app's API: one door in, durable before 2xx, strict with bad input.",
        lifespan=lifespan,
        # FastAPI's native telemetry would add a second request span and duplicate our
        # metrics: RequestSpan below makes the one request span, RequestMetrics the metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.include_router(router)
    app.include_router(receipt_router)
    app.mount("/metrics", make_asgi_app(registry=metrics_registry()))
    # The first added is the innermost: the write endpoints are served past FastAPI's
    # router; an unforeseen error becomes a 500 problem that the metrics count and the
    # request span shows; every early answer, the 503 of load shedding included, first
    # reads what is left of the body.
    app.add_middleware(SubmissionDoor, routes=router.routes)
    app.add_middleware(UnforeseenErrors)
    app.add_middleware(LoadShedding, max_in_flight=settings.max_in_flight)
    app.add_middleware(RequestMetrics)
    app.add_middleware(
        DrainUnreadBody,
        max_bytes=settings.max_drained_body_bytes,
        timeout_s=settings.drain_timeout_s,
    )
    app.add_middleware(
        RequestSpan, tracer_provider=tracer_provider, excluded=("/healthz", "/readyz", "/metrics")
    )

    @app.exception_handler(Problem)
    async def problem_handler(_: Request, problem: Problem) -> JSONResponse:
        return problem.response()

    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app
