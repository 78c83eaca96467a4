"""The acknowledgement page: a signed, expiring link opens one alert for one manager.

Server-rendered HTML (Jinja2, autoescaped), no script. The customer's number is opened
here only, for a customer who consented, and only into the page: never logged, never in
a message. Also serves /metrics and /healthz.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import asyncpg
from jinja2 import DictLoader, Environment, select_autoescape
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from notify.acknowledgements import (
    acknowledge,
    alert_for_manager,
    resolve,
    sealed_customer_number,
)
from notify.links import AckLink, link_is_valid
from notify.metrics import ALERT_ACKNOWLEDGEMENT
from notify.wording import labels
from terrain_runtime.privacy import Sealer, SealingError

_PAGE = """<!doctype html>
<html lang="{{ lang }}" dir="{{ 'rtl' if lang == 'ar' else 'ltr' }}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{ t.alert }} {{ a.severity }} {{ p.market }}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:1em auto;padding:0 1em}
dt{font-weight:bold}.state{padding:.2em .5em;background:#eee}</style></head>
<body>
<h1>{{ t.alert }} {{ a.severity }} — {{ p.market }} {{ p.city or '' }}</h1>
<p>{{ t.state }}: <span class="state" id="state">{{ state }}</span></p>
<dl>
<dt>{{ t.customer }}</dt><dd>{{ p.customer_kind }} / {{ t.segment }}: {{ p.segment or '-' }}</dd>
<dt>{{ t.satisfaction }}</dt><dd>{{ p.satisfaction }}/5</dd>
<dt>{{ t.rule }}</dt><dd>{{ a.rule_id }} ({{ a.ruleset_version }})</dd>
<dt>{{ t.signals }}</dt><dd>{{ (p.signals or []) | join(', ') or '-' }}</dd>
<dt>{{ t.verbatim }}</dt><dd id="verbatim">{{ p.verbatim or '-' }}</dd>
<dt>{{ t.location }}</dt><dd>{% if p.lat is not none and p.lon is not none %}
<a href="https://www.openstreetmap.org/?mlat={{ p.lat }}&amp;mlon={{ p.lon }}\
#map=16/{{ p.lat }}/{{ p.lon }}" rel="noreferrer" id="coordinates">{{ p.lat }}, {{ p.lon }}</a>
{% else %}{{ p.place or '-' }}{% endif %}</dd>
{% if phone %}<dt>{{ t.phone }}</dt>
<dd><a href="tel:{{ phone }}" id="phone">{{ phone }}</a></dd>{% endif %}
{% if a.acknowledgement_note %}<dt>{{ t.ack }}</dt><dd>{{ a.acknowledgement_note }}</dd>{% endif %}
{% if a.resolution_note %}<dt>{{ t.resolve }}</dt><dd>{{ a.resolution_note }}</dd>{% endif %}
</dl>
{% if not a.resolved_at %}
<form method="post" action="/alerts/{{ a.alert_id }}">
<input type="hidden" name="m" value="{{ link.manager_id }}">
<input type="hidden" name="e" value="{{ link.expires }}">
<input type="hidden" name="s" value="{{ link.signature }}">
<label>{{ t.note }} <textarea name="note" maxlength="2000"></textarea></label><br>
{% if not a.acknowledged_at %}
<button name="action" value="acknowledge" id="acknowledge">{{ t.ack }}</button>{% endif %}
<button name="action" value="resolve" id="resolve">{{ t.resolve }}</button>
</form>
{% endif %}
</body></html>
"""

_REFUSED = """<!doctype html><html><head><meta charset="utf-8"><title>403</title></head>
<body><h1 id="refused">{{ t.refused }}</h1></body></html>"""

_templates = Environment(
    loader=DictLoader({"page.html": _PAGE, "refused.html": _REFUSED}),
    autoescape=select_autoescape(default=True, default_for_string=True),
)

# The link carries a bearer credential: never cache it, never send it on as a referrer.
_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'"
    ),
}


def create_web_app(
    *, pool: asyncpg.Pool, sealer: Sealer, link_secret: bytes, now: Callable[[], datetime]
) -> Starlette:
    def refused() -> HTMLResponse:
        body = _templates.get_template("refused.html").render(t=labels("en"))
        return HTMLResponse(body, status_code=403, headers=_HEADERS)

    def parse_link(alert_id: str, values: dict[str, str]) -> AckLink | None:
        try:
            link = AckLink(UUID(alert_id), UUID(values["m"]), int(values["e"]), values["s"])
        except (KeyError, ValueError):
            return None
        return link if link_is_valid(link, link_secret, now()) else None

    async def page(request: Request) -> Response:
        link = parse_link(request.path_params["alert_id"], dict(request.query_params))
        if link is None:
            return refused()
        async with pool.acquire() as connection:
            alert = await alert_for_manager(
                connection=connection, alert_id=link.alert_id, manager_id=link.manager_id
            )
            sealed = None
            if alert is not None and alert.payload.get("consent"):
                sealed = await sealed_customer_number(
                    connection=connection, submission_id=alert.submission_id
                )
        if alert is None:
            return refused()
        phone = None
        if sealed:
            try:
                phone = sealer.open(sealed, context=alert.submission_id.bytes)
            except SealingError:
                phone = None
        words = labels(alert.language)
        if alert.resolved_at:
            state = words["resolved"]
        elif alert.acknowledged_at:
            state = words["acknowledged"]
        elif alert.escalated_at:
            state = words["escalated"]
        else:
            state = words["open"]
        body = _templates.get_template("page.html").render(
            a=alert,
            p=alert.payload,
            t=words,
            lang=alert.language,
            state=state,
            phone=phone,
            link=link,
        )
        return HTMLResponse(body, headers=_HEADERS)

    async def act(request: Request) -> Response:
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        link = parse_link(request.path_params["alert_id"], values)
        if link is None:
            return refused()
        note = (values.get("note") or "").strip()[:2000] or None
        action = values.get("action")
        if action == "acknowledge":
            async with pool.acquire() as connection:
                acknowledged = await acknowledge(
                    connection=connection,
                    alert_id=link.alert_id,
                    manager_id=link.manager_id,
                    note=note,
                    now=now(),
                )
            if acknowledged is not None and acknowledged.waited_s is not None:
                ALERT_ACKNOWLEDGEMENT.labels(acknowledged.severity).observe(
                    max(acknowledged.waited_s, 0.0)
                )
            done = acknowledged is not None
        elif action == "resolve":
            async with pool.acquire() as connection:
                done = await resolve(
                    connection=connection,
                    alert_id=link.alert_id,
                    manager_id=link.manager_id,
                    note=note,
                    now=now(),
                )
        else:
            return PlainTextResponse("unknown action", status_code=400)
        if not done:
            return refused()
        return RedirectResponse(
            f"/alerts/{link.alert_id}?{link.query()}", status_code=303, headers=_HEADERS
        )

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/alerts/{alert_id}", page, methods=["GET"]),
            Route("/alerts/{alert_id}", act, methods=["POST"]),
            Route("/metrics", metrics),
            Route("/healthz", healthz),
        ]
    )
