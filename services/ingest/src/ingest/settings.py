from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from ingest.screening import UnknownFieldLimits
from terrain_runtime.settings import TerrainSettings


class IngestSettings(TerrainSettings):
    host: str = Field(default="127.0.0.1", validation_alias="TERRAIN_INGEST_HOST")
    port: int = Field(default=8000, validation_alias="TERRAIN_INGEST_PORT")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        validation_alias="TERRAIN_INGEST_WORKERS",
        description="Server processes accepting on the port, to use more than one core. Each "
        "has its own Kafka producer, device cache and database pool; the rate limit, "
        "max_in_flight and the body budget apply per process.",
    )
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024, description="Largest request body (a full batch)."
    )
    max_single_body_bytes: int = Field(
        default=64 * 1024, description="Largest single submission: 4,000 chars of verbatim fit."
    )
    max_buffered_body_bytes: int = Field(
        default=48 * 1024 * 1024,
        description="Bytes of bodies all requests together may hold while being read; past "
        "it requests are shed with 503 (memory stays bounded under a flood of big bodies).",
    )
    max_drained_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        description="After an early answer (413...), bytes of the body still read and "
        "dropped so that a client sending it in full reads the answer, not a reset.",
    )
    drain_timeout_s: float = Field(
        default=5.0, description="How long an early answer waits for the rest of a body."
    )
    unknown_field_max_depth: int = Field(
        default=8, ge=1, description="Objects and arrays nested in an unknown field's value."
    )
    unknown_field_max_keys: int = Field(default=100, ge=1, description="Keys per object.")
    unknown_field_max_items: int = Field(default=500, ge=1, description="Items per array.")
    unknown_field_max_chars: int = Field(
        default=8000, ge=1, description="Characters per string of an unknown field."
    )
    redaction_budget_chars: int = Field(
        default=200_000,
        ge=0,
        description="Characters of digit-heavy text per request searched for phone numbers "
        "(about 5 us each); past it, digits are masked without a pseudonym. A field day's "
        "batch of 500 needs a few thousand.",
    )
    batch_max_items: int = 500
    publish_timeout_s: float = Field(
        default=10.0, description="How long a request waits for Kafka before a 503."
    )
    device_cache_ttl_s: float = Field(
        default=5.0, description="Revocation takes effect within this many seconds."
    )
    device_cache_stale_s: float = Field(
        default=3600.0,
        description="While PostgreSQL does not answer, a device seen this recently is still "
        "let in (a revocation made meanwhile is seen once it answers again).",
    )
    device_lookup_timeout_s: float = Field(
        default=2.0, description="How long a request waits for the device directory."
    )
    receipt_timeout_s: float = Field(
        default=2.0, description="How long a receipt request waits for PostgreSQL."
    )
    receipt_connections: int | None = Field(
        default=None,
        ge=1,
        description="Pool connections the receipts may hold at once (default: half the"
        " pool): a fleet of apps back online checking their outboxes must leave connections"
        " to device authentication.",
    )
    rate_limit_per_minute: int = Field(
        default=600, description="Requests per device per minute before a 429."
    )
    rate_limit_burst: int = 120
    max_in_flight: int = Field(
        default=256, description="Requests in flight before ingest sheds load with a 503."
    )

    def receipt_connection_share(self) -> int:
        return self.receipt_connections or max(1, self.db_pool_max // 2)

    def unknown_field_limits(self) -> UnknownFieldLimits:
        return UnknownFieldLimits(
            depth=self.unknown_field_max_depth,
            keys=self.unknown_field_max_keys,
            items=self.unknown_field_max_items,
            string_chars=self.unknown_field_max_chars,
        )

    @model_validator(mode="after")
    def _one_full_batch_fits(self) -> Self:
        if self.max_buffered_body_bytes < self.max_body_bytes:
            raise ValueError("max_buffered_body_bytes must hold at least one max_body_bytes body")
        return self
