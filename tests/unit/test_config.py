from pathlib import Path

from shop.config import DEFAULT_DATABASE_URL, REPO_ROOT, Settings


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
