"""Operator keys: the credentials of the people (and scripts) who run the shop.

``SHOP_OPERATOR_KEYS`` holds one or more keys, separated by commas, so a new key can be added before the
old one is removed (rotation without downtime). Each entry is either the key itself or, better, its
SHA-256 as ``sha256:<64 hex digits>`` (``shop operator-key`` makes a key and prints both), so that the
environment, a secret store or a leaked process listing never holds a usable key. Either way only the
digests are kept in memory, and a presented key is compared to every digest in constant time.

A key is at least 32 visible ASCII characters and not one character repeated: a key is typed by no
one, so there is no reason to accept a guessable one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

MIN_KEY_LENGTH = 32
DIGEST_PREFIX = "sha256:"
FINGERPRINT_LENGTH = 12  # hex digits of the digest: names a key in logs and sessions, reveals nothing


class OperatorKeyError(ValueError):
    """An entry of ``SHOP_OPERATOR_KEYS`` is unusable; the message says why without echoing it."""


def digest_of(key: str) -> str:
    """The SHA-256 of a key, in hex: what is stored and compared (keys are random, so no slow hash)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh operator key: 43 URL-safe characters (256 random bits)."""
    return secrets.token_urlsafe(32)


def check_key_strength(key: str) -> None:
    """Refuse a key too short, with odd characters, or made of one repeated character."""
    if len(key) < MIN_KEY_LENGTH or not key.isascii() or not key.isprintable() or " " in key:
        raise OperatorKeyError(
            f"a key must be at least {MIN_KEY_LENGTH} visible ASCII characters without spaces"
        )
    if len(set(key)) == 1:
        raise OperatorKeyError("a key must not be one character repeated")


@dataclass(frozen=True)
class OperatorKeys:
    """The configured keys, as SHA-256 digests (hex); empty means no operator can authenticate."""

    digests: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> OperatorKeys:
        """Read ``SHOP_OPERATOR_KEYS``: keys and ``sha256:`` digests, separated by commas."""
        digests: list[str] = []
        for position, entry in enumerate((part.strip() for part in raw.split(",")), start=1):
            if not entry:
                continue
            if entry.startswith(DIGEST_PREFIX):
                digest = entry.removeprefix(DIGEST_PREFIX).lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise OperatorKeyError(f"entry {position}: a digest is 'sha256:' and 64 hex digits")
                digests.append(digest)
                continue
            try:
                check_key_strength(entry)
            except OperatorKeyError as error:
                raise OperatorKeyError(f"entry {position}: {error}") from None
            digests.append(digest_of(entry))
        return cls(tuple(digests))

    def __bool__(self) -> bool:
        return bool(self.digests)

    def fingerprint_of(self, presented: str) -> str | None:
        """The fingerprint of the configured key ``presented`` is, or None.

        Every digest is compared, whichever matches, so the time taken says nothing about which.
        """
        presented_digest = digest_of(presented)
        found: str | None = None
        for digest in self.digests:
            if hmac.compare_digest(digest, presented_digest):
                found = digest
        return None if found is None else found[:FINGERPRINT_LENGTH]

    def still_configured(self, fingerprint: str) -> bool:
        """Whether a key with this fingerprint is still configured (a removed key ends its sessions)."""
        return any(digest.startswith(fingerprint) for digest in self.digests)
