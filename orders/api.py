"""The orders context's HTTP API (a flask-smorest blueprint): load with marshmallow -> service -> dump."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

blp = Blueprint("orders", __name__, url_prefix="/api", description="orders")


def db() -> Session:
    """This request's session: opened by the composition root with its reactions wired, closed after."""
    session: Session = current_app.extensions["db_session"]()
    return session
