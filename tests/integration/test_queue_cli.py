"""``shop queue``: every subcommand against a real database, on PostgreSQL and on SQLite.

Tasks are enqueued with ``queue_core.enqueue`` and moved along by an in-process worker running this
module's own registry, which also tracks the columns of a small ``gift_wraps`` table: the commands get
that registry through ``app.config["TASK_REGISTRY"]``, the same way a demo would. ``shop queue workers``
is shown real worker processes (``workers``), so that what it reports can be checked against a PID.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, Uuid, insert, select, update
from sqlalchemy.orm import Session

from queue_core import (
    DanglingReference,
    OnPrune,
    RetryPolicy,
    RunningTask,
    TaskRegistry,
    Worker,
    WorkerSettings,
    enqueue,
)
from queue_core._models import task_table
from shop.cli.main import main
from shop.tasks import REGISTRY_CONFIG_KEY
from shop.web.app import create_app
from tests.support.credentials import web_settings
from tests.support.inprocess import wait_for
from tests.support.lost_workers import pause, wait_until_started_by
from tests.support.queue_handlers import enqueue_committed, task_row
from tests.support.worker_process import WorkerProcesses

gift_metadata = MetaData()
gift_wraps = Table(
    "gift_wraps",
    gift_metadata,
    Column("id", Integer, primary_key=True),
    Column("paper", String(50), nullable=False),
    Column("status", String(50), nullable=False, default="wrapping"),
    Column("wrapping_task_id", Uuid, nullable=True),
    Column("card_task_id", Uuid, nullable=True),
)


class CardDeclinedError(Exception):
    """The payment provider said no; it always will for this card."""


def mark_for_rewrapping(session: Session, dangling: Sequence[DanglingReference]) -> None:
    """The repair a business package would register: send the gift back to the wrapping desk."""
    ids = [reference.primary_key["id"] for reference in dangling]
    session.execute(
        update(gift_wraps)
        .where(gift_wraps.c.id.in_(ids))
        .values(status="needs-rewrapping", wrapping_task_id=None)
    )


def build_test_registry() -> TaskRegistry:
    """Two tasks (one always fails) and the two ``gift_wraps`` columns, one of them with a repair."""
    registry = TaskRegistry()
    no_wait = RetryPolicy(max_attempts=2, base_seconds=0.0, jitter=0.0)

    @registry.task("wrap-gift", queue="gift-wrap", retry=no_wait)
    def wrap_gift(task: RunningTask, session: Session) -> None:
        """Succeeds at once."""

    @registry.task("charge-declined-card", retry=no_wait)
    def charge_declined_card(task: RunningTask, session: Session) -> None:
        """Fails every attempt, so the task ends dead with one error per attempt."""
        raise CardDeclinedError("card 4000-0000-0000-0002 declined: insufficient funds")

    registry.track_reference(gift_wraps.c.wrapping_task_id, on_prune=OnPrune.KEEP, repair=mark_for_rewrapping)
    registry.track_reference(gift_wraps.c.card_task_id, on_prune=OnPrune.SET_NULL)
    return registry


@dataclass(frozen=True)
class FilledQueue:
    """One task in each interesting state."""

    wrapped: uuid.UUID  # succeeded, queue gift-wrap
    declined: uuid.UUID  # dead after two attempts, queue default
    later: uuid.UUID  # pending, due in an hour, queue gift-wrap
    postcard: uuid.UUID  # pending and due, but no worker knows its name


@pytest.fixture
def registry() -> TaskRegistry:
    return build_test_registry()


@pytest.fixture
def app(database_url: str, engine: Engine, registry: TaskRegistry) -> Flask:
    gift_metadata.create_all(engine)
    app = create_app(web_settings(database_url))
    app.config[REGISTRY_CONFIG_KEY] = registry
    return app


@pytest.fixture
def filled_queue(engine: Engine, registry: TaskRegistry) -> FilledQueue:
    with Session(engine) as session, session.begin():
        queue = FilledQueue(
            wrapped=enqueue(session, "wrap-gift", queue="gift-wrap", max_attempts=2),
            declined=enqueue(session, "charge-declined-card", max_attempts=2),
            later=enqueue(session, "wrap-gift", queue="gift-wrap", delay=3600),
            postcard=enqueue(session, "send-postcard", queue="mail"),
        )
    work_until_idle(engine, registry)
    return queue


def work_until_idle(engine: Engine, registry: TaskRegistry) -> None:
    """Run a worker until nothing it can claim is left.

    In a thread of its own: run() in the main thread would replace pytest's SIGINT and SIGTERM handlers.
    """
    worker = Worker(engine, registry, WorkerSettings(concurrency=1, listen=False, poll_interval=0.05))
    thread = threading.Thread(target=worker.run, kwargs={"until_idle": True})
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the worker did not become idle within 30 s"


def shop(app: Flask, *args: str) -> Result:
    """Run ``shop ARGS`` against ``app``, as ``.venv/bin/shop`` would with the app's settings."""
    return app.test_cli_runner().invoke(main, list(args))


def state_in_database(engine: Engine, task_id: uuid.UUID) -> tuple[str, int, int]:
    with engine.connect() as connection:
        row = connection.execute(
            select(task_table.c.state, task_table.c.attempts, task_table.c.max_attempts).where(
                task_table.c.id == task_id
            )
        ).one()
    return row.state, row.attempts, row.max_attempts


GIFT_WRAP_DEFAULTS = {"status": "wrapping", "wrapping_task_id": None, "card_task_id": None}


def add_gift_wraps(engine: Engine, *rows: dict[str, object]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(gift_wraps), [{**GIFT_WRAP_DEFAULTS, **row} for row in rows])


# -- stats --------------------------------------------------------------------------------------------


def test_stats_as_json_counts_tasks_by_state_and_queue(app: Flask, filled_queue: FilledQueue) -> None:
    result = shop(app, "queue", "stats", "--json")

    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["by_state"] == {
        "pending": 2,
        "running": 0,
        "succeeded": 1,
        "dead": 1,
        "cancelled": 0,
        "expired": 0,
        "discarded": 0,
    }
    assert stats["by_queue_and_state"] == {
        "default": {"dead": 1},
        "gift-wrap": {"pending": 1, "succeeded": 1},
        "mail": {"pending": 1},
    }
    assert stats["oldest_pending_age_seconds"] >= 0  # the postcard is due and nobody can run it
    assert stats["succeeded_last_minute"] == 1
    assert set(stats["pickup_latency_ms"]) == {"p50", "p95", "p99"}
    assert stats["live_workers"] == 0  # the worker removed its row when it stopped


def test_stats_prints_a_table_a_person_can_read(app: Flask, filled_queue: FilledQueue) -> None:
    result = shop(app, "queue", "stats")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "queue",
        "pending",
        "running",
        "succeeded",
        "dead",
        "cancelled",
        "expired",
        "discarded",
    ]
    assert lines[1].split() == ["default", "0", "0", "0", "1", "0", "0", "0"]
    assert lines[2].split() == ["gift-wrap", "1", "0", "1", "0", "0", "0", "0"]
    assert lines[4].split() == ["all", "2", "0", "1", "1", "0", "0", "0"]
    assert "throughput:      1 succeeded in the last minute" in result.output
    assert "pickup latency:  p50 " in result.output
    assert "live workers:    0" in result.output


def test_stats_of_an_empty_queue_says_nothing_is_waiting(app: Flask) -> None:
    result = shop(app, "queue", "stats")

    assert result.exit_code == 0, result.output
    assert "oldest pending:  nothing waiting" in result.output
    assert "pickup latency:  no starts" in result.output


# -- list ---------------------------------------------------------------------------------------------


def test_list_shows_tasks_newest_first(app: Flask, filled_queue: FilledQueue) -> None:
    result = shop(app, "queue", "list")

    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split()[:5] == ["id", "name", "queue", "state", "attempts"]
    listed = [uuid.UUID(row.split()[0]) for row in rows]
    assert listed == [filled_queue.postcard, filled_queue.later, filled_queue.declined, filled_queue.wrapped]


def test_list_filters_by_state_queue_and_name(app: Flask, filled_queue: FilledQueue) -> None:
    def listed(*filters: str) -> list[str]:
        result = shop(app, "queue", "list", "--json", *filters)
        assert result.exit_code == 0, result.output
        return [task["id"] for task in json.loads(result.output)]

    assert listed("--state", "dead") == [str(filled_queue.declined)]
    assert listed("--queue", "gift-wrap") == [str(filled_queue.later), str(filled_queue.wrapped)]
    assert listed("--name", "wrap-gift", "--state", "pending") == [str(filled_queue.later)]
    assert listed("--limit", "1") == [str(filled_queue.postcard)]
    assert listed("--queue", "no-such-queue") == []


def test_list_as_json_gives_each_task_in_full(app: Flask, filled_queue: FilledQueue) -> None:
    result = shop(app, "queue", "list", "--json", "--state", "dead")

    (declined,) = json.loads(result.output)
    assert declined["name"] == "charge-declined-card"
    assert (declined["attempts"], declined["max_attempts"]) == (2, 2)
    assert dt.datetime.fromisoformat(declined["finished_at"]).tzinfo is not None


def test_list_with_nothing_matching_says_so(app: Flask) -> None:
    result = shop(app, "queue", "list", "--state", "running")

    assert (result.exit_code, result.output) == (0, "No tasks match.\n")


def test_list_refuses_a_state_that_does_not_exist(app: Flask) -> None:
    result = shop(app, "queue", "list", "--state", "sleeping")

    assert result.exit_code == 2
    assert "Invalid value for '--state'" in result.output


# -- show ---------------------------------------------------------------------------------------------


def test_show_prints_the_task_its_errors_and_the_rows_pointing_at_it(
    app: Flask, engine: Engine, filled_queue: FilledQueue
) -> None:
    add_gift_wraps(engine, {"id": 7, "paper": "CRIMSON-FOIL", "wrapping_task_id": filled_queue.declined})

    result = shop(app, "queue", "show", str(filled_queue.declined))

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Task {filled_queue.declined}\n")
    assert "  state        dead\n" in result.output
    assert "  attempts     2 of 2\n" in result.output
    assert "Errors (2)\n" in result.output
    for attempt in (1, 2):
        assert f"  attempt {attempt} at " in result.output
    assert "CardDeclinedError: card 4000-0000-0000-0002 declined: insufficient funds" in result.output
    assert 'raise CardDeclinedError("card 4000' in result.output  # the traceback, shortened
    assert result.output.endswith("Referenced by (1)\n  gift_wraps.wrapping_task_id  id=7\n")


def test_show_as_json_includes_the_attempt_errors_and_referencing_rows(
    app: Flask, engine: Engine, filled_queue: FilledQueue
) -> None:
    add_gift_wraps(engine, {"id": 7, "paper": "CRIMSON-FOIL", "card_task_id": filled_queue.declined})

    result = shop(app, "queue", "show", "--json", str(filled_queue.declined))

    assert result.exit_code == 0, result.output
    details = json.loads(result.output)
    assert details["task"]["id"] == str(filled_queue.declined)
    assert [error["attempt"] for error in details["errors"]] == [1, 2]
    assert details["errors"][0]["error_type"].endswith("CardDeclinedError")
    assert details["referenced_by"] == [
        {
            "table": "gift_wraps",
            "column": "card_task_id",
            "primary_key": {"id": 7},
            "task_id": str(filled_queue.declined),
        }
    ]


# -- workers ------------------------------------------------------------------------------------------

LEASE_SECONDS = 2.0  # the worker processes' lease: a paused one is lost this long after its last beat
SLOW_SECONDS = 60  # longer than any test: the handler is still running when the test looks


def test_workers_lists_a_running_worker_with_its_pid_host_and_the_task_it_holds(
    app: Flask, engine: Engine, workers: WorkerProcesses
) -> None:
    [worker] = workers.start(lease=LEASE_SECONDS)
    task_id = enqueue_committed(engine, "test.record_slowly", {"seconds": SLOW_SECONDS})
    wait_until_started_by(engine, task_id, worker)

    result = shop(app, "queue", "workers")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "worker", "id", "host", "pid", "state", "started", "last", "heartbeat", "lease", "tasks",
    ]  # fmt: skip
    assert lines[1].split()[:4] == [str(worker.worker_id), socket.gethostname(), str(worker.pid), "live"]
    assert lines[1].split()[-1] == "1"
    assert lines[3] == "Tasks held"
    held = lines[5].split()
    assert held[:4] == [f"{socket.gethostname()}:{worker.pid}", str(task_id), "test.record_slowly", "1"]
    assert held[-1] == str(task_row(engine, task_id)["lease_token"])
    assert lines[-1] == "1 live, 0 lost."


def test_workers_shows_a_worker_whose_heartbeat_stopped_as_lost_with_the_task_it_still_holds(
    app: Flask, database_url: str, engine: Engine, workers: WorkerProcesses
) -> None:
    [frozen] = workers.start(lease=LEASE_SECONDS)
    task_id = enqueue_committed(engine, "test.record_slowly", {"seconds": SLOW_SECONDS})
    wait_until_started_by(engine, task_id, frozen)

    pause(frozen, database_url)  # SIGSTOP: alive to the kernel, silent to the queue
    [listed] = wait_for(
        lambda: [w for w in workers_as_json(app) if not w["alive"]],
        timeout=30,
        what="the paused worker's lease running out",
    )

    assert (listed["id"], listed["hostname"], listed["pid"]) == (
        str(frozen.worker_id),
        socket.gethostname(),
        frozen.pid,
    )
    assert listed["heartbeat_age_seconds"] >= LEASE_SECONDS and listed["lease_left_seconds"] < 0
    [held] = listed["in_flight"]  # no live worker has run a maintenance pass to take it back
    assert (held["id"], held["name"], held["attempt"]) == (str(task_id), "test.record_slowly", 1)
    assert held["lease_token"] == str(task_row(engine, task_id)["lease_token"])
    text = shop(app, "queue", "workers").output
    assert f"{frozen.pid}  lost  " in text and "ran out " in text
    assert text.endswith(
        "0 live, 1 lost.\nNo live worker will hand the lost workers' tasks back: start one (`shop worker`).\n"
    )


def test_workers_with_none_registered_says_so(app: Flask) -> None:
    result = shop(app, "queue", "workers")

    assert (result.exit_code, result.output) == (
        0,
        "No workers are registered (a worker that stops cleanly removes its row).\n",
    )


def workers_as_json(app: Flask) -> list[dict[str, object]]:
    result = shop(app, "queue", "workers", "--json")
    assert result.exit_code == 0, result.output
    listed: list[dict[str, object]] = json.loads(result.output)
    return listed


# -- retry and cancel ---------------------------------------------------------------------------------


def test_retry_puts_a_dead_task_back_to_pending_with_more_attempts(
    app: Flask, engine: Engine, filled_queue: FilledQueue
) -> None:
    result = shop(app, "queue", "retry", str(filled_queue.declined), "--attempts", "3")

    assert result.exit_code == 0, result.output
    assert result.output == f"Task {filled_queue.declined}: pending (was dead; 3 more attempt(s)).\n"
    assert state_in_database(engine, filled_queue.declined) == ("pending", 2, 5)


@pytest.mark.parametrize("which", ["wrapped", "later"])
def test_retry_refuses_a_succeeded_or_pending_task_as_the_pages_do(
    app: Flask, engine: Engine, filled_queue: FilledQueue, which: str
) -> None:
    task_id: uuid.UUID = getattr(filled_queue, which)
    before = state_in_database(engine, task_id)

    result = shop(app, "queue", "retry", str(task_id))

    assert result.exit_code == 1
    assert result.output == (
        f"Error: task {task_id} is {before[0]}, left as it is: "
        "only a cancelled, dead, discarded or expired task can be retried\n"
    )
    assert state_in_database(engine, task_id) == before


def running_task(engine: Engine) -> uuid.UUID:
    """A gift-wrapping task in state running, as if a worker had claimed it."""
    with Session(engine) as session, session.begin():
        task_id = enqueue(session, "wrap-gift", queue="gift-wrap")
    with engine.begin() as connection:
        connection.execute(update(task_table).where(task_table.c.id == task_id).values(state="running"))
    return task_id


def test_retry_refuses_a_running_task(app: Flask, engine: Engine) -> None:
    task_id = running_task(engine)

    result = shop(app, "queue", "retry", str(task_id))

    assert result.exit_code == 1
    assert f"task {task_id} is running, left as it is" in result.output
    assert state_in_database(engine, task_id) == ("running", 0, 5)


def test_retry_refuses_fewer_than_one_attempt(app: Flask, filled_queue: FilledQueue) -> None:
    result = shop(app, "queue", "retry", str(filled_queue.declined), "--attempts", "0")

    assert result.exit_code == 2
    assert "Invalid value for '--attempts'" in result.output


def test_cancel_cancels_a_pending_task_at_once(app: Flask, engine: Engine, filled_queue: FilledQueue) -> None:
    result = shop(app, "queue", "cancel", str(filled_queue.later))

    assert (result.exit_code, result.output) == (0, f"Task {filled_queue.later}: cancelled.\n")
    assert state_in_database(engine, filled_queue.later)[0] == "cancelled"


def test_cancel_leaves_a_finished_task_as_it_is(
    app: Flask, engine: Engine, filled_queue: FilledQueue
) -> None:
    result = shop(app, "queue", "cancel", str(filled_queue.wrapped))

    assert result.exit_code == 0, result.output
    assert result.output == f"Task {filled_queue.wrapped}: succeeded (already finished; left as it is).\n"
    assert state_in_database(engine, filled_queue.wrapped)[0] == "succeeded"


def test_cancel_of_a_running_task_asks_its_handler_to_stop(app: Flask, engine: Engine) -> None:
    task_id = running_task(engine)

    result = shop(app, "queue", "cancel", str(task_id))

    assert result.exit_code == 0, result.output
    assert "running (cancellation requested" in result.output
    with engine.connect() as connection:
        requested = connection.scalar(select(task_table.c.cancel_requested).where(task_table.c.id == task_id))
    assert requested is True


@pytest.mark.parametrize("command", ["show", "retry", "cancel"])
def test_an_unknown_task_id_is_one_line_and_exit_1(app: Flask, command: str) -> None:
    unknown = "0190c2a4-8f1e-7c3a-9b7d-2f64f0a1c0de"

    result = shop(app, "queue", command, unknown)

    assert result.exit_code == 1
    assert result.output == f"Error: no task {unknown} (never existed, or pruned)\n"


@pytest.mark.parametrize("command", ["show", "retry", "cancel"])
def test_a_malformed_task_id_is_a_usage_error(app: Flask, command: str) -> None:
    result = shop(app, "queue", command, "order-42")

    assert result.exit_code == 2
    assert "Error: Invalid value for 'TASK_ID': 'order-42' is not a valid UUID." in result.output
    assert "Traceback" not in result.output


# -- prune --------------------------------------------------------------------------------------------


def finish_long_ago(engine: Engine, *task_ids: uuid.UUID, days: float = 30) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with engine.begin() as connection:
        connection.execute(
            update(task_table)
            .where(task_table.c.id.in_(task_ids))
            .values(state="succeeded", finished_at=long_ago, started_at=long_ago)
        )


def task_ids_left(engine: Engine) -> set[uuid.UUID]:
    with engine.connect() as connection:
        return set(connection.scalars(select(task_table.c.id)))


def test_prune_deletes_old_finished_tasks_batch_by_batch(app: Flask, engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        old = [enqueue(session, "wrap-gift", queue="gift-wrap") for _ in range(5)]
        recent = enqueue(session, "wrap-gift", queue="gift-wrap")
        waiting = enqueue(session, "wrap-gift", queue="gift-wrap")
    finish_long_ago(engine, *old)
    finish_long_ago(engine, recent, days=1)

    result = shop(app, "queue", "prune", "--older-than-days", "7", "--batch-size", "2")

    assert result.exit_code == 0, result.output
    assert result.output == "Deleted 5 task(s) finished over 7 day(s) ago; nulled 0 reference(s).\n"
    assert task_ids_left(engine) == {recent, waiting}


def test_prune_keeps_tasks_a_row_still_needs_and_nulls_pointers_it_may_drop(
    app: Flask, engine: Engine
) -> None:
    with Session(engine) as session, session.begin():
        wrapping, card = enqueue(session, "wrap-gift"), enqueue(session, "wrap-gift")
    finish_long_ago(engine, wrapping, card)
    add_gift_wraps(
        engine, {"id": 1, "paper": "KRAFT-TWINE", "wrapping_task_id": wrapping, "card_task_id": card}
    )

    result = shop(app, "queue", "prune", "--older-than-days", "7")

    assert result.exit_code == 0, result.output
    assert result.output == "Deleted 1 task(s) finished over 7 day(s) ago; nulled 1 reference(s).\n"
    assert task_ids_left(engine) == {wrapping}  # KEEP column: the task stays while the row points at it
    with engine.connect() as connection:
        assert connection.scalar(select(gift_wraps.c.card_task_id)) is None


def test_prune_with_nothing_due_deletes_nothing(
    app: Flask, filled_queue: FilledQueue, engine: Engine
) -> None:
    result = shop(app, "queue", "prune", "--older-than-days", "0.5")

    assert result.output == "Deleted 0 task(s) finished over 0.5 day(s) ago; nulled 0 reference(s).\n"
    assert len(task_ids_left(engine)) == 4


def test_prune_needs_an_age(app: Flask) -> None:
    result = shop(app, "queue", "prune")

    assert result.exit_code == 2
    assert "Missing option '--older-than-days'" in result.output


# -- check-references ---------------------------------------------------------------------------------


def test_check_references_lists_rows_waiting_on_tasks_that_will_never_succeed(
    app: Flask, engine: Engine, filled_queue: FilledQueue
) -> None:
    vanished = uuid.UUID("0190c2a4-8f1e-7c3a-9b7d-2f64f0a1c0de")
    add_gift_wraps(
        engine,
        {"id": 1, "paper": "KRAFT-TWINE", "wrapping_task_id": filled_queue.wrapped},
        {"id": 2, "paper": "CRIMSON-FOIL", "wrapping_task_id": filled_queue.declined},
        {"id": 3, "paper": "POLKA-DOT", "card_task_id": vanished},
    )

    result = shop(app, "queue", "check-references")

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == "2 dangling reference(s):"
    assert lines[1].split() == ["table", "column", "primary", "key", "task", "id", "task", "state"]
    assert lines[2].split() == ["gift_wraps", "wrapping_task_id", "id=2", str(filled_queue.declined), "dead"]
    assert lines[3].split() == ["gift_wraps", "card_task_id", "id=3", str(vanished), "missing"]


def test_check_references_exits_0_when_every_row_points_at_a_live_task(
    app: Flask, engine: Engine, filled_queue: FilledQueue
) -> None:
    add_gift_wraps(
        engine,
        {"id": 1, "paper": "KRAFT-TWINE", "wrapping_task_id": filled_queue.wrapped},
        {"id": 2, "paper": "CRIMSON-FOIL", "wrapping_task_id": filled_queue.later},
    )

    result = shop(app, "queue", "check-references")

    assert (result.exit_code, result.output) == (0, "No dangling references in 2 registered column(s).\n")


def test_check_references_repair_mends_what_a_repair_function_covers_and_reports_the_rest(
    app: Flask, engine: Engine, filled_queue: FilledQueue
) -> None:
    add_gift_wraps(
        engine,
        {"id": 2, "paper": "CRIMSON-FOIL", "wrapping_task_id": filled_queue.declined},
        {"id": 3, "paper": "POLKA-DOT", "card_task_id": filled_queue.declined},
    )

    result = shop(app, "queue", "check-references", "--repair")

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[:2] == ["Repaired 1 dangling reference(s).", "1 dangling reference(s) left unrepaired:"]
    assert lines[3].split()[:3] == ["gift_wraps", "card_task_id", "id=3"]
    with engine.connect() as connection:
        assert connection.execute(
            select(gift_wraps.c.id, gift_wraps.c.status).order_by(gift_wraps.c.id)
        ).all() == [
            (2, "needs-rewrapping"),
            (3, "wrapping"),
        ]


def test_check_references_repair_exits_0_when_everything_was_mended(
    app: Flask, engine: Engine, filled_queue: FilledQueue
) -> None:
    add_gift_wraps(engine, {"id": 2, "paper": "CRIMSON-FOIL", "wrapping_task_id": filled_queue.declined})

    result = shop(app, "queue", "check-references", "--repair", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"dangling": [], "repaired": 1}


def test_check_references_as_json_names_each_dangling_row(
    app: Flask, engine: Engine, filled_queue: FilledQueue
) -> None:
    add_gift_wraps(engine, {"id": 2, "paper": "CRIMSON-FOIL", "wrapping_task_id": filled_queue.declined})

    result = shop(app, "queue", "check-references", "--json")

    assert result.exit_code == 1
    assert json.loads(result.output) == {
        "dangling": [
            {
                "table": "gift_wraps",
                "column": "wrapping_task_id",
                "primary_key": {"id": 2},
                "task_id": str(filled_queue.declined),
                "task_state": "dead",
            }
        ]
    }


def test_check_references_with_no_registered_columns_has_nothing_to_check(app: Flask) -> None:
    app.config[REGISTRY_CONFIG_KEY] = TaskRegistry()

    result = shop(app, "queue", "check-references")

    assert (result.exit_code, result.output) == (0, "No task references are registered; nothing to check.\n")


# -- database trouble ---------------------------------------------------------------------------------

EVERY_COMMAND = [
    ["stats"],
    ["list"],
    ["show", "0190c2a4-8f1e-7c3a-9b7d-2f64f0a1c0de"],
    ["retry", "0190c2a4-8f1e-7c3a-9b7d-2f64f0a1c0de"],
    ["cancel", "0190c2a4-8f1e-7c3a-9b7d-2f64f0a1c0de"],
    ["prune", "--older-than-days", "7"],
    ["check-references"],
]


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda command: command[0])
def test_every_command_on_an_unreachable_server_says_how_to_fix_it_in_one_line(command: list[str]) -> None:
    app = create_app(web_settings("postgresql+psycopg://clerk:s3cret@127.0.0.1:1/shop"))
    app.config[REGISTRY_CONFIG_KEY] = build_test_registry()

    result = shop(app, "queue", *command)

    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: cannot use the database at postgresql+psycopg://clerk:***@127.0.0.1:1/shop"
    )
    assert "set DATABASE_URL" in result.output
    assert "s3cret" not in result.output
    assert result.output.count("\n") == 1


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda command: command[0])
def test_every_command_on_a_database_without_the_schema_says_to_upgrade_it(
    command: list[str], tmp_path: Path
) -> None:
    app = create_app(web_settings(f"sqlite:///{tmp_path / 'blank.sqlite3'}"))
    app.config[REGISTRY_CONFIG_KEY] = build_test_registry()

    result = shop(app, "queue", *command)

    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: cannot use the database at sqlite:///{tmp_path / 'blank.sqlite3'} (no such table"
    )
    assert result.output.endswith("run `shop db upgrade` first\n")
