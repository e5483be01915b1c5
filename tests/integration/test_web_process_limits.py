"""``shop web`` as a real gunicorn server: the limits and headers as a client on the network meets them.

Gunicorn reads the request line and headers before the app does and refuses, in plain text, a request
line over its ``limit_request_line`` (414) or a header over ``limit_request_field_size`` (431); the app
holds bounds as large as gunicorn's largest for whatever a differently configured server lets through
(``shop.web.http_limits``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.support.credentials import web_environment
from tests.support.processes import Processes, answering, free_port, shop_command

pytestmark = pytest.mark.slow  # starts gunicorn


@pytest.fixture(scope="module")
def web_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("web-limits")
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{directory / 'shop.sqlite3'}",
        "SHOP_TRUSTED_HOSTS": "127.0.0.1,localhost",
        **web_environment(),
    }
    url = f"http://127.0.0.1:{port}"
    with Processes(directory, environment=environment, stop_seconds=30) as processes:
        processes.start("web", shop_command("web", "--port", str(port), "--workers", "1"))
        processes.wait_until(answering(f"{url}/healthz"), what="shop web answers /healthz", timeout=30)
        yield url


def test_a_chunked_body_over_the_limit_is_a_json_413(web_url: str) -> None:
    body = (b"{" + b" " * 8190 + b"}" if n == 9 else b" " * 8192 for n in range(10))  # 80 KiB, no length

    response = httpx.post(f"{web_url}/api/orders", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.json()["code"] == 413


def test_responses_carry_the_security_headers_and_no_server_version(web_url: str) -> None:
    response = httpx.get(f"{web_url}/healthz")

    assert response.headers["Server"] == "gunicorn"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP


def test_a_request_for_an_untrusted_host_is_a_400(web_url: str) -> None:
    response = httpx.get(f"{web_url}/api/openapi.json", headers={"Host": "evil.example"})

    assert response.status_code == 400
    assert "not trusted" in response.json()["message"]


def test_an_over_long_url_or_header_is_refused_before_the_app_sees_it(web_url: str) -> None:
    long_url = httpx.get(f"{web_url}/api/orders?state={'x' * 9000}")  # over any limit gunicorn can have
    long_header = httpx.get(f"{web_url}/api/orders", headers={"X-Basket": "x" * 9000})

    assert long_url.status_code == 414
    assert long_header.status_code == 431
