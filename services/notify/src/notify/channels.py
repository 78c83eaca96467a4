"""Delivery channels. Each returns normally on success and raises DeliveryFailed otherwise."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from notify.logic import sign


class DeliveryFailed(Exception):
    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        super().__init__(detail)
        self.permanent = permanent


class WebhookChannel:
    name = "webhook"

    def __init__(self, client: httpx.AsyncClient, secret: bytes) -> None:
        self._client = client
        self._secret = secret

    async def deliver(self, url: str, alert: dict[str, Any]) -> str:
        body = json.dumps(alert, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            # Receivers deduplicate on this: a retry after a lost response carries the same id.
            "idempotency-key": str(alert["alert_id"]),
            "x-terrain-timestamp": timestamp,
            "x-terrain-signature": sign(timestamp.encode() + b"." + body, self._secret),
        }
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}"[:300]) from None
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise DeliveryFailed(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise DeliveryFailed(f"HTTP {response.status_code}", permanent=True)
        return f"HTTP {response.status_code}"
