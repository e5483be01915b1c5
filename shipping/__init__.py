"""The shipping bounded context: one shipment per paid order, sent to the carrier in batches.

Owns
    The ``shipments`` table (``models.Shipment``) and its batch pointer ``shipping_task_id``: many
    shipments, one manifest task. A periodic dispatcher (``tasks.dispatch_shipments``, every
    ``tasks.DISPATCH_EVERY_SECONDS``) points every ready shipment at one new ``send_manifest`` task in one
    transaction; that task books them with the carrier (``carrier``, a simulated stand-in for someone
    else's system, idempotent per task ID) and marks them dispatched. The pointer is kept after the batch
    is sent, as the record of which shipments left together, and nulled when the task is pruned.

Modules, as in every context
    ``models`` (guarded transitions; ``Shipment.for_order`` makes a new one), ``services`` (use cases; it
    declares the manifest task), ``tasks`` (the dispatcher, the manifest's handler, which books with the
    carrier and hands the manifest to ``services.record_manifest``, and the repair; imports ``services``,
    never the reverse), ``events``, ``schemas`` and ``api`` (HTTP, read-only). Its own: ``carrier``.

Publishes (``events``, to the dispatcher in ``session.info[events.REACTIONS_KEY]``)
    ``ShipmentDispatched(order_id, shipment_id, tracking_number)``, once per shipment, in the transaction
    that completes its manifest task.

Consumes (through the composition root's reactions, calling ``services``)
    ``PaymentCaptured -> create_shipment`` (idempotent per order) and
    ``OrderCancelled -> cancel_shipment_for_order`` (withdraws a shipment the carrier does not have yet;
    raises ``AlreadyDispatched``, an ``InvalidTransition``, when it is too late).

Knows other contexts only by ID (``order_id``) and never imports them.
"""
