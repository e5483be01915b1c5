from shop.app import create_app
from tests.support.credentials import web_settings


def test_health_check_answers_ok() -> None:
    client = create_app(web_settings("sqlite://")).test_client()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_app_takes_its_database_url_from_the_settings() -> None:
    app = create_app(web_settings("postgresql+psycopg://clerk@db.internal/shop"))

    assert app.config["DATABASE_URL"] == "postgresql+psycopg://clerk@db.internal/shop"
