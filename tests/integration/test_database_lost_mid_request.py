"""A web request whose database connection dies under it is answered, never turned into a 500 afterwards.

Found by the end-to-end database-restart scenario (tests/e2e/test_database_restart.py): PostgreSQL stopped
while a request held a connection; the request was answered (503), then the session's closing rollback
failed on the dead connection in the request's teardown, and gunicorn replaced the answer with a 500.
"""

from __future__ import annotations

import psycopg
import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url

import request_session


@pytest.mark.postgres_only
def test_a_connection_killed_during_a_request_spoils_neither_its_answer_nor_the_next_request(
    app: Flask, database_url: str
) -> None:
    plain_url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)

    def answer_after_losing_the_connection() -> dict[str, str]:
        session = request_session.db()
        backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()  # in a transaction now
        with psycopg.connect(plain_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])
        return {"answer": "given before the request's session is closed"}

    app.add_url_rule("/lose-the-connection", view_func=answer_after_losing_the_connection)
    client = app.test_client()

    lost = client.get("/lose-the-connection")
    after = client.get("/api/products")

    assert lost.status_code == 200
    assert after.status_code == 200
