from flask import Flask, request

from shop.config import Settings
from shop.web.app import create_app
from shop.web.database import engine_of
from tests.support.credentials import web_settings


def test_health_check_answers_ok() -> None:
    client = create_app(web_settings("sqlite://")).test_client()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_app_takes_its_database_url_from_the_settings() -> None:
    app = create_app(web_settings("postgresql+psycopg://clerk@db.internal/shop"))

    assert app.config["DATABASE_URL"] == "postgresql+psycopg://clerk@db.internal/shop"


def test_the_web_engine_keeps_a_connection_for_every_request_thread() -> None:
    app = create_app(web_settings("postgresql+psycopg://clerk@db.internal/shop", web_threads=12))

    engine = engine_of(app)  # built, not connected: nothing listens at db.internal

    assert engine.pool.size() == 12  # type: ignore[attr-defined]
    engine.dispose()


def test_web_threads_are_read_from_the_same_variable_as_gunicorn_reads() -> None:
    assert Settings.from_env({"WEB_THREADS": "16"}).web_threads == 16
    assert Settings.from_env({}).web_threads == 8


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
    settings = web_settings("sqlite://", trusted_proxies=1)

    assert client_address_as_seen_by(create_app(settings), "203.0.113.7") == "203.0.113.7"


def test_a_trusted_proxy_counts_hops_from_the_right_so_a_forged_first_hop_is_ignored() -> None:
    settings = web_settings("sqlite://", trusted_proxies=1)

    assert client_address_as_seen_by(create_app(settings), "10.6.6.6, 203.0.113.7") == "203.0.113.7"


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored() -> None:
    app = create_app(web_settings("sqlite://"))

    assert client_address_as_seen_by(app, "203.0.113.7") == "127.0.0.1"


def test_the_trusted_proxy_count_comes_from_the_environment() -> None:
    assert Settings.from_env({"SHOP_TRUSTED_PROXIES": "1"}).trusted_proxies == 1
    assert Settings.from_env({}).trusted_proxies == 0
