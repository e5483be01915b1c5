"""Periodic tasks: each tick of each schedule is enqueued exactly once, however many workers run.

Every worker evaluates every schedule about once a second. For the latest tick that is due, it inserts
a row into ``queue_periodic_ticks`` with ON CONFLICT DO NOTHING and, only if its insert won, enqueues
the task, in the same transaction. The primary key (schedule, tick_at) lets one insert win per tick.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from queue_core.clock import db_now
from queue_core.enqueue import enqueue_many
from queue_core.models import tick_table as ticks
from queue_core.registry import Schedule, TaskRegistry


def latest_tick(schedule: Schedule, now: dt.datetime) -> dt.datetime:
    """The most recent tick of ``schedule`` at or before ``now`` (UTC)."""
    if schedule.every is not None:
        epoch_seconds = now.timestamp()
        tick = epoch_seconds - (epoch_seconds % schedule.every)
        return dt.datetime.fromtimestamp(tick, dt.UTC)
    from croniter import croniter  # imported here: only schedules with cron lines need it

    assert schedule.cron is not None
    previous: dt.datetime = croniter(schedule.cron, now + dt.timedelta(microseconds=1)).get_prev(dt.datetime)
    return previous.astimezone(dt.UTC)


def enqueue_due_ticks(
    connection: Connection, registry: TaskRegistry, schedules: Sequence[Schedule]
) -> list[uuid.UUID]:
    """Enqueue the latest due tick of each schedule unless some worker already did; returns new task IDs."""
    if not schedules:
        return []
    now = connection.scalar(select(db_now()))
    assert now is not None
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    enqueued: list[uuid.UUID] = []
    for schedule in schedules:
        spec = registry.get(schedule.task).spec()
        # RETURNING, not rowcount: drivers need not report a row count for INSERT ... ON CONFLICT.
        won = connection.execute(
            insert(ticks)
            .values(schedule=schedule.name, tick_at=latest_tick(schedule, now), task_id=spec.id)
            .on_conflict_do_nothing()
            .returning(ticks.c.task_id)
        ).first()
        if won is not None:
            enqueue_many(connection, [spec])
            enqueued.append(spec.id)
    return enqueued


def forget_old_ticks(connection: Connection, older_than_seconds: float) -> None:
    """Tick rows are only needed while a tick is current; drop old ones."""
    connection.execute(ticks.delete().where(ticks.c.tick_at < db_now(-older_than_seconds)))
