"""No phone number and no email address in clear anywhere, after a whole-stack run whose
visits carry them as people write them: in the verbatim (French, English, Arabic,
Portuguese, Malagasy), in unknown fields at the top level and nested, and in
customer.msisdn with and without consent. Every text, json, array and bytea column of
every table and view of the terrain and analytics schemas (found in information_schema),
every topic's keys, values and headers from the beginning, every service's log, and what
the webhook, SMTP and SMS receivers got are scanned. Amounts in the same verbatims
("50 000 FCFA") are not phone numbers and must survive."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import phonenumbers
import pytest

from terrain_simulator.simulate import ensure_devices
from terrain_testkit.factories import country_managers, field_submission, notify_receivers_env
from terrain_testkit.privacy import (
    database_text,
    emails_in,
    national_numbers,
    phone_numbers_in,
    topics_text,
)
from terrain_testkit.processes import Stack
from terrain_testkit.sinks import SmtpSink, WebhookSink

pytestmark = pytest.mark.timeout(180)

# Verbatims as agents type them: {phone} and {email} are filled per visit, the amount
# stays as written and must come out as written.
VERBATIMS: dict[str, tuple[str, str]] = {
    "fr": ("Appelez mon frère au {phone} ou écrivez à {email}. J'ai envoyé 50 000 FCFA hier, "
           "rien reçu.", "50 000 FCFA"),
    "en": ("Please call me back on {phone} or mail {email}; I paid 200 dollars for a bundle "
           "that never came.", "200 dollars"),
    "ar": ("اتصلوا بي على {phone} أو راسلوني على {email}، دفعت 200 دينار ولم يصل شيء",
           "200 دينار"),
    "pt": ("Liguem-me para {phone}, paguei 5 000 XOF e o dinheiro não chegou. Email: {email}",
           "5 000 XOF"),
    "mg": ("Antsoy aho amin'ny {phone} na {email}, nandoa 10 000 Ar aho nefa tsy tonga ny vola.",
           "10 000 Ar"),
}  # fmt: skip
MARKETS: dict[str, str] = {
    "SN": "fr", "CI": "fr", "CM": "fr", "ML": "fr", "CD": "fr", "BF": "fr", "MG": "mg",
    "GW": "pt", "LR": "en", "SL": "en", "BW": "en", "EG": "ar", "JO": "ar", "MA": "ar",
    "TN": "ar",
}  # fmt: skip


def written_forms(market: str, seed: int) -> list[str]:
    """One mobile number of ``market`` in the ways people write it."""
    example = phonenumbers.example_number_for_type(market, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    national = phonenumbers.national_significant_number(example)
    digits = f"{(seed * 7919) % 100000:05d}"
    number = phonenumbers.parse(national[:-5] + digits, market)
    spaced = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return [
        spaced,
        spaced.replace(" ", "."),
        spaced.replace(" ", "-"),
        international,
        international.replace("+", "00"),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        phonenumbers.national_significant_number(number),
    ]


def visits() -> list[tuple[dict[str, Any], dict[str, str], set[str], str]]:
    """(document, {number as written: market}, emails, amount) for each visit."""
    made = []
    for index, (market, language) in enumerate(MARKETS.items()):
        for copy in range(2):
            seed = index * 2 + copy + 1
            forms = written_forms(market, seed)
            form = forms[seed % len(forms)]
            other = written_forms(market, seed + 100)
            email = f"client.{market.lower()}{seed}@exemple-{seed}.com"
            nested_email = f"frere{seed}@mail{seed}.net"
            template, amount = VERBATIMS[language]
            document = field_submission(
                agent__market=market,
                agent__employee_id=f"{market}-{seed:06d}",
                customer__consent=bool(copy),
                customer__msisdn=other[seed % len(other)],
                customer__x_whatsapp=other[(seed + 3) % len(other)],
                feedback__verbatim=template.format(phone=form, email=email),
                feedback__language=language,
                feedback__urgent=True,
                feedback__topics=["orange_money"],
                feedback__satisfaction=1,
                feedback__x_details={"notes": [f"joindre le {forms[(seed + 1) % len(forms)]}",
                                               f"mail {nested_email}"]},
                x_contact=f"rappeler le {forms[(seed + 2) % len(forms)]} svp",
                telephone=forms[(seed + 4) % len(forms)],
                courriel=email,
            )  # fmt: skip
            document.pop("location", None)
            numbers = {f: market for f in (form, *forms[1:], *other)}
            made.append((document, numbers, {email, nested_email}, amount))
    return made


@pytest.fixture
def sms_gateway() -> Iterator[WebhookSink]:
    with WebhookSink() as gateway:
        yield gateway


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def stack_env(sms_gateway: WebhookSink, smtp: SmtpSink) -> dict[str, str]:
    return notify_receivers_env(smtp, sms_gateway)


async def test_no_phone_number_or_email_in_clear_anywhere_after_a_whole_stack_run(
    stack: Stack, database_url: str, namespace: str, smtp: SmtpSink, sms_gateway: WebhookSink
) -> None:
    planned = visits()
    connection = await asyncpg.connect(database_url)
    try:
        devices = await ensure_devices(connection, "privacy scan")
    finally:
        await connection.close()
    tokens = {market.value: found[0] for market, found in devices.items()}
    with WebhookSink() as hooks:
        async with country_managers(
            database_url, hooks, markets=list(MARKETS), email=True, sms=True
        ):
            async with httpx.AsyncClient(base_url=stack.ingest_url, timeout=15) as client:
                singles, batched = planned[::2], planned[1::2]
                for document, *_ in singles:
                    response = await client.post(
                        "/v1/submissions", json=document,
                        headers={"authorization": f"Bearer {tokens[document['agent']['market']]}"},
                    )  # fmt: skip
                    assert response.status_code == 202, response.text
                response = await client.post(
                    "/v1/submissions/batch",
                    json={"submissions": [d for d, *_ in batched]},
                    headers={"authorization": f"Bearer {tokens['SN']}"},
                )
                assert response.status_code == 200, response.text
                assert {r["status"] for r in response.json()["results"]} == {"accepted"}
            ids = {d["submission_id"] for d, *_ in planned}
            await _until_alerted(ids, hooks, smtp, sms_gateway)
            where_text = {
                **(await database_text(database_url)),
                **{f"topic {t}": text for t, text in (await topics_text(namespace)).items()},
                **{f"log {s}": path.read_text(errors="replace") for s, path in stack.logs.items()},
                "webhook receiver": hooks.text(),
                "SMTP receiver": smtp.text(),
                "SMS gateway": sms_gateway.text(),
            }
    numbers = national_numbers({n: m for _, found, _, _ in planned for n, m in found.items()})
    emails = {e for _, _, found, _ in planned for e in found}
    assert len(numbers) >= 2 * len(MARKETS)
    assert await _amounts_survive(database_url, planned) == []
    leaks = {
        where: sorted(phone_numbers_in(text, numbers) | emails_in(text, emails))
        for where, text in where_text.items()
    }
    leaks = {where: found for where, found in leaks.items() if found}
    assert not leaks, "in clear: " + "; ".join(
        f"{where}: {len(found)}" for where, found in sorted(leaks.items())
    )


async def _until_alerted(
    ids: set[str], hooks: WebhookSink, smtp: SmtpSink, sms_gateway: WebhookSink
) -> None:
    """Every channel got every visit's alert, or 30 s went by (the scan then reads what
    there is: a missing alert is another test's failure, a leak is this one's)."""
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        webhooks = {b.get("submission_id") for b in hooks.bodies()}
        if (
            ids <= webhooks
            and len(smtp.messages) >= len(ids)
            and len(sms_gateway.received) >= len(ids)
        ):
            return
        await asyncio.sleep(0.5)


async def _amounts_survive(
    database_url: str, planned: list[tuple[dict[str, Any], dict[str, str], set[str], str]]
) -> list[str]:
    """The visits whose amount is not in their stored verbatim as written."""
    connection = await asyncpg.connect(database_url)
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            rows = await connection.fetch(
                "SELECT submission_id::text, verbatim FROM terrain.submissions"
                " WHERE submission_id = ANY($1::uuid[])",
                [d["submission_id"] for d, *_ in planned],
            )
            if len(rows) == len(planned) or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await connection.close()
    verbatims = {r["submission_id"]: r["verbatim"] or "" for r in rows}
    return [
        f"{d['submission_id']}: {amount!r} not in {verbatims.get(d['submission_id'])!r}"
        for d, _, _, amount in planned
        if amount not in verbatims.get(d["submission_id"], "")
    ]
