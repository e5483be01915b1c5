"""``request_session.transaction``: which database errors make a request run again, and which do not.

The work here raises the errors itself (PostgreSQL's, as psycopg reports them), on a real SQLite session;
what a collision with a real lock does is in tests/integration/test_requests_meeting_a_short_lock.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask
from psycopg import errors as pg_errors
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, scoped_session, sessionmaker

import request_session


@pytest.fixture
def app() -> Iterator[Flask]:
    engine = create_engine("sqlite://")
    app = Flask(__name__)
    sessions = scoped_session(sessionmaker(bind=engine))
    request_session.init_app(app, sessions)
    with app.test_request_context():
        yield app
    sessions.remove()
    engine.dispose()


class Collides:
    """Work that meets ``error`` on its first ``times`` runs, then answers."""

    def __init__(self, error: Exception, times: int) -> None:
        self.error, self.times, self.runs = error, times, 0

    def __call__(self, session: Session) -> str:
        self.runs += 1
        if self.runs <= self.times:
            raise self.error
        return "answered"


@pytest.mark.parametrize(
    "cause",
    [pg_errors.DeadlockDetected, pg_errors.LockNotAvailable, pg_errors.SerializationFailure],
    ids=["deadlock", "nowait refused", "serialization"],
)
@pytest.mark.usefixtures("app")
def test_a_collision_is_run_again_until_it_answers(cause: type[Exception]) -> None:
    work = Collides(OperationalError("UPDATE payments ...", {}, cause("collided")), times=3)

    assert request_session.transaction(work) == "answered"
    assert work.runs == 4


@pytest.mark.usefixtures("app")
def test_another_database_error_is_raised_at_once_without_running_again() -> None:
    work = Collides(IntegrityError("INSERT INTO orders ...", {}, pg_errors.UniqueViolation("dup")), times=1)

    with pytest.raises(IntegrityError):
        request_session.transaction(work)
    assert work.runs == 1


@pytest.mark.usefixtures("app")
def test_a_collision_that_outlasts_the_patience_is_raised() -> None:
    work = Collides(OperationalError("UPDATE ...", {}, pg_errors.LockNotAvailable("held")), times=10_000)

    # Run again while one more attempt, which may wait LOCK_WAIT_SECONDS for a lock, ends within it.
    patience = request_session.LOCK_WAIT_SECONDS + 0.3
    started = time.monotonic()
    with pytest.raises(OperationalError):
        request_session.transaction(work, patience=patience)
    assert 1 < work.runs < 100
    assert time.monotonic() - started <= patience
