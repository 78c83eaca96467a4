"""HTTP routes of the receipt: what a device learns about visits it sent, read from
PostgreSQL (enrich's stored submissions, the failed-submissions store, notify's alerts).

These go through FastAPI's router, not the write endpoints' door: they are read by an app
back online, not on the hot path. Authentication and the rate limit are the write
endpoints' own (``routes.authenticate``); a database that does not answer in time is a 503
with Retry-After, as for the writes.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ingest.body import read_json
from ingest.logic import Device
from ingest.openapi import SUBMISSIONS_TAG
from ingest.problems import Problem
from ingest.receipt_openapi import RECEIPT_OPENAPI, RECEIPTS_OPENAPI
from ingest.receipts import path_submission_id, queried_ids, receipts
from ingest.repository import find_failures, find_stored_visits
from ingest.routes import IngestRuntime, authenticate, runtime_of
from terrain_contracts.receipts import ReceiptList, ReceiptStatus, SubmissionReceipt
from terrain_runtime.db import TRANSIENT_DB_ERRORS

log = logging.getLogger(__name__)
receipt_router = APIRouter()


async def _read(runtime: IngestRuntime, ids: list[UUID], device: Device) -> list[SubmissionReceipt]:
    try:
        async with asyncio.timeout(runtime.settings.receipt_timeout_s):
            async with (
                runtime.receipt_reads,
                runtime.pool.acquire() as connection,
                # One snapshot: a visit stored between the two reads is not told as failed.
                connection.transaction(isolation="repeatable_read", readonly=True),
            ):
                stored = await find_stored_visits(connection=connection, ids=ids)
                failures = await find_failures(connection=connection, ids=ids)
    except TRANSIENT_DB_ERRORS as error:  # the timeout among them
        log.warning("receipts unavailable: %s", type(error).__name__)
        raise Problem(
            503,
            "Receipts cannot be read right now; ask again later",
            retry_after_s=5,
            code="receipts-unavailable",
        ) from None
    return receipts(ids, device, stored, failures)


@receipt_router.get(
    "/v1/submissions/{submission_id}",
    operation_id="getSubmissionReceipt",
    tags=[SUBMISSIONS_TAG],
    openapi_extra=RECEIPT_OPENAPI,
)
async def get_receipt(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    device = await authenticate(request, runtime)
    # Read here, not as a FastAPI parameter: a bad id is a problem document naming the
    # parameter, and the OpenAPI parameter is the one RECEIPT_OPENAPI documents.
    wanted = path_submission_id(request.path_params["submission_id"])
    [found] = await _read(runtime, [wanted], device)
    if found.status is ReceiptStatus.UNKNOWN:
        # The same answer for an id not stored yet, never received or of another market.
        raise Problem(
            404,
            "No stored or failed submission with this id for this device (not stored yet,"
            " or never received)",
            code="unknown-submission",
        )
    return JSONResponse(found.model_dump(mode="json", exclude_none=True))


@receipt_router.post(
    "/v1/submissions/status",
    operation_id="getSubmissionReceipts",
    tags=[SUBMISSIONS_TAG],
    openapi_extra=RECEIPTS_OPENAPI,
)
async def post_status(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    device = await authenticate(request, runtime)
    body = await read_json(
        request, limit=runtime.settings.max_single_body_bytes, budget=runtime.bodies
    )
    ids = queried_ids(body.document)
    answer = ReceiptList(receipts=await _read(runtime, ids, device))
    return JSONResponse(answer.model_dump(mode="json", exclude_none=True))
