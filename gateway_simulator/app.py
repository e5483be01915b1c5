"""The simulator's application factory and its JSON-only error answers."""

from __future__ import annotations

import random

from flask import Flask, Response, jsonify
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from gateway_simulator import api
from gateway_simulator.api_key import api_key_from_env, checked_api_key, require_api_key
from gateway_simulator.database import create_gateway_engine, database_url_from_env, normalize_database_url
from gateway_simulator.failure_injection import ensure_settings_row
from gateway_simulator.models import Base


def create_app(
    database_url: str | None = None, *, api_key: str | None = None, rng: random.Random | None = None
) -> Flask:
    """The simulator on ``database_url`` (default: ``database_url_from_env()``).

    Every request but ``/healthz`` must carry ``api_key`` (default: ``GATEWAY_API_KEY``; none at all is
    an ``ApiKeyError``, see ``gateway_simulator.api_key``). Creates the tables it lacks and the
    failure-injection row with its defaults. ``rng`` decides the failure injection's rolls; tests pass
    one whose rolls they choose.
    """
    api_key = api_key_from_env() if api_key is None else checked_api_key(api_key)
    url = database_url_from_env() if database_url is None else normalize_database_url(database_url)
    engine = create_gateway_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        ensure_settings_row(session)
    app = Flask(__name__, static_folder=None)  # it serves no files: no route to guard or to probe
    require_api_key(app, api_key)
    app.config.update(
        MAX_CONTENT_LENGTH=api.MAX_BODY_BYTES, MAX_FORM_MEMORY_SIZE=api.MAX_BODY_BYTES, MAX_FORM_PARTS=10
    )
    api.init_app(app, engine, random.Random() if rng is None else rng)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Answer load balancers and test harnesses: the process is up and serving requests."""
        return {"status": "ok"}

    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, _database_unavailable)
    return app


def _http_error(error: HTTPException) -> Response:
    # Unknown routes, wrong methods, bodies over the limit: the same JSON shape as every other answer,
    # keeping the headers the error carries (``Allow`` on a 405).
    name = (error.name or "error").lower().replace(" ", "_")
    response = jsonify({"error": name})
    response.status_code = error.code or 500
    for header, value in error.get_headers():
        if header.lower() != "content-type":
            response.headers[header] = value
    return response


def _database_unavailable(_error: OperationalError) -> Response:
    # The ledger is unreachable: a real provider answers this as a retryable outage, not as a bug.
    response = jsonify({"error": "temporarily_unavailable"})
    response.status_code = 503
    return response
