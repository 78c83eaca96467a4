"""Sending a field day the way phones do: single POSTs, offline outboxes flushed as batches,
resends of the same visit (some at the same time), and retries after 429/503/network errors
until the server acknowledges (the app keeps a visit in its outbox until then)."""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from terrain_contracts.markets import Market
from terrain_contracts.receipts import MAX_RECEIPT_IDS, ReceiptList, SubmissionReceipt
from terrain_simulator.generator import PlannedVisit


@dataclass
class Outcome:
    """What the API finally said about one visit."""

    status: str = "pending"  # accepted | rejected | failed
    errors: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0


@dataclass
class RunStats:
    requests: int = 0
    retries: int = 0
    http_status: dict[int, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    finished: float = 0.0

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started


class FieldApps:
    """The field devices of a day: they send its visits to ingest over HTTP as the app
    does (outbox batches, resends, retries on 429/503) and keep each visit's outcome."""

    def __init__(
        self,
        *,
        ingest_url: str,
        tokens: dict[Market, list[str]],
        concurrency: int = 32,
        rate: float = 0.0,
        max_attempts: int = 20,
        on_progress: Callable[[int], None] | None = None,
        seed: int = 0,
    ) -> None:
        self._url = ingest_url.rstrip("/")
        self._tokens = tokens
        self._concurrency = concurrency
        self._rate = rate
        self._max_attempts = max_attempts
        self._on_progress = on_progress or (lambda _: None)
        self._rng = random.Random(seed)
        self.outcomes: dict[str, Outcome] = {}
        self.stats = RunStats()
        # CPU seconds the sending took (the load generator's own cost, for benchmarks).
        self.cpu_s = 0.0

    def _token(self, visit: PlannedVisit) -> str:
        """The device of the visit's agent: each agent keeps one device all day."""
        tokens = self._tokens[visit.market]
        agent = str(visit.document.get("agent", {}).get("employee_id", visit.index))
        return tokens[zlib.crc32(agent.encode()) % len(tokens)]

    async def _post(
        self, client: httpx.AsyncClient, path: str, token: str, body: Any
    ) -> httpx.Response | None:
        delay = 0.2
        for attempt in range(self._max_attempts):
            self.stats.requests += 1
            if attempt:
                self.stats.retries += 1
            try:
                response = await client.post(
                    self._url + path,
                    json=body,
                    headers={"authorization": f"Bearer {token}"},
                )
            except httpx.HTTPError:
                response = None
            if response is not None:
                self.stats.http_status[response.status_code] = (
                    self.stats.http_status.get(response.status_code, 0) + 1
                )
                if response.status_code not in (429, 503) and response.status_code < 500:
                    return response
                retry_after = float(response.headers.get("retry-after", delay))
                delay = max(delay, min(retry_after, 5.0))
            await asyncio.sleep(delay * self._rng.uniform(0.5, 1.0))
            delay = min(delay * 2, 5.0)
        return None

    def _record(
        self, submission_id: str, status: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        outcome = self.outcomes.setdefault(submission_id, Outcome())
        outcome.attempts += 1
        # Once accepted, a resend's answer cannot make it less so.
        if outcome.status != "accepted":
            outcome.status = status
            outcome.errors = errors or []

    async def _single(self, client: httpx.AsyncClient, visit: PlannedVisit) -> None:
        async def once(document: dict[str, Any]) -> None:
            response = await self._post(client, "/v1/submissions", self._token(visit), document)
            if response is None:
                self._record(visit.submission_id, "failed")
            elif response.status_code == 202:
                self._record(visit.submission_id, "accepted")
            else:
                body = (
                    response.json()
                    if response.headers.get("content-type", "").endswith("json")
                    else {}
                )
                self._record(visit.submission_id, "rejected", body.get("errors", []))

        # Resends of one visit, partly at the same moment (double tap, flaky network).
        await asyncio.gather(*(once(document) for document in visit.documents))
        self._on_progress(1)

    async def _batch(
        self, client: httpx.AsyncClient, market: Market, visits: list[PlannedVisit]
    ) -> None:
        documents = [document for v in visits for document in v.documents]
        ids = [v.submission_id for v in visits for _ in v.documents]
        # One outbox flushed at once: the device of its first visit's agent sends it.
        response = await self._post(
            client, "/v1/submissions/batch", self._token(visits[0]), {"submissions": documents}
        )
        if response is None or response.status_code != 200:
            for submission_id in ids:
                self._record(submission_id, "failed")
        else:
            for submission_id, result in zip(ids, response.json()["results"], strict=True):
                self._record(submission_id, result["status"], result.get("errors"))
        self._on_progress(len(visits))

    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=self._concurrency, max_keepalive_connections=self._concurrency
        )
        return httpx.AsyncClient(timeout=30, limits=limits)

    async def receipts(self, visits: Iterable[PlannedVisit]) -> dict[str, SubmissionReceipt]:
        """What the devices learn back online: each asks ``POST /v1/submissions/status``
        for the ids of its agents' visits, at most MAX_RECEIPT_IDS at a time, with its own
        token (a batch went with the device of its first agent, one of the same market,
        which may read it too). An id whose query got no answer has no receipt."""
        by_device: dict[str, list[str]] = {}
        for visit in visits:
            by_device.setdefault(self._token(visit), []).append(visit.submission_id)
        queries = [
            (token, ids[start : start + MAX_RECEIPT_IDS])
            for token, ids in by_device.items()
            for start in range(0, len(ids), MAX_RECEIPT_IDS)
        ]
        found: dict[str, SubmissionReceipt] = {}
        slots = asyncio.Semaphore(self._concurrency)
        async with self._client() as client:

            async def ask(token: str, ids: list[str]) -> None:
                async with slots:
                    response = await self._post(
                        client, "/v1/submissions/status", token, {"submission_ids": ids}
                    )
                if response is None or response.status_code != 200:
                    return
                for receipt in ReceiptList.model_validate_json(response.content).receipts:
                    found[str(receipt.submission_id)] = receipt

            await asyncio.gather(*(ask(token, ids) for token, ids in queries))
        return found

    async def run(
        self, visits: Iterable[PlannedVisit], *, batch_sizes: tuple[int, int] = (20, 150)
    ) -> None:
        queue: asyncio.Queue[tuple[str, Market, list[PlannedVisit]] | None] = asyncio.Queue(
            maxsize=self._concurrency * 4
        )
        async with self._client() as client:

            async def worker() -> None:
                while (unit := await queue.get()) is not None:
                    kind, market, items = unit
                    if kind == "single":
                        await self._single(client, items[0])
                    else:
                        await self._batch(client, market, items)

            workers = [asyncio.create_task(worker()) for _ in range(self._concurrency)]
            outboxes: dict[Market, list[PlannedVisit]] = {}
            target: dict[Market, int] = {}
            for sent, visit in enumerate(visits, start=1):
                if visit.channel == "single":
                    await queue.put(("single", visit.market, [visit]))
                else:
                    box = outboxes.setdefault(visit.market, [])
                    box.append(visit)
                    size = target.setdefault(visit.market, self._rng.randint(*batch_sizes))
                    if len(box) >= size:
                        await queue.put(("batch", visit.market, box))
                        outboxes[visit.market] = []
                        target.pop(visit.market)
                if self._rate:
                    ahead = sent / self._rate - self.stats.seconds
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            for market, box in outboxes.items():
                if box:
                    await queue.put(("batch", market, box))
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        self.stats.finished = time.monotonic()
