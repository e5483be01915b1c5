"""The application's task registry with one poisoned handler, for the end-to-end poison-task scenario.

``shop worker --registry tests.support.e2e_poison:poisoned_registry`` runs every real task, schedule and
repair, except that the fraud screening of an order from an address at ``poison.example`` raises every
time, as a handler with a bug that only some data triggers would. The shop itself is not changed: the
worker's hidden ``--registry`` option exists for exactly this, and the poison lives here, in the tests.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.models import Order
from queue_core import RunningTask, TaskRegistry
from shop.tasks import build_registry

POISONED_TASK = "orders.screen_for_fraud"
POISON_DOMAIN = "poison.example"


class PoisonPill(RuntimeError):  # noqa: N818 - the name says what it is
    """What the poisoned handler raises, on every attempt."""


def poisoned_registry() -> TaskRegistry:
    """The real registry, rebuilt through its public API, with the fraud screening handler wrapped."""
    real = build_registry()
    screen = real.get(POISONED_TASK).handler

    def screen_unless_poisoned(task: RunningTask, session: Session) -> None:
        email = session.scalar(select(Order.customer_email).where(Order.fraud_check_task_id == task.id))
        if email is not None and email.endswith(f"@{POISON_DOMAIN}"):
            raise PoisonPill(f"the screening of {email} crashes on attempt {task.attempt}")
        screen(task, session)

    registry = TaskRegistry()
    for definition in real.definitions:
        if definition.name == POISONED_TASK:
            definition = dataclasses.replace(definition, handler=screen_unless_poisoned)
        registry.add(definition)
    for schedule in real.schedules:
        registry.schedule(schedule.name, schedule.task, every=schedule.every, cron=schedule.cron)
    for reference in real.references:
        registry.track_reference(reference.column, on_prune=reference.on_prune, repair=reference.repair)
    return registry
