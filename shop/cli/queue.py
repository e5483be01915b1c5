"""``shop queue``: look at the queue and act on single tasks, for people on call and for monitoring.

Each command opens one short transaction through ``command_engine`` and prints after it has committed.
Every command that lists something has ``--json`` for scripts; the exit status of ``check-references``
tells monitoring whether business rows are waiting on tasks that will never succeed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from queue_core import (
    FINISHED_STATES,
    RETRYABLE_STATES,
    DanglingReference,
    QueueStats,
    TaskDetails,
    TaskNotFoundError,
    TaskState,
    WorkerInfo,
    cancel,
    find_dangling,
    known_workers,
    list_tasks,
    prune,
    queue_stats,
    repair_dangling,
    requeue,
    state_of,
    task_details,
)
from shop import bootstrap
from shop.cli.database import command_engine
from shop.tasks import registry_for

SECONDS_PER_DAY = 86_400
SHOWN_TRACEBACK_LINES = 6  # the innermost frames and the error line: enough to recognise a failure

queue = AppGroup("queue", help="Inspect the task queue and act on single tasks.")

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
task_id_argument = click.argument("task_id", type=click.UUID)


@queue.command("stats")
@json_option
def stats_command(as_json: bool) -> None:
    """Counts by state and queue, oldest waiting task, throughput, pickup latency and live workers."""
    with command_engine() as engine, engine.begin() as connection:
        stats = queue_stats(connection)
    click.echo(_to_json(_stats_document(stats)) if as_json else _stats_text(stats))


@queue.command("list")
@click.option("--state", type=click.Choice([s.value for s in TaskState]), help="Only tasks in this state.")
@click.option("--queue", "queue_name", help="Only tasks of this queue.")
@click.option("--name", help="Only tasks of this name.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most this many.")
@json_option
def list_command(
    state: str | None, queue_name: str | None, name: str | None, limit: int, as_json: bool
) -> None:
    """Tasks, newest first."""
    with command_engine() as engine, engine.begin() as connection:
        found = list_tasks(connection, state=state, queue=queue_name, name=name, limit=limit)
    if as_json:
        click.echo(_to_json([dataclasses.asdict(task) for task in found]))
    elif not found:
        click.echo("No tasks match.")
    else:
        rows = [
            [
                str(t.id),
                t.name,
                t.queue,
                t.state,
                f"{t.attempts}/{t.max_attempts}",
                _when(t.run_at),
                _when(t.finished_at),
            ]
            for t in found
        ]
        click.echo(_table(["id", "name", "queue", "state", "attempts", "run at", "finished at"], rows))


@queue.command("show")
@task_id_argument
@json_option
def show_command(task_id: uuid.UUID, as_json: bool) -> None:
    """One task: its row, the error of each failed attempt, and the business rows that point at it."""
    references = registry_for(current_app).references
    with command_engine() as engine, engine.begin() as connection:
        try:
            details = task_details(connection, task_id, references=references)
        except TaskNotFoundError:
            raise _no_such_task(task_id) from None
    click.echo(_to_json(dataclasses.asdict(details)) if as_json else _details_text(details))


@queue.command("workers")
@json_option
def workers_command(as_json: bool) -> None:
    """Worker processes, live and lost: host, PID, last heartbeat and the tasks each holds.

    A worker is lost once its last heartbeat is older than its lease (frozen, cut off from the database,
    or dead without a session lock to give it away); its tasks go back to the queue at a live worker's
    next maintenance pass. Not listed: a worker that stopped cleanly, one whose process died on PostgreSQL
    (its free session lock gives it away, and a live worker removes its row within a second), and a lost
    one ten minutes after its lease ran out.
    """
    with command_engine() as engine, engine.begin() as connection:
        found = known_workers(connection)
    if as_json:
        click.echo(_to_json([dataclasses.asdict(worker) for worker in found]))
    elif not found:
        click.echo("No workers are registered (a worker that stops cleanly removes its row).")
    else:
        click.echo(_workers_text(found))


@queue.command("retry")
@task_id_argument
@click.option(
    "--attempts", type=click.IntRange(min=1), default=1, show_default=True, help="Attempts to allow from now."
)
def retry_command(task_id: uuid.UUID, attempts: int) -> None:
    """Put an unsuccessful task (usually a dead one) back to pending; its error history stays.

    A succeeded, pending or running task is refused, by the same rule as the pages' button.
    """
    with command_engine() as engine, engine.begin() as connection:
        try:
            before = state_of(connection, task_id)
        except TaskNotFoundError:
            raise _no_such_task(task_id) from None
        if before not in RETRYABLE_STATES:
            retryable = sorted(state.value for state in RETRYABLE_STATES)
            raise click.ClickException(
                f"task {task_id} is {before}, left as it is: only a "
                f"{', '.join(retryable[:-1])} or {retryable[-1]} task can be retried"
            )
        after = requeue(connection, task_id, extra_attempts=attempts)
    click.echo(f"Task {task_id}: {after} (was {before}; {attempts} more attempt(s)).")


@queue.command("cancel")
@task_id_argument
def cancel_command(task_id: uuid.UUID) -> None:
    """Cancel a task: a pending one at once, a running one when its handler next checks."""
    with command_engine() as engine, engine.begin() as connection:
        try:
            before = state_of(connection, task_id)
        except TaskNotFoundError:
            raise _no_such_task(task_id) from None
        after = cancel(connection, task_id)
    if after is TaskState.RUNNING:
        click.echo(f"Task {task_id}: running (cancellation requested; its handler may stop or finish).")
    elif before in FINISHED_STATES:
        click.echo(f"Task {task_id}: {after} (already finished; left as it is).")
    else:
        click.echo(f"Task {task_id}: {after}.")


@queue.command("prune")
@click.option(
    "--older-than-days",
    type=click.FloatRange(min=0.0),
    required=True,
    help="Delete tasks finished longer ago than this.",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=1000, show_default=True, help="Tasks per transaction."
)
def prune_command(older_than_days: float, batch_size: int) -> None:
    """Delete old finished tasks in batches, keeping those a business row still needs."""
    references = registry_for(current_app).references
    deleted = nulled = 0
    with command_engine() as engine:
        while True:  # one short transaction per batch, so workers are never held up for long
            with engine.begin() as connection:
                result = prune(
                    connection,
                    references,
                    older_than_seconds=older_than_days * SECONDS_PER_DAY,
                    batch_size=batch_size,
                )
            deleted += result.deleted
            nulled += result.nulled_references
            if result.deleted == 0:
                break
    age = f"{older_than_days:g} day(s)"
    click.echo(f"Deleted {deleted} task(s) finished over {age} ago; nulled {nulled} reference(s).")


@queue.command("check-references")
@click.option("--repair", is_flag=True, help="Hand dangling rows to their column's repair function.")
@json_option
@click.pass_context
def check_references_command(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Business rows pointing at tasks that will never succeed. Exits 1 while any remain.

    A reference is dangling when its task is dead, cancelled, expired, discarded or missing. With
    --repair, the repair functions run and the check is repeated in one transaction, so what is reported
    is what that transaction left behind.
    """
    references = registry_for(current_app).references
    # Repairs publish events (a payment that failed for good fails its order), so this session carries
    # the reactions, as a worker's does.
    wired = bootstrap.session_info()
    with command_engine() as engine, Session(engine, info=wired) as session, session.begin():
        found = find_dangling(session, references)
        if repair:
            repair_dangling(session, references, found)
            remaining = find_dangling(session, references)
        else:
            remaining = found
    if as_json:
        document: dict[str, Any] = {"dangling": [dataclasses.asdict(d) for d in remaining]}
        if repair:
            document["repaired"] = len(found) - len(remaining)
        click.echo(_to_json(document))
    else:
        click.echo(
            _references_text(
                references_count=len(references), found=found, remaining=remaining, repair=repair
            )
        )
    if remaining:
        ctx.exit(1)


# -- output --------------------------------------------------------------------------------------------


def _no_such_task(task_id: uuid.UUID) -> click.ClickException:
    return click.ClickException(f"no task {task_id} (never existed, or pruned)")


def _stats_document(stats: QueueStats) -> dict[str, Any]:
    return {**dataclasses.asdict(stats), "throughput_per_second": stats.throughput_per_second}


def _stats_text(stats: QueueStats) -> str:
    states = [state.value for state in TaskState]
    by_queue = [
        [queue_name, *(str(counts.get(state, 0)) for state in states)]
        for queue_name, counts in sorted(stats.by_queue_and_state.items())
    ]
    totals = ["all", *(str(stats.by_state.get(state, 0)) for state in states)]
    oldest = stats.oldest_pending_age_seconds
    latency = stats.pickup_latency_ms
    lines = [
        _table(["queue", *states], [*by_queue, totals]),
        "",
        f"oldest pending:  {'nothing waiting' if oldest is None else f'{oldest:.1f} s'}",
        f"throughput:      {stats.succeeded_last_minute} succeeded in the last minute "
        f"({stats.throughput_per_second:.2f}/s)",
        "pickup latency:  "
        + (", ".join(f"{p} {latency[p]:.0f} ms" for p in ("p50", "p95", "p99")) if latency else "no starts")
        + " (tasks started in the last minute)",
        f"live workers:    {stats.live_workers}",
    ]
    return "\n".join(lines)


def _workers_text(found: Sequence[WorkerInfo]) -> str:
    workers = [
        [
            str(w.id),
            w.hostname,
            str(w.pid),
            "live" if w.alive else "lost",
            _when(w.started_at),
            f"{_when(w.heartbeat_at)} ({_duration(w.heartbeat_age_seconds)} ago)",
            f"{_duration(w.lease_left_seconds)} left"
            if w.alive
            else f"ran out {_duration(-w.lease_left_seconds)} ago",
            str(len(w.in_flight)),
        ]
        for w in found
    ]
    headers = ["worker id", "host", "pid", "state", "started", "last heartbeat", "lease", "tasks"]
    lines = [_table(headers, workers)]
    held = [
        [
            f"{w.hostname}:{w.pid}",
            str(t.id),
            t.name,
            str(t.attempt),
            _when(t.started_at),
            str(t.lease_token or ""),
        ]
        for w in found
        for t in w.in_flight
    ]
    if held:
        lines += [
            "",
            "Tasks held",
            _table(["worker", "task id", "name", "attempt", "started", "lease token"], held),
        ]
    live = sum(w.alive for w in found)
    lines += ["", f"{live} live, {len(found) - live} lost."]
    if not live and any(w.in_flight for w in found):
        # Rescue is every live worker's maintenance pass: with none running, nothing hands these back.
        lines.append("No live worker will hand the lost workers' tasks back: start one (`shop worker`).")
    return "\n".join(lines)


def _details_text(details: TaskDetails) -> str:
    task = details.task
    fields = [
        ("name", task["name"]),
        ("queue", task["queue"]),
        ("state", task["state"] + (" (cancel requested)" if task["cancel_requested"] else "")),
        ("attempts", f"{task['attempts']} of {task['max_attempts']}"),
        ("priority", task["priority"]),
        ("created at", _when(task["created_at"])),
        ("run at", _when(task["run_at"])),
        ("started at", _when(task["started_at"])),
        ("finished at", _when(task["finished_at"])),
        ("expires at", _when(task["expires_at"])),
        ("worker", task["worker_id"] or ""),
        ("parent", task["parent_id"] or ""),
        ("root", task["root_id"] or ""),
        ("args", "" if task["args"] is None else json.dumps(task["args"], sort_keys=True)),
    ]
    if task["progress"] is not None:
        fields.append(("progress", f"{task['progress']:.0%} {task['progress_message'] or ''}".rstrip()))
    lines = [f"Task {task['id']}"]
    lines += [f"  {label:<12} {value}" for label, value in fields if value != ""]  # unset ones left out
    lines.append(f"Errors ({len(details.errors)})")
    for error in details.errors:
        lines.append(
            f"  attempt {error.attempt} at {_when(error.failed_at)}: {error.error_type}: {error.message}"
        )
        shown = (error.traceback or "").rstrip().splitlines()[-SHOWN_TRACEBACK_LINES:]
        lines += [f"      {line}" for line in shown]
    lines.append(f"Referenced by ({len(details.referenced_by)})")
    for row in details.referenced_by:
        lines.append(f"  {row.table}.{row.column}  {_primary_key(row.primary_key)}")
    return "\n".join(lines)


def _references_text(
    *,
    references_count: int,
    found: Sequence[DanglingReference],
    remaining: Sequence[DanglingReference],
    repair: bool,
) -> str:
    if references_count == 0:
        return "No task references are registered; nothing to check."
    lines = []
    if repair:
        lines.append(f"Repaired {len(found) - len(remaining)} dangling reference(s).")
    if not remaining:
        lines.append(f"No dangling references in {references_count} registered column(s).")
        return "\n".join(lines)
    lines.append(f"{len(remaining)} dangling reference(s){' left unrepaired' if repair else ''}:")
    rows = [
        [d.table, d.column, _primary_key(d.primary_key), str(d.task_id), d.task_state or "missing"]
        for d in remaining
    ]
    lines.append(_table(["table", "column", "primary key", "task id", "task state"], rows))
    return "\n".join(lines)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; counts are right-aligned so their digits line up."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if cell.isdigit() else cell.ljust(width)
            for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def _primary_key(primary_key: dict[str, Any]) -> str:
    return ", ".join(f"{column}={value}" for column, value in primary_key.items())


def _duration(seconds: float) -> str:
    """A span the way a person reads it on call: 0.4 s, 12 s, 3 min 20 s, 2 h 5 min."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _when(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.isoformat(sep=" ", timespec="seconds")


def _to_json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, default=_json_value)


def _json_value(value: Any) -> str:
    # Datetimes as ISO 8601; UUIDs, decimals and other primary-key values as their usual text.
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else str(value)
