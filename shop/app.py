"""The Flask application factory."""

from __future__ import annotations

from flask import Flask

from shop.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app from ``settings`` (default: read from the environment)."""
    settings = Settings.from_env() if settings is None else settings
    app = Flask(__name__)
    app.config.from_mapping(DATABASE_URL=settings.database_url)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Answer load balancers and orchestrators: the process is up and serving requests."""
        return {"status": "ok"}

    return app
