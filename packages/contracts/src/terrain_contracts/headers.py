"""Kafka record headers: what Terrain's producers put beside a message's value.

Every record is JSON and carries the W3C trace context of its submission, so a consumer
continues the trace of the field app's request (one submission, one trace, through batch
consumers). A dead letter also says why it failed and which service gave it up, so a
consumer of the dead-letter topic can filter without decoding the value. The models are
the headers' contract: the topic registry names one per topic and the AsyncAPI document
shows it; header values are text (Kafka carries them as UTF-8 bytes).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from terrain_contracts.vocabulary import FailureReason

CONTENT_TYPE = "content-type"
JSON = "application/json"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
BAGGAGE = "baggage"
# The W3C headers a record's trace context travels in, the ones a consumer reads.
TRACE_CONTEXT = (TRACEPARENT, TRACESTATE, BAGGAGE)
FAILURE_REASON = "terrain-reason"
FAILING_SERVICE = "terrain-service"
REPLAY_OF = "terrain-replay-of"

_TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
_TRACEPARENT = (
    "W3C Trace Context `traceparent` (version-trace id-parent id-flags) of the submission's"
    " trace: the consumer's spans for this record continue it."
)
_TRACESTATE = "W3C Trace Context `tracestate`, when the trace has vendor state."
_BAGGAGE = "W3C Baggage, passed on when the field app's request carried some."


def _absent_when_unset(alias: str, description: str, *, pattern: str | None = None) -> Any:
    """An optional header: absent, never null, when a record has none."""

    def no_default(schema: dict[str, Any]) -> None:
        schema.pop("default", None)
        if pattern is not None:
            schema["pattern"] = pattern

    return Field(
        default=None,
        alias=alias,
        description=description,
        pattern=pattern,
        json_schema_extra=no_default,
    )


class _RecordHeaders(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    content_type: Literal["application/json"] = Field(
        alias=CONTENT_TYPE, description="The value is a JSON document."
    )
    tracestate: str | SkipJsonSchema[None] = _absent_when_unset(TRACESTATE, _TRACESTATE)


class SubmissionHeaders(_RecordHeaders):
    """Headers of a submission record (raw and enriched topics)."""

    traceparent: str = Field(
        alias=TRACEPARENT, pattern=_TRACEPARENT_PATTERN, description=_TRACEPARENT
    )
    baggage: str | SkipJsonSchema[None] = _absent_when_unset(BAGGAGE, _BAGGAGE)
    replay_of: str | SkipJsonSchema[None] = _absent_when_unset(
        REPLAY_OF,
        "Set by `terrain failed replay` only: the id of the failed submission"
        " (terrain.failed_submissions) whose original payload this record re-publishes.",
        pattern=r"^[0-9]+$",
    )


class DeadLetterHeaders(_RecordHeaders):
    """Headers of a dead letter: the reason and the service, and the failed record's own
    trace context, so the failure shows in the submission's trace."""

    reason: FailureReason = Field(
        alias=FAILURE_REASON, description="Why the record failed (the value's `reason`)."
    )
    service: str = Field(
        alias=FAILING_SERVICE, description="The service that gave the record up (`service`)."
    )
    traceparent: str | SkipJsonSchema[None] = _absent_when_unset(
        TRACEPARENT,
        _TRACEPARENT + " Absent when the failed record carried none.",
        pattern=_TRACEPARENT_PATTERN,
    )
