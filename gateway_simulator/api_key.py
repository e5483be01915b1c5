"""The simulator's API key: like a real provider's, every request but ``/healthz`` must carry it.

The key is a shared secret between the simulator and its merchant (the shop), read from
``GATEWAY_API_KEY`` and sent as ``Authorization: Bearer <key>``. It is checked before any view runs,
unknown paths included, so that a stranger learns neither the ledger nor which routes exist; and it is
compared as a SHA-256 digest with ``hmac.compare_digest``, so the time an answer takes says nothing about
how much of a guess was right, nor how long the key is. A request without the key, or with another, is
answered 401 in the simulator's own error shape with ``WWW-Authenticate: Bearer`` (RFC 6750).

A key shorter than ``MIN_API_KEY_LENGTH`` is refused at start. Nobody types this key, so nothing is
gained by accepting ``secret`` or ``changeme``, the first words a guesser tries; a length cannot prove a
key random, which is why every refusal says how to make one that is.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from flask import Flask, Response, jsonify, request

API_KEY_VARIABLE = "GATEWAY_API_KEY"
MIN_API_KEY_LENGTH = 32
HOW_TO_MAKE_ONE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
OPEN_ENDPOINTS = frozenset({"healthz"})  # the load balancer's probe answers without a key
REALM = "gateway_simulator"


class ApiKeyError(ValueError):
    """No usable API key; the message names the variable and how to make a key, never the key itself."""


def checked_api_key(key: str | None) -> str:
    """``key`` if it is set, at least ``MIN_API_KEY_LENGTH`` long and fit for an HTTP header."""
    if not key:
        raise ApiKeyError(f"{API_KEY_VARIABLE} is not set; make one with `{HOW_TO_MAKE_ONE}`")
    if len(key) < MIN_API_KEY_LENGTH or not key.isascii() or not key.isprintable() or " " in key:
        raise ApiKeyError(
            f"{API_KEY_VARIABLE} must be at least {MIN_API_KEY_LENGTH} visible ASCII characters without "
            f"spaces; make one with `{HOW_TO_MAKE_ONE}`"
        )
    return key


def api_key_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The key in ``GATEWAY_API_KEY``, checked; ``ApiKeyError`` if it is missing or too weak."""
    return checked_api_key((os.environ if environ is None else environ).get(API_KEY_VARIABLE))


def require_api_key(app: Flask, api_key: str) -> None:
    """Answer 401 to every request to ``app`` that does not carry ``api_key`` (``OPEN_ENDPOINTS`` aside)."""
    expected = _digest(checked_api_key(api_key))

    @app.before_request
    def authenticate() -> Response | None:
        if request.endpoint in OPEN_ENDPOINTS:
            return None
        credentials = request.authorization
        if credentials is None or credentials.type != "bearer":
            return _unauthorized(f'Bearer realm="{REALM}"')
        # Digests of both, not the keys: ``compare_digest`` takes time in proportion to its inputs and
        # returns at once when their lengths differ, so raw keys would tell a guesser the key's length.
        if not hmac.compare_digest(_digest(credentials.token or ""), expected):
            return _unauthorized(f'Bearer realm="{REALM}", error="invalid_token"')
        return None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _unauthorized(challenge: str) -> Response:
    response = jsonify({"error": "unauthorized"})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = challenge
    return response
