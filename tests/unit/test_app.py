from flask import Flask, request

from shop.app import create_app
from shop.config import Settings


def test_health_check_answers_ok() -> None:
    client = create_app(Settings(database_url="sqlite://")).test_client()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_app_takes_its_database_url_from_the_settings() -> None:
    app = create_app(Settings(database_url="postgresql+psycopg://clerk@db.internal/shop"))

    assert app.config["DATABASE_URL"] == "postgresql+psycopg://clerk@db.internal/shop"


def client_address_as_seen_by(app: Flask, forwarded_for: str) -> str:
    """Ask ``app`` who is calling, for a request from nginx on 127.0.0.1 on behalf of ``forwarded_for``."""
    app.add_url_rule("/who-is-calling", "who_is_calling", lambda: request.remote_addr or "")
    response = app.test_client().get(
        "/who-is-calling",
        headers={"X-Forwarded-For": forwarded_for},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    return response.get_data(as_text=True)


def test_behind_a_trusted_proxy_the_client_address_comes_from_x_forwarded_for() -> None:
    settings = Settings.from_env({"DATABASE_URL": "sqlite://", "SHOP_TRUSTED_PROXIES": "1"})

    assert client_address_as_seen_by(create_app(settings), "203.0.113.7") == "203.0.113.7"


def test_a_trusted_proxy_counts_hops_from_the_right_so_a_forged_first_hop_is_ignored() -> None:
    settings = Settings.from_env({"DATABASE_URL": "sqlite://", "SHOP_TRUSTED_PROXIES": "1"})

    assert client_address_as_seen_by(create_app(settings), "10.6.6.6, 203.0.113.7") == "203.0.113.7"


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored() -> None:
    app = create_app(Settings(database_url="sqlite://"))

    assert client_address_as_seen_by(app, "203.0.113.7") == "127.0.0.1"
