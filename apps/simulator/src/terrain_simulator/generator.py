"""A deterministic field day: who meets whom, where, what they say, and how the phone sends it.

Pure: the same seed gives the same day, whatever the scale (visits are generated lazily,
one after the other, so a million visits need no million-element plan in memory beyond
what the caller keeps). Every visit knows what should happen to it: accepted or rejected
(and why), urgent or not, so the run can be checked against the promises afterwards.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import phonenumbers

from terrain_contracts.markets import Market
from terrain_simulator.geography import ACROSS_BORDER, CITIES, City
from terrain_simulator.verbatims import LANGUAGE_TAGS, MARKET_LANGUAGES, VERBATIMS

# Visits per market roughly follow the operator's footprint (15,000 on the day).
MARKET_WEIGHTS: dict[Market, int] = {
    Market.CI: 14, Market.SN: 12, Market.CD: 12, Market.EG: 12, Market.CM: 10, Market.MA: 10,
    Market.ML: 7, Market.BF: 7, Market.MG: 6, Market.GN: 6, Market.JO: 5, Market.TN: 5,
    Market.SL: 4, Market.LR: 3, Market.BW: 3, Market.CF: 2, Market.GW: 2,
}  # fmt: skip
FUNCTIONS = ("sales", "network", "finance", "hr", "it", "legal", "marketing", "customer_care",
             "management", "other")  # fmt: skip
FUNCTION_WEIGHTS = (22, 14, 8, 6, 8, 3, 9, 18, 7, 5)
KINDS = ("consumer", "orange_money", "enterprise", "partner")
KIND_WEIGHTS = (55, 22, 13, 10)
THEMES = ("praise", "complaint", "money_lost", "fraud", "network_outage", "safety_hazard",
          "churn_threat", "staff_conduct", "silent")  # fmt: skip
THEME_WEIGHTS = (33, 44, 3, 2, 3, 1, 6, 3, 5)
URGENT_THEMES = {"money_lost": 0.7, "fraud": 0.7, "safety_hazard": 0.8, "network_outage": 0.4}
THEME_TOPICS: dict[str, tuple[str, ...]] = {
    "praise": ("network_coverage", "orange_money", "customer_service", "shop_experience", "offers"),
    "complaint": ("data_speed", "pricing", "voice_quality", "offers", "billing", "device"),
    "money_lost": ("orange_money",),
    "fraud": ("orange_money",),
    "network_outage": ("network_coverage",),
    "safety_hazard": ("network_coverage", "other"),
    "churn_threat": ("pricing", "network_coverage", "data_speed"),
    "staff_conduct": ("customer_service", "shop_experience"),
    "silent": ("other", "offers", "data_speed"),
}
SATISFACTION: dict[str, tuple[int, ...]] = {
    "praise": (4, 5, 5), "complaint": (2, 3, 3, 2), "money_lost": (1,), "fraud": (1, 1, 2),
    "network_outage": (1, 2), "safety_hazard": (2, 3), "churn_threat": (1, 2),
    "staff_conduct": (1, 2, 2), "silent": (3, 4),
}  # fmt: skip
APP_VERSIONS = ("2.2.0", "2.3.1", "2.4.0")
APP_WEIGHTS = (10, 60, 30)
INVALID_KINDS = ("satisfaction", "market", "latitude", "topics", "msisdn", "timezone")


@dataclass(frozen=True, slots=True)
class PlannedVisit:
    """One visit and what Terrain must do with it."""

    index: int
    submission_id: str
    market: Market
    document: dict[str, Any]
    theme: str
    urgent: bool
    expected_valid: bool
    invalid_field: str | None
    sends: int  # 1, or more for resends of the same visit
    channel: str  # "single" (sent at once) or "batch" (an offline outbox flushed later)
    # What each send after the first carries: the same recorded visit, stamped anew.
    resends: tuple[dict[str, Any], ...] = ()

    @property
    def documents(self) -> tuple[dict[str, Any], ...]:
        """Every send of the visit, in order: the first, then its resends."""
        return (self.document, *self.resends)


@dataclass(frozen=True, slots=True)
class DayOptions:
    visits: int = 15_000
    seed: int = 20250415
    campaign_id: str = "mcmb-2025"
    invalid_share: float = 0.02
    resend_share: float = 0.05
    outbox_share: float = 0.35
    no_gps_share: float = 0.07
    low_accuracy_share: float = 0.04
    across_border_share: float = 0.01
    consent_share: float = 0.6
    # How many times a resent visit goes out: mostly twice, sometimes three times.
    resend_copies: tuple[int, ...] = (2, 2, 3)


def _msisdn(rng: random.Random, market: Market) -> str:
    example = phonenumbers.example_number_for_type(
        market.value, phonenumbers.PhoneNumberType.MOBILE
    )
    assert example is not None  # libphonenumber has a mobile example for each of the 17
    national = phonenumbers.national_significant_number(example)
    digits = national[:-5] + "".join(rng.choice("0123456789") for _ in range(5))
    number = phonenumbers.parse(digits, market.value)
    style = rng.random()
    if style < 0.6:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    if style < 0.9:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _local_time(moment: datetime, offset: timedelta) -> str:
    """RFC 3339 with the device's own offset, as phones in different time zones send it."""
    hours = int(offset.total_seconds() // 3600)
    local = (moment + offset).replace(tzinfo=None).isoformat(timespec="seconds")
    return f"{local}+{hours:02d}:00"


def _topics(rng: random.Random, choices: tuple[str, ...]) -> list[str]:
    if rng.random() < 0.3 and len(choices) > 1:
        return sorted(rng.sample(choices, k=2))
    return [rng.choice(choices)]


def _jitter(rng: random.Random, city: City, km: float) -> tuple[float, float]:
    # ~111 km per degree: a gaussian of `km` around the city centre.
    return (
        round(city.lat + rng.gauss(0, km / 111), 6),
        round(city.lon + rng.gauss(0, km / 111), 6),
    )


def _invalidate(rng: random.Random, document: dict[str, Any]) -> str:
    kind = rng.choice(INVALID_KINDS)
    if kind == "satisfaction":
        document["feedback"]["satisfaction"] = 7
        return "feedback.satisfaction"
    if kind == "market":
        document["agent"]["market"] = "FR"
        return "agent.market"
    if kind == "latitude":
        document["location"] = {"lat": 123.4, "lon": 10.0}
        return "location.lat"
    if kind == "topics":
        document["feedback"]["topics"] = []
        return "feedback.topics"
    if kind == "msisdn":
        document["customer"]["msisdn"] = "12"
        return "customer.msisdn"
    document["collected_at"] = document["collected_at"][:19]  # no offset
    return "collected_at"


def resend(document: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The next send of ``document`` as a field app's outbox makes it: the same recorded
    content, a fresh (later) ``sent_at``, and now and then a newer ``app`` block because
    the app was updated in between."""
    again = {**document, "app": dict(document.get("app") or {})}
    later = datetime.fromisoformat(document["sent_at"]) + timedelta(seconds=rng.uniform(1, 90))
    again["sent_at"] = later.isoformat(timespec="seconds")
    version = again["app"].get("version")
    if version in APP_VERSIONS[:-1] and rng.random() < 0.25:
        again["app"]["version"] = APP_VERSIONS[APP_VERSIONS.index(version) + 1]
    return again


def field_day(options: DayOptions, *, now: datetime) -> Iterator[PlannedVisit]:
    """The visits of one campaign day, in the order the phones send them."""
    rng = random.Random(options.seed)
    markets = list(MARKET_WEIGHTS)
    market_weights = list(MARKET_WEIGHTS.values())
    for index in range(options.visits):
        market = rng.choices(markets, market_weights)[0]
        cities = CITIES[market]
        city = rng.choices(cities, [c.weight for c in cities])[0]
        theme = rng.choices(THEMES, THEME_WEIGHTS)[0]
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        if theme in ("money_lost", "fraud") and rng.random() < 0.8:
            kind = "orange_money"
        channel = "batch" if rng.random() < options.outbox_share else "single"
        delay = timedelta(
            seconds=rng.uniform(3600, 9 * 3600) if channel == "batch" else rng.uniform(5, 900)
        )
        collected = now - delay
        sent = now - timedelta(seconds=rng.uniform(0, 2))
        tz_offset = timedelta(hours=rng.choice((0, 1, 2, 3)))
        document: dict[str, Any] = {
            "submission_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "campaign_id": options.campaign_id,
            "collected_at": _local_time(collected, tz_offset),
            "sent_at": sent.isoformat(timespec="seconds"),
            "agent": {
                "employee_id": f"{market.value}-{rng.randrange(1, 99999):06d}",
                "function": rng.choices(FUNCTIONS, FUNCTION_WEIGHTS)[0],
                "market": market.value,
            },
            "customer": {"kind": kind, "consent": rng.random() < options.consent_share},
            "feedback": {
                "topics": _topics(rng, THEME_TOPICS[theme]),
                "satisfaction": rng.choice(SATISFACTION[theme]),
            },
            "app": {"name": "field-app", "version": rng.choices(APP_VERSIONS, APP_WEIGHTS)[0],
                    "device_id": f"dev-{market.value}-{rng.randrange(1, 400)}"},
        }  # fmt: skip
        roll = rng.random()
        if roll < options.no_gps_share:
            document["location"] = {"place": f"Marché central, {city.name}"}
        elif roll < options.no_gps_share + options.across_border_share and market in ACROSS_BORDER:
            lat, lon = _jitter(rng, ACROSS_BORDER[market], 2)
            document["location"] = {"lat": lat, "lon": lon, "accuracy_m": 15}
        else:
            lat, lon = _jitter(rng, city, 4)
            poor = rng.random() < options.low_accuracy_share
            accuracy = rng.uniform(800, 3000) if poor else rng.uniform(4, 60)
            document["location"] = {"lat": lat, "lon": lon, "accuracy_m": round(accuracy, 1)}
        if rng.random() < 0.7:
            document["customer"]["msisdn"] = _msisdn(rng, market)
        if kind == "enterprise":
            document["customer"]["company"] = rng.choice(
                ("Brasseries Réunies", "Transports du Sahel", "Clinique Espoir", "Hôtel du Fleuve",
                 "Société Minière de l'Est", "Cimenterie Nationale")
            )  # fmt: skip
        if theme != "silent":
            language = rng.choice(MARKET_LANGUAGES[market])
            options_by_language = VERBATIMS[theme]
            if language not in options_by_language:
                language = "fr" if "fr" in options_by_language else next(iter(options_by_language))
            document["feedback"]["verbatim"] = rng.choice(options_by_language[language])
            document["feedback"]["language"] = LANGUAGE_TAGS[language]
        if rng.random() < 0.8:
            document["feedback"]["nps"] = min(
                10, max(0, document["feedback"]["satisfaction"] * 2 + rng.randint(-2, 1))
            )
        urgent = theme in URGENT_THEMES and rng.random() < URGENT_THEMES[theme]
        if urgent:
            document["feedback"]["urgent"] = True
        if document["app"]["version"] == "2.4.0":  # a newer app sends fields we do not know yet
            document["visit_duration_s"] = rng.randint(120, 1200)
            document["feedback"]["photo_count"] = rng.randint(0, 3)
        invalid_field = None
        if rng.random() < options.invalid_share:
            invalid_field = _invalidate(rng, document)
            urgent = False  # a rejected visit cannot alert anyone
        sends = 1
        if rng.random() < options.resend_share:
            sends = rng.choice(options.resend_copies)
        # A generator of its own, so the day's visits stay those of the seed.
        copies = random.Random(f"{options.seed}:{index}")
        resends: list[dict[str, Any]] = []
        for _ in range(1, sends):
            resends.append(resend(resends[-1] if resends else document, copies))
        yield PlannedVisit(
            index=index,
            submission_id=document["submission_id"],
            market=market,
            document=document,
            theme=theme,
            urgent=urgent,
            expected_valid=invalid_field is None,
            invalid_field=invalid_field,
            sends=sends,
            channel=channel,
            resends=tuple(resends),
        )
