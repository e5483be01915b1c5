"""``commits_alone``: a task that calls out while it holds locks never shares a commit group."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from queue_core import RunningTask, TaskRegistry, TaskState, enqueue
from tests.support.inprocess import fast_settings, running_worker, wait_for_states


@pytest.mark.postgres_only
def test_a_task_that_commits_alone_gets_a_transaction_of_its_own_between_grouped_ones(engine: Engine) -> None:
    transactions: dict[uuid.UUID, int] = {}
    registry = TaskRegistry()

    def note_transaction(task: RunningTask, session: Session) -> None:
        transactions[task.id] = session.execute(text("SELECT txid_current()")).scalar_one()

    registry.task("fold-napkin")(note_transaction)
    registry.task("call-the-carrier", commits_alone=True)(note_transaction)
    with Session(engine) as session:
        # Claimed in this order (by priority) and buffered together: napkins, the call, napkins.
        before = [enqueue(session, "fold-napkin", priority=9) for _ in range(3)]
        call = enqueue(session, "call-the-carrier", priority=5)
        after = [enqueue(session, "fold-napkin", priority=1) for _ in range(3)]
        session.commit()

    # One runner and a long window: everything claimed together would share one commit, but for the call.
    settings = fast_settings(concurrency=1, prefetch=20, group_size=50, group_window=2.0)
    with running_worker(engine, registry, settings):
        wait_for_states(engine, [*before, call, *after], TaskState.SUCCEEDED)

    others = {transactions[task_id] for task_id in before + after}
    assert transactions[call] not in others
    assert len({transactions[task_id] for task_id in before}) == 1  # the grouping itself still happens
