"""Probes for load balancers and orchestrators: ``/healthz`` (alive) and ``/readyz`` (fit for traffic).

``/readyz`` checks what a request needs: the database answers, and the queue is keeping up (due tasks
and the age of the oldest under the thresholds in ``Settings``). It reads only the queue's pending
index (``queue_core.backlog``), so polling it every second costs little however long the history.
Anyone may call it, so an unreachable database is only named as such: why (its host, role, driver's
message) goes to the log, where the operator looks and a stranger does not.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from queue_core import backlog
from shop.config import Settings
from shop.web.database import engine_of

log = logging.getLogger(__name__)


def init_app(app: Flask, settings: Settings) -> None:
    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process is up and serving requests (nothing else is checked: restart only if this fails)."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> tuple[dict[str, Any], int]:
        """Ready when the database answers and the queue's backlog is under its thresholds; else 503."""
        try:
            with engine_of(app).connect() as connection:
                found = backlog(connection)
        except SQLAlchemyError as error:
            reason = str(error.orig if hasattr(error, "orig") else error).splitlines()[0]
            log.warning("not ready: the database is unreachable (%s)", reason)
            return {"status": "unavailable", "database": "unreachable"}, 503
        oldest = found.oldest_due_age_seconds
        problems: list[str] = []
        if found.due > settings.ready_max_due_tasks:
            problems.append(f"{found.due} due tasks (most allowed: {settings.ready_max_due_tasks})")
        patience = settings.ready_max_oldest_due_seconds
        if oldest is not None and oldest > patience:
            problems.append(f"oldest due task waited {oldest:.0f} s (most allowed: {patience:g})")
        body: dict[str, Any] = {
            "status": "unavailable" if problems else "ready",
            "database": "ok",
            "queue": {"due_tasks": found.due, "oldest_due_age_seconds": oldest},
        }
        if problems:
            body["problems"] = problems
        return body, 503 if problems else 200
