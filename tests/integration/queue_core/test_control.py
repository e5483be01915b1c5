"""Reading task states for many business rows at once: ``states_of``."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from queue_core import TaskState, cancel, enqueue, states_of


def test_states_of_answers_for_every_existing_task_in_one_call(engine: Engine) -> None:
    with Session(engine) as session:
        waiting = enqueue(session, "wrap-teapot")
        withdrawn = enqueue(session, "wrap-teapot")
        cancel(session, withdrawn)
        session.commit()
        never_existed = uuid.uuid4()

        states = states_of(session, [waiting, withdrawn, never_existed, None])

    assert states == {waiting: TaskState.PENDING, withdrawn: TaskState.CANCELLED}


def test_states_of_nothing_asks_the_database_nothing(engine: Engine) -> None:
    with Session(engine) as session:
        assert states_of(session, [None, None]) == {}
