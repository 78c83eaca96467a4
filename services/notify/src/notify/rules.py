"""The alert rule set: declarative data, validated when notify starts.

A rule set is a JSON document (``TERRAIN_NOTIFY_RULES_FILE``, or the default shipped with
the service) with a version, an ordered list of rules and per-market overrides. Changing
the rules is editing that file and restarting: no code is deployed, and every alert stores
the version that decided it. A document with an unknown field, signal, topic, kind or
severity is refused at start rather than silently never firing.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from terrain_contracts.markets import Market
from terrain_contracts.submission import CustomerKind, Topic
from terrain_contracts.vocabulary import Severity, Signal


class Rule(BaseModel):
    """Fires when every condition it sets holds; an unset condition is no constraint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    severity: Severity
    urgent_flag: bool = False
    any_signals: frozenset[Signal] = frozenset()
    max_satisfaction: int | None = Field(default=None, ge=1, le=5)
    any_topics: frozenset[Topic] = frozenset()
    customer_kinds: frozenset[CustomerKind] = frozenset()

    @field_validator("any_signals", mode="before")
    @classmethod
    def _known_signals(cls, value: Any, info: ValidationInfo) -> Any:
        # Named here, with the rule: the enum's own error would list the signals without
        # saying which rule asked for one that does not exist.
        if isinstance(value, list | tuple | set | frozenset):
            unknown = {s for s in value if isinstance(s, str)} - set(Signal)
            if unknown:
                rule = info.data.get("id", "?")
                raise ValueError(f"rule {rule}: unknown signals {sorted(unknown)}")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Rule:
        if not (
            self.urgent_flag
            or self.any_signals
            or self.max_satisfaction is not None
            or self.any_topics
            or self.customer_kinds
        ):
            raise ValueError(f"rule {self.id} has no condition: it would alert on everything")
        return self


class MarketOverride(BaseModel):
    """A market's changes: rules replaced or added (by id), and default rules switched off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    disable: frozenset[str] = frozenset()
    rules: tuple[Rule, ...] = ()


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    rules: tuple[Rule, ...] = Field(min_length=1)
    markets: dict[Market, MarketOverride] = Field(default_factory=dict)
    _by_market: dict[str, tuple[Rule, ...]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _ids_unique_and_overrides_consistent(self) -> RuleSet:
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        for market, override in self.markets.items():
            unknown = override.disable - set(ids)
            if unknown:
                raise ValueError(f"{market.value}: disables unknown rules {sorted(unknown)}")
        return self

    def for_market(self, market: str) -> tuple[Rule, ...]:
        """The market's rules in order of severity (P1 first), then document order.

        Asked once per enriched record: worked out once per market (the set is frozen)."""
        rules = self._by_market.get(market)
        if rules is None:
            rules = self._by_market[market] = self._rules_of(market)
        return rules

    def _rules_of(self, market: str) -> tuple[Rule, ...]:
        override = self.markets.get(Market(market)) if market in Market.__members__ else None
        if override is None:
            rules = list(self.rules)
        else:
            replaced = {r.id: r for r in override.rules}
            rules = [replaced.pop(r.id, r) for r in self.rules if r.id not in override.disable]
            rules.extend(replaced.values())
        return tuple(sorted(rules, key=lambda r: r.severity))


def load_ruleset(path: Path | None = None) -> RuleSet:
    """The rule set at ``path`` or the default one; raises ValueError when it is invalid."""
    if path is None:
        text = resources.files("notify").joinpath("default_rules.json").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    try:
        return RuleSet.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValueError) as error:
        raise ValueError(f"invalid rule set {path or 'default'}: {error}") from error
