"""The Flask application factory: the composition root of the web process."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from shop import api, health, pages, web_database
from shop.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app from ``settings`` (default: read from the environment).

    Nothing connects to the database here: the engine connects on the first request that needs it.
    """
    settings = Settings.from_env() if settings is None else settings
    app = Flask(__name__)
    app.config.from_mapping(DATABASE_URL=settings.database_url)
    app.extensions["shop.settings"] = settings
    web_database.init_app(app, settings)
    health.init_app(app, settings)
    api.init_app(app)
    pages.init_app(app)
    if settings.trusted_proxies:
        # Only the address: gunicorn already sets the scheme from X-Forwarded-Proto, and only for the
        # peers it trusts (FORWARDED_ALLOW_IPS), which is stricter than counting hops.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=0)  # type: ignore[method-assign]
    return app
