"""The load generator: a minimal HTTP/1.1 client on asyncio streams (uvloop) that sends
request bytes built before timing, from processes of its own.

On 2 cores every CPU cycle the client spends is taken from the service it measures, so it
costs a few percent of what ingest spends per request (the benchmarks print both CPU
figures so the reader can check): no HTTP library, no JSON encoding while timing. It runs
in worker processes, so this module imports the standard library only (and uvloop).

- closed loop (``Job.rate == 0``): each connection sends its next request once the
  previous one is answered;
- open loop (``Job.rate > 0``): request *i* leaves at *t₀ + i/rate* whatever happened
  before, and its latency counts from that instant, so a stall is charged to every request
  it delayed (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

# The 8 hex digits at the head of every submission id in a body template: the load
# generator writes a per-request counter there, so every request carries fresh ids.
ID_SLOT = b"@@@@@@@@"
ACCEPTED = re.compile(rb'"accepted":\s*(\d+)')
OPEN_LOOP_CONNECTIONS = 256
OPEN_LOOP_GRACE_S = 5.0

Request = tuple[bytes, bytes]  # (head, body template with ID_SLOT in every id)


@dataclass(frozen=True)
class Job:
    """What one load-generator process does: closed loop (rate 0) or open loop (rate > 0)."""

    port: int
    worker: int
    requests: list[Request]
    duration_s: float
    connections: int = 1
    rate: float = 0.0
    count_batch: bool = False  # count accepted submissions from batch answers


@dataclass
class Outcome:
    """What the load generator saw: only 2xx answers count as throughput."""

    requests_2xx: int = 0
    submissions: int = 0
    non_2xx: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    sent: int = 0

    def merge(self, other: Outcome) -> None:
        self.requests_2xx += other.requests_2xx
        self.submissions += other.submissions
        for status, count in other.non_2xx.items():
            self.non_2xx[status] = self.non_2xx.get(status, 0) + count
        for kind, count in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count
        self.latencies_s.extend(other.latencies_s)
        self.elapsed_s = max(self.elapsed_s, other.elapsed_s)
        self.cpu_s += other.cpu_s
        self.sent += other.sent

    def answered(self, job: Job, status: int, body: bytes) -> None:
        if 200 <= status < 300:
            self.requests_2xx += 1
            # A batch answer says how many it accepted; any other 2xx is one submission.
            found = ACCEPTED.search(body) if job.count_batch else None
            self.submissions += int(found.group(1)) if found else 1
        else:
            self.non_2xx[status] = self.non_2xx.get(status, 0) + 1

    def failed(self, error: BaseException) -> None:
        kind = type(error).__name__
        self.errors[kind] = self.errors.get(kind, 0) + 1


def spread(requests: list[Request], workers: int) -> list[list[Request]]:
    """``requests`` dealt out to ``workers`` processes."""
    return [requests[index::workers] for index in range(workers)]


class _Requests:
    """Request bytes with fresh submission ids: one stamp per pass over the job's requests,
    so every pass sends new visits, and a visit's resends within a pass (the same id in
    two requests) stay resends."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self._next = 0

    def next(self) -> bytes:
        passes, index = divmod(self._next, len(self._job.requests))
        head, body = self._job.requests[index]
        stamp = f"{self._job.worker:02x}{passes:06x}".encode()
        self._next += 1
        return head + body.replace(ID_SLOT, stamp)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _closed_loop(job: Job) -> Outcome:
    outcome = Outcome()
    requests = _Requests(job)
    started = time.perf_counter()
    deadline = started + job.duration_s

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", job.port)
        try:
            while time.perf_counter() < deadline:
                request = requests.next()
                sent = time.perf_counter()
                outcome.sent += 1
                try:
                    status, body = await asyncio.wait_for(
                        _exchange(reader, writer, request), timeout=30
                    )
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
                    outcome.failed(error)
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", job.port)
                    continue
                outcome.latencies_s.append(time.perf_counter() - sent)
                outcome.answered(job, status, body)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(job.connections)))
    outcome.elapsed_s = time.perf_counter() - started
    return outcome


async def _open_loop(job: Job) -> Outcome:
    """Request i leaves at start + i/rate whatever happened before; its latency counts from
    that scheduled instant, so time spent waiting for a free connection is included.

    At most OPEN_LOOP_CONNECTIONS connections (a real fleet of phones is many clients, but
    an unbounded client would only measure the kernel's accept queue); a request still
    unanswered OPEN_LOOP_GRACE_S after the last one was due is counted as an error."""
    outcome = Outcome()
    requests = _Requests(job)
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    opened = 0
    total = int(job.rate * job.duration_s)
    start = time.perf_counter() + 0.05

    async def one(scheduled: float, request: bytes) -> None:
        nonlocal opened
        if idle.empty() and opened < OPEN_LOOP_CONNECTIONS:
            opened += 1
            try:
                connection = await asyncio.open_connection("127.0.0.1", job.port)
            except OSError as error:
                opened -= 1
                outcome.failed(error)
                return
        else:
            connection = await idle.get()
        reader, writer = connection
        try:
            status, body = await _exchange(reader, writer, request)
        except (OSError, asyncio.IncompleteReadError) as error:
            outcome.failed(error)
            writer.close()
            opened -= 1
            return
        outcome.latencies_s.append(time.perf_counter() - scheduled)
        outcome.answered(job, status, body)
        idle.put_nowait(connection)

    tasks = []
    for index in range(total):
        scheduled = start + index / job.rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        outcome.sent += 1
        tasks.append(asyncio.create_task(one(scheduled, requests.next())))
    _, late = await asyncio.wait(tasks, timeout=OPEN_LOOP_GRACE_S)
    for task in late:
        task.cancel()
    if late:
        outcome.errors["unanswered"] = len(late)
    outcome.elapsed_s = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait()[1].close()
    return outcome


def run_job(job: Job) -> Outcome:
    """Entry point of a load-generator process."""
    import uvloop

    cpu = time.process_time()
    outcome = uvloop.run(_open_loop(job) if job.rate else _closed_loop(job))
    outcome.cpu_s = time.process_time() - cpu
    return outcome


def ready() -> bool:
    """A no-op a pool runs once per worker, so that worker start-up is not timed."""
    return True
