"""The simulator's HTTP API: the merchant's endpoints (charges, refunds) and the test harness's (ledger,
failure injection). Each view loads its input, calls one function and dumps the answer.

Only the merchant's endpoints pay the injected latency: the ledger and the knobs are the simulator's
own controls, not the provider's API, and a test turning the latency off should not wait for it.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from marshmallow import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from gateway_simulator import charges, refunds
from gateway_simulator.charges import (
    CAPTURED,
    Answered,
    ChargeRequest,
    IdempotencyKeyReused,
    TimedOut,
    Unavailable,
    describe_charge,
    original_status,
)
from gateway_simulator.failure_injection import FailureSettings, current_settings, update_settings
from gateway_simulator.ledger import ledger
from gateway_simulator.schemas import (
    ChargeRequestSchema,
    FailureInjectionSchema,
    LedgerQuerySchema,
    RefundRequestSchema,
    is_valid_key,
)

IDEMPOTENCY_KEY = "Idempotency-Key"
# Every body the simulator takes is a small flat object (a charge is under 200 bytes); anything larger is
# refused with a 413 before it is read, so no request can make the process parse and hold megabytes.
MAX_BODY_BYTES = 16 * 1024
# Longer integers are refused before int() meets Python's 4,300-digit limit; shorter ones reach the
# schemas, which answer "Number too large." or out of range themselves.
MAX_DIGITS = 1000
REPLAYED = "Idempotent-Replayed"
EXTENSION = "gateway_simulator"

blueprint = Blueprint("gateway", __name__, url_prefix="/v1")


@dataclass(frozen=True)
class Runtime:
    """What the views share: the gateway's engine and the source of the failure injection's rolls."""

    engine: Engine
    rng: random.Random


class BadIdempotencyKeyHeader(Exception):  # noqa: N818 - says what happened
    """The ``Idempotency-Key`` header is missing or not 1 to 255 printable characters."""


def init_app(app: Flask, engine: Engine, rng: random.Random) -> None:
    """Serve the API on ``app`` from ``engine``."""
    app.extensions[EXTENSION] = Runtime(engine, rng)
    app.register_blueprint(blueprint)


@blueprint.post("/charges")
def post_charge() -> Response:
    """Charge once per idempotency key: 201 captured, 402 declined or voided, 503/504 nothing recorded."""
    settings = _settings_after_latency()
    key = _idempotency_key()
    body = ChargeRequestSchema().load(_json_object())
    result = charges.charge(_runtime().engine, ChargeRequest(key, **body), settings, _runtime().rng)
    if isinstance(result, Unavailable):
        return _json({"error": "temporarily_unavailable"}, 503)
    if isinstance(result, TimedOut):
        return _json({"error": "timed_out"}, 504)
    assert isinstance(result, Answered)
    status_code = 201 if original_status(result.charge) == CAPTURED else 402
    return _json(describe_charge(result.charge, as_answered=True), status_code, replayed=result.replayed)


@blueprint.get("/charges/<path:idempotency_key>")
def get_charge(idempotency_key: str) -> Response:
    """The charge made under ``idempotency_key``, as it is now (refunded, say), or 404."""
    _settings_after_latency()
    found = charges.find_charge(_runtime().engine, idempotency_key) if is_valid_key(idempotency_key) else None
    if found is None:
        return _json({"error": "not_found"}, 404)
    return _json(describe_charge(found), 200)


@blueprint.post("/refunds")
def post_refund() -> Response:
    """Refund in full (201), or void a charge not made yet, or find nothing to refund (200)."""
    _settings_after_latency()
    key = _idempotency_key()
    body = RefundRequestSchema().load(_json_object())
    answer = refunds.refund(_runtime().engine, key, body["charge_idempotency_key"])
    status_code = 201 if answer.performed_the_refund else 200
    return _json(refunds.describe_refund(answer), status_code, replayed=answer.replayed)


@blueprint.get("/ledger")
def get_ledger() -> Response:
    """Every charge (optionally of one ``?reference=``) with counts by status."""
    query = LedgerQuerySchema().load(request.args)
    return _json(ledger(_runtime().engine, query.get("reference")), 200)


@blueprint.get("/failure-injection")
def get_failure_injection() -> Response:
    """The misbehaviour settings in force."""
    with Session(_runtime().engine) as session, session.begin():
        return _json(current_settings(session).as_dict(), 200)


@blueprint.put("/failure-injection")
def put_failure_injection() -> Response:
    """Change some of the settings; the others keep their values. Every server process sees the change."""
    changes = FailureInjectionSchema().load(_json_object())
    with Session(_runtime().engine) as session, session.begin():
        return _json(update_settings(session, changes).as_dict(), 200)


@blueprint.errorhandler(BadIdempotencyKeyHeader)
def bad_idempotency_key_header(_error: BadIdempotencyKeyHeader) -> Response:
    """400 naming the header."""
    message = f"The {IDEMPOTENCY_KEY} header is required: 1 to 255 printable characters."
    return _json({"errors": {IDEMPOTENCY_KEY: [message]}}, 400)


@blueprint.errorhandler(IdempotencyKeyReused)
def idempotency_key_reused(_error: IdempotencyKeyReused) -> Response:
    """422: the key was used before with another request body."""
    message = "This key was used before with different parameters; use a new key for a new request."
    return _json({"errors": {IDEMPOTENCY_KEY: [message]}}, 422)


@blueprint.errorhandler(ValidationError)
def invalid_input(error: ValidationError) -> Response:
    """422 with marshmallow's messages per field."""
    return _json({"errors": error.messages}, 422)


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions[EXTENSION]
    return runtime


def _settings_after_latency() -> FailureSettings:
    with Session(_runtime().engine) as session, session.begin():
        settings = current_settings(session)
    time.sleep(settings.latency_ms / 1000)
    return settings


def _idempotency_key() -> str:
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None or not is_valid_key(key):
        raise BadIdempotencyKeyHeader()
    return key


def _json_object() -> dict[str, Any]:
    # Parsed here rather than with request.get_json: a body nested thousands deep raises RecursionError,
    # which get_json would let through as a 500.
    body = request.get_data()
    if request.content_length is None and len(body) >= MAX_BODY_BYTES:
        raise RequestEntityTooLarge()  # a chunked body: werkzeug stops reading at the limit, silently
    try:
        data = json.loads(body, parse_int=_bounded_int)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["Send a JSON object."]})
    return data


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"an integer of more than {MAX_DIGITS} digits")
    return int(digits)


def _json(body: dict[str, Any], status_code: int, *, replayed: bool = False) -> Response:
    response = jsonify(body)
    response.status_code = status_code
    if replayed:
        response.headers[REPLAYED] = "true"
    return response
