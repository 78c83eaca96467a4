"""Delivery channels. Each returns a detail on success and raises DeliveryFailed otherwise.

Every channel carries the alert id as its idempotency key (header, Message-ID, SMS
reference) so that a receiver can drop the rare duplicate a crash between "sent" and
"recorded" could cause.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
import httpx

from notify.wording import render, render_sms


class DeliveryFailed(Exception):
    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        super().__init__(detail)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where one manager receives alerts; ``sms`` is the opened number, kept in memory only."""

    email: str | None
    webhook_url: str | None
    sms: str | None
    language: str


class Channel(Protocol):
    name: str

    def reaches(self, recipient: Recipient) -> bool: ...

    async def deliver(self, recipient: Recipient, alert: dict[str, Any]) -> str: ...


def _http_outcome(response: httpx.Response) -> str:
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise DeliveryFailed(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        raise DeliveryFailed(f"HTTP {response.status_code}", permanent=True)
    return f"HTTP {response.status_code}"


def _signature(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class MarketClients:
    """One pooled HTTP client per market, created on first use and closed together.

    httpx's pool walks every connection it holds on each request and on each response
    (an expiry check that polls each idle socket): one client shared by every market
    holds up to ``sender_concurrency`` connections, and a webhook POST cost about twice
    the CPU at 50 in flight as at 8 (measured on loopback). A market has at most
    ``sender_per_market`` deliveries in flight, so its own pool stays that small, and a
    slow market's connections are not even in another's pool.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        # One TLS context for all: each client would load the CA bundle again (~1 MB each).
        self._tls = httpx.create_ssl_context()
        self._clients: dict[str, httpx.AsyncClient] = {}

    def of(self, market: str) -> httpx.AsyncClient:
        client = self._clients.get(market)
        if client is None:
            client = httpx.AsyncClient(timeout=self._timeout_s, verify=self._tls)
            self._clients[market] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


class WebhookChannel:
    name = "webhook"

    def __init__(self, client_of: Callable[[str], httpx.AsyncClient], secret: bytes) -> None:
        """``client_of(market)``: the pooled client that market's webhooks go through."""
        self._client_of = client_of
        self._secret = secret

    def reaches(self, recipient: Recipient) -> bool:
        return bool(recipient.webhook_url)

    async def deliver(self, recipient: Recipient, alert: dict[str, Any]) -> str:
        assert recipient.webhook_url
        body = json.dumps(alert, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            # Receivers deduplicate on this: a retry after a lost response carries the same id.
            "idempotency-key": str(alert["alert_id"]),
            "x-terrain-timestamp": timestamp,
            "x-terrain-signature": _signature(timestamp.encode() + b"." + body, self._secret),
        }
        try:
            client = self._client_of(str(alert.get("market", "")))
            response = await client.post(recipient.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}"[:300]) from None
        return _http_outcome(response)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 10.0


class EmailChannel:
    name = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    def reaches(self, recipient: Recipient) -> bool:
        return bool(recipient.email)

    async def deliver(self, recipient: Recipient, alert: dict[str, Any]) -> str:
        assert recipient.email
        rendered = render(alert, recipient.language)
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = recipient.email
        message["Subject"] = rendered.subject
        message["Message-ID"] = f"<{alert['alert_id']}@terrain.alerts>"
        message.set_content(rendered.text)
        try:
            await aiosmtplib.send(
                message,
                hostname=self._config.host,
                port=self._config.port,
                username=self._config.username,
                password=self._config.password,
                start_tls=self._config.starttls,
                timeout=self._config.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise DeliveryFailed(f"recipient refused: {error}"[:300], permanent=True) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}"[:300]) from None
        return "250 accepted"


class SmsGatewayChannel:
    """An HTTP SMS gateway: POST {to, text, reference} with basic authentication."""

    name = "sms"

    def __init__(
        self, client: httpx.AsyncClient, url: str, username: str | None, password: str | None
    ) -> None:
        self._client = client
        self._url = url
        self._auth: tuple[str | bytes, str | bytes] | None = (
            (username, password or "") if username else None
        )

    def reaches(self, recipient: Recipient) -> bool:
        return bool(recipient.sms)

    async def deliver(self, recipient: Recipient, alert: dict[str, Any]) -> str:
        assert recipient.sms
        body = {
            "to": recipient.sms,
            "text": render_sms(alert, recipient.language),
            "reference": str(alert["alert_id"]),
        }
        try:
            if self._auth is None:
                response = await self._client.post(self._url, json=body)
            else:
                response = await self._client.post(self._url, json=body, auth=self._auth)
        except httpx.HTTPError as error:
            # The message names the error type only: the URL is fine, the number is not.
            raise DeliveryFailed(f"{type(error).__name__}") from None
        return _http_outcome(response)
