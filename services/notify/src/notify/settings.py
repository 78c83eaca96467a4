from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from terrain_runtime.settings import TerrainSettings

DEV_WEBHOOK_SECRET = "dev-webhook-secret-change-me"  # noqa: S105 - refused outside dev
DEV_ACK_LINK_SECRET = "dev-ack-link-secret-change-me"  # noqa: S105 - refused outside dev


class NotifySettings(TerrainSettings):
    consumer_group: str = Field(default="terrain-notify", validation_alias="TERRAIN_NOTIFY_GROUP")
    batch_max_records: int = 500
    batch_timeout_ms: int = 20
    # As enrich's: with the broker answering a fetch at its first byte, batches stay at a
    # few records a partition whatever the rate, and each pays a fetch, the pipeline and
    # an offset commit (most of notify's CPU per calm record at 1,000 visits/s). Holding a
    # fetch until 1 MiB is there, for at most 50 ms, makes a batch about rate x 50 ms; that
    # 50 ms is the most it adds to an urgent alert's path.
    batch_fetch_min_bytes: int = Field(
        default=1024 * 1024, ge=1, description="What a fetch waits for, unless the wait ends."
    )
    batch_fetch_max_wait_ms: int = Field(
        default=50, ge=0, description="Longest a fetch waits for batch_fetch_min_bytes."
    )
    # Notify's own dead-letter limit: a deployment that fails on everything stops.
    dlq_max_consecutive: int = Field(default=200, description="Stop after this many in a row.")
    dlq_max_ratio: float = Field(default=0.5, description="Stop above this share of failures...")
    dlq_window: int = Field(default=2000, description="...over this many recent records.")
    # Short: once PostgreSQL is back, the backlog (and its urgent alerts) moves within
    # seconds; a retry every few seconds costs a down server nothing.
    store_retry_max_s: float = Field(
        default=5.0, description="Longest pause between retries while PostgreSQL is down."
    )
    rules_file: Path | None = Field(
        default=None,
        validation_alias="TERRAIN_NOTIFY_RULES_FILE",
        description="JSON rule set; the default one ships with the service.",
    )

    # The acknowledgement page and /metrics.
    http_host: str = Field(default="127.0.0.1", validation_alias="TERRAIN_NOTIFY_HOST")
    http_port: int = Field(default=8002, validation_alias="TERRAIN_NOTIFY_PORT")
    public_base_url: str = Field(
        default="http://127.0.0.1:8002", description="Where managers open acknowledgement links."
    )
    ack_link_secret: SecretStr = SecretStr(DEV_ACK_LINK_SECRET)
    ack_link_ttl_s: float = Field(default=7 * 24 * 3600, description="Lifetime of a link.")

    webhook_signing_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    webhook_timeout_s: float = 5.0

    smtp_host: str | None = Field(default=None, description="No host: no email channel.")
    smtp_port: int = 25
    smtp_sender: str = "Terrain <alerts@terrain.invalid>"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False

    sms_gateway_url: str | None = Field(default=None, description="No URL: no SMS channel.")
    sms_gateway_username: str | None = None
    sms_gateway_password: SecretStr | None = None

    sender_poll_s: float = Field(default=1.0, description="Idle poll of the outbox.")
    sender_lease_s: float = Field(
        default=10.0,
        gt=1.0,
        description="A claim's lease, renewed while delivering: a crashed sender's alerts "
        "are due again after at most this long.",
    )
    sender_batch: int = 50
    sender_concurrency: int = 64
    sender_per_market: int = Field(
        default=8, description="Deliveries in flight per market: one slow market cannot hog all."
    )
    max_attempts: int = 12
    retry_base_s: float = 1.0
    retry_max_s: float = 300.0

    # Noise control: P2 alerts beyond this many per manager and window go into a digest.
    throttle_p2_per_window: int = 5
    throttle_window_s: float = 3600.0
    digest_interval_s: float = 900.0

    # Acknowledgement SLAs before escalation to the next level.
    sla_p1_minutes: float = 15.0
    sla_p2_working_hours: float = 4.0
    escalation_poll_s: float = 30.0

    def secrets(self) -> dict[str, str]:
        found = {
            **super().secrets(),
            "webhook_signing_secret": self.webhook_signing_secret.get_secret_value(),
            "ack_link_secret": self.ack_link_secret.get_secret_value(),
        }
        # Optional channels: their credentials are checked only when the channel is on.
        if self.smtp_host and self.smtp_username:
            found["smtp_password"] = (
                self.smtp_password.get_secret_value() if self.smtp_password else ""
            )
        if self.sms_gateway_url and self.sms_gateway_username:
            found["sms_gateway_password"] = (
                self.sms_gateway_password.get_secret_value() if self.sms_gateway_password else ""
            )
        return found

    @property
    def group_id(self) -> str:
        """The consumer group, in this deployment's namespace like the topics it reads."""
        return f"{self.topic_namespace}{self.consumer_group}"
