from pathlib import Path

import pytest

from shop.config import DEFAULT_DATABASE_URL, REPO_ROOT, Settings, SettingsError


def test_database_defaults_to_an_sqlite_file_under_var() -> None:
    settings = Settings.from_env({})

    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.database_url == f"sqlite:///{REPO_ROOT / 'var' / 'shop.sqlite3'}"
    assert (REPO_ROOT / "pyproject.toml").exists()


def test_plain_postgresql_urls_are_sent_to_psycopg_3() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://clerk:s3cret@db.internal:5432/shop"})

    assert settings.database_url == "postgresql+psycopg://clerk:s3cret@db.internal:5432/shop"


def test_heroku_style_postgres_urls_are_sent_to_psycopg_3() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgres://clerk@db.internal/shop"})

    assert settings.database_url == "postgresql+psycopg://clerk@db.internal/shop"


def test_urls_naming_a_driver_are_kept_as_given(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'till.sqlite3'}"

    assert Settings.from_env({"DATABASE_URL": sqlite_url}).database_url == sqlite_url
    assert (
        Settings.from_env({"DATABASE_URL": "postgresql+psycopg://clerk@db/shop"}).database_url
        == "postgresql+psycopg://clerk@db/shop"
    )


def test_gateway_and_readiness_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "GATEWAY_URL": "http://psp.internal:9000/",
            "GATEWAY_TIMEOUT_SECONDS": "2.5",
            "READY_MAX_DUE_TASKS": "500",
            "READY_MAX_OLDEST_DUE_SECONDS": "30",
        }
    )

    assert settings.gateway_url == "http://psp.internal:9000"
    assert settings.gateway_timeout_seconds == 2.5
    assert (settings.ready_max_due_tasks, settings.ready_max_oldest_due_seconds) == (500, 30.0)


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("GATEWAY_TIMEOUT_SECONDS", "x", "GATEWAY_TIMEOUT_SECONDS='x' is not a number; set it to e.g. 5"),
        ("READY_MAX_DUE_TASKS", "-3", "READY_MAX_DUE_TASKS='-3' must be positive; set it to e.g. 10000"),
    ],
)
def test_a_bad_number_in_the_environment_is_named_with_its_fix(name: str, value: str, complaint: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: value})

    assert str(raised.value) == complaint


def test_the_gateway_api_key_comes_from_the_environment_and_stays_out_of_the_repr() -> None:
    key = "CRUNCHY-ARMCHAIR-gateway-key-for-tests-only"
    settings = Settings.from_env({"GATEWAY_API_KEY": key})

    assert settings.gateway_api_key == key
    assert key not in repr(settings)
    assert Settings.from_env({}).gateway_api_key is None


@pytest.mark.parametrize("key", ["has a space in it", "naïve-gateway-key-0123456789", "tab\there"])
def test_a_gateway_api_key_unfit_for_a_header_is_refused_without_being_echoed(key: str) -> None:
    with pytest.raises(SettingsError, match="GATEWAY_API_KEY must be visible ASCII") as raised:
        Settings.from_env({"GATEWAY_API_KEY": key})

    assert key not in str(raised.value)
    assert "secrets.token_urlsafe(32)" in str(raised.value)


def test_trusted_hosts_are_read_as_a_comma_separated_list() -> None:
    settings = Settings.from_env({"SHOP_TRUSTED_HOSTS": "shop.example.com, .shop.example.com,localhost"})

    assert settings.trusted_hosts == ("shop.example.com", ".shop.example.com", "localhost")
    assert Settings.from_env({}).trusted_hosts == ()


def test_a_trusted_host_given_as_a_url_is_refused_with_its_fix() -> None:
    with pytest.raises(SettingsError, match="separated by commas"):
        Settings.from_env({"SHOP_TRUSTED_HOSTS": "https://shop.example.com"})
