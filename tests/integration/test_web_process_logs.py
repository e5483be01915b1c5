"""``shop web`` as a real gunicorn server: what the app's own loggers say reaches the process's log.

Gunicorn configures only its two loggers; ``deploy/gunicorn.conf.py`` gives the root logger, which the
app's ``logging.getLogger(__name__)`` loggers log through, a handler with the time, level and logger name.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.credentials import OPERATOR_KEY
from tests.support.nginx_proxy import running_shop_web
from tests.support.processes import LoggedProcess, free_port

pytestmark = pytest.mark.slow  # starts gunicorn

LOG_PATIENCE_SECONDS = 10.0
# The error log's shape, then the logger's name: "[2026-12-01 13:42:42 +0000] [4242] [INFO] shop.x: ..."
APP_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[(\w+)\] ([\w.]+): (.*)$")

# Any line of the log: gunicorn's error log and the app's loggers ("[2026-...] ..."), or its access log.
TIMED_LINE = re.compile(
    r"^(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] |127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:)"
)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoggedProcess, str]]:
    port = free_port()
    with running_shop_web(tmp_path_factory.mktemp("web-logs"), port) as process:
        yield process, f"http://127.0.0.1:{port}"


def app_lines(process: LoggedProcess, level: str, containing: str) -> list[tuple[str, str, str]]:
    """The log's lines at ``level`` from the app's loggers that contain ``containing``, as (level, logger,
    message); waits a little for the first one, since the server writes its log as it goes."""
    deadline = time.monotonic() + LOG_PATIENCE_SECONDS
    while True:
        found = [
            (match.group(1), match.group(2), match.group(3))
            for line in process.log_text().splitlines()
            if containing in line and (match := APP_LINE.match(line)) and match.group(1) == level
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def sign_in(base_url: str, key: str) -> httpx.Response:
    """A browser's sign-in: the form page first (its cookie, its token), then the POST from that page."""
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=10.0) as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/sign-in").text)
        assert token is not None
        return browser.post(
            "/sign-in", data={"csrf_token": token.group(1), "key": key}, headers={"Origin": base_url}
        )


def test_an_operator_signing_in_is_logged_once_with_time_level_and_logger(
    web: tuple[LoggedProcess, str],
) -> None:
    process, base_url = web

    assert sign_in(base_url, OPERATOR_KEY).status_code == 303

    [(level, logger, message)] = app_lines(process, "INFO", "operator signed in")
    assert (level, logger) == ("INFO", "shop.pages.sign_in")
    assert message.startswith("operator signed in with key ") and OPERATOR_KEY not in message


def test_a_refused_sign_in_is_a_warning_in_the_same_shape(web: tuple[LoggedProcess, str]) -> None:
    process, base_url = web

    assert sign_in(base_url, "WOBBLY-TABLE-not-an-operator-key").status_code == 403

    [(_, logger, message)] = app_lines(process, "WARNING", "shop.pages.sign_in:")
    assert logger == "shop.pages.sign_in" and "127.0.0.1" in message  # who tried, never what they typed
    assert "WOBBLY-TABLE" not in process.log_text()


def test_gunicorns_access_log_keeps_its_own_shape(web: tuple[LoggedProcess, str]) -> None:
    process, base_url = web

    httpx.get(f"{base_url}/healthz?looking-for=CRUNCHY-ARMCHAIR", timeout=10.0)

    deadline = time.monotonic() + LOG_PATIENCE_SECONDS
    while "CRUNCHY-ARMCHAIR" not in process.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    [line] = [line for line in process.log_text().splitlines() if "CRUNCHY-ARMCHAIR" in line]
    assert (
        line.startswith("127.0.0.1 - - [")
        and '"GET /healthz?looking-for=CRUNCHY-ARMCHAIR HTTP/1.1" 200' in line
    )


def test_every_line_of_the_log_has_a_time_and_none_is_written_twice(web: tuple[LoggedProcess, str]) -> None:
    process, _ = web

    printed = [line for line in process.log_text().splitlines() if line.strip()]
    # The log proper starts with gunicorn; before it, `shop web` prints where it serves, in words.
    started = next(n for n, line in enumerate(printed) if "Starting gunicorn" in line)
    lines = printed[started:]

    timeless = [line for line in lines if not TIMED_LINE.match(line)]
    assert timeless == []  # nothing bare from Python's last-resort handler
    assert len([line for line in lines if "Booting worker" in line]) == 1  # one worker, one line
