"""Pure logic of ingest: from a validated field submission to the raw-topic envelope.

Nothing here does I/O. The route hands in the clock reading, the authenticated device and
the privacy primitives, so tests can check every rule without a broker.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError

from ingest.screening import FieldError, UnknownFieldLimits, screen
from terrain_contracts.markets import Market
from terrain_contracts.messages import (
    PseudonymisedCustomer,
    PseudonymisedFeedback,
    PseudonymisedLocation,
    PseudonymisedSubmission,
    SubmissionReceivedV1,
)
from terrain_contracts.submission import Feedback, FieldSubmission, Location
from terrain_runtime.privacy import (
    InvalidPhoneNumber,
    Pseudonymiser,
    RedactionBudget,
    Sealer,
    normalise_msisdn,
    redact_contacts,
)

# Keys of unknown fields, at any level, that name a person or hold their contact, in
# English, French and Portuguese: dropped when there is no consent, whatever app version
# added them. Compared once lowercased, without accents, with "-", "." and spaces as "_".
PERSONAL_NAME_KEYS = frozenset(
    {
        "name", "full_name", "fullname", "first_name", "firstname", "last_name", "lastname",
        "given_name", "family_name", "surname", "middle_name", "contact_name", "customer_name",
        "client_name", "contact", "contacts", "email", "e_mail", "mail", "email_address",
        "courriel", "adresse_email", "adresse_mail", "nom", "prenom", "prenoms", "nom_complet",
        "nom_de_famille", "nom_client", "nome", "nome_completo", "primeiro_nome",
        "ultimo_nome", "apelido", "sobrenome", "address", "adresse", "endereco",
    }
)  # fmt: skip

# Unknown fields that may hold a phone number (a newer app's "phone", "msisdn_2",
# "téléphone", "telefone", "whatsapp"...) never travel, with or without consent: only
# customer.msisdn is read, normalised and pseudonymised. Compared on the normalised key;
# "tel" counts only on its own ("tel_2", not "hotel").
_PHONE_KEY = re.compile(
    r"phone|msisdn|whatsapp|telefon|telemovel|(?<![a-z])(?:tel|tlf|movel|portable)(?![a-z])"
)
# In the customer object, "mobile", "number", "cell" or "gsm" can only be the customer's
# contact; elsewhere they are a telecom's vocabulary ("mobile_data", "cell_id"), kept
# (their values are still searched for numbers).
_CUSTOMER_PHONE_KEY = re.compile(
    _PHONE_KEY.pattern + r"|(?<![a-z])(?:mobile?|cell|gsm|number|numero|num)(?![a-z])"
)

# Read once: pydantic's class-level `model_fields` is a descriptor that cost 8 % of a batch.
_FIELDS_BUT_CUSTOMER = tuple(name for name in FieldSubmission.model_fields if name != "customer")
_FEEDBACK_FIELDS = tuple(Feedback.model_fields)
_LOCATION_FIELDS = tuple(Location.model_fields)


@dataclass(frozen=True, slots=True)
class Device:
    device_id: UUID
    market: Market
    label: str


class SubmissionRejected(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.problem}" for e in errors))
        self.errors = errors


def field_errors(error: ValidationError, prefix: str = "") -> list[FieldError]:
    """Pydantic errors as (dotted field path, readable problem), without echoing input values."""
    found = []
    for item in error.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in item["loc"])
        field = f"{prefix}.{path}" if prefix and path else (prefix or path or "(body)")
        found.append(FieldError(field, item["msg"]))
    return found


_DEFAULT_LIMITS = UnknownFieldLimits()


def validate(
    document: Any,
    prefix: str = "",
    limits: UnknownFieldLimits = _DEFAULT_LIMITS,
    *,
    check_text: bool = True,
) -> FieldSubmission:
    """The submission, or SubmissionRejected naming every field that is wrong: what the
    pipeline cannot carry (``ingest.screening``) and what breaks the contract."""
    if not isinstance(document, dict):
        raise SubmissionRejected([FieldError(prefix or "(body)", "must be a JSON object")])
    screened = screen(document, limits=limits, prefix=prefix, check_text=check_text)
    try:
        submission = FieldSubmission.model_validate(document)
    except ValidationError as error:
        # A key pydantic cannot read as text fails the whole document, with no field of its
        # own: screening has named that key already.
        named = {e.field for e in screened} | ({prefix or "(body)"} if screened else set())
        raise SubmissionRejected(
            _at_most(screened + [e for e in field_errors(error, prefix) if e.field not in named])
        ) from None
    if screened:
        raise SubmissionRejected(_at_most(screened))
    return submission


MAX_ERRORS = 50


def _at_most(errors: list[FieldError]) -> list[FieldError]:
    # A 5 MB body of bad strings would otherwise be answered with a 50 MB list of them.
    if len(errors) <= MAX_ERRORS:
        return errors
    more = len(errors) - MAX_ERRORS
    return [*errors[:MAX_ERRORS], FieldError("(more)", f"and {more} more problems")]


@lru_cache(maxsize=4096)
def _normalised_key(key: str) -> str:
    decomposed = unicodedata.normalize("NFKD", key.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\s.\-]+", "_", bare).strip("_")


def _kept(key: str, consent: bool, phone_key: re.Pattern[str] = _PHONE_KEY) -> bool:
    normalised = _normalised_key(key)
    if phone_key.search(normalised):
        return False
    return consent or normalised not in PERSONAL_NAME_KEYS


@dataclass(frozen=True, slots=True)
class _Cleaner:
    """Takes personal data out of free text and unknown fields, for one submission."""

    consent: bool
    region: str
    pseudonymiser: Pseudonymiser
    budget: RedactionBudget | None

    def text(self, text: str) -> str:
        return redact_contacts(
            text, region=self.region, pseudonymiser=self.pseudonymiser, budget=self.budget
        )

    def value(self, value: Any) -> Any:
        """An unknown field's value without the personal data it may hide, at any depth."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return self.extras(value)
        if isinstance(value, list):
            return [self.value(inner) for inner in value]
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1_000_000:
            # A number typed into a numeric field of a newer app is a number all the same.
            text = str(value)
            redacted = self.text(text)
            return value if redacted == text else redacted
        return value

    def extras(
        self, extra: dict[str, Any] | None, phone_key: re.Pattern[str] = _PHONE_KEY
    ) -> dict[str, Any]:
        """The unknown fields of one object, cleaned; a key may hold a number too."""
        if not extra:
            return {}
        return {
            self.text(key): self.value(value)
            for key, value in extra.items()
            if _kept(key, self.consent, phone_key)
        }

    def model(self, model: _ModelT | None) -> _ModelT | None:
        if model is None or not model.model_extra:
            return model
        known = {name: getattr(model, name) for name in type(model).model_fields}
        return type(model).model_construct(
            model.model_fields_set, **known, **self.extras(model.model_extra)
        )


_ModelT = TypeVar("_ModelT", bound=BaseModel)


def pseudonymise(
    submission: FieldSubmission,
    *,
    pseudonymiser: Pseudonymiser,
    sealer: Sealer,
    prefix: str = "",
    budget: RedactionBudget | None = None,
) -> PseudonymisedSubmission:
    """Take the phone number (and, without consent, any name) out of the submission, and
    every number or email address out of the free text and the unknown fields. ``budget``
    bounds the text searched for numbers across the submissions of one request."""
    customer = submission.customer
    clean = _Cleaner(customer.consent, submission.agent.market.value, pseudonymiser, budget)
    msisdn_hash: str | None = None
    msisdn_sealed: str | None = None
    if customer.msisdn is not None and customer.msisdn.strip():
        try:
            e164 = normalise_msisdn(customer.msisdn, submission.agent.market.value)
        except InvalidPhoneNumber as error:
            field = f"{prefix}.customer.msisdn" if prefix else "customer.msisdn"
            raise SubmissionRejected([FieldError(field, str(error))]) from None
        msisdn_hash = pseudonymiser.pseudonym(e164)
        if customer.consent:
            msisdn_sealed = sealer.seal(e164, context=submission.submission_id.bytes)
    extras = clean.extras(customer.model_extra, _CUSTOMER_PHONE_KEY)
    pseudonymous = PseudonymisedCustomer.model_validate(
        {
            **extras,
            "kind": customer.kind,
            "consent": customer.consent,
            "msisdn_hash": msisdn_hash,
            "msisdn_sealed": msisdn_sealed,
            "company": customer.company and clean.text(customer.company),
        }
    )
    # Everything but the customer was validated a moment ago as the same models:
    # constructing (not re-validating) saves a quarter of ingest's per-submission CPU.
    fields = {name: getattr(submission, name) for name in _FIELDS_BUT_CUSTOMER}
    for name in ("agent", "location", "app"):
        fields[name] = clean.model(fields[name])
    location = fields["location"]
    if location is not None and location.place:
        place = clean.text(location.place)
        if place != location.place:
            known = {name: getattr(location, name) for name in _LOCATION_FIELDS}
            fields["location"] = PseudonymisedLocation.model_construct(
                location.model_fields_set,
                **(known | {"place": place}),
                **(location.model_extra or {}),
            )
    feedback = submission.feedback
    verbatim = feedback.verbatim and clean.text(feedback.verbatim)
    # PseudonymisedFeedback only allows the longer verbatim placeholders make: an unchanged
    # Feedback serialises the same, and constructing one costs 5 us, 8 % of a submission.
    if verbatim != feedback.verbatim or feedback.model_extra:
        known = {name: getattr(feedback, name) for name in _FEEDBACK_FIELDS}
        fields["feedback"] = PseudonymisedFeedback.model_construct(
            feedback.model_fields_set,
            **(known | {"verbatim": verbatim}),
            **clean.extras(feedback.model_extra),
        )
    return PseudonymisedSubmission.model_construct(
        **fields,
        customer=pseudonymous,
        **clean.extras(submission.model_extra),
    )


def _seconds(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else round((later - earlier).total_seconds(), 3)


def receive(
    submission: FieldSubmission,
    *,
    device: Device,
    received_at: datetime,
    pseudonymiser: Pseudonymiser,
    sealer: Sealer,
    ingest_version: str,
    prefix: str = "",
    budget: RedactionBudget | None = None,
) -> SubmissionReceivedV1:
    """The raw-topic envelope for an accepted submission."""
    return SubmissionReceivedV1(
        submission_id=submission.submission_id,
        received_at=received_at,
        device_id=str(device.device_id),
        device_market=device.market,
        outbox_delay_s=_seconds(received_at, submission.collected_at),
        clock_skew_s=_seconds(received_at, submission.sent_at),
        ingest_version=ingest_version,
        submission=pseudonymise(
            submission, pseudonymiser=pseudonymiser, sealer=sealer, prefix=prefix, budget=budget
        ),
    )
