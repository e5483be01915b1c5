"""How big a request may be, which hosts the shop answers, and what the API accepts as a body.

Each check answers before a view runs, with the status that says what to change: 413 for a body over
``MAX_CONTENT_LENGTH``, 414 for an over-long URL, 431 for an over-long header, 415 for a body under
``/api`` that is not ``application/json``, 400 for JSON nested deeper or holding longer numbers than any
real request would. The last two matter because Python itself has limits: ``json.loads`` raises
``RecursionError`` about 1,000 levels deep and ``ValueError`` for an integer of more than 4,300 digits,
and either would otherwise surface as a 500.

Gunicorn reads the request line and headers before Flask sees anything, and refuses in plain text a
request line over its ``limit_request_line`` (default 4094 bytes: 414) or a header over
``limit_request_field_size`` (default 8190 bytes: 431); a proxy in front (nginx) refuses those first.
The app holds bounds of its own, as large as gunicorn's largest (8190 bytes), so that it never refuses
what the servers in front let through, and answers in JSON under ``/api`` whatever server runs it.

A request no view will handle (an untrusted ``Host``, an unknown path, a wrong method) is answered here
too, before any later hook that guards views (sign-in, CSRF) would answer it with something else.
"""

from __future__ import annotations

import re

from flask import Flask, request
from werkzeug.exceptions import (
    BadRequest,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    RequestURITooLarge,
    SecurityError,
    UnsupportedMediaType,
)

from shop.config import Settings

# An order, the largest body the API takes, has at most 20 lines: about 3 KB of JSON, 6 KB pretty-printed.
# 64 KiB leaves room for that and bounds what one request can make a worker parse and hold in memory.
MAX_CONTENT_LENGTH = 64 * 1024
MAX_FORM_MEMORY_SIZE = 16 * 1024  # one form field; the pages' longest is an email address or a token
MAX_FORM_PARTS = 100  # the pages' largest form has a dozen fields
MAX_URL_LENGTH = 8190  # the largest limit_request_line gunicorn accepts
MAX_HEADER_FIELD_LENGTH = 8190  # gunicorn's default limit_request_field_size: name, ": " and value
MAX_HEADER_FIELDS = 100  # gunicorn's default limit_request_fields
MAX_JSON_DEPTH = 32  # an order is 3 levels deep (object, lines, line)
MAX_JSON_DIGITS = 30  # no amount or quantity the shop stores has more than 19 digits

# A JSON string, escapes included, up to its closing quote or the end of the text. Written so that it
# always matches in one pass: a pattern like "(?:[^"\\]+|\\.)*" backtracks exponentially on an
# unterminated string, which would let a 30-byte body hold a worker for seconds.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\[\s\S][^"\\]*)*(?:"|\\?\Z)')
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_LONG_NUMBER = re.compile(rf"\d{{{MAX_JSON_DIGITS + 1}}}")


def init_app(app: Flask, settings: Settings) -> None:
    """Set Flask's limits and trusted hosts, and check every request's shape before its view runs."""
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_MEMORY_SIZE,
        MAX_FORM_PARTS=MAX_FORM_PARTS,
        # Flask answers a request for any other Host with a 400 (werkzeug's SecurityError).
        TRUSTED_HOSTS=list(settings.trusted_hosts) or None,
    )
    app.before_request(check_request_shape)


def check_request_shape() -> None:
    """Refuse, with the status that says what to change, a request no view should have to parse."""
    if isinstance(request.routing_exception, SecurityError):
        raise request.routing_exception  # a Host not in TRUSTED_HOSTS: nothing else about it matters
    if len(request.full_path) > MAX_URL_LENGTH:
        raise RequestURITooLarge(f"The URL may be at most {MAX_URL_LENGTH} characters long.")
    if len(request.headers) > MAX_HEADER_FIELDS or any(
        len(name) + 2 + len(value) > MAX_HEADER_FIELD_LENGTH for name, value in request.headers.items()
    ):
        raise RequestHeaderFieldsTooLarge(
            f"At most {MAX_HEADER_FIELDS} headers of at most {MAX_HEADER_FIELD_LENGTH} bytes each."
        )
    too_large = RequestEntityTooLarge(f"The request body may be at most {MAX_CONTENT_LENGTH} bytes.")
    if (request.content_length or 0) > MAX_CONTENT_LENGTH:
        raise too_large
    body = request.get_data(cache=True) if _has_body() else b""  # webargs and forms reuse these bytes
    if request.content_length is None and len(body) >= MAX_CONTENT_LENGTH:
        raise too_large  # a chunked body: werkzeug stops reading at the limit instead of refusing it
    if request.routing_exception is not None:
        raise request.routing_exception  # 404, 405 (with Allow) or a redirect to the canonical URL
    if not body or not is_api_request():
        return  # the pages read forms, not JSON
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as JSON, with the header Content-Type: application/json.")
    problem = json_shape_problem(body.decode("utf-8", errors="replace"))
    if problem is not None:
        raise BadRequest(problem)


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def is_api_request() -> bool:
    """Whether the request is for the JSON API (errors answered in JSON) rather than a page."""
    return request.path == "/api" or request.path.startswith("/api/")


def json_shape_problem(text: str) -> str | None:
    """Why ``text`` is nested too deep or holds too long a number for the API, or None if neither.

    A scan, not a parse, in time linear in the text (a few milliseconds for the largest body): it runs
    before ``json.loads`` ever sees the text, so Python's own limits are never reached. Malformed JSON
    that passes is left for the parser to refuse.
    """
    outside_strings = _JSON_STRING.sub("", text)  # a "[" or "7" inside a string is not JSON's business
    if _LONG_NUMBER.search(outside_strings):
        return f"Numbers in the JSON body may have at most {MAX_JSON_DIGITS} digits."
    depth = 0
    for bracket in _NOT_A_BRACKET.sub("", outside_strings):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return f"The JSON body may be nested at most {MAX_JSON_DEPTH} levels deep."
    return None
