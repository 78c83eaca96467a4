"""Kafka messages: the versioned envelopes that travel between Terrain's services.

Compatibility rule: within a ``schema_version`` only optional fields may be added;
anything else is a new version on a new topic. Consumers accept the current and the
previous version: ``RAW_VERSIONS`` and ``STORED_VERSIONS`` map each version a consumer
decodes to its model, and ``decode_raw_submission`` / ``decode_stored_submission`` pick the
model by the record's ``schema_version``.

No message ever carries a phone number in clear: ingest replaces it with a keyed pseudonym
and, with consent, a sealed (encrypted) copy, before the first publish.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from terrain_contracts.markets import Market
from terrain_contracts.submission import (
    VERBATIM_MAX_CHARS,
    Agent,
    AppInfo,
    CustomerKind,
    Feedback,
    Location,
    _Open,
)
from terrain_contracts.vocabulary import FailureReason, Signal

_EnvelopeT = TypeVar("_EnvelopeT", bound=BaseModel)


# A placeholder (`[phone:k1:<64 hex>]`, 75 characters) replaces at least five characters
# ("a@b.c") and stands next to another only with a character between them: free text can
# grow up to 16 times once its numbers and email addresses are placeholders.
REDACTED_GROWTH = 16
REDACTED_VERBATIM_MAX_CHARS = REDACTED_GROWTH * VERBATIM_MAX_CHARS
RedactedShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=REDACTED_GROWTH * 200)
]


class PseudonymisedCustomer(_Open):
    """The customer once ingest has taken the number out of clear text."""

    kind: CustomerKind
    consent: bool
    msisdn_hash: str | None = Field(
        default=None,
        description="Keyed pseudonym of the E.164 number, `<key id>:<hex>`:"
        " the analysts' join key.",
        examples=["k1:4f1c0d2e..."],
    )
    msisdn_sealed: str | None = Field(
        default=None,
        description="With consent only: the number encrypted for the alerted manager's call-back,"
        " `<key id>:<base64 nonce+ciphertext>`.",
    )
    company: RedactedShortText | None = Field(
        default=None, description="Numbers and email addresses in it are placeholders."
    )

    @model_validator(mode="after")
    def _no_clear_number(self) -> PseudonymisedCustomer:
        extra = self.model_extra or {}
        if "msisdn" in extra:
            raise ValueError("a pseudonymised customer cannot carry msisdn")
        return self


class PseudonymisedLocation(Location):
    """The location once ingest has replaced each number and email address of the typed
    place by its placeholder."""

    place: RedactedShortText | None = None


class PseudonymisedFeedback(Feedback):
    """The feedback once ingest has replaced each number and email address of the verbatim
    by its placeholder: the verbatim can be longer than the app's limit."""

    verbatim: Annotated[str, StringConstraints(max_length=REDACTED_VERBATIM_MAX_CHARS)] | None = (
        None
    )


class PseudonymisedSubmission(_Open):
    """The field submission as it travels in Kafka: contract v1 with the customer pseudonymised."""

    submission_id: UUID
    campaign_id: str
    collected_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    agent: Agent
    location: PseudonymisedLocation | None = None
    customer: PseudonymisedCustomer
    feedback: PseudonymisedFeedback
    app: AppInfo | None = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubmissionReceivedV1(_Envelope):
    """Raw topic value: what ingest accepted, with the server's own facts about the request."""

    schema_version: Literal[1] = 1
    submission_id: UUID
    received_at: AwareDatetime = Field(description="Server clock when ingest accepted it.")
    device_id: str = Field(description="The authenticated field device (token id).")
    device_market: Market = Field(description="The market the device is registered in.")
    outbox_delay_s: float | None = Field(
        default=None, description="received_at - collected_at: how long it waited on the phone."
    )
    clock_skew_s: float | None = Field(
        default=None, description="received_at - sent_at: the device clock's error plus transit."
    )
    ingest_version: str
    submission: PseudonymisedSubmission


class GeoPlace(BaseModel):
    model_config = ConfigDict(extra="allow")

    country_code: str | None = None
    region: str | None = None
    city: str | None = None
    city_distance_km: float | None = None
    timezone: str | None = None
    h3_cell: str | None = None
    flags: list[str] = Field(default_factory=list)
    source: str | None = Field(
        default=None,
        description="Where the place comes from: gps, place (typed by the agent) or market.",
    )


class CustomerSegment(BaseModel):
    model_config = ConfigDict(extra="allow")

    segment: str | None = None
    value_tier: str | None = None
    plan: str | None = None
    tenure_months: int | None = None
    source: str = Field(default="customer_kind", description="crm, or the fallback used.")


class Enrichment(BaseModel):
    model_config = ConfigDict(extra="allow")

    geo: GeoPlace = Field(default_factory=GeoPlace)
    segment: CustomerSegment = Field(default_factory=CustomerSegment)
    language: str | None = None
    # Plain strings on the wire, not the enum: a consumer of v1 keeps reading records that
    # carry a signal added to the vocabulary after it was built.
    signals: list[str] = Field(
        default_factory=list,
        description="Signals read in the verbatim, in this order: " + ", ".join(Signal) + ".",
    )
    enricher_version: str = "0"


class SubmissionStoredV1(_Envelope):
    """Enriched topic value: published by enrich once the submission is durably stored."""

    schema_version: Literal[1] = 1
    submission_id: UUID
    market: Market
    received_at: AwareDatetime
    stored_at: AwareDatetime
    enrichment: Enrichment
    submission: PseudonymisedSubmission


class DeadLetterV1(_Envelope):
    """Dead-letter topic value: a self-describing failure, enough to replay or explain it."""

    schema_version: Literal[1] = 1
    failed_at: AwareDatetime
    service: str
    service_version: str
    consumer_group: str
    reason: FailureReason
    detail: str = Field(max_length=4000)
    source_topic: str
    source_partition: int
    source_offset: int
    key: str | None = None
    submission_id: UUID | None = None
    payload_sha256: str
    payload_b64: str = Field(
        description="The record's value as received, base64; empty above 256 KiB (Kafka's"
        " record size limit), when only terrain.failed_submissions keeps it."
    )
    content_sha256: str | None = Field(
        default=None,
        description="Conflicts: the content hash of this record (`v2:<hex>`), what the agent"
        " recorded without when or how the app sent it.",
    )
    existing_content_sha256: str | None = Field(
        default=None,
        description="Conflicts: the content hash of the submission stored first under this id.",
    )


class UnknownSchemaVersion(ValueError):
    """The record names a schema version this consumer does not know (yet, or any more)."""


def _decode(payload: bytes, versions: dict[int, type[_EnvelopeT]], what: str) -> _EnvelopeT:
    # Nearly every record is of the newest version and valid: validating the bytes at once
    # is a third cheaper than parsing, then validating. Only a record naming its version
    # is taken this way (the model's default would accept one that names none).
    try:
        decoded = versions[max(versions)].model_validate_json(payload)
    except ValidationError:
        pass  # the slower path below says precisely what is wrong
    else:
        if "schema_version" in decoded.model_fields_set:
            return decoded
    # Peek at the version first so an unknown version is reported as such, not as a
    # confusing list of validation errors against the wrong model.
    head = json.loads(payload)
    if not isinstance(head, dict):
        raise ValueError(f"{what} must be a JSON object")
    version = head.get("schema_version")
    model = versions.get(version) if isinstance(version, int) else None
    if model is None:
        raise UnknownSchemaVersion(
            f"{what} schema_version {version!r} is not one of {sorted(versions)}"
        )
    return model.model_validate(head)


RAW_VERSIONS: dict[int, type[SubmissionReceivedV1]] = {1: SubmissionReceivedV1}
STORED_VERSIONS: dict[int, type[SubmissionStoredV1]] = {1: SubmissionStoredV1}


def decode_raw_submission(payload: bytes) -> SubmissionReceivedV1:
    """Decode a raw-topic record; raises ValueError (incl. UnknownSchemaVersion) when invalid."""
    return _decode(payload, RAW_VERSIONS, "raw submission")


def decode_stored_submission(payload: bytes) -> SubmissionStoredV1:
    """Decode an enriched-topic record; raises ValueError (incl. UnknownSchemaVersion)."""
    return _decode(payload, STORED_VERSIONS, "stored submission")


_SUBMISSION_KEY = b'"submission":'
# The envelope's other members, serialised as its model would (UUID, datetimes).
_HEAD: TypeAdapter[dict[str, object]] = TypeAdapter(dict[str, object])


def raw_submission_json(raw: bytes) -> bytes | None:
    """The ``submission`` value of a raw-topic record already decoded, as it arrived: its
    JSON text, when the record's layout makes that certain without parsing it again, else
    None. That layout is what ``model_dump_json`` writes (the submission is the last member,
    the envelope's only object); the test is exact for any valid record:

    - ``"submission":`` occurs once: a key token (inside a string a quote is escaped, so
      no string holds it), and the envelope's own key, since the submission is required;
    - the envelope ends in ``}}``: its last member's value is an object, so it is the
      submission (any other member is a scalar, and of duplicate keys the last one wins).
    """
    if raw.count(_SUBMISSION_KEY) != 1:
        return None
    end = raw.rstrip()
    if not end.endswith(b"}"):
        return None
    value = end[raw.index(_SUBMISSION_KEY) + len(_SUBMISSION_KEY) : -1].strip()
    return value if value.startswith(b"{") and value.endswith(b"}") else None


def encode_stored_submission(
    raw: bytes,
    *,
    submission_id: UUID,
    received_at: datetime,
    stored_at: datetime,
    enrichment: Enrichment,
    submission: PseudonymisedSubmission,
) -> bytes:
    """The enriched-topic value of the raw record ``raw`` (decoded as ``submission``): a
    ``SubmissionStoredV1``, its submission spliced as it arrived instead of serialised
    again (a model dump of the whole document was most of the cost of a record). It decodes
    to the same model as the dump: the same bytes the raw decode validated, validated by
    the same model. A record of another layout is dumped."""
    document = raw_submission_json(raw)
    if document is None:
        return (
            SubmissionStoredV1(
                submission_id=submission_id,
                market=submission.agent.market,
                received_at=received_at,
                stored_at=stored_at,
                enrichment=enrichment,
                submission=submission,
            )
            .model_dump_json()
            .encode()
        )
    head = _HEAD.dump_json(
        {
            "schema_version": 1,
            "submission_id": submission_id,
            "market": submission.agent.market,
            "received_at": received_at,
            "stored_at": stored_at,
        }
    )
    return b"".join(
        (
            head[:-1],
            b',"enrichment":',
            enrichment.__pydantic_serializer__.to_json(enrichment),
            b',"submission":',
            document,
            b"}",
        )
    )
