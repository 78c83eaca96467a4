"""Field-app contract, version 1: what a field device sends for one customer visit.

Every rule the field app must follow lives here, once: ingest validates with these models
and ``docs/contracts/schemas`` exports them for the app's team. Unknown fields are kept at
every level (``extra="allow"``): older and newer app versions are in the field at the same
time, and what we do not understand yet we store as-is rather than reject.

Numbers and booleans are strict: ``"5"`` is not a satisfaction score and ``1`` is not a
consent. An agent's app that sends the wrong type gets a 422 naming the field, which is
better than silently guessing on a customer's consent.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)

from terrain_contracts.markets import Market

VERBATIM_MAX_CHARS = 4000

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Strict floats still take JSON integers (lat 14) but refuse strings and booleans.
Number = StrictFloat


class AgentFunction(StrEnum):
    SALES = "sales"
    NETWORK = "network"
    FINANCE = "finance"
    HR = "hr"
    IT = "it"
    LEGAL = "legal"
    MARKETING = "marketing"
    CUSTOMER_CARE = "customer_care"
    MANAGEMENT = "management"
    OTHER = "other"


class CustomerKind(StrEnum):
    CONSUMER = "consumer"
    ENTERPRISE = "enterprise"
    ORANGE_MONEY = "orange_money"
    PARTNER = "partner"


class Topic(StrEnum):
    NETWORK_COVERAGE = "network_coverage"
    DATA_SPEED = "data_speed"
    VOICE_QUALITY = "voice_quality"
    ORANGE_MONEY = "orange_money"
    BILLING = "billing"
    PRICING = "pricing"
    OFFERS = "offers"
    CUSTOMER_SERVICE = "customer_service"
    SHOP_EXPERIENCE = "shop_experience"
    DEVICE = "device"
    OTHER = "other"


class _Open(BaseModel):
    """Base of every part of the contract: unknown fields are kept, floats must be finite."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False, str_max_length=8000)


class Agent(_Open):
    employee_id: ShortText = Field(description="Employee number.", examples=["SN-004512"])
    function: AgentFunction = Field(description="The agent's function in the company.")
    market: Market = Field(description="The market the agent works in; one of the 17.")


class Location(_Open):
    lat: Number | None = Field(default=None, ge=-90, le=90, description="WGS84 latitude.")
    lon: Number | None = Field(default=None, ge=-180, le=180, description="WGS84 longitude.")
    accuracy_m: Number | None = Field(default=None, ge=0, le=1_000_000, description="GPS accuracy.")
    place: ShortText | None = Field(default=None, description="Typed by the agent without GPS.")

    @model_validator(mode="after")
    def _lat_and_lon_together(self) -> Location:
        if (self.lat is None) != (self.lon is None):
            missing = "lon" if self.lon is None else "lat"
            raise ValueError(f"lat and lon come together: {missing} is missing")
        return self


class Customer(_Open):
    kind: CustomerKind = Field(description="Customer segment as seen by the agent.")
    consent: StrictBool = Field(
        description="The customer agreed to be recontacted; without it no number or name is kept."
    )
    msisdn: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        default=None, description="Phone number in any local or international format."
    )
    company: ShortText | None = Field(default=None, description="For enterprise customers.")


class Feedback(_Open):
    topics: list[Topic] = Field(min_length=1, max_length=len(Topic), description="At least one.")
    satisfaction: StrictInt = Field(ge=1, le=5, description="Customer satisfaction, 1 to 5.")
    nps: StrictInt | None = Field(default=None, ge=0, le=10, description="Likelihood to recommend.")
    verbatim: Annotated[str, StringConstraints(max_length=VERBATIM_MAX_CHARS)] | None = Field(
        default=None, description="The customer's words, any language."
    )
    language: (
        Annotated[
            str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)
        ]
        | None
    ) = Field(default=None, description="BCP 47 tag: the app's guess of the language.")
    urgent: StrictBool | None = Field(default=None, description="The agent marked it urgent.")

    @model_validator(mode="after")
    def _topics_unique(self) -> Feedback:
        if len(set(self.topics)) != len(self.topics):
            raise ValueError("topics must not repeat")
        return self


class AppInfo(_Open):
    name: Annotated[str, StringConstraints(max_length=100)] | None = None
    version: Annotated[str, StringConstraints(max_length=50)] | None = None
    device_id: Annotated[str, StringConstraints(max_length=100)] | None = None


class FieldSubmission(_Open):
    """One customer visit, as the field app sends it (contract version 1)."""

    submission_id: UUID = Field(
        description="Made on the device when the visit is saved: the idempotency key.",
        examples=["0b9f2f4e-6a4f-4c1e-9b53-2f1d3c7f9a10"],
    )
    campaign_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] = (
        Field(description="The yearly edition (`mcmb-2025`) or `continuous`.")
    )
    collected_at: AwareDatetime = Field(description="Device clock when the visit was saved.")
    sent_at: AwareDatetime | None = Field(
        default=None, description="Device clock when the app sent it."
    )
    agent: Agent
    location: Location | None = None
    customer: Customer
    feedback: Feedback
    app: AppInfo | None = None

    def extras(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
