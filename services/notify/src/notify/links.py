"""Signed links: the acknowledgement page opens one alert for one manager, until the link
expires, and only with a link nobody changed (HMAC-SHA256 of alert, manager and expiry).

Pure logic: callers pass ``now``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


def _link_mac(alert_id: UUID, manager_id: UUID, expires: int, secret: bytes) -> str:
    message = f"{alert_id}.{manager_id}.{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AckLink:
    """What a link carries: which alert, for which manager, until when, and its signature."""

    alert_id: UUID
    manager_id: UUID
    expires: int
    signature: str

    def query(self) -> str:
        return f"m={self.manager_id}&e={self.expires}&s={self.signature}"


def ack_link(alert_id: UUID, manager_id: UUID, expires_at: datetime, secret: bytes) -> AckLink:
    """The link that opens ``alert_id`` for ``manager_id`` until ``expires_at``."""
    expires = int(expires_at.timestamp())
    return AckLink(alert_id, manager_id, expires, _link_mac(alert_id, manager_id, expires, secret))


def link_is_valid(link: AckLink, secret: bytes, now: datetime) -> bool:
    """True for an untampered link that has not expired (constant-time comparison)."""
    expected = _link_mac(link.alert_id, link.manager_id, link.expires, secret)
    return hmac.compare_digest(expected, link.signature) and now.timestamp() < link.expires
