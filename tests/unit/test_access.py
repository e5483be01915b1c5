"""Who may do what, without a database: operator keys, secret keys, order access tokens, masked emails."""

from __future__ import annotations

import uuid

import pytest

from orders.access_tokens import access_token, grants_access
from shop.access.operator_keys import OperatorKeys, digest_of
from shop.access.redaction import mask_email, mask_emails
from shop.config import Settings, SettingsError
from shop.web.app import create_app
from tests.support.credentials import OPERATOR_KEY, OPERATOR_KEYS_SETTING, SECRET_KEY

OTHER_KEY = "FLUFFY-RUG-a-second-operator-key-0123456789"


def test_operator_keys_may_be_given_as_keys_or_as_their_digests_and_only_digests_are_kept() -> None:
    keys = OperatorKeys.parse(f"{OPERATOR_KEYS_SETTING}, {OTHER_KEY}")

    assert keys.digests == (digest_of(OPERATOR_KEY), digest_of(OTHER_KEY))
    assert keys.fingerprint_of(OPERATOR_KEY) == digest_of(OPERATOR_KEY)[:12]
    assert keys.fingerprint_of(OTHER_KEY) is not None
    assert keys.fingerprint_of("SHINY-LAMP-not-a-configured-key-0123456789") is None
    assert OPERATOR_KEY not in repr(keys) and OTHER_KEY not in repr(keys)


@pytest.mark.parametrize(
    "key",
    [
        "CRUNCHY-ARMCHAIR-0123456789",  # 27 characters: too short
        "a" * 40,  # one character repeated
        "has a space in it, which a key should never have",
        "naïve-operator-key-with-an-accent-0123456789",
    ],
)
def test_a_weak_or_odd_operator_key_stops_the_settings_without_echoing_it(key: str) -> None:
    with pytest.raises(SettingsError, match="SHOP_OPERATOR_KEYS: entry 1") as raised:
        Settings.from_env({"SHOP_OPERATOR_KEYS": key})

    assert key not in str(raised.value)
    assert "shop operator-key" in str(raised.value)


def test_a_malformed_digest_is_refused() -> None:
    with pytest.raises(SettingsError, match="64 hex digits"):
        Settings.from_env({"SHOP_OPERATOR_KEYS": "sha256:not-hex"})


def test_the_old_admin_token_variable_is_refused_with_the_name_of_its_successor() -> None:
    with pytest.raises(SettingsError, match="SHOP_OPERATOR_KEYS"):
        Settings.from_env({"SHOP_ADMIN_TOKEN": "CRUNCHY-ARMCHAIR-0123456789"})


@pytest.mark.parametrize("secret", ["short-secret", "x" * 48])
def test_a_weak_secret_key_is_refused(secret: str) -> None:
    with pytest.raises(SettingsError, match="SHOP_SECRET_KEY must be at least 32"):
        Settings.from_env({"SHOP_SECRET_KEY": secret})


def test_the_web_app_does_not_start_without_a_secret_key() -> None:
    with pytest.raises(SettingsError, match="SHOP_SECRET_KEY is not set"):
        create_app(Settings(database_url="sqlite://"))


def test_an_order_token_opens_its_own_order_only_and_survives_a_key_rotation() -> None:
    order, other_order = uuid.uuid4(), uuid.uuid4()
    token = access_token(order, [SECRET_KEY])
    new_key = "SHINY-LAMP-the-next-secret-key-0123456789"

    assert grants_access(token, order, [SECRET_KEY])
    assert access_token(order, [SECRET_KEY]) == token  # the same order, the same token: replays get it
    assert not grants_access(token, other_order, [SECRET_KEY])
    assert grants_access(token, order, [SECRET_KEY, new_key])  # the old key as a fallback
    assert not grants_access(token, order, [new_key])  # the old key withdrawn: every old token with it
    assert not grants_access("ünïcode", order, [SECRET_KEY])


def test_emails_are_masked_to_their_first_letter_and_domain_however_deep() -> None:
    page = {"orders": [{"customer_email": "ada.lovelace@example.com", "state": "paid"}], "next_before": None}

    assert mask_email("ada.lovelace@example.com") == "a***@example.com"
    assert mask_emails(page) == {
        "orders": [{"customer_email": "a***@example.com", "state": "paid"}],
        "next_before": None,
    }


def test_no_secret_shows_in_the_settings_repr() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://clerk:s3cret-password@db.internal/shop",
            "SHOP_SECRET_KEY": SECRET_KEY,
            "SHOP_SECRET_KEY_FALLBACKS": "SHINY-LAMP-an-old-secret-key-0123456789",
            "GATEWAY_API_KEY": "TINY-TEAPOT-gateway-key-0123456789abcdef",
            "RATELIMIT_STORAGE_URI": "redis://:r3dis-password@cache.internal:6379",
            "SHOP_OPERATOR_KEYS": OPERATOR_KEY,
        }
    )

    shown = repr(settings)

    for secret in (
        "s3cret-password",
        SECRET_KEY,
        "SHINY-LAMP",
        "TINY-TEAPOT",
        "r3dis-password",
        OPERATOR_KEY,
    ):
        assert secret not in shown
