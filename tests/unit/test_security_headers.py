"""Every response tells the browser what the page may load, that it may not be framed, and not to sniff."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from shop.web.app import create_app
from tests.support.credentials import web_settings


@pytest.fixture
def client() -> FlaskClient:
    return create_app(web_settings("sqlite://")).test_client()


@pytest.mark.parametrize("path", ["/how-it-works", "/healthz", "/api/armchairs", "/armchairs", "/api/docs"])
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_may_run_only_the_apps_own_scripts_and_styles(client: FlaskClient) -> None:
    response = client.get("/how-it-works")
    policy = response.headers["Content-Security-Policy"]

    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "unsafe" not in policy
    page = response.get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "an inline script would be blocked"
    assert " style=" not in page, "an inline style would be blocked"


def test_the_api_docs_start_swagger_ui_from_a_file_not_an_inline_script(client: FlaskClient) -> None:
    response = client.get("/api/docs")
    policy = response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)

    assert "script-src 'self';" in policy
    assert "unsafe" not in policy
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert '<script src="/api/docs/assets/swagger-ui-init.js">' in page
    assert 'data-spec-url="/api/openapi.json"' in page
    with client.get("/api/docs/assets/swagger-ui-init.js") as script:
        assert script.status_code == 200
        assert b"SwaggerUIBundle(config)" in script.data


def test_strict_transport_security_is_sent_only_over_https(client: FlaskClient) -> None:
    plain = client.get("/healthz")
    secure = client.get("/healthz", base_url="https://shop.example.com")

    assert "Strict-Transport-Security" not in plain.headers
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
