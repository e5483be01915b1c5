"""The shipping context's tasks: the periodic dispatcher, the manifest it enqueues, and the batch's repair.

Every ``DISPATCH_EVERY_SECONDS`` the dispatcher points all ready shipments at one new ``send_manifest``
task (``services.dispatch_ready_shipments``; ``services`` declares the manifest task, this module binds
its handler, and ``services`` never imports this module). That task finds its shipments by its own ID
and books them with the carrier under that ID (so a retry books the same manifest), in three atomic
phases (docs/architecture.md, "Remote calls in three phases"): a short transaction reads the parcels
still in the batch, the carrier is called holding no transaction, and ``services.record_manifest`` marks
them dispatched in the transaction that completes the task. Unlike every other task-ID column,
``shipments.shipping_task_id`` is kept afterwards, as the record of which shipments left together;
pruning the finished task nulls it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from queue_core import DanglingReference, OnPrune, RetryPolicy, RunningTask, TaskRegistry
from shipping import carrier, services
from shipping.models import Shipment, ShipmentState

DISPATCH_EVERY_SECONDS = 2.0

registry = TaskRegistry()


# Stale ticks expire: the next tick does the same work, so a backlog of dispatchers queued behind a busy
# worker helps nobody. A tick whose worker died (inside its handler, or with the tick still in its buffer:
# a claim counts an attempt) is run again, though: ending it dead would page an operator (an alert on
# dead tasks) for work the next tick does anyway.
@registry.task(
    "shipping.dispatch_shipments",
    queue="shipping",
    retry=RetryPolicy(max_attempts=3, base_seconds=0.2, cap_seconds=1.0),
    expires_in=DISPATCH_EVERY_SECONDS * 5,
)
def dispatch_shipments(task: RunningTask, session: Session) -> None:
    """Batch the ready shipments into one ``send_manifest`` task."""
    services.dispatch_ready_shipments(session)


registry.schedule("shipping.dispatcher", dispatch_shipments, every=DISPATCH_EVERY_SECONDS)


# Commits alone: in a commit group, the transaction of the tasks before it would be open across its call.
@registry.handles(services.SEND_MANIFEST, commits_alone=True)
def send_manifest(task: RunningTask, session: Session) -> None:
    """Book the batch pointing at this task with the carrier, and mark each of its shipments dispatched."""
    with task.short_transaction() as reading:
        parcels = services.parcels_in_batch(reading, task.id)
    if not parcels:
        # Not a Discard: an empty batch is a normal outcome, not a failure. Every shipment in it was
        # withdrawn (a cancelled shipment leaves its batch), so there is nothing to send and the task did
        # all it was asked. Ending it ``discarded`` would count it among the failures that dashboards
        # and ``find_dangling`` look at. No retry storm either way: the task succeeds at once.
        return
    with task.outside_transaction():
        manifest = carrier.book_manifest(str(task.id), parcels)
    services.record_manifest(session, task.id, manifest)


def repair_batches(session: Session, dangling: Sequence[DanglingReference]) -> None:
    """Mend shipments whose manifest task will never run: dead, cancelled, expired, discarded or gone.

    A shipment still ``in_batch`` goes back to ``ready`` with its pointer cleared, so the next dispatch
    takes it. A dispatched or cancelled one only loses the pointer (a record of a batch that no longer
    exists). ``repair_dangling`` hands each shipment over locked, still in the batch, and the batch's task
    still dead: one re-queued since it was reported keeps its shipments.
    """
    for reference in dangling:
        shipment = session.get_one(Shipment, reference.primary_key["id"])
        if shipment.shipment_state is ShipmentState.IN_BATCH:
            shipment.return_to_ready()
        else:
            shipment.forget_batch()


registry.track_reference(Shipment.shipping_task_id, on_prune=OnPrune.SET_NULL, repair=repair_batches)
