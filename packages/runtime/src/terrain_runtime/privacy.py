"""Phone numbers out of clear text: E.164 normalisation, keyed pseudonym, sealing.

The pseudonym is an HMAC-SHA-256 of the E.164 number under a secret key, prefixed with the
key id so keys can rotate: the same number always gives the same pseudonym under one key
(the join key between submissions and CRM segments), and nobody without the key can test
a guessed number against it, which a plain hash of a 9-digit number would allow.

Sealing is AES-256-GCM with the submission id as associated data: a sealed number only
opens for the submission it was sealed for, and the key lives outside the database.

Free text (a verbatim, a field a newer app added) may hold a number or an email address
too: ``redact_contacts`` replaces each with a placeholder carrying the same pseudonym,
``[phone:k1:<hex>]`` or ``[email:k1:<hex>]``, so no path carries it in clear and analysts
can still join a number quoted in a verbatim with ``msisdn_hash``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from functools import lru_cache

import phonenumbers
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from terrain_contracts.markets import Market


class InvalidPhoneNumber(ValueError):
    """The text is not a phone number we can normalise (the message says why)."""


def normalise_msisdn(raw: str, default_region: str) -> str:
    """E.164 form of ``raw``; a number without country code is read as ``default_region``'s."""
    text = raw.strip()
    if not text:
        raise InvalidPhoneNumber("is empty")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhoneNumber(f"is not a phone number ({error})") from None
    # is_possible (length per region) rather than is_valid (allocated ranges): a real
    # customer on a newly opened range must not be turned away by stale metadata.
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhoneNumber(
            f"is not a possible number for region {default_region} or its prefix"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class Pseudonymiser:
    def __init__(self, key_id: str, secret: bytes) -> None:
        if not secret:
            raise ValueError("pseudonym secret is empty")
        self.key_id = key_id
        self._secret = secret

    def pseudonym(self, e164: str) -> str:
        # UTF-8 is ASCII for an E.164 number; an email address may not be ASCII.
        digest = hmac.new(self._secret, e164.encode(), hashlib.sha256).hexdigest()
        return f"{self.key_id}:{digest}"


# Seven digits, each at most three characters from the next: the shortest number of the 17
# markets is 8 digits, so text without such a run (nearly every verbatim) never meets the
# matcher, which costs tens of microseconds per call. `\d` takes Arabic-Indic digits too.
_DIGIT_RUN = re.compile(r"\d(?:\D{0,3}\d){6}")
_EMAIL_OR_PLACEHOLDER = re.compile(
    r"\[(?:phone|email):[\w-]+:[0-9a-f]{64}\]|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
)
# What people write right after an amount in the 17 markets (and before it, for symbols):
# "200 000 000 GNF" and "1 500 000 Ar" are possible numbers in Guinea and Madagascar, and
# must stay amounts. A percentage is not a number either.
# Words that also start ordinary sentences are left out ("le" is the Egyptian pound's
# abbreviation and the French article of "appelez le 77 ...").
_CURRENCY_AFTER = re.compile(
    r"\s*(?:%|f\s?cfa\b|cfa\b|xof\b|xaf\b|gnf\b|fg\b|ar\b|ariary|mga\b|mad\b|dhs?\b|dirhams?|"
    r"dinars?|tnd\b|jod\b|jd\b|egp\b|livres?\b|pounds?\b|leones?\b|sll\b|sle\b|lrd\b|bwp\b|"
    r"pula\b|cdf\b|fc\b|francs?\b|usd\b|eur\b|euros?\b|dollars?\b|[$€£]|جنيه|دينار|درهم)",
    re.IGNORECASE,
)
_CURRENCY_BEFORE = re.compile(r"(?:[$€£]|\b(?:usd|eur|egp|jod|bwp|lrd|p))\s*$", re.IGNORECASE)
# A date the matcher takes for a number ("2025-04-15" of a timestamp, "12.03.2025").
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})")


class RedactionBudget:
    """Characters of text the number matcher may still read, shared by the texts of one
    request. The matcher costs about 5 microseconds a character of digit-heavy text: a
    crafted 5 MB batch would be 25 s of CPU. Past the budget, runs of digits are replaced by
    ``[digits]`` without a pseudonym: still no number in clear, at the cost of one regex."""

    def __init__(self, chars: int) -> None:
        self.chars_left = chars

    def spend(self, chars: int) -> bool:
        if chars > self.chars_left:
            self.chars_left = 0
            return False
        self.chars_left -= chars
        return True


def redact_contacts(
    text: str,
    *,
    region: str,
    pseudonymiser: Pseudonymiser,
    budget: RedactionBudget | None = None,
) -> str:
    """``text`` with every phone number and email address replaced by its placeholder.

    Numbers are found by phonenumbers' matcher with ``region`` (the agent's market) as the
    default country, so "77 123 45 67", "77.123.45.67", "+221 77..." and "00221..." are all
    one number; the leniency is POSSIBLE (length per region) for the reason
    ``normalise_msisdn`` gives. The matcher leaves most dates and times alone, and so does
    this function for dates written 2025-04-15 or 12.03.2025 and for amounts (a possible
    number followed by a currency or a percent sign, or after a currency symbol). A bare
    9-digit amount without its currency, in a market of 9-digit numbers, is taken for a
    number: a lost amount is better than a number in clear. The email pseudonym is the
    HMAC of the lowercased address. Placeholders already in the text are kept as they
    are, so redacting twice changes nothing.

    Numbers written one after the other with only spaces between them are one run the
    matcher skips; such runs are cut into numbers here. A text with more runs than any
    visit holds has the rest of its digits replaced by ``[digits]``, without a pseudonym.
    """
    if "@" not in text and "[" not in text:
        return _redact_phones(text, region, pseudonymiser, budget)
    pieces: list[str] = []
    last = 0
    for found in _EMAIL_OR_PLACEHOLDER.finditer(text):
        pieces.append(_redact_phones(text[last : found.start()], region, pseudonymiser, budget))
        token = found.group()
        pieces.append(
            token if token.startswith("[") else f"[email:{pseudonymiser.pseudonym(token.lower())}]"
        )
        last = found.end()
    pieces.append(_redact_phones(text[last:], region, pseudonymiser, budget))
    return "".join(pieces)


def _redact_phones(
    text: str, region: str, pseudonymiser: Pseudonymiser, budget: RedactionBudget | None
) -> str:
    if _DIGIT_RUN.search(text) is None:
        return text
    if budget is not None and not budget.spend(len(text)):
        return _DIGITS.sub(_NOT_SPLIT, text)

    def placeholder(number: phonenumbers.PhoneNumber) -> str:
        return f"[phone:{pseudonymiser.pseudonym(_e164(number))}]"

    # start, end, what replaces it (None: not a number, left as written)
    found: list[tuple[int, int, str | None]] = []
    for match in phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.POSSIBLE
    ):
        keep = _amount_or_date(text, match.start, match.end)
        found.append((match.start, match.end, None if keep else placeholder(match.number)))
    # Numbers written one after the other ("77 123 45 67 78 123 45 67") read as one run too
    # long to be a number, which the matcher skips: such runs are cut at their groups.
    runs = _RunSplitter(text, region, placeholder)
    gap_start = 0
    for start, end in [(start, end) for start, end, _ in found] + [(len(text), len(text))]:
        for run in _LONG_RUN.finditer(text, gap_start, start):
            if not _amount_or_date(text, run.start(), run.end()):  # a large amount is one
                found += runs.numbers(run.start(), run.end())
        gap_start = end
    found += _other_markets_numbers(text, found, region, placeholder)
    found.sort()
    pieces: list[str] = []
    last = 0
    for start, end, replacement in found:
        if replacement is not None:
            pieces += [text[last:start], replacement]
            last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


# The 17 markets, in the order the fallback below tries them. A customer in Dakar quotes
# his cousin's Malian number as "76 12 34 56" without the +223: not a possible number in
# Senegal, so the agent's market alone would leave it in clear.
_FALLBACK_REGIONS = tuple(market.value for market in Market)
# Eight digits or more, grouped as people write numbers: the shortest number of the 17
# markets. Seven-digit runs are left to the agent's market, since amounts written without
# their currency ("3 500 000") are that long.
_UNMATCHED_RUN = re.compile(r"(?<!\d)\+?\d(?:[ .\-()/]{0,2}\d){7,13}(?!\d)")
_FALLBACK_PARSES = 64


def _other_markets_numbers(
    text: str,
    found: list[tuple[int, int, str | None]],
    region: str,
    placeholder: Callable[[phonenumbers.PhoneNumber], str],
) -> list[tuple[int, int, str | None]]:
    """Runs of digits the agent's market did not read as a number but another of the 17
    markets would: a number in clear is worse than a long figure taken for one."""
    taken = [(start, end) for start, end, _ in found]
    extra: list[tuple[int, int, str | None]] = []
    parses_left = _FALLBACK_PARSES
    for run in _UNMATCHED_RUN.finditer(text):
        start, end = run.start(), run.end()
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            continue
        if _amount_or_date(text, start, end):
            continue
        written = run.group()
        if written.startswith("00"):
            written = "+" + written[2:]
        for other in _FALLBACK_REGIONS:
            if other == region or parses_left <= 0:
                continue
            parses_left -= 1
            try:
                number = phonenumbers.parse(written, other)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_possible_number(number):
                extra.append((start, end, placeholder(number)))
                break
        else:
            if parses_left <= 0:
                extra.append((start, end, _NOT_SPLIT))
    return extra


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _amount_or_date(text: str, start: int, end: int) -> bool:
    return bool(
        _CURRENCY_AFTER.match(text, end)
        or _CURRENCY_BEFORE.search(text, 0, start)
        or _DATE.fullmatch(text, start, end)
    )


# Fourteen digits or more with at most two separators between them: longer than one
# number of the 17 markets, so several written in a row.
_LONG_RUN = re.compile(r"\+?\d(?:[ .\-()/]{0,2}\d){13,}")
_DIGIT_GROUP = re.compile(r"\d+")


# What stands for the rest of the runs of a text that holds more of them than any visit
# does: beyond ``_RunSplitter.PARSES`` attempts its digits are taken out without a
# pseudonym, so no crafted text can make ingest spend more than a few milliseconds on it.
_NOT_SPLIT = "[digits]"
_DIGITS = re.compile(r"\+?\d(?:\D{0,3}\d){6,}")


class _RunSplitter:
    """Cuts runs of digit groups into numbers, each the longest possible number from a
    group on (so "07 07 12 34 56" is one number, not "07 07 12 3" and the rest)."""

    PARSES = 64

    def __init__(
        self, text: str, region: str, placeholder: Callable[[phonenumbers.PhoneNumber], str]
    ) -> None:
        self.text = text
        self.region = region
        self.placeholder = placeholder
        self.lengths, self.trunk = _national_lengths(region)
        self.parses_left = self.PARSES

    def numbers(self, start: int, end: int) -> list[tuple[int, int, str | None]]:
        text = self.text
        groups = [(g.start(), g.end()) for g in _DIGIT_GROUP.finditer(text, start, end)]
        found: list[tuple[int, int, str | None]] = []
        first = 0
        while first < len(groups):
            if self.parses_left <= 0:
                found.append((groups[first][0], end, _NOT_SPLIT))
                break
            plus = groups[first][0] > 0 and text[groups[first][0] - 1] == "+"
            digits = ""
            best: tuple[int, phonenumbers.PhoneNumber] | None = None
            for last in range(first, len(groups)):
                digits += text[groups[last][0] : groups[last][1]]
                if len(digits) > 17:
                    break
                international = plus or digits.startswith("00")
                if not ((international and len(digits) >= 8) or self._national(digits)):
                    continue
                self.parses_left -= 1
                written = "+" + digits[2:] if digits.startswith("00") else digits
                try:
                    number = phonenumbers.parse(("+" if plus else "") + written, self.region)
                except phonenumbers.NumberParseException:
                    continue
                if phonenumbers.is_possible_number(number):
                    best = (last, number)
            if best is None:
                first += 1
                continue
            last, number = best
            number_start = groups[first][0] - (1 if plus else 0)
            number_end = groups[last][1]
            keep = _amount_or_date(text, number_start, number_end)
            found.append((number_start, number_end, None if keep else self.placeholder(number)))
            first = last + 1
        return found

    def _national(self, digits: str) -> bool:
        if len(digits) in self.lengths:
            return True
        trunk = self.trunk
        return bool(trunk) and digits.startswith(trunk) and len(digits) - len(trunk) in self.lengths


@lru_cache(maxsize=64)
def _national_lengths(region: str) -> tuple[frozenset[int], str]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        return frozenset(range(7, 13)), ""
    return frozenset(metadata.general_desc.possible_length), metadata.national_prefix or ""


class SealingError(ValueError):
    """A sealed value that does not open: unknown key, tampered, or for another record."""


class Sealer:
    NONCE_BYTES = 12

    def __init__(self, keys: dict[str, bytes], current_key_id: str) -> None:
        if current_key_id not in keys:
            raise ValueError(f"current sealing key {current_key_id!r} is not among the keys")
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current_key_id = current_key_id

    def seal(self, plaintext: str, *, context: bytes) -> str:
        nonce = os.urandom(self.NONCE_BYTES)
        sealed = self._aead[self.current_key_id].encrypt(nonce, plaintext.encode(), context)
        return f"{self.current_key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, token: str, *, context: bytes) -> str:
        key_id, _, body = token.partition(":")
        aead = self._aead.get(key_id)
        if aead is None:
            raise SealingError(f"unknown sealing key id {key_id!r}")
        try:
            raw = base64.b64decode(body, validate=True)
            plain = aead.decrypt(raw[: self.NONCE_BYTES], raw[self.NONCE_BYTES :], context)
        except Exception as error:
            raise SealingError("sealed value does not open for this record") from error
        return plain.decode()
