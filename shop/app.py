"""The Flask application factory: the composition root of the web process."""

from __future__ import annotations

from flask import Flask

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
    return app
