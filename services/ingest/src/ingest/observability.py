"""Request metrics as a plain ASGI middleware: one counter and one histogram per request,
labelled by route template (never the raw path, which a client controls)."""

from __future__ import annotations

import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest import SERVICE
from terrain_runtime.metrics import HTTP_DURATION, HTTP_REQUESTS


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _route(self, scope: Scope) -> str:
        # The router records the matched route in the scope; fall back to matching.
        matched = scope.get("route")
        if matched is not None and getattr(matched, "path", None):
            return str(matched.path)
        router = scope["app"].router
        for route in router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", "other"))
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = self._route(scope)
            HTTP_REQUESTS.labels(SERVICE, route, str(status)).inc()
            HTTP_DURATION.labels(SERVICE, route).observe(time.perf_counter() - started)
