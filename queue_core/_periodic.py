"""Periodic tasks: each tick of each schedule is enqueued exactly once, however many workers run.

Every worker evaluates every schedule about once a second. ``queue_periodic_ticks`` holds one row per
schedule: the latest tick that was enqueued. A worker that sees a later tick due moves that row forward
with an upsert that only wins when its tick is later than the stored one, and enqueues the task in the
same transaction only if its upsert won. Whatever the number of workers, one upsert wins per tick.

Each enqueued task gets ``args={"scheduled_for": "<tick, ISO 8601>"}``. Ticks are computed in UTC (cron
lines too). After all workers were down, only the latest missed tick is
enqueued, once; earlier missed ticks are not made up.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from queue_core._clock import db_now
from queue_core._enqueue import enqueue_many
from queue_core._models import tick_table as ticks
from queue_core._registry import Schedule, TaskRegistry


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
        tick = latest_tick(schedule, now)
        # The handler learns which tick it serves ("the report for which day?") from its args.
        spec = registry.get(schedule.task).spec(args={"scheduled_for": tick.isoformat()})
        statement = insert(ticks).values(schedule=schedule.name, tick_at=tick, task_id=spec.id)
        # RETURNING, not rowcount: drivers need not report a row count for INSERT ... ON CONFLICT.
        won = connection.execute(
            statement.on_conflict_do_update(
                index_elements=[ticks.c.schedule],
                set_={"tick_at": statement.excluded.tick_at, "task_id": statement.excluded.task_id},
                where=ticks.c.tick_at < statement.excluded.tick_at,
            ).returning(ticks.c.task_id)
        ).first()
        if won is not None:
            enqueue_many(connection, [spec])
            enqueued.append(spec.id)
    return enqueued
