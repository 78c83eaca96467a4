from __future__ import annotations

from pydantic import Field, SecretStr

from terrain_runtime.settings import TerrainSettings

DEV_WEBHOOK_SECRET = "dev-webhook-secret-change-me"  # noqa: S105 - refused outside dev


class NotifySettings(TerrainSettings):
    consumer_group: str = Field(default="terrain-notify", validation_alias="TERRAIN_NOTIFY_GROUP")
    batch_max_records: int = 500
    batch_timeout_ms: int = 20
    webhook_signing_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    webhook_timeout_s: float = 5.0
    public_base_url: str = Field(
        default="http://127.0.0.1:8002", description="Where managers open acknowledgement links."
    )
    sender_poll_s: float = Field(default=1.0, description="Idle poll of the outbox.")
    sender_batch: int = 50
    max_attempts: int = 12
    retry_base_s: float = 1.0
    retry_max_s: float = 300.0

    def secrets(self) -> dict[str, str]:
        return {
            **super().secrets(),
            "webhook_signing_secret": self.webhook_signing_secret.get_secret_value(),
        }

    @property
    def group_id(self) -> str:
        """The consumer group, in this deployment's namespace like the topics it reads."""
        return f"{self.topic_namespace}{self.consumer_group}"
