"""Phone numbers out of clear text: E.164 normalisation, keyed pseudonym, sealing.

The pseudonym is an HMAC-SHA-256 of the E.164 number under a secret key, prefixed with the
key id so keys can rotate: the same number always gives the same pseudonym under one key
(the join key between submissions and CRM segments), and nobody without the key can test
a guessed number against it, which a plain hash of a 9-digit number would allow.

Sealing is AES-256-GCM with the submission id as associated data: a sealed number only
opens for the submission it was sealed for, and the key lives outside the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import phonenumbers
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


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
        digest = hmac.new(self._secret, e164.encode("ascii"), hashlib.sha256).hexdigest()
        return f"{self.key_id}:{digest}"


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
