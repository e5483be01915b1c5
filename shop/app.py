"""The Flask application factory: the composition root of the web process."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from shop import api, health, http_limits, pages, security_headers, web_database
from shop.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app from ``settings`` (default: read from the environment).

    Nothing connects to the database here: the engine connects on the first request that needs it.
    """
    settings = Settings.from_env() if settings is None else settings
    app = Flask(__name__)
    app.config.from_mapping(DATABASE_URL=settings.database_url)
    app.extensions["shop.settings"] = settings
    http_limits.init_app(app, settings)
    security_headers.init_app(app)
    web_database.init_app(app, settings)
    health.init_app(app, settings)
    api.init_app(app)
    pages.init_app(app)
    # Registered last, so it replaces flask-smorest's handler for every HTTP error.
    app.register_error_handler(HTTPException, _http_error)
    return app


def _http_error(error: HTTPException) -> Any:
    """JSON in the API's error shape under ``/api``, a page in the layout elsewhere."""
    if http_limits.is_api_request():
        return api.http_error_as_json(error)
    return pages.http_error_as_page(error)
