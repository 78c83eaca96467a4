"""The alert webhook: what a manager's system receives from notify's webhook channel.

Notify POSTs one JSON body per alert (``AlertWebhookV1``), or per digest of held P2 alerts
(``AlertDigestWebhookV1``), to the manager's webhook URL, with these headers:

- ``idempotency-key``: the alert id. A retry after a lost answer carries the same one, so
  the receiver drops a resend.
- ``x-terrain-timestamp``: Unix seconds when the body was signed.
- ``x-terrain-signature``: ``sha256=<hex>``, HMAC-SHA256 of ``<timestamp>.<body bytes>``
  under the deployment's webhook signing secret; the receiver recomputes it and refuses
  an old timestamp, so a captured body cannot be replayed later.

A 2xx answer is a delivery; 408, 429 and 5xx are retried with backoff; any other 4xx is
given up. A receiver ignores fields it does not know: optional fields are added to a
version, anything else is a new version. The body never holds the customer's number: the
acknowledgement page (``ack_url``) opens it, with the customer's consent only.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from terrain_contracts.markets import Market
from terrain_contracts.submission import CustomerKind, Topic
from terrain_contracts.vocabulary import Severity, Signal

# What fired besides the verbatim's signals: the agent flagged the visit as urgent.
AGENT_MARKED_URGENT = "agent_marked_urgent"

IDEMPOTENCY_KEY = "idempotency-key"
TIMESTAMP = "x-terrain-timestamp"
SIGNATURE = "x-terrain-signature"

Url = Annotated[str, Field(json_schema_extra={"format": "uri"})]


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    alert_id: UUID = Field(description="Also the idempotency-key header.")
    market: Market
    severity: Severity


class AlertWebhookV1(_Webhook):
    """One alert: the visit that triggered a rule, for one manager."""

    submission_id: UUID
    rule: str = Field(description="The rule that fired (notify's rules file).")
    signals: list[Signal | Literal["agent_marked_urgent"]] = Field(
        description="What fired: the verbatim's signals the rule matched, and"
        f" `{AGENT_MARKED_URGENT}` when the agent flagged the visit. A receiver ignores a"
        " value it does not know: signals are added to the vocabulary over time."
    )
    city: str | None
    customer_kind: CustomerKind
    segment: str | None = Field(description="The customer's CRM segment when visited.")
    satisfaction: int = Field(ge=1, le=5)
    topics: list[Topic]
    verbatim: str | None = Field(
        description="What the customer said, numbers and email addresses as placeholders."
    )
    lat: float | None
    lon: float | None
    place: str | None
    consent: bool = Field(description="The customer agreed to be called back.")
    collected_at: AwareDatetime
    received_at: AwareDatetime
    ack_url: Url = Field(
        description="The signed page where the manager acknowledges and resolves the alert"
        " (and sees the number to call back, with consent); it expires."
    )
    escalated_level: int | None = Field(
        default=None,
        description="Set when nobody acknowledged the alert in time: the ladder level it"
        " was escalated to.",
    )
    escalated_to: Literal["market", "regional"] | None = Field(
        default=None, description="Set with escalated_level: the market's ladder or above it."
    )


class AlertDigestWebhookV1(_Webhook):
    """The P2 alerts a manager received beyond the hourly allowance, sent together."""

    submission_id: UUID = Field(description="An id of the digest's own: it holds many visits.")
    severity: Literal[Severity.P2]
    rule: Literal["digest"]
    digest: list[AlertWebhookV1] = Field(
        description="Each alert as it would have been sent, with its own ack_url."
    )
