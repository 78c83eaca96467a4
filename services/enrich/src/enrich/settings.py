from __future__ import annotations

from pydantic import Field

from terrain_runtime.settings import TerrainSettings


class EnrichSettings(TerrainSettings):
    consumer_group: str = Field(default="terrain-enrich", validation_alias="TERRAIN_ENRICH_GROUP")
    batch_max_records: int = Field(default=500, ge=1, le=5000)
    batch_timeout_ms: int = Field(
        default=50, description="How long a poll waits to fill a batch: latency vs throughput."
    )
    # A poll returns whatever is fetched, and aiokafka fetches a partition again only once
    # its records are consumed: with the broker answering at the first byte, batches stay
    # at one or two records a partition (10-40) whatever the rate. Holding a fetch until
    # 1 MiB is there, for at most 50 ms, makes a batch about rate x 50 ms; a backlog fills
    # it at once. That 50 ms is the most it adds to an urgent alert's path.
    batch_fetch_min_bytes: int = Field(
        default=1024 * 1024, ge=1, description="What a fetch waits for, unless the wait ends."
    )
    batch_fetch_max_wait_ms: int = Field(
        default=50, ge=0, description="Longest a fetch waits for batch_fetch_min_bytes."
    )
    dlq_max_consecutive: int = Field(default=200, description="Stop after this many in a row.")
    dlq_max_ratio: float = Field(default=0.5, description="Stop above this share of failures...")
    dlq_window: int = Field(default=2000, description="...over this many recent records.")
    segment_cache_entries: int = Field(
        default=200_000, ge=0, description="CRM histories kept in memory (about 0.3 KB each)."
    )
    segment_cache_ttl_s: float = Field(
        default=300.0, ge=0, description="How soon a new segment import is seen."
    )
    # Short: once PostgreSQL is back, the backlog (and its urgent alerts) moves within
    # seconds; a retry every few seconds costs a down server nothing.
    store_retry_max_s: float = Field(
        default=5.0, description="Longest pause between retries while PostgreSQL is down."
    )

    @property
    def group_id(self) -> str:
        """The consumer group, in this deployment's namespace like the topics it reads."""
        return f"{self.topic_namespace}{self.consumer_group}"
