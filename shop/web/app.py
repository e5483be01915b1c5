"""The Flask application factory: the composition root of the web process."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from shop import pages
from shop.access import api_policy
from shop.config import SETTINGS_KEY, Settings, require_secret_key
from shop.web import api, database, health, http_limits, security_headers


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app from ``settings`` (default: read from the environment).

    Nothing connects to the database here: the engine connects on the first request that needs it.
    Without a secret key (``SHOP_SECRET_KEY``) it raises ``SettingsError``: there is no default one.
    """
    if settings is None:  # a real web process (gunicorn): say what its configuration lets nobody do
        settings = Settings.from_env()
        api_policy.warn_if_nobody_may_operate(settings)
    app = Flask(__name__)
    app.config.from_mapping(
        DATABASE_URL=settings.database_url,
        SECRET_KEY=require_secret_key(settings),
        SECRET_KEY_FALLBACKS=list(settings.secret_key_fallbacks),
    )
    app.extensions[SETTINGS_KEY] = settings
    http_limits.init_app(app, settings)  # first: a request of the wrong shape or size is read no further
    security_headers.init_app(app)
    database.init_app(app, settings)
    health.init_app(app, settings)
    api_policy.init_app(app, settings)
    api.init_app(app)
    pages.init_app(app, settings)
    if settings.trusted_proxies:
        # Only the address: gunicorn already sets the scheme from X-Forwarded-Proto, and only for the
        # peers it trusts (FORWARDED_ALLOW_IPS), which is stricter than counting hops.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=0)  # type: ignore[method-assign]
    # Registered last, so it replaces flask-smorest's handler for every HTTP error.
    app.register_error_handler(HTTPException, _http_error)
    return app


def _http_error(error: HTTPException) -> Any:
    """JSON in the API's error shape under ``/api``, a page in the layout elsewhere."""
    if http_limits.is_api_request():
        return api.http_error_as_json(error)
    return pages.http_error_as_page(error)
