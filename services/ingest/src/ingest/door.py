"""The write endpoints served straight from the middleware stack.

FastAPI's router, its per-request dependency solving and its exception middleware cost a
fifth of a single POST's CPU and add nothing the two write endpoints use: they take the
request as it is, read their bodies themselves and answer with a response or a Problem.
``SubmissionDoor`` calls them directly, with the same request and the same route in the
scope, inside every middleware of ingest (request span, metrics, load shedding, body
draining, unforeseen errors); any other request, the same paths with another method
included, goes through FastAPI as before. The routes stay declared on the router, which
is what the OpenAPI document is generated from.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ingest.problems import Problem

DIRECT_PATHS = frozenset({"/v1/submissions", "/v1/submissions/batch"})


class SubmissionDoor:
    def __init__(self, app: ASGIApp, *, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.routes = {
            route.path: route
            for route in routes
            if isinstance(route, APIRoute)
            and route.path in DIRECT_PATHS
            and "POST" in (route.methods or ())
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            self.routes.get(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # what the router would have recorded: metrics and span read it
        try:
            response = await route.endpoint(Request(scope, receive))
        except Problem as problem:
            response = problem.response()
        await response(scope, receive, send)
