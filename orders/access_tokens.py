"""An order's access token: what lets the customer who placed an order read, cancel or delete it.

The token is an HMAC of the order's ID under the web app's secret key (itsdangerous, Flask's own signing
library), handed to the customer in the 202 that answers ``POST /api/orders``. Nothing is stored: the
same order always has the same token, so a request sent again with its ``Idempotency-Key`` gets the same
token back, and a later notification can include it. A token opens one order only, and every token can
be withdrawn at once by moving the secret key (old keys stay valid while listed as fallbacks).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

from flask import current_app
from itsdangerous import Signer

SALT = "inverted-shop order access"


def _signer(secret_keys: Sequence[str]) -> Signer:
    # itsdangerous signs with the last key and accepts any of them: the newest goes last.
    return Signer(list(secret_keys), salt=SALT, digest_method=hashlib.sha256)


def access_token(order_id: uuid.UUID, secret_keys: Sequence[str]) -> str:
    """The token of ``order_id`` (``secret_keys``: oldest first, the signing key last)."""
    return _signer(secret_keys).get_signature(order_id.bytes).decode()


def grants_access(token: str, order_id: uuid.UUID, secret_keys: Sequence[str]) -> bool:
    """Whether ``token`` is ``order_id``'s token under any of ``secret_keys`` (compared in constant time)."""
    if not token.isascii():
        return False
    return _signer(secret_keys).verify_signature(order_id.bytes, token.encode())


def app_secret_keys() -> list[str]:
    """The running web app's keys, as the functions above take them: Flask's ``SECRET_KEY_FALLBACKS``
    (oldest first), then its ``SECRET_KEY``, which signs."""
    return [*current_app.config.get("SECRET_KEY_FALLBACKS", ()), current_app.secret_key]
