"""Topic registry: every Kafka topic Terrain uses, with its contract and its owners.

Topic names carry their schema version (``.v1``): a breaking change to a message is a new
model *and* a new topic, so old and new consumers can run side by side during a rollout.
A deployment-wide ``namespace`` prefix lets tests (one fresh set of topics per test) and
several environments share one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from terrain_contracts.headers import DeadLetterHeaders, SubmissionHeaders
from terrain_contracts.messages import DeadLetterV1, SubmissionReceivedV1, SubmissionStoredV1

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: name, message contract (value and headers), key, sizing and who writes
    and reads it. Producers and consumers are the services by name, and ``cli`` for the
    operators' ``terrain failed replay``, which re-publishes a failure once it is fixed."""

    id: str
    base_name: str
    version: int
    value: type[BaseModel]
    headers: type[BaseModel]
    key: str
    partitions: int
    retention_ms: int
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    compatibility: Literal["backward"] = "backward"

    def name(self, namespace: str = "") -> str:
        return f"{namespace}{self.base_name}.v{self.version}"


SUBMISSIONS_RAW = TopicSpec(
    id="submissions_raw",
    base_name="terrain.submissions.raw",
    version=1,
    value=SubmissionReceivedV1,
    headers=SubmissionHeaders,
    key="submission_id",
    partitions=12,
    # Long enough to replay a whole campaign into a rebuilt database after the event.
    retention_ms=30 * DAY_MS,
    producers=("ingest", "cli"),
    consumers=("enrich",),
    description="Every submission ingest accepted (answered 2xx), pseudonymised.",
)

SUBMISSIONS_ENRICHED = TopicSpec(
    id="submissions_enriched",
    base_name="terrain.submissions.enriched",
    version=1,
    value=SubmissionStoredV1,
    headers=SubmissionHeaders,
    key="submission_id",
    partitions=12,
    retention_ms=7 * DAY_MS,
    producers=("enrich", "cli"),
    consumers=("notify",),
    description="Submissions stored in PostgreSQL, with geo, segment and text signals.",
)

DEAD_LETTERS = TopicSpec(
    id="dead_letters",
    base_name="terrain.deadletter",
    version=1,
    value=DeadLetterV1,
    headers=DeadLetterHeaders,
    key="source_topic/partition/offset",
    partitions=6,
    retention_ms=90 * DAY_MS,
    producers=("enrich", "notify"),
    consumers=(),
    description="Records a consumer could not process, with the reason; never retried blindly.",
)

TOPICS: tuple[TopicSpec, ...] = (SUBMISSIONS_RAW, SUBMISSIONS_ENRICHED, DEAD_LETTERS)
