"""Slow clients: nginx holds them, so gunicorn's threads stay free; without nginx they take the shop down.

One ``shop web`` (one gunicorn worker, eight threads, an SQLite file) behind the system's nginx with the
shipped configuration (``tests.support.nginx_proxy``). Fifty clients connect and dribble: half send a
request head a byte at a time, half a request body. Through nginx, ``/healthz`` answers within a second
all along; straight at gunicorn, the same fifty clients hold every thread and ``/healthz`` gets no answer.
Requests too big for the shop are refused by nginx in the API's JSON error shape, and a browser's form
sent through nginx on its own port is still taken as same-origin. See docs/deploy.md.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from werkzeug.http import HTTP_STATUS_CODES

from tests.support.credentials import OPERATOR_KEY
from tests.support.nginx_proxy import NGINX, running_nginx, running_shop_web
from tests.support.processes import answering, free_port, wait_until

pytestmark = pytest.mark.skipif(
    not NGINX.exists(),
    reason=f"no {NGINX}: these tests run the system's nginx (Debian: apt-get install nginx)",
)

SLOW_CLIENTS = 50
DRIBBLE_EVERY_SECONDS = 0.5
PROBES = 8
PROBE_EVERY_SECONDS = 0.5
PATIENCE_SECONDS = 1.0
# Each slow client's first bytes: a request head that never ends, or a complete head with a body that
# never ends (the app would read it: an order's JSON).
UNFINISHED_HEAD = b"GET /healthz HTTP/1.1\r\nHost: shop.test\r\nX-Dribble: "
UNFINISHED_BODY = (
    b"POST /api/orders HTTP/1.1\r\nHost: shop.test\r\nContent-Type: application/json\r\n"
    b"Idempotency-Key: dribbling-basket\r\nContent-Length: 4096\r\n\r\n{"
)


@dataclass(frozen=True)
class Shop:
    """Where to reach the one gunicorn: through nginx, or straight."""

    proxy_url: str
    gunicorn_url: str
    gunicorn_port: int
    proxy_port: int


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    work_dir = tmp_path_factory.mktemp("slow-clients")
    gunicorn_port, proxy_port = free_port(), free_port()
    with (
        running_shop_web(work_dir / "web", gunicorn_port),
        running_nginx(work_dir / "nginx", proxy_port, gunicorn_port),
    ):
        wait_until_healthy(f"http://127.0.0.1:{proxy_port}")
        yield Shop(
            proxy_url=f"http://127.0.0.1:{proxy_port}",
            gunicorn_url=f"http://127.0.0.1:{gunicorn_port}",
            gunicorn_port=gunicorn_port,
            proxy_port=proxy_port,
        )


@contextmanager
def dribbling_clients(port: int, count: int, *, most_seconds: float = 30.0) -> Iterator[None]:
    """``count`` connections to ``port`` that send their first bytes, then one byte every half second.

    Half leave the request head unfinished, half the body. A background thread dribbles until the block
    ends (or ``most_seconds`` have passed), then every connection is closed.
    """
    connections: list[socket.socket] = []
    for number in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        connection.sendall(UNFINISHED_HEAD if number % 2 == 0 else UNFINISHED_BODY)
        connection.setblocking(False)
        connections.append(connection)
    stop = threading.Event()

    def dribble() -> None:
        deadline = time.monotonic() + most_seconds
        while not stop.wait(DRIBBLE_EVERY_SECONDS) and time.monotonic() < deadline:
            for connection in connections:
                with suppress(OSError):  # a full buffer, or a connection nginx closed: no matter
                    connection.send(b"a")

    dribbler = threading.Thread(target=dribble, name="dribbler", daemon=True)
    dribbler.start()
    try:
        yield
    finally:
        stop.set()
        dribbler.join(timeout=5.0)
        for connection in connections:
            connection.close()


def probe_health(base_url: str) -> list[float | None]:
    """``PROBES`` fresh requests to ``/healthz``, one every ``PROBE_EVERY_SECONDS``: each one's seconds to
    answer 200, or None where none came within ``PATIENCE_SECONDS``."""
    latencies: list[float | None] = []
    no_reuse = httpx.Limits(max_keepalive_connections=0)  # a new connection per probe, like a new client
    with httpx.Client(base_url=base_url, timeout=PATIENCE_SECONDS, limits=no_reuse) as client:
        for _ in range(PROBES):
            started = time.monotonic()
            try:
                response = client.get("/healthz")
                latencies.append(time.monotonic() - started if response.status_code == 200 else None)
            except httpx.TimeoutException:
                latencies.append(None)
            time.sleep(max(0.0, PROBE_EVERY_SECONDS - (time.monotonic() - started)))
    return latencies


def wait_until_healthy(base_url: str) -> None:
    """Before each scenario: the shop answers again (a previous scenario's clients may just have left)."""
    wait_until(answering(f"{base_url}/healthz"), what=f"{base_url}/healthz answers 200", timeout=30.0)


def shown(latencies: list[float | None]) -> str:
    return ", ".join("no answer" if seconds is None else f"{seconds * 1000:.0f} ms" for seconds in latencies)


@pytest.mark.timeout(90)
def test_behind_nginx_the_shop_keeps_answering_while_fifty_clients_dribble(shop: Shop) -> None:
    wait_until_healthy(shop.proxy_url)

    with dribbling_clients(shop.proxy_port, SLOW_CLIENTS):
        latencies = probe_health(shop.proxy_url)

    print(f"/healthz through nginx with {SLOW_CLIENTS} slow clients: {shown(latencies)}")
    assert all(seconds is not None and seconds < PATIENCE_SECONDS for seconds in latencies), shown(latencies)


@pytest.mark.timeout(90)
def test_without_nginx_fifty_dribbling_clients_hold_every_gunicorn_thread(shop: Shop) -> None:
    wait_until_healthy(shop.gunicorn_url)

    with dribbling_clients(shop.gunicorn_port, SLOW_CLIENTS):
        latencies = probe_health(shop.gunicorn_url)

    print(f"/healthz straight at gunicorn with {SLOW_CLIENTS} slow clients: {shown(latencies)}")
    assert latencies == [None] * PROBES, shown(latencies)
    wait_until_healthy(shop.gunicorn_url)  # and once they leave, the threads are free again


def assert_json_error(response: httpx.Response, code: int) -> None:
    """The API's error shape, with the status words flask-smorest uses for the same code."""
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert body["status"] == HTTP_STATUS_CODES[code]
    assert body["message"]


def test_nginx_refuses_a_two_megabyte_body_under_api_with_a_json_413(shop: Shop) -> None:
    two_megabytes = b"{" + b" " * (2 * 1024 * 1024 - 2) + b"}"

    response = httpx.post(
        f"{shop.proxy_url}/api/orders",
        content=two_megabytes,
        headers={"Content-Type": "application/json", "Idempotency-Key": "enormous-basket"},
        timeout=30.0,
    )

    assert_json_error(response, 413)


def test_nginx_refuses_an_over_long_request_line_with_a_json_414(shop: Shop) -> None:
    response = httpx.get(f"{shop.proxy_url}/api/orders?sku={'CRUNCHY-ARMCHAIR' * 1000}", timeout=10.0)

    assert_json_error(response, 414)


def test_nginx_refuses_an_over_long_header_with_a_json_431(shop: Shop) -> None:
    response = httpx.get(
        f"{shop.proxy_url}/api/orders", headers={"X-Basket": "armchair" * 2000}, timeout=10.0
    )

    assert_json_error(response, 431)


def test_the_largest_request_line_and_header_nginx_accepts_gunicorn_accepts_too(shop: Shop) -> None:
    """Just inside nginx's 8 KiB buffers: the request reaches the app and is answered by it."""
    path = "/healthz?padding=" + "a" * 8100  # with "GET " and " HTTP/1.1": 8134 bytes, under 8192
    header = {"X-Padding": "a" * 8100}

    assert httpx.get(f"{shop.proxy_url}{path}", timeout=10.0).json() == {"status": "ok"}
    assert httpx.get(f"{shop.proxy_url}/healthz", headers=header, timeout=10.0).json() == {"status": "ok"}


def test_nginx_answers_a_json_502_under_api_when_gunicorn_is_not_there(tmp_path: Path) -> None:
    with running_nginx(tmp_path, port := free_port(), upstream_port=free_port()):
        response = httpx.get(f"http://127.0.0.1:{port}/api/orders", timeout=10.0)

    assert_json_error(response, 502)


def signing_in_through_nginx(shop: Shop, origin: str) -> httpx.Response:
    """A browser's sign-in through nginx: the form page first (its cookie, its token), then the POST."""
    with httpx.Client(base_url=shop.proxy_url, follow_redirects=False, timeout=10.0) as browser:
        form_page = browser.get("/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form_page.text)
        assert form_page.status_code == 200 and token is not None, form_page.text
        assert "shop_session" in browser.cookies
        return browser.post(
            "/sign-in",
            data={"csrf_token": token.group(1), "key": OPERATOR_KEY},
            headers={"Origin": origin},
        )


def test_through_nginx_on_its_own_port_a_browsers_form_is_taken_as_same_origin(shop: Shop) -> None:
    """nginx passes the Host the browser sent, port and all, which is what the browser's Origin names."""
    response = signing_in_through_nginx(shop, origin=f"http://127.0.0.1:{shop.proxy_port}")

    assert response.status_code == 303, response.text
    assert response.headers["Location"].endswith("/queue")


def test_through_nginx_a_form_sent_from_another_site_is_refused(shop: Shop) -> None:
    response = signing_in_through_nginx(shop, origin="https://evil.example")

    assert response.status_code == 403
    assert "another site" in response.text
