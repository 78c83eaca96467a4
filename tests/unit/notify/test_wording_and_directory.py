"""What managers read, in their language, and the directory's CSV import."""

from __future__ import annotations

from typing import Any

import pytest

from notify.directory import parse_csv
from notify.wording import render, render_sms

ALERT: dict[str, Any] = {
    "alert_id": "a1",
    "market": "SN",
    "city": "Dakar",
    "customer_kind": "orange_money",
    "segment": "mass",
    "satisfaction": 1,
    "verbatim": "L'argent a été débité " + "x" * 600,
    "rule": "p1-signal",
    "severity": "P1",
    "signals": ["money_lost"],
    "ack_url": "https://terrain.example/alerts/a1?m=1&e=2&s=3",
}


@pytest.mark.parametrize(
    ("language", "words"), [("fr", "Règle"), ("en", "Rule"), ("ar", "القاعدة")]
)
def test_the_email_is_in_the_managers_language_with_everything_needed(
    language: str, words: str
) -> None:
    message = render(ALERT, language)
    assert words in message.text and "Dakar" in message.text and "money_lost" in message.text
    assert ALERT["ack_url"] in message.text and "P1" in message.subject


def test_a_digest_lists_each_alert_with_its_own_link() -> None:
    items = [{**ALERT, "ack_url": f"https://x/{i}"} for i in range(3)]
    text = render({"market": "SN", "digest": items}, "en").text
    assert all(f"https://x/{i}" in text for i in range(3))


def test_an_sms_is_short_and_keeps_the_link() -> None:
    text = render_sms(ALERT, "fr")
    assert len(text) <= 480 and ALERT["ack_url"] in text


def test_a_csv_of_managers_is_validated_line_by_line() -> None:
    good = (
        "market,name,role,level,email,sms,webhook,language,timezone,working_hours\n"
        "sn,Fatou,country_manager,1,fatou@example.sn,77 123 45 67,,fr,Africa/Dakar,\n"
        "*,Karim,regional_director,3,,+212612345678,https://hooks.example/k,ar,,\n"
    )
    first, second = parse_csv(good)
    assert (first.market, first.e164_sms(), first.timezone) == (
        "SN",
        "+221771234567",
        "Africa/Dakar",
    )
    assert (second.market, second.level, second.e164_sms()) == ("*", 3, "+212612345678")
    with pytest.raises(ValueError, match="line 2: timezone"):
        parse_csv("market,name,role,timezone\nSN,A,country_manager,Africa/Atlantis\n")
    with pytest.raises(ValueError, match="line 2: market"):
        parse_csv("market,name,role\nFR,A,country_manager\n")
    with pytest.raises(ValueError, match="line 3: sms"):
        parse_csv("market,name,role,sms\nSN,A,cx_lead,\nSN,B,cx_lead,12\n")
    with pytest.raises(ValueError, match="unknown columns"):
        parse_csv("market,name,role,phone\n")
