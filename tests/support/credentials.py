"""The credentials tests use, as a real client would: an operator key, and the web app's secret key.

The operator key is configured as its ``sha256:`` digest, as a deployment should; tests send the key.
"""

from __future__ import annotations

from typing import Any

from shop.access.operator_keys import DIGEST_PREFIX, OperatorKeys, digest_of
from shop.config import Settings

OPERATOR_KEY = "CRUNCHY-ARMCHAIR-operator-key-0123456789"
SECRET_KEY = "WOBBLY-TABLE-secret-key-for-tests-0123456789"
OPERATOR_KEYS_SETTING = f"{DIGEST_PREFIX}{digest_of(OPERATOR_KEY)}"  # what SHOP_OPERATOR_KEYS holds


def bearer(token: str) -> dict[str, str]:
    """The header that presents ``token`` (an operator key, an order's access token, a gateway API key)."""
    return {"Authorization": f"Bearer {token}"}


OPERATOR_HEADERS = bearer(OPERATOR_KEY)


def web_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a web app under test: this module's secret key and operator key, demo mode off."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": SECRET_KEY,
        "operator_keys": OperatorKeys.parse(OPERATOR_KEYS_SETTING),
    }
    return Settings(**{**values, **overrides})


def web_environment() -> dict[str, str]:
    """The same credentials as environment variables, for ``shop web`` and ``shop demo`` processes."""
    return {"SHOP_SECRET_KEY": SECRET_KEY, "SHOP_OPERATOR_KEYS": OPERATOR_KEYS_SETTING}
