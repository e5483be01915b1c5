"""Helpers for testing one bounded context on its own: sessions wired with an event recorder.

In the running application the composition root (``shop/reactions.py``) puts its dispatcher into every
session. A context's own tests put an ``EventRecorder`` there instead, so they can see exactly what the
context announced, without the other contexts reacting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shop.bootstrap import session_info


class EventRecorder:
    """Stands in for the composition root's dispatcher: remembers every event published to it."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, session: Session, event: Any) -> None:
        self.events.append(event)

    def of_type(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


@contextmanager
def recording_session(engine: Engine, recorder: EventRecorder, **info: Any) -> Iterator[Session]:
    """A session whose published events go to ``recorder``; commits on leaving the block."""
    with Session(engine, info={**session_info(react=recorder), **info}) as session, session.begin():
        yield session
