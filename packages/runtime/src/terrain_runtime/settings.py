"""Settings base shared by every service and the CLI.

Values come from the environment (and a local ``.env``); defaults work on a developer's
machine against ``deploy/local``. Secrets have development defaults so that ``make demo``
runs from nothing, and the settings refuse to start with any of those defaults outside
``development`` and ``test``: a production deployment that forgot a secret fails at boot,
not silently with a key that is published in this repository.
"""

from __future__ import annotations

import base64
from enum import StrEnum
from typing import Any, Protocol, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from terrain_runtime.privacy import Pseudonymiser, Sealer

DEV_PSEUDONYM_SECRET = "dev-pseudonym-secret-change-me"  # noqa: S105 - refused outside dev
DEV_SEALING_KEY = base64.b64encode(b"dev-sealing-key-32-bytes-change!").decode()
DEV_DATABASE_URL = "postgresql://terrain:terrain@127.0.0.1:54329/terrain"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class TerrainSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TERRAIN_", env_file=".env", extra="ignore", populate_by_name=True
    )

    environment: Environment = Environment.DEVELOPMENT
    service_version: str = "0.1.0"
    log_level: str = "INFO"

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "TERRAIN_KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_replication_factor: int = Field(default=1, ge=1)
    topic_namespace: str = Field(
        default="", description="Prefix of every topic name: isolates tests and environments."
    )
    database_url: SecretStr = Field(
        default=SecretStr(DEV_DATABASE_URL),
        validation_alias=AliasChoices("DATABASE_URL", "TERRAIN_DATABASE_URL"),
    )
    db_pool_min: int = 1
    db_pool_max: int = 10

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "TERRAIN_OTLP_ENDPOINT"),
    )
    metrics_port: int | None = Field(
        default=None,
        description="Serve Prometheus /metrics on this port (consumers have no HTTP server).",
    )
    otel_sample_ratio: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Share of ordinary traces exported; urgent, failed and alerted submissions"
        " are always (terrain_runtime.sampling).",
    )
    consumer_lag_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="How often a consumer service reads its group's committed and end offsets.",
    )

    # Keyed pseudonym of phone numbers: the analysts' join key. Rotating means a new key id;
    # segments are re-imported under the new key, old pseudonyms keep their key id prefix.
    pseudonym_key_id: str = Field(default="k1", pattern=r"^[A-Za-z0-9_-]{1,16}$")
    pseudonym_secret: SecretStr = SecretStr(DEV_PSEUDONYM_SECRET)
    # Sealing (AES-256-GCM) of consented numbers: the key never goes to the database.
    sealing_key_id: str = Field(default="s1", pattern=r"^[A-Za-z0-9_-]{1,16}$")
    sealing_key: SecretStr = SecretStr(DEV_SEALING_KEY)

    @field_validator("sealing_key")
    @classmethod
    def _sealing_key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except ValueError as error:
            raise ValueError("sealing_key must be base64") from error
        if len(raw) != 32:
            raise ValueError("sealing_key must decode to 32 bytes (AES-256)")
        return value

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Self:
        if self.environment in (Environment.DEVELOPMENT, Environment.TEST):
            return self
        for name, value in self.secrets().items():
            if value in _DEFAULT_SECRETS:
                raise ValueError(
                    f"{name} still has its development default; set it for {self.environment}"
                )
        return self

    def secrets(self) -> dict[str, str]:
        """Every secret setting, by name: subclasses add theirs so the default check sees them."""
        return {
            "pseudonym_secret": self.pseudonym_secret.get_secret_value(),
            "sealing_key": self.sealing_key.get_secret_value(),
            "database_url": _password_of(self.database_url.get_secret_value()),
        }

    def pseudonymiser(self) -> Pseudonymiser:
        return Pseudonymiser(
            self.pseudonym_key_id, self.pseudonym_secret.get_secret_value().encode()
        )

    def sealer(self) -> Sealer:
        key = base64.b64decode(self.sealing_key.get_secret_value())
        return Sealer({self.sealing_key_id: key}, self.sealing_key_id)

    def topic(self, base: Any) -> str:
        """Name of a registry topic in this deployment's namespace."""
        name: str = base.name(self.topic_namespace)
        return name


class ConsumerSettings(Protocol):
    """What the shared consumer machinery (the pipeline, the lag monitor) reads of a
    consumer service's settings, EnrichSettings or NotifySettings: its broker, group,
    topics, retry ceiling and dead-letter limit."""

    kafka_bootstrap_servers: str
    consumer_lag_interval_s: float
    store_retry_max_s: float
    dlq_max_consecutive: int
    dlq_max_ratio: float
    dlq_window: int

    @property
    def group_id(self) -> str: ...

    def topic(self, base: Any) -> str: ...


def _password_of(url: str) -> str:
    # Only the password part of the URL is a secret worth refusing.
    userinfo = url.split("://", 1)[-1].split("@", 1)[0] if "@" in url else ""
    return userinfo.split(":", 1)[1] if ":" in userinfo else ""


_DEFAULT_SECRETS: set[str] = {
    DEV_PSEUDONYM_SECRET,
    DEV_SEALING_KEY,
    "terrain",
    "",
    "dev-webhook-secret-change-me",
    "dev-ack-link-secret-change-me",
}
