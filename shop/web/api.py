"""The REST API: the three contexts' blueprints on one flask-smorest ``Api``, and how errors look.

Every error is JSON in flask-smorest's shape, ``{"code", "status", "message"}`` (plus ``"errors"``
with field messages for a 422), so a client handles one format. The OpenAPI document is served at
``/api/openapi.json`` and a Swagger UI at ``/api/docs``, with its files served by the app itself so
it works offline. The page itself is ``shop/web/templates/swagger_ui.html``, which replaces flask-smorest's
so that it starts Swagger UI from a file rather than an inline script: the page's Content-Security-Policy
forbids inline scripts (``shop.web.security_headers``).
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

from flask import Flask, Response, send_from_directory
from flask_smorest import Api
from sqlalchemy.exc import DBAPIError, OperationalError
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import HTTPException

import orders.api
import orders.models
import payments.api
import payments.models
import request_session
import shipping.api
import shipping.models
from shop.access.api_policy import DocumentedAccess

SWAGGER_ASSETS = "/api/docs/assets/"
SWAGGER_UI_INIT = "swagger-ui-init.js"  # served beside Swagger UI's own files, from API_DOCS_FOLDER
API_DOCS_FOLDER = Path(__file__).parent / "api_docs"
# Domain errors that mean "not in this state": answered 409 Conflict with the domain's own message.
CONFLICTS: tuple[type[Exception], ...] = (
    orders.models.InvalidTransition,
    payments.models.InvalidTransition,
    shipping.models.InvalidTransition,
)


def init_app(app: Flask) -> Api:
    app.config.update(
        API_TITLE="Inverted shop",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_ASSETS,
    )
    api = Api(app, spec_kwargs={"extra_plugins": [DocumentedAccess()]})
    for blueprint in (orders.api.blp, payments.api.blp, shipping.api.blp):
        api.register_blueprint(blueprint)

    @app.get(f"{SWAGGER_ASSETS}<path:filename>")
    def swagger_ui_assets(filename: str) -> Response:
        """Swagger UI's scripts and styles, from the installed swagger-ui-bundle package (no CDN)."""
        return send_from_directory(swagger_ui_path, filename, max_age=86_400)

    @app.get(f"{SWAGGER_ASSETS}{SWAGGER_UI_INIT}")  # a fixed path: routed before the files above
    def swagger_ui_init() -> Response:
        """The script starting Swagger UI on the page (see ``shop/web/templates/swagger_ui.html``)."""
        return send_from_directory(API_DOCS_FOLDER, SWAGGER_UI_INIT, max_age=3_600)

    def conflict(error: Exception) -> tuple[dict[str, Any], int]:
        return _error_body(409, str(error)), 409

    for domain_error in CONFLICTS:
        app.register_error_handler(domain_error, conflict)

    @app.errorhandler(DBAPIError)
    def database_error(error: DBAPIError) -> tuple[dict[str, Any], int, dict[str, str]]:
        # A view that commits through request_session.transaction runs a collision again first; what
        # reaches here lasted past its patience.
        if request_session.is_collision(error):
            message = "another change to the same records was in progress; send the request again"
            return _error_body(409, message), 409, {"Retry-After": "1"}
        if isinstance(error, OperationalError):  # connection lost, server restarting, SQLite busy
            return (
                _error_body(503, "the database is unavailable; try again shortly"),
                503,
                {"Retry-After": "5"},
            )
        raise error

    return api


def http_error_as_json(error: HTTPException) -> tuple[dict[str, Any], int, list[tuple[str, str]]]:
    """An HTTP error in flask-smorest's shape, keeping the headers it carries (``Allow`` on a 405).

    It stands in for flask-smorest's own handler, which drops those headers and, with no message given
    to ``abort``, leaves out ``message``; werkzeug's description of the error fills it in here.
    """
    code = error.code or 500
    data: dict[str, Any] = getattr(error, "data", None) or {}
    body = {"code": code, "status": error.name, "message": data.get("message") or error.description}
    errors = data.get("errors") or data.get("messages")
    if errors:
        body["errors"] = errors
    headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
    headers += list((data.get("headers") or {}).items())
    return body, code, headers


def _error_body(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "status": HTTPStatus(code).phrase, "message": message}
