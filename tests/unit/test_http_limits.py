"""Requests too large, too deep or in the wrong format are refused with a 4xx that says what to change."""

from __future__ import annotations

import io

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient

from shop.web.app import create_app
from shop.web.http_limits import MAX_CONTENT_LENGTH, json_shape_problem
from tests.support.credentials import web_settings


@pytest.fixture
def app() -> Flask:
    return create_app(web_settings("sqlite://"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def order_with_quantity(quantity: str) -> str:
    return (
        '{"customer_email": "ada@example.com", "shipping_country": "DE", '
        f'"lines": [{{"sku": "CRUNCHY-ARMCHAIR", "quantity": {quantity}}}]}}'
    )


def test_a_two_megabyte_body_is_refused_with_a_json_413(client: FlaskClient) -> None:
    response = client.post(
        "/api/orders", data=b"[" + b" " * 2_000_000 + b"]", content_type="application/json"
    )

    assert response.status_code == 413
    assert response.get_json() == {
        "code": 413,
        "status": "Request Entity Too Large",
        "message": f"The request body may be at most {MAX_CONTENT_LENGTH} bytes.",
    }


def test_a_body_sent_in_chunks_past_the_limit_is_refused_with_a_413(client: FlaskClient) -> None:
    response = client.post(
        "/api/orders",
        input_stream=io.BytesIO(b"{" + b" " * 100_000 + b"}"),
        # Chunked: no length is known in advance, so werkzeug counts the bytes as it reads them.
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # what gunicorn says of a chunked body
    )

    assert response.status_code == 413
    assert response.get_json()["code"] == 413


def test_a_large_form_sent_to_a_page_is_refused_with_an_html_413(client: FlaskClient) -> None:
    response = client.post("/", data={"customer_email": "a" * 100_000})

    assert response.status_code == 413
    assert response.mimetype == "text/html"


def test_a_multipart_form_with_too_many_fields_is_refused(client: FlaskClient) -> None:
    response = client.post(
        "/sign-in", data={f"field{n}": "x" for n in range(500)}, content_type="multipart/form-data"
    )

    assert response.status_code == 413


def test_a_quantity_of_five_thousand_digits_is_refused_with_a_400_naming_the_limit(
    client: FlaskClient,
) -> None:
    response = client.post(
        "/api/orders", data=order_with_quantity("9" * 5000), content_type="application/json"
    )

    assert response.status_code == 400
    assert response.get_json()["message"] == "Numbers in the JSON body may have at most 30 digits."


def test_json_nested_a_thousand_levels_deep_is_refused_with_a_400_naming_the_limit(
    client: FlaskClient,
) -> None:
    response = client.post("/api/orders", data="[" * 1000 + "]" * 1000, content_type="application/json")

    assert response.status_code == 400
    assert response.get_json()["message"] == "The JSON body may be nested at most 32 levels deep."


def test_brackets_and_digits_inside_strings_do_not_count() -> None:
    text = '{"customer_email": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"' + "7" * 50 + '@example.com"}'

    assert json_shape_problem(text) is None


@pytest.mark.parametrize(
    "text",
    ['{"customer_email": "' + "a" * 60_000, '"' + '\\"' * 30_000 + "\\", "[" * 30 + '"' + "\\" * 60_000],
    ids=["unterminated-string", "escaped-quotes", "backslashes"],
)
def test_an_unterminated_string_is_checked_in_time_linear_in_its_length(text: str) -> None:
    # A backtracking pattern would take longer than the universe's age here; the test's timeout catches it.
    assert json_shape_problem(text) is None


def test_a_body_without_the_json_content_type_is_a_415_naming_the_header(client: FlaskClient) -> None:
    response = client.post("/api/orders", data=order_with_quantity("1"), content_type="text/plain")

    assert response.status_code == 415
    assert response.get_json() == {
        "code": 415,
        "status": "Unsupported Media Type",
        "message": "Send the body as JSON, with the header Content-Type: application/json.",
    }


def test_a_post_without_a_body_needs_no_content_type(client: FlaskClient) -> None:
    response = client.post("/api/orders/0190a000-0000-7000-8000-000000000000/cancel")

    assert response.status_code != 415


def test_an_over_long_url_is_a_json_414_under_the_api(client: FlaskClient) -> None:
    response = client.get("/api/orders?state=" + "x" * 9000)

    assert response.status_code == 414
    assert response.get_json()["code"] == 414


def test_an_over_long_header_is_a_json_431_under_the_api(client: FlaskClient) -> None:
    response = client.get("/api/orders", headers={"X-Basket": "x" * 9000})

    assert response.status_code == 431
    assert response.get_json()["code"] == 431


def test_every_405_says_which_methods_are_allowed(client: FlaskClient) -> None:
    api_answer = client.put("/api/orders")
    page_answer = client.delete("/queue")

    assert api_answer.status_code == page_answer.status_code == 405
    assert set(api_answer.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert api_answer.get_json()["status"] == "Method Not Allowed"
    assert "GET" in page_answer.headers["Allow"]


def test_errors_under_the_api_are_json_and_errors_on_pages_are_html(client: FlaskClient) -> None:
    api_missing = client.get("/api/armchairs")
    page_missing = client.get("/armchairs")

    assert (api_missing.status_code, api_missing.mimetype) == (404, "application/json")
    assert set(api_missing.get_json()) == {"code", "status", "message"}
    assert (page_missing.status_code, page_missing.mimetype) == (404, "text/html")
    assert "<h1>Not Found</h1>" in page_missing.get_data(as_text=True)


def test_any_host_is_answered_when_no_trusted_hosts_are_set(client: FlaskClient) -> None:
    assert client.get("/healthz", headers={"Host": "anything.example"}).status_code == 200


def test_a_request_for_an_untrusted_host_is_a_400() -> None:
    app = create_app(web_settings("sqlite://", trusted_hosts=("shop.example.com", "localhost")))
    client = app.test_client()

    assert client.get("/healthz", headers={"Host": "shop.example.com"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "localhost:8000"}).status_code == 200
    api_answer = client.get("/api/openapi.json", headers={"Host": "evil.example"})
    page_answer = client.get("/", headers={"Host": "evil.example"})
    assert (api_answer.status_code, api_answer.get_json()["code"]) == (400, 400)
    assert "not trusted" in api_answer.get_json()["message"]
    assert page_answer.status_code == 400


def test_a_request_no_view_will_handle_is_answered_before_hooks_that_guard_views(app: Flask) -> None:
    @app.before_request
    def sign_in_first() -> None:  # as a later hook guarding the views would (authentication, CSRF)
        abort(401)

    client = app.test_client()

    assert client.put("/api/orders").status_code == 405
    assert client.get("/api/armchairs").status_code == 404
    assert client.get("/api/orders", headers={"X-Basket": "x" * 9000}).status_code == 431
