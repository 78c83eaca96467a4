"""Load shedding: beyond a number of requests in flight, answer 503 + Retry-After at once.

Without it an overloaded ingest queues requests for seconds; the phones time out, retry,
and add load exactly when there is none to spare. A quick 503 keeps the visit in the
app's outbox and the latency of what is accepted low.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

SHED_PATHS = ("/v1/submissions",)
_BODY = json.dumps(
    {
        "type": "https://terrain.example/problems/overloaded",
        "title": "Too many requests in flight; keep the visit in the outbox and retry",
        "status": 503,
    }
).encode()


class LoadShedding:
    def __init__(self, app: ASGIApp, *, max_in_flight: int, retry_after_s: int = 2) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.retry_after_s = retry_after_s
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(SHED_PATHS):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"retry-after", str(self.retry_after_s).encode()),
                        (b"content-length", str(len(_BODY)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _BODY})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
