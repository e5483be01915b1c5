"""What a worker knows: task definitions with their handlers, periodic schedules and inverted references.

Each business package fills a ``TaskRegistry`` of its own; the composition root merges them with
``include``. Declaring a task gives a ``TaskDefinition`` whose ``enqueue`` applies the task's defaults,
so business code writes ``payment.processing_task_id = charge_payment.enqueue(session)``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column
from sqlalchemy.orm import InstrumentedAttribute, Session

from queue_core._enqueue import DEFAULT_QUEUE, TaskSpec, enqueue_many
from queue_core._references import OnPrune, RepairFunction, TaskReference
from queue_core._retry import RetryPolicy

if TYPE_CHECKING:
    from queue_core._running_task import RunningTask

Handler = Callable[["RunningTask", Session], None]


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` starts per ``per_seconds`` for one task name, across all workers (a token bucket)."""

    count: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.per_seconds <= 0:
            raise ValueError("a rate limit needs count >= 1 and per_seconds > 0")

    @property
    def tokens_per_second(self) -> float:
        return self.count / self.per_seconds


@dataclass(frozen=True)
class TaskOptions:
    """Defaults for enqueueing a task name, and how workers run it."""

    queue: str = DEFAULT_QUEUE
    priority: int = 0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    expires_in: float | None = None
    concurrency_limit: int | None = None  # running at once, across all workers
    rate_limit: RateLimit | None = None
    # Never share a commit group: for handlers that hold row locks while they wait on another service.
    commits_alone: bool = False

    @property
    def is_limited(self) -> bool:
        return self.concurrency_limit is not None or self.rate_limit is not None


@dataclass(frozen=True)
class TaskDefinition:
    """A task name bound to its handler and options."""

    name: str
    handler: Handler
    options: TaskOptions

    @classmethod
    def declare(
        cls,
        name: str,
        *,
        queue: str = DEFAULT_QUEUE,
        priority: int = 0,
        retry: RetryPolicy | None = None,
        expires_in: float | None = None,
    ) -> TaskDefinition:
        """A task with what enqueueing it needs, and no handler yet: ``TaskRegistry.handles`` binds one.

        For a package whose use cases enqueue a task whose handler calls those use cases back: the use
        cases' module declares the task and enqueues it; the handlers' module imports that one and binds
        its handler (and says how the handler runs: ``commits_alone``, limits). So the two modules import
        each other in one direction only. Until it is bound, a declared task is in no registry.
        """
        options = TaskOptions(
            queue=queue, priority=priority, retry=retry or RetryPolicy(), expires_in=expires_in
        )
        return cls(name=name, handler=_not_bound(name), options=options)

    def enqueue(
        self,
        session: Session,
        *,
        args: Mapping[str, Any] | None = None,
        delay: float | dt.timedelta | None = None,
        run_at: dt.datetime | None = None,
        priority: int | None = None,
    ) -> uuid.UUID:
        """Enqueue one task of this kind in the caller's transaction; returns its ID."""
        return enqueue_many(session, [self.spec(args=args, delay=delay, run_at=run_at, priority=priority)])[0]

    def spec(
        self,
        *,
        args: Mapping[str, Any] | None = None,
        delay: float | dt.timedelta | None = None,
        run_at: dt.datetime | None = None,
        priority: int | None = None,
    ) -> TaskSpec:
        """A ``TaskSpec`` with this task's defaults, for ``enqueue_many``."""
        return TaskSpec(
            name=self.name,
            queue=self.options.queue,
            priority=self.options.priority if priority is None else priority,
            args=args,
            delay=delay,
            run_at=run_at,
            expires_in=self.options.expires_in,
            max_attempts=self.options.retry.max_attempts,
        )


@dataclass(frozen=True)
class Schedule:
    """Enqueue ``task`` on every tick: every ``every`` seconds (aligned to the epoch) or on a cron line.

    Exactly one task is enqueued per tick however many workers run: the tick's row in
    ``queue_periodic_ticks`` is inserted in the same transaction as the task, and its primary key lets
    only one worker do so. Ticks missed while no worker ran are not made up.
    """

    name: str
    task: str
    every: float | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError("a schedule needs exactly one of every= or cron=")
        if self.every is not None and self.every <= 0:
            raise ValueError("every= must be positive")


def _not_bound(name: str) -> Handler:
    """The stand-in handler of a declared task: never registered, so never run by a worker."""

    def not_bound(task: RunningTask, session: Session) -> None:
        raise LookupError(f"task {name!r} was declared but no handler was bound to it (TaskRegistry.handles)")

    return not_bound


class TaskRegistry:
    """Task definitions, schedules and references of one package, or of the whole application."""

    def __init__(self) -> None:
        self._definitions: dict[str, TaskDefinition] = {}
        self._schedules: dict[str, Schedule] = {}
        self._references: dict[str, TaskReference] = {}

    def task(
        self,
        name: str,
        *,
        queue: str = DEFAULT_QUEUE,
        priority: int = 0,
        retry: RetryPolicy | None = None,
        expires_in: float | None = None,
        concurrency_limit: int | None = None,
        rate_limit: RateLimit | None = None,
        commits_alone: bool = False,
    ) -> Callable[[Handler], TaskDefinition]:
        """Decorator: declare task ``name`` handled by the decorated function.

        ``commits_alone=True`` runs each of its tasks in a transaction of its own instead of a commit
        group. Use it for a handler that calls another service (a payment gateway, a carrier) while it
        holds row locks: in a group, the locks taken by the tasks before it would be held through that
        call, and the locks it takes would be held through the tasks after it.
        """
        declared = TaskDefinition.declare(
            name, queue=queue, priority=priority, retry=retry, expires_in=expires_in
        )
        return self.handles(
            declared, concurrency_limit=concurrency_limit, rate_limit=rate_limit, commits_alone=commits_alone
        )

    def handles(
        self,
        declared: TaskDefinition,
        *,
        concurrency_limit: int | None = None,
        rate_limit: RateLimit | None = None,
        commits_alone: bool = False,
    ) -> Callable[[Handler], TaskDefinition]:
        """Decorator: the decorated function handles ``declared`` (see ``TaskDefinition.declare``).

        Registers the task with its handler and with how the handler runs (the options of ``task``), and
        returns the registered definition.
        """
        if concurrency_limit is not None and concurrency_limit < 1:
            raise ValueError("concurrency_limit must be at least 1")
        options = replace(
            declared.options,
            concurrency_limit=concurrency_limit,
            rate_limit=rate_limit,
            commits_alone=commits_alone,
        )

        def register(handler: Handler) -> TaskDefinition:
            definition = replace(declared, handler=handler, options=options)
            self.add(definition)
            return definition

        return register

    def add(self, definition: TaskDefinition) -> None:
        if definition.name in self._definitions and self._definitions[definition.name] != definition:
            raise ValueError(f"task {definition.name!r} is declared twice")
        self._definitions[definition.name] = definition

    def schedule(
        self, name: str, task: TaskDefinition | str, *, every: float | None = None, cron: str | None = None
    ) -> Schedule:
        """Enqueue ``task`` periodically (see ``Schedule``)."""
        task_name = task if isinstance(task, str) else task.name
        schedule = Schedule(name=name, task=task_name, every=every, cron=cron)
        if schedule.cron is not None:
            from croniter import croniter  # imported here: only schedules with cron lines need it

            if not croniter.is_valid(schedule.cron):
                raise ValueError(f"not a valid cron line: {schedule.cron!r}")
        self._add_schedule(schedule)
        return schedule

    def _add_schedule(self, schedule: Schedule) -> None:
        if self._schedules.get(schedule.name, schedule) != schedule:
            raise ValueError(f"schedule {schedule.name!r} is declared twice")
        self._schedules[schedule.name] = schedule

    def _add_reference(self, reference: TaskReference) -> None:
        if self._references.get(reference.label, reference) != reference:
            raise ValueError(f"column {reference.label} is registered twice with different rules")
        self._references[reference.label] = reference

    def track_reference(
        self,
        column: InstrumentedAttribute[Any] | Column[Any],
        *,
        on_prune: OnPrune = OnPrune.KEEP,
        repair: RepairFunction | None = None,
    ) -> TaskReference:
        """Register a business column that holds task IDs (see ``queue_core._references``)."""
        reference = TaskReference.of(column, on_prune=on_prune, repair=repair)
        self._add_reference(reference)
        return reference

    def include(self, other: TaskRegistry) -> TaskRegistry:
        """Merge another registry's tasks, schedules and references into this one; returns self."""
        for definition in other.definitions:
            self.add(definition)
        for schedule in other.schedules:
            self._add_schedule(schedule)
        for reference in other.references:
            self._add_reference(reference)
        return self

    def with_options(self, name: str, **changes: Any) -> TaskDefinition:
        """Change a declared task's options (for example its backoff in tests); returns the new one.

        Options read at enqueue time are written into the task's row then: a changed ``max_attempts``
        applies to tasks enqueued after the change, never to those already waiting.
        """
        definition = self.get(name)
        updated = replace(definition, options=replace(definition.options, **changes))
        self._definitions[name] = updated
        return updated

    def get(self, name: str) -> TaskDefinition:
        try:
            return self._definitions[name]
        except KeyError:
            raise KeyError(f"no task named {name!r} is registered") from None

    def __contains__(self, name: object) -> bool:
        return name in self._definitions

    @property
    def definitions(self) -> list[TaskDefinition]:
        return list(self._definitions.values())

    @property
    def names(self) -> list[str]:
        return list(self._definitions)

    @property
    def schedules(self) -> list[Schedule]:
        return list(self._schedules.values())

    @property
    def references(self) -> list[TaskReference]:
        return list(self._references.values())

    def queues(self) -> list[str]:
        return sorted({d.options.queue for d in self._definitions.values()})
